"""Use cases: push a pack to a registry or an OCI layout; pull one back, verified before it is written.

``push`` checks the pack (it decodes and its core checks pass) and pushes
it with its DSSE envelope as a referrer (``lodec.dist.push_pack``).

``pull`` fetches the pack and its envelope referrers, every size and
sha256 digest checked (``lodec.dist.pull_pack``); requires the envelope the
pack carries to be one of the referrers the registry lists for it (a
registry showing another signature than the one inside is refused); then
runs ``verify_target`` -- the verification of ``lodec verify``, with the
same keys, threshold, policy, expected name and rollback state -- on the
pulled bytes in a temporary directory. Only a pack that verified is written
at ``PACK`` (with its envelope as ``PACK.dsse``), atomically; on any failure
nothing is written there. Format and rules: ``docs/distribution.md``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DistributionError, LodecError
from .options import OptionsError, TrustOptions
from .signing import require_trust_or_unsigned
from .verify import NotVerified, VerifyResult, verify_target

if TYPE_CHECKING:
    from ..dist import Pulled, Pushed, Reference
    from ..store.workspace import Workspace

Progress = Callable[[str], None]


def parse_target(text: str, *, plain_http: bool = False, param: str = "REFERENCE") -> Reference:
    """A reference from the command line, its options checked.

    Raises:
        OptionsError: not ``oci://HOST[:PORT]/REPO[:TAG|@sha256:...]`` or
            ``oci-layout:DIR[...]``; ``--plain-http`` with a layout or with a
            host that is not loopback (``localhost``, 127.0.0.0/8, ``::1``).
    """
    from ..dist import ReferenceInvalid, is_loopback, parse_reference

    try:
        ref = parse_reference(text)
    except ReferenceInvalid as exc:
        raise OptionsError(f"{text}: {exc.message}", param_hint=param) from None
    if plain_http and ref.is_layout:
        raise OptionsError("--plain-http applies to an oci:// registry, not to an oci-layout: directory",
                           param_hint="--plain-http")
    if plain_http and not is_loopback(ref.hostname):
        raise OptionsError(f"--plain-http is allowed only for a loopback registry (localhost, 127.0.0.0/8, ::1), "
                           f"not {ref.host}: registries elsewhere are reached over TLS", param_hint="--plain-http")
    return ref


@dataclass(frozen=True)
class PushResult:
    """A pushed pack: the stack, the file pushed, and where it went (``lodec.dist.Pushed``)."""

    pack_file: str
    stack: str
    version: str
    signed: bool
    pushed: Pushed

    def to_dict(self) -> dict[str, Any]:
        p = self.pushed
        return {"ok": True, "pack": self.pack_file, "stack": self.stack, "version": self.version,
                "signed": self.signed, "reference": p.reference,
                "manifest": {"digest": p.manifest.digest, "size": p.manifest.size},
                "layer": {"digest": p.pack.digest, "size": p.pack.size},
                "referrer": None if p.referrer is None else {"digest": p.referrer.digest, "size": p.referrer.size},
                "referrers": p.referrers, "uploaded": p.uploaded, "skipped": p.skipped,
                "pinned": p.pinned}


def push(pack_file: str, target: str, *, plain_http: bool = False, progress: Progress | None = None) -> PushResult:
    """Push ``pack_file`` to ``target`` (``oci://HOST/REPO[:TAG]`` or ``oci-layout:DIR[:TAG]``).

    The tag defaults to the stack's version (``+`` written ``_``). The pack
    must decode and pass the core checks (``verify_pack``): a broken pack is
    not published. Its envelope, if it carries one, becomes the referrer.

    Raises:
        OptionsError: a bad reference or ``--plain-http`` (see ``parse_target``),
            no tag and a version that cannot be one.
        NotVerified: the pack fails its core checks (``.report`` lists them).
        LodecError: the pack cannot be read or decoded; ``DistributionError``
            (``registry_*``, ``layout_invalid``, ...) from the store.
    """
    from ..dist import push_pack
    from ..dist.reference import tag_for_version
    from ..files import read_bounded
    from ..format.pack import MAX_PACK_BYTES, read_pack
    from ..sign.dsse import parse_envelope
    from ..sign.pack import verify_pack

    ref = parse_target(target, plain_http=plain_http)
    if ref.digest is not None:
        raise OptionsError("push names a tag, not a digest (the digest is the result)", param_hint="REFERENCE")
    data = read_bounded(pack_file, MAX_PACK_BYTES, follow=True)
    if data.lstrip()[:1] == b"{":  # the manifest given where its pack belongs: say what to push instead
        raise LodecError("a stack manifest, not a pack: push the .lodepack that `lodec pack STACK.json -o "
                         "NAME.lodepack` writes (it carries the steps, skills and signatures)",
                         code="bad_magic", file=pack_file, location="byte 0 (header)")
    pack = read_pack(data, file=pack_file)
    report = verify_pack(pack, file=pack_file)
    if not report.ok:
        exc = NotVerified(report, f"not pushed: the pack fails verification ({len(report.problems)} problem(s))")
        exc.file = pack_file
        raise exc
    stack = report.require()
    if pack.envelope is not None:
        parse_envelope(pack.envelope, file=f"{pack_file}#envelope")
    tag = ref.tag or tag_for_version(stack.version)
    if tag is None:
        raise OptionsError(f"version {stack.version!r} cannot be a tag: name one (REFERENCE:TAG)",
                           param_hint="REFERENCE")
    pushed = push_pack(ref.with_tag(tag), data, name=stack.name, version=stack.version, envelope=pack.envelope,
                       filename=Path(pack_file).name, plain_http=plain_http, progress=progress)
    return PushResult(pack_file, stack.name, stack.version, pack.envelope is not None, pushed)


@dataclass(frozen=True)
class PullResult:
    """A pull: what was fetched, its verification, and the files written (none unless it verified)."""

    reference: str
    output: str
    pulled: Pulled
    verification: VerifyResult
    files: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        p = self.pulled
        matched = next((r for r in p.referrers if self.verification.pack is not None
                        and r.envelope == self.verification.pack.envelope), None)
        return {**self.verification.report.to_dict(), "reference": self.reference, "pinned": p.reference,
                "manifest": {"digest": p.manifest.digest, "size": p.manifest.size},
                "referrer": None if matched is None else {"digest": matched.manifest.digest,
                                                          "size": matched.manifest.size},
                "referrers": p.source, "output": self.output if self.files else None, "files": list(self.files)}


def envelope_path(output: str | os.PathLike[str]) -> Path:
    """``PACK.dsse`` beside ``PACK``."""
    p = Path(output)
    return p.with_name(p.name + ".dsse")


def pull(reference: str, output: str, trust: TrustOptions, *, unsigned: bool = False, plain_http: bool = False,
         workspace: Workspace | None = None, progress: Progress | None = None) -> PullResult:
    """Pull ``reference`` into ``output`` (a ``.lodepack`` path): fetched, checked, verified, then written.

    Verification is ``verify_target`` on the pulled pack in a temporary
    directory, with ``trust`` (``--key``/``--threshold``/``--policy``/``--name``,
    the workspace's rollback state); ``unsigned`` accepts an unsigned pack
    instead (core checks only), as ``lodec unpack --unsigned``. The result's
    ``ok`` is the verdict; ``files`` is empty unless it verified.

    Raises:
        OptionsError: a bad reference, ``--plain-http`` misuse, no keys or
            policy without ``unsigned`` (or both).
        DistributionError: the transfer failed or its checks did
            (``digest_mismatch``, ``limit_exceeded``, ``artifact_invalid``,
            ...); ``referrer_missing`` (a signed pack with no envelope
            referrer), ``referrer_mismatch`` (the referrers listed are not
            the envelope the pack carries). Nothing is written.
        LodecError: the pulled bytes are not a pack (decode errors), or
            ``output`` cannot be written (``file_unwritable``).
    """
    from ..dist import pull_pack
    from ..files import atomic_write_many
    from ..format.pack import read_pack

    ref = parse_target(reference, plain_http=plain_http)
    if ref.tag is None and ref.digest is None:
        raise OptionsError("name what to pull: REFERENCE:TAG or REFERENCE@sha256:...", param_hint="REFERENCE")
    require_trust_or_unsigned(trust, unsigned, "pull")
    out = Path(output)
    if out.is_dir():
        raise OptionsError(f"{output} is a directory: -o names the .lodepack file to write", param_hint="-o")
    pulled = pull_pack(ref, plain_http=plain_http, progress=progress)
    pack = read_pack(pulled.pack, file=pulled.reference)
    if pack.envelope is not None and not any(r.envelope == pack.envelope for r in pulled.referrers):
        if pulled.referrers:
            raise DistributionError(
                f"the registry lists {len(pulled.referrers)} envelope referrer(s) for this pack, none of them the "
                "envelope the pack carries: a referrer was swapped or the pack re-pushed; refused",
                code="referrer_mismatch", file=pulled.reference)
        raise DistributionError(f"the pack is signed but no envelope referrer is attached to it ({pulled.source}): "
                                "push it again with lodec push", code="referrer_missing", file=pulled.reference)
    with tempfile.TemporaryDirectory(prefix="lodec-pull-") as tmp:
        staged = Path(tmp) / (out.name or "pulled.lodepack")
        staged.write_bytes(pulled.pack)
        result = verify_target(os.fspath(staged), workspace, trust)
    _relabel(result, os.fspath(staged), pulled.reference)
    if not result.ok:
        return PullResult(reference, output, pulled, result, ())
    items: list[tuple[str | os.PathLike[str], bytes]] = []
    if pack.envelope is not None:
        items.append((envelope_path(out), pack.envelope))
    items.append((out, pulled.pack))  # last: the pack's presence means its envelope is in place
    atomic_write_many(items)
    return PullResult(reference, output, pulled, result, tuple(os.fspath(p) for p, _ in items))


def _relabel(result: VerifyResult, staged: str, reference: str) -> None:
    """Name the pulled reference, not the temporary copy, in the report's problems."""
    from ..stack.verify import Problem

    problems = result.report.problems
    problems[:] = [Problem(p.code, p.step, p.message.replace(staged, reference)) for p in problems]
