"""Use case: verify a target (a manifest with its steps, or a ``.lodepack``), signed or not.

This is the one verification that ``lodec verify``, ``run``, ``plan``,
``lock``, ``resolve``, ``sign``, ``pack`` and ``unpack`` share. Files are
read once, bounded; their bytes go to the I/O-free checks
(``lodec.stack.verify``, ``lodec.sign.trust``, ``lodec.sign.pack``), and
``seal`` gives the verdict once. A successful signed verification records
the stack's version in the workspace's rollback state, under its lock
(``lodec.store.rollback``); an unsigned one records nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FileMissing, VerificationFailed
from ..files import read_bounded, read_whole_at
from ..limits import DEFAULT_LIMITS, Limits
from ..stack.verify import Candidate, VerificationReport, VerifiedStack, check_stack, seal, verify_stack
from .options import OptionsError, TrustOptions, now_or, trust_policy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from ..format.pack import Pack
    from ..format.tree import SkillTree
    from ..sign.state import TrustedVersion
    from ..format.schema import Schema
    from ..sign.policy import TrustPolicy
    from ..store.workspace import Workspace


class NotVerified(VerificationFailed):
    """A stack that must verify before an action (sign, pack) does not; ``.report`` has every problem.

    Code ``verification_failed``; the message names the action and the manifest.
    """


#: Appended to a success line when signatures exist but were not checked.
UNCHECKED_NOTE = " (signatures not checked: add --key or --policy)"
#: Appended to a success line when ``--no-skills`` skipped the skill check.
SKILLS_UNCHECKED_NOTE = " (skills not checked: --no-skills)"


class VerifyResult:
    """The outcome of ``verify_target``.

    Attributes:
        target: the path verified, as given.
        report: every problem found; ``report.verified`` on success.
        note: ``UNCHECKED_NOTE`` when the target is signed but no key or
            policy was given, else ``""``.
        pack: the decoded pack, when the target is one.
        recorded: the rollback state file updated by this verification, if any.
        first_use: the rollback state had no version of this stack before (trust on first use).
        skills: ``skillRef`` -> the skill's files as read and matched with
            its pin (empty when the stack pins no skills or they were not
            checked); ``lodec run`` runs exactly these bytes.
    """

    # A plain class, not a dataclass: it is on `lodec verify`'s start-up path.
    __slots__ = ("target", "report", "note", "pack", "recorded", "skills", "first_use")

    def __init__(self, target: str, report: VerificationReport, note: str = "", pack: Pack | None = None,
                 recorded: Path | None = None, skills: dict[str, SkillTree] | None = None) -> None:
        self.target, self.report, self.note, self.pack, self.recorded = target, report, note, pack, recorded
        self.skills = skills or {}
        #: A signed verification that found no earlier version of this stack in the rollback state:
        #: it trusts this one on first use (the CLI says so on stderr).
        self.first_use = False

    @property
    def ok(self) -> bool:
        return self.report.ok

    def require(self) -> VerifiedStack:
        """The ``VerifiedStack``, or raise ``VerificationFailed`` carrying the report."""
        return self.report.require()


def default_steps_dir(manifest_path: str | os.PathLike[str]) -> Path:
    """``steps/`` beside the manifest."""
    return Path(manifest_path).parent / "steps"


def envelope_path_for(manifest_path: str | os.PathLike[str]) -> Path:
    """``STACK.json.dsse`` beside ``STACK.json``."""
    p = Path(manifest_path)
    return p.with_name(p.name + ".dsse")


def read_optional(path: str | os.PathLike[str], max_bytes: int, *, follow: bool = False) -> bytes | None:
    """The file's bytes (bounded; a link followed only with ``follow``), or ``None`` if it does not exist."""
    try:
        return read_bounded(path, max_bytes, follow=follow)
    except FileMissing:
        return None


