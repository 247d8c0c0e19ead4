"""A Temporal command that fails ends with its own exit code, every time.

The Temporal SDK's Rust threads can outlive the interpreter's teardown and
abort or crash it (temporalio/sdk-python#300): ``lodec worker`` against an
address where nothing listens printed its one-line error and then exited
134 (SIGABRT, "Fatal Python error: PyGILState_Release") or 139 (SIGSEGV)
about one time in eight. Run as the ``lodec`` program is run, many times.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..conftest import unavailable
from ..registry import free_port


def test_a_worker_that_cannot_connect_exits_1_every_time(tmp_path: Path) -> None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        unavailable("the temporal extra is not installed (pip install -e '.[temporal]')")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    from concurrent.futures import ThreadPoolExecutor

    def once(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lodec", "worker", "--address", address, "--store",
                               str(tmp_path), "--workspace", str(tmp_path)], capture_output=True, text=True, timeout=60)

    codes = []
    with ThreadPoolExecutor(max_workers=3) as pool:  # 30 runs: a one-in-eight crash shows up all but ~2% of times
        runs = list(pool.map(once, range(30)))
    for done in runs:
        codes.append(done.returncode)
        assert "Fatal Python error" not in done.stderr, done.stderr[-2000:]
        assert done.stderr.startswith(f"lodec: cannot connect to Temporal at {address}"), done.stderr
        assert done.stderr.rstrip().endswith("[engine_unavailable]") and done.stderr.count("\n") == 1
    assert set(codes) == {1}, codes
