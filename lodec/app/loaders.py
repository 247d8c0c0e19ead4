"""Loaders: read files from disk and hand bytes to the I/O-free core."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LodecError
from ..files import read_bounded
from ..limits import DEFAULT_LIMITS, Limits
from ..format.schema import Schema
from ..stack.verify import VerificationReport, verify_stack

if TYPE_CHECKING:
    from ..format.pack import Pack
    from ..sign.policy import TrustPolicy


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
    manifest_bytes = read_bounded(manifest_path, limits.max_file_bytes)
    step_file, read_step = _step_files(manifest_path, steps_dir, limits)
    return verify_stack(
        manifest_bytes,
        read_step,
        manifest_file=str(manifest_path),
        step_file=step_file,
        step_schema=step_schema,
        stack_schema=stack_schema,
        limits=limits,
    )


def _step_files(
    manifest_path: str | os.PathLike[str], steps_dir: str | os.PathLike[str] | None, limits: Limits
) -> tuple[Callable[[str], str], Callable[[str], bytes | None]]:
    """``(step_file, read_step)`` over ``<steps_dir>/<name>.vein`` (default ``steps/`` beside the manifest)."""
    steps_path = Path(steps_dir) if steps_dir is not None else default_steps_dir(manifest_path)
    prefix = os.path.join(os.fspath(steps_path), "")

    def step_file(name: str) -> str:
        return f"{prefix}{name}.vein"

    def read_step(name: str) -> bytes | None:
        # The core only passes safe names, so this cannot leave steps_path.
        return read_optional(step_file(name), limits.max_file_bytes)

    return step_file, read_step


def envelope_path_for(manifest_path: str | os.PathLike[str]) -> Path:
    """``STACK.json.dsse`` beside ``STACK.json``."""
    p = Path(manifest_path)
    return p.with_name(p.name + ".dsse")


def read_optional(path: str | os.PathLike[str], max_bytes: int) -> bytes | None:
    """The file's bytes (bounded), or ``None`` if it does not exist."""
    try:
        return read_bounded(path, max_bytes)
    except LodecError as exc:
        if exc.code == "file_not_found":
            return None
        raise


def is_pack_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` starts with the vein magic (a ``.lodepack``), not JSON."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"VEIN"
    except OSError:
        return False


def verify_signed_files(
    manifest_path: str | os.PathLike[str],
    *,
    policy: TrustPolicy,
    now: datetime,
    state_path: str | os.PathLike[str],
    expected_name: str | None = None,
    steps_dir: str | os.PathLike[str] | None = None,
    envelope_path: str | os.PathLike[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerificationReport:
    """Signed verification of ``STACK.json`` + ``STACK.json.dsse`` + ``steps/``; records the version on success.

    Each file is read once; the bytes checked are the bytes in the result.
    On success the stack's version is recorded in ``state_path``
    (``lodec.sign.state``); on failure nothing is recorded.

    Raises:
        LodecError: the manifest cannot be read, or the state file is invalid or unwritable.
    """
    from ..sign.dsse import MAX_ENVELOPE_BYTES
    from ..store.rollback import load_state
    from ..sign.trust import verify_signed_stack

    env_path = Path(envelope_path) if envelope_path is not None else envelope_path_for(manifest_path)
    manifest_bytes = read_bounded(manifest_path, limits.max_file_bytes)
    envelope_bytes = read_optional(env_path, MAX_ENVELOPE_BYTES)
    trusted = load_state(state_path)
    step_file, read_step = _step_files(manifest_path, steps_dir, limits)
    report = verify_signed_stack(
        manifest_bytes, envelope_bytes, read_step, policy=policy, now=now, trusted_versions=trusted,
        expected_name=expected_name, manifest_file=str(manifest_path), envelope_file=str(env_path),
        step_file=step_file, limits=limits,
    )
    record_success(report, state_path, now)
    return report


def record_success(report: VerificationReport, state_path: str | os.PathLike[str], now: datetime) -> None:
    """Record a successful signed verification's version in the rollback state."""
    from ..store.rollback import record_verified

    if report.verified is not None and report.verified.envelope is not None:
        v = report.verified
        record_verified(state_path, v.name, v.version, v.digest, now)


def load_pack_file(path: str | os.PathLike[str]) -> Pack:
    """Read (bounded by ``MAX_PACK_BYTES``) and decode a pack; see ``lodec.format.pack.read_pack``."""
    from ..format.pack import MAX_PACK_BYTES, read_pack

    return read_pack(read_bounded(path, MAX_PACK_BYTES), file=os.fspath(path))


def verify_pack_file(
    path: str | os.PathLike[str],
    *,
    policy: TrustPolicy | None = None,
    now: datetime | None = None,
    state_path: str | os.PathLike[str] | None = None,
    expected_name: str | None = None,
) -> tuple[Pack, VerificationReport]:
    """Read and verify a ``.lodepack`` (signed when ``policy`` is given; then ``now`` and ``state_path`` are needed).

    A successful signed verification is recorded in ``state_path``.

    Raises:
        LodecError: the pack cannot be read or decoded (``limit_exceeded``,
            ``unsafe_name``, decode codes), or the state file is invalid.
    """
    from ..format.pack import verify_pack
    from ..store.rollback import load_state

    pack = load_pack_file(path)
    trusted = load_state(state_path) if policy is not None and state_path is not None else None
    report = verify_pack(pack, file=os.fspath(path), policy=policy, now=now, trusted_versions=trusted,
                         expected_name=expected_name)
    if policy is not None and state_path is not None and now is not None:
        record_success(report, state_path, now)
    return pack, report
