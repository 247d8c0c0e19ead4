"""Use cases that sign and distribute: keys, ``sign``, ``pack``, ``unpack``.

Formats: ``docs/signing.md`` (DSSE v1 envelope, in-toto Statement v1
payload, Ed25519 keys) and ``docs/pack-format.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FileMissing, LodecError
from .options import OptionsError, TrustOptions
from .verify import VerifyResult, envelope_path_for, read_optional, verified_manifest, verify_target

if TYPE_CHECKING:
    from ..store.workspace import Workspace


@dataclass(frozen=True)
class GeneratedKey:
    """A key pair written by ``generate_key_pair``: both paths, the keyid, whether encrypted."""

    private: Path
    public: Path
    keyid: str
    encrypted: bool


def generate_key_pair(name: str, *, passphrase: bytes | None = None, force: bool = False) -> GeneratedKey:
    """Write ``NAME.key`` (PKCS#8 PEM, mode 0600) and ``NAME.pub`` (SubjectPublicKeyInfo PEM).

    Raises:
        OptionsError: ``NAME``'s file name is not a safe name.
        LodecError: ``file_exists`` (without ``force``), ``file_unwritable``.
    """
    from ..files import atomic_write
    from ..names import is_safe_name
    from ..sign.keys import generate_key, private_key_pem

    base = Path(name)
    if not is_safe_name(base.name):
        raise OptionsError(f"{base.name!r} is not a safe file name (A-Z a-z 0-9 . _ -)", param_hint="NAME")
    private, public = base.with_name(base.name + ".key"), base.with_name(base.name + ".pub")
    for path in (private, public):
        if path.exists() and not force:
            raise LodecError("already exists; pass --force to replace it", code="file_exists", file=str(path))
    k = generate_key()
    atomic_write(private, private_key_pem(k, passphrase), mode=0o600)
    atomic_write(public, k.public.pem(), mode=0o644)
    return GeneratedKey(private, public, k.public.keyid, passphrase is not None)


def key_id(file: str, *, passphrase: bytes | None = None) -> str:
    """The keyid of a public key (PEM or ``ssh-ed25519``) or private key file:
    ``"sha256:"`` + hex SHA-256 of the DER SubjectPublicKeyInfo.

    Raises:
        KeyInvalid: unreadable, malformed, encrypted without the passphrase, or not Ed25519.
    """
    from ..sign.keys import load_any_key

    return load_any_key(file, passphrase=passphrase).keyid


@dataclass(frozen=True)
class Signed:
    """The outcome of ``sign_manifest``: the envelope path, the signer's keyid, whether a signature
    was added, the envelope's signature count, and the approved stack (name, version, digest, expiry)."""

    envelope: Path
    keyid: str
    added: bool
    signatures: int
    stack: str
    version: str
    digest: str
    expires: str

    def to_dict(self) -> dict[str, Any]:
        return {"envelope": str(self.envelope), "keyid": self.keyid, "added": self.added,
                "signatures": self.signatures, "expires": self.expires, "stack": self.stack,
                "version": self.version, "digest": self.digest}


def parse_expiry(now: datetime, expires: str | None, expires_in: str | None) -> datetime | None:
    """The expiry of a new envelope from ``--expires TIMESTAMP`` or ``--expires-in DURATION`` (or ``None``).

    Raises:
        OptionsError: both given, or a value that does not parse.
    """
    from ..sign.statement import parse_duration, parse_time

    if expires is not None and expires_in is not None:
        raise OptionsError("give --expires or --expires-in, not both")
    try:
        if expires is not None:
            return parse_time(expires)
        if expires_in is not None:
            delta: timedelta = parse_duration(expires_in)
            return now + delta
    except ValueError as exc:
        raise OptionsError(str(exc), param_hint="--expires" if expires is not None else "--expires-in") from None
    return None


def sign_manifest(
    manifest: str,
    key_path: str,
    *,
    now: datetime,
    expires: datetime | None = None,
    passphrase: bytes | None = None,
    steps_dir: str | None = None,
    envelope: str | None = None,
) -> Signed:
    """Verify ``manifest`` (unsigned), then write or extend its DSSE envelope with a signature by ``key_path``.

    Co-signers may sign at once: the envelope is re-read, extended and
    written atomically under an exclusive lock on ``<envelope>.lock``
    (removed afterwards), so no signature is lost. The envelope beside the
    manifest is never read through a symbolic link; one named with
    ``envelope`` may be a link (resolved once: the file it points to is
    extended, the lock sits beside that file).

    Raises:
        VerificationFailed: the stack does not verify (``.report`` has every problem).
        KeyInvalid: the key cannot be used.
        EnvelopeError, LodecError: the existing envelope is malformed, stale
            (``envelope_stale``) or conflicts (``expires_conflict``).
        FileUnreadable: the envelope is a link (``file_link``), a FIFO, a
            directory, ...
        FileUnwritable: the lock file or the envelope cannot be written.
    """
    from ..files import atomic_write, locked, read_bounded
    from ..sign.dsse import MAX_ENVELOPE_BYTES, parse_envelope
    from ..sign.keys import load_private_key
    from ..sign.signer import sign_stack
    from ..sign.statement import format_time, parse_statement

    env_path = Path(envelope) if envelope is not None else envelope_path_for(manifest)
    # A named envelope is the user's path: a link there is resolved once, and the file it names is
    # read, locked and written (the default path beside the manifest is never followed).
    named_link = envelope is not None and os.path.islink(env_path)
    real_path = Path(os.path.realpath(env_path)) if named_link else env_path
    try:
        private = load_private_key(key_path, passphrase=passphrase)
        stack = verified_manifest(manifest, steps_dir, "signed")
        with locked(real_path.with_name(real_path.name + ".lock"), remove=True):
            # Read under the lock: a co-signer may have added a signature since we started.
            try:
                existing_bytes: bytes | None = read_bounded(real_path, MAX_ENVELOPE_BYTES)
            except FileMissing:
                existing_bytes = None
            existing = parse_envelope(existing_bytes, file=str(env_path)) if existing_bytes is not None else None
            signed, added = sign_stack(stack, private, now=now, expires=expires, existing=existing,
                                       envelope_file=str(env_path))
            if added:
                atomic_write(real_path, signed.to_json())
    except LodecError as exc:
        raise exc.with_file(manifest) from None
    approval = parse_statement(signed.payload, file=str(env_path))
    return Signed(env_path, private.public.keyid, added, len(signed.signatures), approval.name, approval.version,
                  approval.digest, format_time(approval.expires))


@dataclass(frozen=True)
class Packed:
    """A pack written by ``pack_manifest``: path, size in bytes, step count, whether signed,
    the stack's name and version, the file's BLAKE3 and SHA-256 (as b3sum/sha256sum print
    them), and the skills it carries (``skill:<name>`` refs, sorted; empty for a stack without pins)."""

    output: str
    size: int
    steps: int
    signed: bool
    stack: str
    version: str
    blake3: str
    sha256: str
    skills: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "bytes": self.size, "steps": self.steps, "skills": list(self.skills),
                "signed": self.signed, "digest": {"blake3": self.blake3, "sha256": self.sha256}}


