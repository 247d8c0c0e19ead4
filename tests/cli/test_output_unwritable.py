"""Standard output that cannot take the output (a full disk, a closed pipe): one line and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

STACK = ROOT / "stacks" / "code-review" / "code-review-stack.json"


def lodec(*args: object, stdout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lodec", *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("args", [
    ("verify", STACK),                # the click-free fast path
    ("verify", STACK, "--json"),
    ("diff", STACK, STACK),           # click's path, lodec's echo
    ("--help",),                      # click writes its help itself
])
def test_a_full_disk_at_stdout_is_one_line_and_exit_1(args: tuple[object, ...]) -> None:
    with open("/dev/full", "w") as full:
        done = lodec(*args, stdout=full.fileno())
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "lodec: <stdout>: cannot write the output: No space left on device [output_unwritable]"]


def test_a_closed_pipe_ends_quietly_with_exit_1() -> None:
    read, write = os.pipe()
    os.close(read)  # `lodec verify … | head -0`: the reader is gone before lodec writes
    try:
        done = lodec("verify", STACK, stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr == ""