def is_pack_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` (named by the user: a link is followed) starts with the vein magic (a ``.lodepack``).

    Opened as every input is (``files.open_regular``): a FIFO or a directory is
    not a pack, and the read that follows reports it.
    """
    from ..errors import LodecError
    from ..files import open_regular

    try:
        with open_regular(path, follow=True) as fh:
            return fh.read(4) == b"VEIN"
    except LodecError:
        return False


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


class StepFiles:
    """``step_file`` (a step's label) and ``read_step`` (its bytes, or ``None``) over ``<steps_dir>/<name>.vein``.

    Reads go through one descriptor of the steps folder (``openat``: no
    path walk per step) with one ``read`` per file. Only a plain regular
    file within the limit that reads whole is taken that way; anything else
    (no file, a link, a FIFO or device, over the limit, a read error, a
    file that changed size) is read again by ``read_bounded`` on the full
    path, which gives exactly its verdict and message. Close it (``with``).
    """

    __slots__ = ("prefix", "max_bytes", "dir_fd")

    def __init__(self, steps_dir: str | os.PathLike[str], max_bytes: int) -> None:
        self.prefix = os.path.join(os.fspath(steps_dir), "")
        self.max_bytes = max_bytes
        try:
            self.dir_fd: int | None = os.open(os.fspath(steps_dir), _DIR_FLAGS) if self.prefix else None
        except OSError:
            self.dir_fd = None  # every read takes the full path, and reports what is wrong

    def step_file(self, name: str) -> str:
        return f"{self.prefix}{name}.vein"

    def read_step(self, name: str) -> bytes | None:
        # The core only passes safe names, so this cannot leave the steps folder.
        if self.dir_fd is not None:
            data = read_whole_at(self.dir_fd, name + ".vein", self.max_bytes)
            if data is not None:
                return data
        return read_optional(self.step_file(name), self.max_bytes)

    def close(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    def __enter__(self) -> StepFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def step_files(
    manifest_path: str | os.PathLike[str], steps_dir: str | os.PathLike[str] | None, limits: Limits = DEFAULT_LIMITS
) -> StepFiles:
    """The ``StepFiles`` of ``<steps_dir>`` (default ``steps/`` beside the manifest); use it in a ``with``."""
    return StepFiles(steps_dir if steps_dir is not None else default_steps_dir(manifest_path), limits.max_file_bytes)


def verify_stack_files(
    manifest_path: str | os.PathLike[str],
    steps_dir: str | os.PathLike[str] | None = None,
    *,
    step_schema: Schema | None = None,
    stack_schema: Schema | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerificationReport:
    """Unsigned verification of ``manifest_path`` against ``<steps_dir>/<stepName>.vein`` files.

    Each file is read once, size-bounded; the ``VerifiedStack`` holds those bytes.

    Raises:
        LodecError: only if the manifest itself cannot be read
            (``file_not_found``, ``file_unreadable``, ``limit_exceeded``).
    """
    manifest_bytes = read_bounded(manifest_path, limits.max_file_bytes, follow=True)
    with step_files(manifest_path, steps_dir, limits) as files:
        return verify_stack(manifest_bytes, files.read_step, manifest_file=str(manifest_path),
                            step_file=files.step_file, step_schema=step_schema, stack_schema=stack_schema,
                            limits=limits)


def verified_manifest(manifest: str, steps_dir: str | None, action: str) -> VerifiedStack:
    """The ``VerifiedStack`` of an unsigned ``manifest`` that is about to be ``action`` (signed, packed).

    Raises:
        NotVerified: code ``verification_failed``, naming the manifest,
            with ``.report`` listing every problem.
    """
    report = verify_stack_files(manifest, steps_dir)
    if not report.ok:
        exc = NotVerified(report, f"not {action}: the stack fails verification ({len(report.problems)} problem(s))")
        exc.file = manifest
        raise exc
    return report.require()


def load_pack_file(path: str | os.PathLike[str]) -> Pack:
    """Read (bounded by ``MAX_PACK_BYTES``) and decode a pack; see ``lodec.format.pack.read_pack``."""
    from ..format.pack import MAX_PACK_BYTES, read_pack

    return read_pack(read_bounded(path, MAX_PACK_BYTES, follow=True), file=os.fspath(path))


def verify_target(
    target: str,
    workspace: Workspace | None = None,
    trust: TrustOptions | None = None,
    *,
    steps_dir: str | None = None,
    envelope: str | None = None,
    check_skills: bool = True,
    pack_skills: bool = True,
) -> VerifyResult:
    """Verify ``target``: ``STACK.json`` with its steps, or a pack; signed when ``trust`` names keys or a policy.

    All or nothing: steps, signatures (when asked), pack membership, and
    (``check_skills``, when the manifest pins skills) every pinned skill
    folder, found as ``lodec run`` finds it and compared with its pin by
    tree digest (``skill_drifted``, ``skill_not_found``); then one verdict
    (``seal``).

    Args:
        target: a manifest path, or a ``.lodepack`` (recognised by its magic).
        workspace: where the rollback state lives and skills are looked up
            (default ``Workspace.discover()``).
        trust: keys / threshold / policy / expected name / reference time.
        steps_dir: the veins' folder (manifests only; default ``steps/`` beside it).
        envelope: the DSSE envelope (manifests only, signed only; default ``STACK.json.dsse``).
        check_skills: ``False`` skips the skill check (``--no-skills``); the
            result's ``note`` then says so.
        pack_skills: for a pack, check the skills it carries (default); ``False``
            checks the workspace's own installed copies instead (``skills/`` under
            its state directory and ``$LODEC_HOME/skills``), as a worker does that
            runs only the skills installed on it.

    Raises:
        OptionsError: options that do not go together (code ``usage``).
        LodecError: the target, a key, the policy or the rollback state cannot
            be read or parsed (one-line error naming the file).
    """
    trust = trust or TrustOptions()
    policy = trust_policy(trust)
    if policy is None and trust.threshold is None:
        policy = _default_policy(workspace)
    # One reference time for the whole verification; an unsigned one judges nothing by time.
    now = now_or(trust.now) if policy is not None else trust.now
    if trust.expected_name is not None and policy is None:
        raise OptionsError("--name is checked against the signed name: add --key or --policy")
    if trust.require_signatures and policy is None:
        from ..errors import LodecError

        raise LodecError("signatures are required (--require-signatures) but no key or policy was given, and the "
                         "workspace has no trust-policy.toml: add --key or --policy", code="signatures_required",
                         file=target)
    pack: Pack | None = None
    state: Path | None = None
    trusted: dict[str, TrustedVersion] | None = None  # the rollback state as read once, before this verification
    if is_pack_file(target):
        if steps_dir is not None or envelope is not None:
            raise OptionsError("--steps and --envelope apply to STACK.json, not to a pack")
        from ..sign.pack import check_pack

        pack = load_pack_file(target)
        if policy is not None:
            state = _workspace(workspace).rollback_state
            trusted = _trusted(state)
        report, candidate = check_pack(pack, file=target, policy=policy, now=now, trusted_versions=trusted,
                                       expected_name=trust.expected_name)
        note = UNCHECKED_NOTE if policy is None and pack.envelope is not None else ""
    elif policy is None:
        if envelope is not None:
            raise OptionsError("--envelope is checked only with --key or --policy")
        manifest_bytes = read_bounded(target, DEFAULT_LIMITS.max_file_bytes, follow=True)
        with step_files(target, steps_dir) as files:
            report, candidate = check_stack(manifest_bytes, files.read_step, manifest_file=target,
                                            step_file=files.step_file)
        note = UNCHECKED_NOTE if envelope_path_for(target).exists() else ""
    else:
        from ..sign.dsse import MAX_ENVELOPE_BYTES
        from ..sign.trust import check_signed_stack

        state = _workspace(workspace).rollback_state
        trusted = _trusted(state)
        env_path = Path(envelope) if envelope is not None else envelope_path_for(target)
        manifest_bytes = read_bounded(target, DEFAULT_LIMITS.max_file_bytes, follow=True)
        envelope_bytes = read_optional(env_path, MAX_ENVELOPE_BYTES, follow=envelope is not None)
        with step_files(target, steps_dir) as files:
            report, candidate = check_signed_stack(
                manifest_bytes, envelope_bytes, files.read_step, policy=policy, now=now, trusted_versions=trusted,
                expected_name=trust.expected_name, manifest_file=target, envelope_file=str(env_path),
                step_file=files.step_file)
        note = ""
    trees: dict[str, SkillTree] = {}
    if not check_skills:
        note += SKILLS_UNCHECKED_NOTE
    elif candidate is not None:
        trees = _check_skills(report, candidate, target, workspace, pack if pack_skills else None,
                              from_pack=pack is not None)
    seal(report, candidate)
    first_use = False
    recorded = None
    if state is not None and report.verified is not None and report.verified.envelope is not None:
        first_use = trusted is not None and report.verified.name not in trusted
        ws = _workspace(workspace)
        if ws.state_file is None:
            ws.ensure_state()
        recorded = _record(report, state, now_or(now), trusted)  # state is set only with a policy: now is set
    result = VerifyResult(target, report, note, pack, recorded, trees)
    result.first_use = first_use
    return result


def _default_policy(workspace: Workspace | None) -> TrustPolicy | None:
    """The workspace's ``trust-policy.toml`` when it exists (``Workspace.policy_file``), else ``None``."""
    path = _workspace(workspace).policy_file
    if not os.path.lexists(path):
        return None
    from ..sign.policy import load_policy

    # lodec finds this file itself: a link planted there is refused (file_link), not followed.
    return load_policy(path, follow=False)


def _workspace(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from ..store.workspace import Workspace

    return Workspace.discover()


def _trusted(state: Path) -> dict[str, TrustedVersion]:
    from ..store.rollback import load_state

    return load_state(state)


def _check_skills(
    report: VerificationReport, candidate: Candidate, target: str, workspace: Workspace | None, pack: Pack | None,
    *, from_pack: bool = False,
) -> dict[str, SkillTree]:
    """Compare every pinned skill with its pin (``skill-stack-v2``); add a problem for each that does not match."""
    pins = candidate.manifest.get("skillDigests")
    if not pins:
        return {}
    from ..format.fingerprint import is_fingerprint
    from ..format.tree import SETTINGS_PIN_SUFFIX, check_pins, load_tree

    # Unused and malformed pins are the core's problems (skill_pin_unused, skill_pin_malformed).
    used = {str(v.record["skillRef"]) for v in candidate.steps.values()}
    pins = {ref: pin for ref, pin in pins.items()
            if ref.removesuffix(SETTINGS_PIN_SUFFIX) in used and is_fingerprint(pin)}

    if pack is not None:
        load = pack_tree_loader(pack, target)
    else:
        # A pack's own folder holds no skills of the workspace: only its state's and $LODEC_HOME's count.
        roots = _workspace(workspace).skill_roots(None if from_pack else target)

        def load(ref: str) -> SkillTree:
            return load_tree(ref, roots)

    trees, problems = check_pins(pins, load)
    for code, message in problems:
        report.add(code, None, message)
    return trees


def pack_tree_loader(pack: Pack, file: str) -> Callable[[str], SkillTree]:
    """``ref -> SkillTree`` over the skills a pack carries (``lodepack-v2``), for ``check_pins``.

    The tree is ``SkillTree(ref, "<file>#skills/<name>", files, tree_digest(files))``:
    the files as ``read_pack`` decoded them (paths already checked), hashed
    here, so a carried skill whose bytes differ from its pin is
    ``skill_drifted``.

    Raises (from the loader):
        SkillError: ``skill_not_found`` for a skill the pack does not carry
            (every skill, for a ``lodepack-v1`` pack: "the pack carries no
            skills"); ``skill_ref_invalid`` for a ref that is not ``skill:<name>``.
    """
    from ..errors import SkillError
    from ..format.tree import SkillTree, skill_name, tree_digest

    def load(ref: str) -> SkillTree:
        name = skill_name(ref)
        files = pack.skills.get(name)
        if files is None:
            # check_pins prefixes the ref: "skill:x: <file>: the pack carries no skills".
            why = ("the pack carries no skills (a lodepack-v1 pack, made before packs carried them: pack it again)"
                   if not pack.skills else f"the pack does not carry skills/{name}")
            raise SkillError(why, code="skill_not_found", file=file)
        return SkillTree(ref, f"{file}#skills/{name}", tuple(files), tree_digest(files))

    return load


def _record(report: VerificationReport, state: Path, now: datetime,
            trusted: Mapping[str, TrustedVersion] | None = None) -> Path | None:
    """Record a successful signed verification's version in the rollback state.

    ``trusted`` is the state as read before this verification. When it
    already holds this very version and digest there is nothing to record
    (records only move up, so a concurrent update cannot need this one
    either): the lock is not taken and the state is not read again.
    """
    v = report.verified
    if v is None or v.envelope is None:
        return None
    last = trusted.get(v.name) if trusted is not None else None
    if last is not None and last.version == v.version and last.digest == v.digest:
        return state
    from ..store.rollback import record_verified

    record_verified(state, v.name, v.version, v.digest, now)
    return state