def pack_manifest(manifest: str, output: str, *, steps_dir: str | None = None,
                  envelope: str | None = None, workspace: Workspace | None = None) -> Packed:
    """Verify ``manifest`` with its skills, then write one deterministic ``.lodepack`` with its steps,
    schemas, envelope and every pinned skill folder.

    Verification is ``verify_target(manifest, workspace, check_skills=True)``
    (unsigned): each skill ``skillDigests`` pins is found as ``lodec verify``
    and ``lodec run`` find it (``workspace.skill_roots``) and must hash to its
    pin; the pack carries exactly the files that were read and hashed. A
    stack without ``skillDigests`` packs as before: ``lodepack-v1``, no skills.

    Args:
        workspace: where skills are looked up (default ``Workspace.discover()``,
            from the current directory).

    Raises:
        NotVerified: the stack, or a skill, does not verify (``.report`` has every problem).
        LodecError: a named envelope that is missing or malformed, a member
            over its cap (``limit_exceeded``: a skill over 16 MiB encoded),
            ``file_unwritable``.
    """
    from ..files import atomic_write
    from ..sign.dsse import MAX_ENVELOPE_BYTES, parse_envelope
    from ..format.fingerprint import file_digests
    from .verify import NotVerified

    result = verify_target(manifest, workspace, steps_dir=steps_dir, check_skills=True)
    if not result.ok:
        exc = NotVerified(result.report, f"not packed: the stack fails verification "
                                         f"({len(result.report.problems)} problem(s))")
        exc.file = manifest
        raise exc
    stack = result.require()
    outside = sorted(ref for ref in stack.manifest.get("skillDigests") or {} if ref.endswith("#settings"))
    if outside:
        # lodepack-v2 carries skill folders only: a pack would verify nowhere without these settings.
        raise LodecError(f"not packed: {', '.join(r.removesuffix('#settings') for r in outside)} keep their lodec "
                         "settings outside the skill folder, which lodepack-v2 cannot carry yet; run the stack "
                         "from its folder instead", code="pack_settings_unsupported", file=manifest)
    env = Path(envelope) if envelope is not None else envelope_path_for(manifest)
    envelope_bytes = read_optional(env, MAX_ENVELOPE_BYTES, follow=envelope is not None)
    if envelope_bytes is None and envelope is not None:
        raise FileMissing("no such file", file=str(env))
    if envelope_bytes is not None:
        parse_envelope(envelope_bytes, file=str(env))  # refuse to pack a malformed envelope
    data = verified_pack_bytes(result, Path(manifest).name, envelope_bytes)
    atomic_write(output, data)
    digests = file_digests(data)
    return Packed(output, len(data), len(stack.steps), envelope_bytes is not None, stack.name, stack.version,
                  digests["blake3"], digests["sha256"], tuple(sorted(result.skills)))


