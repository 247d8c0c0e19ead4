"""The compliance-release stack end to end: its harness (e2e.py) and its README, run for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "stacks" / "compliance-release"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path / "home")  # nothing may land in the real ~/.lodec
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def test_e2e_harness_passes_with_at_least_35_checks(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(STACK / "e2e.py")], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=600)
    lines = done.stdout.strip().splitlines()
    failures = [line for line in lines if line.startswith("FAIL")]
    assert not failures, "\n".join(failures) + "\n" + done.stderr[-2000:]
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1])
    assert match is not None, lines[-5:]
    passed, failed = int(match.group(1)), int(match.group(2))
    assert failed == 0 and passed >= 35, lines[-1]
    assert done.returncode == 0


def test_e2e_harness_counts_a_failure(tmp_path: Path) -> None:
    # The harness must not report success when a check fails: run it with the example reports hidden.
    done = subprocess.run([sys.executable, str(STACK / "e2e.py"), "--reports", str(tmp_path / "none")],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, [1-9]\d* failed", last), last
    assert done.returncode == 1


def _sh_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_readme_walkthrough_runs_word_for_word(tmp_path: Path) -> None:
    """Every ```sh block of the stack's README after the install block, in one bash, in a fresh project."""
    text = (STACK / "README.md").read_text()
    for heading in ("Who this stack is for", "What it adds", "Install in a sandbox", "Run the workflow",
                    "Expected evidence", "Reset"):
        assert f"\n## {heading}\n" in text, heading
    install = text.split("\n## Install in a sandbox\n", 1)[1].split("\n## ", 1)[0]
    blocks = _sh_blocks(install)
    assert blocks[0].startswith("export LODEC_SRC=") and "pip install" in blocks[0]
    rest = text.split("\n## Install in a sandbox\n", 1)[1]
    script = "\n".join(b for b in _sh_blocks(rest)[1:])
    env = _env(tmp_path)
    env.update(LODEC_SRC=str(ROOT), TMPDIR=str(tmp_path))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", "set -x\n" + script + "\necho WALKTHROUGH-DONE"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert "WALKTHROUGH-DONE" in done.stdout, done.stderr[-4000:]
    out = done.stdout
    printed = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", out, re.M | re.S)]
    decisions = [a["summary"] for a in printed if a.get("phase") == "release-readiness"]
    assert [d["status"] for d in decisions] == ["WARN", "BLOCKED", "BLOCKED", "OK"], (decisions, out[-3000:])
    checks = [{c["phase"]: c["status"] for c in d["checks"]} for d in decisions]
    assert checks[1]["qa"] == "MISSING" and checks[2]["license-audit"] == "TAMPERED"
    assert '{"batch": 1, "type": "read", "steps": ["license-audit", "privacy-check", "qa", "review", "security"]}' in out
    assert "\nOK\n" in out  # the gate one-liner
    assert "## release-readiness" in out and "## license-audit" in out
