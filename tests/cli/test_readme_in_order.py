"""A new user follows the README from the top, in one shell, in the order written.

tests/test_docs.py runs each README section on its own, in a fresh directory; a
user runs them one after another in the same shell, so a section can break
the next (a path an earlier section already created, a working directory an
earlier section changed). This test runs the shell commands of the sections
below as one bash script, word for word except that ``/tmp/`` is a private
temporary directory and the loopback registry's port is a free one; every
command must exit 0 except those the README shows failing (``echo "exit $?"``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT, unavailable
from ..registry import free_port

SECTIONS = ("## Walkthrough", "## Real workflows", "## Signed distribution", "## Share a stack through a registry")


def readme_commands(text: str) -> list[str]:
    """The shell commands of SECTIONS: ``$ `` lines of console blocks, every line of sh blocks, joined on ``\\``."""
    commands: list[str] = []
    for title in SECTIONS:
        section = text.split(title + "\n", 1)[1].split("\n## ", 1)[0]
        for lang, body in re.findall(r"```(console|sh)\n(.*?)```", section, re.S):
            pending = ""
            for line in body.splitlines():
                if lang == "console" and not pending:
                    if not line.startswith("$ "):
                        continue
                    line = line[2:]
                if not line.strip() and not pending:
                    continue
                pending += line.strip() if pending else line
                if pending.endswith("\\"):
                    pending = pending[:-1] + " "
                    continue
                commands.append(pending)
                pending = ""
    return commands


def test_readme_sections_run_in_order(tmp_path: Path) -> None:
    if shutil.which("docker-registry") is None:
        unavailable("docker-registry (Debian package docker-registry) is not installed")
    if shutil.which("bwrap") is None:
        unavailable("bubblewrap is not installed")
    commands = readme_commands((ROOT / "README.md").read_text())
    assert any("cp -r stacks/code-review" in c for c in commands) and any("lodec pull" in c for c in commands)
    repo, tmp = tmp_path / "repo", tmp_path / "t"
    tmp.mkdir()
    for part in ("steps", "schemas", "stacks/code-review", "tests/corpus/github-actions", "tests/corpus/argo",
                 "tests/corpus/nanostack"):
        shutil.copytree(ROOT / part, repo / part)
    port = str(free_port())
    script = ["cd " + str(repo)]
    for i, command in enumerate(commands):
        if "registry.example.com" in command:
            continue  # a registry that is not there; the loopback registry below stands in for it
        command = command.replace("/tmp/", f"{tmp}/").replace("/media/usb/", f"{tmp}/usb/")
        command = command.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        if command.startswith("until curl"):
            command = "for _ in $(seq 100); do curl -sf http://127.0.0.1:" + port + "/v2/ >/dev/null && break; sleep 0.2; done"
        script.append(command)
        script.append(f'echo "@@ {i} $?"')
    script.append("kill $(jobs -p) 2>/dev/null; wait")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "LODEC_HOME": str(tmp_path / "home" / ".lodec"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITHUB_ACTIONS", None)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout
    failed = []
    for mark in re.finditer(r"^@@ (\d+) (\d+)$", out, re.M):
        index, code = int(mark.group(1)), int(mark.group(2))
        if code != 0:
            failed.append(commands[index])
    assert len(re.findall(r"^@@ ", out, re.M)) == sum("registry.example.com" not in c for c in commands), proc.stderr
    assert failed == [], f"README commands failed in order: {failed}\n--- stderr:\n{proc.stderr[-4000:]}"
    # what the README says these print
    assert "exit 1" in out and "[step_tampered]" in proc.stderr
    assert "Verified code-review-pipeline 1.0.0 and unpacked" in out
    assert "succeeded: 3 succeeded" in out
    assert "Wrote pulled.lodepack and pulled.lodepack.dsse" in out