def verified_pack_bytes(result: VerifyResult, manifest_name: str, envelope: bytes | None) -> bytes:
    """The deterministic ``.lodepack`` bytes of a verification's stack: its steps, its schemas,
    ``envelope`` (or none), and the skill trees verification matched with their pins
    (``lodepack-v2``; ``lodepack-v1`` when the stack pins no skills).

    Raises:
        LodecError: ``limit_exceeded`` (a member over its cap), ``pack_mixed_schemas``.
    """
    from ..format.pack import build_pack
    from ..format.schema import builtin_schema_bytes
    from ..format.tree import skill_name
    from ..stack.manifest import stack_schema_name

    stack = result.require()
    return build_pack(manifest_name=manifest_name, manifest=stack.manifest_bytes,
                      steps={name: vein.data for name, vein in stack.steps.items()},
                      step_schema=builtin_schema_bytes(_one_step_schema(stack, manifest_name)),
                      stack_schema=builtin_schema_bytes(stack_schema_name(stack.manifest)),
                      envelope=envelope,
                      skills={skill_name(ref): tree.files for ref, tree in result.skills.items()})


@dataclass(frozen=True)
class Unpacked:
    """The outcome of ``unpack_pack``: the verification, and the files written (none if it failed)."""

    verification: VerifyResult
    files: tuple[Path, ...]


