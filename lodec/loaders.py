"""Loaders: read files from disk and hand bytes to the I/O-free core."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LodecError
from .files import read_bounded
from .limits import DEFAULT_LIMITS, Limits
from .schema import Schema
from .verify import VerificationReport, verify_stack


def default_steps_dir(manifest_path: str | os.PathLike[str]) -> Path:
    """``steps/`` beside the manifest."""
    return Path(manifest_path).parent / "steps"


def verify_stack_files(
    manifest_path: str | os.PathLike[str],
    steps_dir: str | os.PathLike[str] | None = None,
    *,
    step_schema: Schema | None = None,
    stack_schema: Schema | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerificationReport:
    """Verify ``manifest_path`` against ``<steps_dir>/<stepName>.vein`` files.

    Each file is read once, size-bounded, and its bytes passed to
    ``verify_stack``; the resulting ``VerifiedStack`` holds those bytes.

    Raises:
        LodecError: only if the manifest itself cannot be read
            (``file_not_found``, ``file_unreadable``, ``limit_exceeded``).
    """
    steps_path = Path(steps_dir) if steps_dir is not None else default_steps_dir(manifest_path)
    manifest_bytes = read_bounded(manifest_path, limits.max_file_bytes)

    prefix = os.path.join(os.fspath(steps_path), "")

    def step_file(name: str) -> str:
        return f"{prefix}{name}.vein"

    def read_step(name: str) -> bytes | None:
        # verify_stack only passes safe names, so this cannot leave steps_path.
        try:
            return read_bounded(f"{prefix}{name}.vein", limits.max_file_bytes)
        except LodecError as exc:
            if exc.code == "file_not_found":
                return None
            raise

    return verify_stack(
        manifest_bytes,
        read_step,
        manifest_file=str(manifest_path),
        step_file=step_file,
        step_schema=step_schema,
        stack_schema=stack_schema,
        limits=limits,
    )
