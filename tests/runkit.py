"""Builders for run tests: small skills written as Python scripts, and locked stacks of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lodec
from tests.conftest import run_cli

PREAMBLE = '''#!/usr/bin/env python3
import json, os, sys, time
REQ = json.load(sys.stdin)
OUT = os.environ["LODEC_OUTPUT_DIR"]
INPUTS = REQ["inputs"]

def write(name, text):
    with open(os.path.join(OUT, name), "w") as fh:
        fh.write(text)

'''

#: Writes every declared output with the step name, after sleeping inputs["seconds"] (default 0).
SLEEP_AND_WRITE = '''
time.sleep(float(INPUTS.get("seconds", "0")))
print(f"{REQ['step']['name']} done")
for name in REQ["step"]["outputs"]:
    write(name, REQ["step"]["name"] + "\\n")
'''


def make_skill(
    root: Path,
    name: str,
    body: str = SLEEP_AND_WRITE,
    *,
    concurrency: str = "write",
    timeout: int = 30,
    network: bool = False,
    env: Sequence[str] = (),
    read: Sequence[str] = (),
    write: Sequence[str] = (),
) -> Path:
    """A skill folder ``root/name`` whose command runs ``PREAMBLE + body``.

    ``read``/``write`` are its ``capabilities.read``/``.write`` (workspace-relative): under the sandbox
    the rest of the workspace is invisible (read) and read-only (write).
    """
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        f"---\nname: {name}\ndescription: Test skill {name}; used by lodec's run tests.\n---\n\n# {name}\n"
    )
    caps = (f"network = {'true' if network else 'false'}\nenv = {json.dumps(list(env))}\n"
            f"read = {json.dumps(list(read))}\nwrite = {json.dumps(list(write))}\n")
    (folder / "lodec.toml").write_text(
        f'command = ["run.py"]\nconcurrency = "{concurrency}"\ntimeout = {timeout}\n\n[capabilities]\n{caps}'
    )
    script = folder / "run.py"
    script.write_text(PREAMBLE + body)
    script.chmod(0o755)
    return folder


def step(name: str, skill: str, *, deps: Sequence[str] = (), outputs: Sequence[str] = ("out.txt",),
         run_if: str | None = None, **inputs: str) -> dict[str, Any]:
    """A step record; with ``run_if`` (``failure``, ``always``) it is a ``skill-step-v2`` record."""
    rec: dict[str, Any] = {"stepName": name, "skillRef": f"skill:{skill}", "dependsOn": list(deps),
                           "outputs": list(outputs)}
    if inputs:
        rec["inputs"] = dict(inputs)
    if run_if is not None:
        rec["runIf"] = run_if
    return rec


def step_schema_of(rec: dict[str, Any]) -> lodec.Schema:
    """``skill-step-v2`` for a record with a run condition, else ``skill-step-v1``."""
    v2 = "runIf" in rec or "runIfExpression" in rec
    return lodec.builtin_schema("skill-step-v2") if v2 else lodec.skill_step_schema()


def make_stack(folder: Path, steps: Sequence[dict[str, Any]], *, name: str = "test-stack", lock: bool = True) -> Path:
    """Compile ``steps`` into ``folder/steps``, build ``folder/stack.json`` and (by default) lock it.

    Skills are expected in ``folder/skills`` (beside the stack).
    """
    (folder / "steps").mkdir(parents=True, exist_ok=True)
    veins = []
    for rec in steps:
        vein = lodec.compile_value(rec, step_schema_of(rec), file=rec["stepName"])
        (folder / "steps" / f"{rec['stepName']}.vein").write_bytes(vein.data)
        veins.append(vein)
    manifest = lodec.build_manifest(veins, name=name, version="1.0.0", description="run test stack")
    path = folder / "stack.json"
    path.write_bytes(lodec.manifest_json(manifest))
    if lock:
        code, _out, err = run_cli("lock", path)
        assert code == 0, err
    return path


def run_json(stack: Path, workspace: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """``lodec run --json``; returns (exit code, run record, stderr)."""
    code, out, err = run_cli("run", stack, "--workspace", workspace, "--json", *extra)
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err