def unpack_pack(pack_file: str, output: str, trust: TrustOptions, *, unsigned: bool = False,
                workspace: Workspace | None = None) -> Unpacked:
    """Verify ``pack_file`` (signed, unless ``unsigned``; skills included), then extract exactly the
    verified bytes into ``output``.

    Layout: ``<manifestName>``, ``<manifestName>.dsse`` (if signed),
    ``steps/<name>.vein``, ``schemas/step.lode``, ``schemas/stack.lode``,
    ``skills/<name>/<path>`` for each carried skill (modes 0644 / 0755, as
    pinned); the manifest last, so its presence means every member is in
    place. ``skills/`` beside the manifest is the first place ``lodec verify``
    and ``lodec run`` look, so the result verifies and runs as loose files.
    Nothing is written unless the pack verifies.

    Raises:
        OptionsError: no keys or policy without ``unsigned``, or both.
        LodecError: ``output_not_empty``, ``file_unwritable``, or the pack cannot be read.
    """
    require_trust_or_unsigned(trust, unsigned, "unpack")
    result = verify_target(pack_file, workspace, trust)
    if not result.ok or result.pack is None:
        return Unpacked(result, ())
    return Unpacked(result, tuple(_write_members(result, output)))


def require_trust_or_unsigned(trust: TrustOptions, unsigned: bool, command: str) -> None:
    """Check that ``command`` (``unpack``, ``pull``) was given keys or a policy, or else ``--unsigned``.

    Raises:
        OptionsError: neither, or both.
    """
    if not trust.signed and not unsigned:
        raise OptionsError(f"{command} verifies signatures first: add --key A.pub (or --policy FILE), "
                           "or --unsigned for a pack you trust by other means")
    if trust.signed and unsigned:
        raise OptionsError("--unsigned cannot be combined with --key or --policy")


def _write_members(result: VerifyResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    from ..files import atomic_write_many
    from ..format.tree import skill_name

    pack, stack = result.pack, result.require()
    assert pack is not None
    out = Path(out_dir)
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise LodecError("output must be a new or empty directory (nothing is overwritten)",
                         code="output_not_empty", file=str(out))
    files: list[tuple[str | os.PathLike[str], bytes]] = [
        (out / "schemas" / "step.lode", pack.step_schema),
        (out / "schemas" / "stack.lode", pack.stack_schema),
    ]
    files += [(out / "steps" / f"{name}.vein", vein.data) for name, vein in stack.steps.items()]
    if stack.envelope is not None:
        files.append((out / f"{pack.manifest_name}.dsse", stack.envelope))
    # The verified trees (matched to their pins), not the pack's members: read_pack checked their
    # paths (relative, no '..', no file that is also a folder), so none leaves out/skills/<name>/.
    by_mode: dict[int, list[tuple[str | os.PathLike[str], bytes]]] = {0o644: [], 0o755: []}
    for ref, tree in sorted(result.skills.items()):
        folder = out / "skills" / skill_name(ref)
        for f in tree.files:
            by_mode[f.mode].append((folder / f.path, f.data))
    for mode, items in by_mode.items():
        atomic_write_many(items, mode=mode)
    atomic_write_many(files)
    atomic_write_many([(out / pack.manifest_name, stack.manifest_bytes)])
    skill_files = [Path(p) for items in by_mode.values() for p, _ in items]
    return skill_files + [Path(p) for p, _ in files] + [out / pack.manifest_name]


def _one_step_schema(stack: Any, manifest: str) -> str:
    """The built-in step schema every step of ``stack`` is written for (a pack carries one).

    Raises:
        LodecError: ``pack_mixed_schemas``: the steps use several step schemas.
    """
    from ..format.schema import STEP_SCHEMAS, builtin_schema

    ids = {builtin_schema(n).schema_id: n for n in STEP_SCHEMAS}
    used = sorted({ids.get(v.schema.schema_id, v.schema.name) for v in stack.steps.values()}) or [STEP_SCHEMAS[0]]
    if len(used) > 1:
        raise LodecError(f"not packed: the steps are written for several step schemas ({', '.join(used)}); "
                         "a pack carries one: recompile them under one schema", code="pack_mixed_schemas",
                         file=manifest)
    return used[0]
