"""The verification core: bytes in, a report out. All or nothing.

No file I/O happens here: the caller passes the manifest's bytes and a
function that returns a step's vein bytes by name (or ``None`` if absent).
Every problem is reported, each with a stable code (``docs/errors.md``);
only a report with no problems carries a ``VerifiedStack``, which holds the
exact bytes that were checked so nothing downstream re-reads a file.

The checks (``check_stack``) find problems and a candidate stack; one
function, ``seal``, then decides: a report becomes verified only there,
after every check that applies (steps here; signatures in
``lodec.sign.trust``; pack membership in ``lodec.sign.pack``; skills in
``lodec.app``), and only with no problems.

Checks, in order: the manifest is strict JSON of the ``skill-stack-v1``
shape (``skill-stack-v2`` when it pins skills in ``skillDigests``); its
stack name follows the name rule and its version the version rule
(``lodec.names``: both are printed and the name is matched against trust
policies, so ASCII without control characters); every step name is safe
and listed once; ``steps`` and ``stepFingerprints`` name the same steps;
each pin is ``blake3:<64 hex>``;
each step's vein exists, is written for the step schema, is canonical, has
its own ``stepName`` equal to its manifest name, and fingerprints to its
pin; the step graph (from the verified veins) is closed and acyclic; every
step's skill is pinned and every skill pin is used and well formed (v2); the
entry point is a root step.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec

from ..format.codec import Vein, decode_vein_reference, fast_vein_decoder, record_from_json
from ..errors import LodecError, SchemaMismatch, VerificationFailed
from ..format.fingerprint import is_fingerprint
from ..format.records import FrozenRecord, Record
from ..limits import DEFAULT_LIMITS, Limits
from ..names import all_safe_names, is_safe_name, name_problem, version_problem
from ..format.schema import Schema, skill_stack_schema, step_schema_for
from .manifest import SKILL_DIGESTS, graph_problems, manifest_vein, stack_schema_for
from ..format.strictjson import loads_strict

if TYPE_CHECKING:
    from datetime import datetime

    from .signature import SignatureReport

StepReader = Callable[[str], "bytes | None"]
P = ParamSpec("P")


class Problem(FrozenRecord):
    """One reason a stack is rejected: stable ``code``, ``step`` (or ``None``), ``message``. Immutable."""

    __slots__ = ("code", "step", "message")
    code: str
    step: str | None
    message: str

    def __init__(self, code: str, step: str | None, message: str) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "message", message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "step": self.step, "message": self.message}


class StepResult(Record):
    """Per-step outcome: ``status`` is ``verified``, ``tampered``, ``missing``,
    ``malformed``, ``renamed``, ``unpinned``, ``unlisted`` or ``unsafe_name``."""

    __slots__ = ("name", "status", "expected", "actual")
    name: str
    status: str
    expected: str | None
    actual: str | None

    def __init__(self, name: str, status: str, expected: str | None, actual: str | None) -> None:
        self.name, self.status, self.expected, self.actual = name, status, expected, actual

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "expected": self.expected, "actual": self.actual}


class VerifiedStack(FrozenRecord):
    """A stack that passed every check. Immutable.

    Attributes:
        manifest_bytes: the manifest exactly as verified.
        manifest: the manifest record (SkillStack fields).
        digest: the manifest digest, ``blake3:<hex>`` of its canonical form.
        steps: step name -> ``Vein`` (holding the exact verified bytes).
        order: the steps in topological order: the manifest's own order when
            it is one (as ``lodec stack build`` writes it), else the
            deterministic order of ``stack.topological_order``.
        envelope: the DSSE envelope bytes whose signatures were verified
            (``None`` for an unsigned verification).
        signed_by: keyids of the distinct trusted keys with a valid signature.
        expires: the signed expiry (UTC), or ``None`` when unsigned.
    """

    __slots__ = ("manifest_bytes", "manifest", "digest", "steps", "order", "envelope", "signed_by", "expires")
    manifest_bytes: bytes
    manifest: dict[str, Any]
    digest: str
    steps: dict[str, Vein]
    order: tuple[str, ...]
    envelope: bytes | None
    signed_by: tuple[str, ...]
    expires: datetime | None

    def __init__(self, manifest_bytes: bytes, manifest: dict[str, Any], digest: str, steps: dict[str, Vein],
                 order: tuple[str, ...], envelope: bytes | None = None, signed_by: tuple[str, ...] = (),
                 expires: datetime | None = None) -> None:
        setter = object.__setattr__
        setter(self, "manifest_bytes", manifest_bytes)
        setter(self, "manifest", manifest)
        setter(self, "digest", digest)
        setter(self, "steps", steps)
        setter(self, "order", order)
        setter(self, "envelope", envelope)
        setter(self, "signed_by", signed_by)
        setter(self, "expires", expires)

    __hash__ = None  # type: ignore[assignment]  # holds dicts

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


class VerificationReport(Record):
    """Everything verify found. ``ok`` is true only with no problems; then ``verified`` is set."""

    __slots__ = ("stack", "version", "digest", "steps", "problems", "verified", "signature")
    stack: str | None
    version: str | None
    digest: str | None
    steps: list[StepResult]
    problems: list[Problem]
    verified: VerifiedStack | None
    #: Set by signed verification (``lodec.sign.trust``) only: the rule
    #: applied, each signature's outcome and the signed expiry.
    signature: SignatureReport | None

    def __init__(self, stack: str | None = None, version: str | None = None, digest: str | None = None,
                 steps: list[StepResult] | None = None, problems: list[Problem] | None = None,
                 verified: VerifiedStack | None = None, signature: SignatureReport | None = None) -> None:
        self.stack, self.version, self.digest = stack, version, digest
        self.steps = [] if steps is None else steps
        self.problems = [] if problems is None else problems
        self.verified, self.signature = verified, signature

    @property
    def ok(self) -> bool:
        return not self.problems and self.verified is not None

    def require(self) -> VerifiedStack:
        """The ``VerifiedStack``, or raise ``VerificationFailed`` carrying this report."""
        if self.verified is None or self.problems:
            first = self.problems[0].message if self.problems else "not verified"
            raise VerificationFailed(self, f"stack rejected with {len(self.problems)} problem(s): {first}")
        return self.verified

    def add(self, code: str, step: str | None, message: str) -> None:
        self.problems.append(Problem(code, step, message))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: ``{"ok", "stack", "version", "digest", "steps", "problems"}``, plus ``"trust"`` when signed."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "stack": self.stack,
            "version": self.version,
            "digest": self.digest,
            "steps": [s.to_dict() for s in self.steps],
            "problems": [p.to_dict() for p in self.problems],
        }
        if self.signature is not None:
            out["trust"] = self.signature.to_dict()
        return out


class Candidate:
    """What the step checks established, before ``seal`` decides: the manifest bytes and record,
    its canonical digest, the steps that verified and an order (topological when the graph is a DAG)."""

    # A plain class: defining a dataclass costs ~0.3 ms of every `lodec verify` start-up.
    __slots__ = ("manifest_bytes", "manifest", "digest", "steps", "order")

    def __init__(self, manifest_bytes: bytes, manifest: dict[str, Any], digest: str, steps: dict[str, Vein],
                 order: tuple[str, ...]) -> None:
        self.manifest_bytes, self.manifest, self.digest = manifest_bytes, manifest, digest
        self.steps, self.order = steps, order


def seal(report: VerificationReport, candidate: Candidate | None) -> VerificationReport:
    """The one place a report becomes verified: with a candidate and no problems at all.

    Call it once, after every check that applies has added its problems
    (steps, signatures, pack membership, skills). Signed results come from
    ``report.signature``: its envelope, signers and expiry are carried into
    the ``VerifiedStack`` only when the signature stage accepted them.
    Returns ``report``.
    """
    if candidate is None or report.problems:
        report.verified = None
        return report
    sig = report.signature
    signed = sig is not None and sig.envelope is not None and sig.expires_at is not None
    report.verified = VerifiedStack(
        candidate.manifest_bytes, candidate.manifest, candidate.digest, candidate.steps, candidate.order,
        envelope=sig.envelope if signed and sig is not None else None,
        signed_by=sig.signed_by if signed and sig is not None else (),
        expires=sig.expires_at if signed and sig is not None else None,
    )
    return report


_NO_DEPS: list[str] = []


def _step_decoder(step_schema: Schema | None, limits: Limits) -> Callable[[bytes], Vein | None]:
    """``fast_vein_decoder`` of ``step_schema``, or (``None``) of the built-in step schema a vein's header names."""
    if step_schema is not None:
        return fast_vein_decoder(step_schema, limits)
    by_id: dict[bytes, Callable[[bytes], Vein | None] | None] = {}

    def decode(data: bytes) -> Vein | None:
        head = data[5:13]
        fast = by_id.get(head, _UNSEEN)
        if fast is _UNSEEN:  # the first vein with this schema id: only the schemas in use are loaded
            schema = step_schema_for(data)
            fast = by_id[head] = fast_vein_decoder(schema, limits) if schema.schema_id == head else None
        return None if fast is None else fast(data)  # type: ignore[operator]

    return decode


_UNSEEN: Any = object()
_BULK: dict[str, re.Pattern[str]] = {}  # compiled on first use: a small stack checks names one by one


def _bulk_pins() -> re.Pattern[str]:
    pattern = _BULK.get("pins")
    if pattern is None:
        pattern = _BULK["pins"] = re.compile(r"(?:blake3:[0-9a-f]{64})*")
    return pattern


def _all_fingerprints(pins: Iterable[str]) -> bool:
    """Whether every pin is ``blake3:<64 lowercase hex>`` (``is_fingerprint``), in one pass: each is 71 characters."""
    pins = list(pins)
    if len(pins) < 16:
        return all(map(is_fingerprint, pins))
    try:
        joined = "".join(pins)
    except TypeError:
        return False
    return set(map(len, pins)) <= {71} and _bulk_pins().fullmatch(joined) is not None


def _listed_order_if_topological(names: list[str], deps: dict[str, list[str]]) -> list[str] | None:
    """The manifest's own order if every step verified and each depends only on steps listed before it.

    One pass proves the graph closed and acyclic (lodec writes manifests in
    topological order); otherwise ``None`` and the full graph analysis runs.
    """
    if len(deps) != len(names):
        return None
    earlier: set[str] = set()
    for name in names:
        step_deps = deps[name]
        if step_deps and not earlier.issuperset(step_deps):
            return None
        earlier.add(name)
    return names


def check_stack(
    manifest_bytes: bytes,
    read_step: StepReader,
    *,
    manifest_file: str = "stack.json",
    step_file: Callable[[str], str] = lambda name: f"steps/{name}.vein",
    step_schema: Schema | None = None,
    stack_schema: Schema | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[VerificationReport, Candidate | None]:
    """The checks of a stack without the verdict: ``(report, candidate)`` for ``seal``.

    Args:
        manifest_bytes: the manifest JSON, as read.
        read_step: ``name -> bytes`` of ``<name>.vein``, or ``None`` if it
            does not exist. It is only called with safe names. A
            ``LodecError`` it raises (e.g. ``LimitExceeded``) becomes a problem.
        manifest_file: label of the manifest in messages.
        step_file: label of a step's vein in messages.
        step_schema, stack_schema: default: each step by the built-in step
            schema its vein header names (``format.schema.step_schema_for``:
            ``skill-step-v1`` or ``-v2``) / by the manifest's shape
            (``stack.stack_schema_for``: v2 when it has ``skillDigests``).

    Never raises for bad input: every problem is in the report. Callers that
    add checks (pack membership, skills) add their problems to the report,
    then call ``seal`` once; ``verify_stack`` is these checks sealed.
    """
    with gc_paused():
        report = VerificationReport()
        parsed = parse_manifest(report, manifest_bytes, manifest_file, stack_schema, limits)
        if parsed is None:
            return report, None
        candidate = verify_steps(report, manifest_bytes, parsed[0], parsed[1], read_step, step_file,
                                 step_schema, limits)
        return report, candidate


def sealed(check: Callable[P, tuple[VerificationReport, Candidate | None]], name: str,
           doc: str) -> Callable[P, VerificationReport]:
    """The verifier of a check function: ``seal(*check(...))``, with ``check``'s parameters (typed by ``P``).

    Every public ``verify_*`` is one of these, so no verifier can skip ``seal``. The verifier is
    written out with ``check``'s own parameter list (names, kinds, defaults, annotations), so
    ``help()`` and IDEs show them without ``inspect`` on the start-up path.
    """
    target = check
    while hasattr(target, "__wrapped__"):  # a decorated check (gc_paused): its own parameters
        target = target.__wrapped__
    code = target.__code__
    positional = code.co_varnames[:code.co_posonlyargcount + code.co_argcount]
    keyword = code.co_varnames[len(positional):len(positional) + code.co_kwonlyargcount]
    defaults = target.__defaults__ or ()
    kwdefaults = target.__kwdefaults__ or {}
    params, passed = [], []
    for i, arg in enumerate(positional):
        at = i - (len(positional) - len(defaults))
        params.append(f"{arg}=_d{i}" if at >= 0 else arg)
        passed.append(arg)
        if code.co_posonlyargcount and i == code.co_posonlyargcount - 1:
            params.append("/")
    if keyword:
        params.append("*")
    for arg in keyword:
        params.append(f"{arg}=_k_{arg}" if arg in kwdefaults else arg)
        passed.append(f"{arg}={arg}")
    namespace: dict[str, Any] = {"_check": check, "_seal": seal}
    namespace.update({f"_d{i + len(positional) - len(defaults)}": d for i, d in enumerate(defaults)})
    namespace.update({f"_k_{arg}": d for arg, d in kwdefaults.items()})
    exec(f"def {name}({', '.join(params)}):\n    return _seal(*_check({', '.join(passed)}))", namespace)
    verify: Callable[P, VerificationReport] = namespace[name]
    verify.__module__, verify.__qualname__, verify.__doc__ = check.__module__, name, doc
    verify.__annotations__ = {**target.__annotations__, "return": "VerificationReport"}
    return verify


def sealed_on_first_use(module: dict[str, Any], name: str,
                        check: Callable[..., tuple[VerificationReport, Candidate | None]],
                        doc: str) -> Callable[[str], Any]:
    """A module's ``__getattr__`` (PEP 562) that defines ``name`` as ``sealed(check, name, doc)`` when first used.

    ``module`` is the module's ``globals()``. For a verifier the module's own
    hot path does not call (it calls ``check`` and seals the result itself),
    so importing the module does not pay for writing it out (~0.1 ms).
    """
    def __getattr__(attr: str) -> Any:
        if attr == name:
            verify = module[name] = sealed(check, name, doc)
            return verify
        raise AttributeError(f"module {module['__name__']!r} has no attribute {attr!r}")

    return __getattr__


verify_stack = sealed(check_stack, "verify_stack", """Verify a stack: manifest bytes plus a reader of step veins by name.

Takes ``check_stack``'s arguments. Returns a ``VerificationReport``:
``report.ok`` and ``report.verified`` (a ``VerifiedStack``) on success.
Never raises for bad input: every problem is in the report.
""")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one verification.

    Verification builds many small acyclic objects; cyclic GC passes over
    them cost ~30% of a 10,000-step verify and free nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_manifest(
    report: VerificationReport, manifest_bytes: bytes, manifest_file: str, stack_schema: Schema | None, limits: Limits
) -> tuple[dict[str, Any], str] | None:
    """Phase 1: parse the manifest and compute its canonical digest; fills ``report.stack/version/digest``.

    ``stack_schema=None`` picks ``skill-stack-v1`` or ``-v2`` by the manifest's shape.
    Returns ``(manifest, digest)``, or ``None`` after adding ``manifest_invalid``.
    A name or version that breaks its rule (``lodec.names``) adds
    ``stack_name_unsafe`` / ``stack_version_unsafe`` and still returns the
    manifest, so the step checks report their problems too; the digest is
    computed as always.
    """
    try:
        doc = loads_strict(manifest_bytes, file=manifest_file, limits=limits)
        schema = stack_schema or (stack_schema_for(doc) if isinstance(doc, dict) else skill_stack_schema())
        manifest = record_from_json(doc, schema, file=manifest_file, limits=limits)
        digest = manifest_vein(manifest, schema, _validated=True).fingerprint
    except LodecError as exc:
        report.add("manifest_invalid", None, f"{exc} [{exc.code}]")
        return None
    report.stack, report.version, report.digest = manifest["name"], manifest["version"], digest
    # Messages quote the value with repr: control characters arrive escaped.
    why = name_problem(manifest["name"])
    if why is not None:
        report.add("stack_name_unsafe", None, f"{manifest_file}: /name: stack name {manifest['name']!r} {why}")
    why = version_problem(manifest["version"])
    if why is not None:
        report.add("stack_version_unsafe", None,
                   f"{manifest_file}: /version: stack version {manifest['version']!r} {why}")
    return manifest, digest


def verify_steps(
    report: VerificationReport,
    manifest_bytes: bytes,
    manifest: dict[str, Any],
    digest: str,
    read_step: StepReader,
    step_file: Callable[[str], str],
    step_schema: Schema | None,
    limits: Limits,
) -> Candidate:
    """Phase 2: every step and the graph; adds problems and returns the candidate for ``seal``."""
    listed: list[str] = manifest["steps"]
    pins: dict[str, str] = manifest["stepFingerprints"]
    seen: set[str] = set()
    names: list[str] = []
    for name in listed:
        if name in seen:
            report.add("duplicate_step", name, f'Step "{name}" is listed twice in "steps"')
            continue
        seen.add(name)
        names.append(name)
    for name in pins:
        if name not in seen:
            names.append(name)

    veins: dict[str, Vein] = {}
    deps: dict[str, list[str]] = {}
    results = report.steps
    fast = _step_decoder(step_schema, limits)
    # Checked for all names and pins at once (in C); only when one fails is each checked alone.
    names_safe = all_safe_names(names)
    pins_ok = _all_fingerprints(pins.values())
    extras = len(names) > len(seen)
    for name in names:
        expected = pins.get(name)
        if not names_safe and not is_safe_name(name):
            results.append(StepResult(name, "unsafe_name", expected, None))
            report.add("unsafe_name", name, f"step name {name!r} is not a safe file name: {name_problem(name)}")
            continue
        if extras and name not in seen:
            results.append(StepResult(name, "unlisted", expected, None))
            report.add("unlisted_pin", name, f'Step "{name}" is pinned in "stepFingerprints" but not listed in "steps"')
            continue
        if expected is None:
            report.add("missing_pin", name, f'Step "{name}" is listed in "steps" but has no pin in "stepFingerprints"')
        elif not pins_ok and not is_fingerprint(expected):
            report.add("pin_malformed", name, f'Step "{name}" pin {expected!r} is not blake3:<64 lowercase hex>')
            expected = None
        try:
            data = read_step(name)
        except LodecError as exc:
            results.append(StepResult(name, "malformed", expected, None))
            report.add(exc.code, name, f'Step "{name}" refused: {exc.with_file(step_file(name))}')
            continue
        if data is None:
            results.append(StepResult(name, "missing", expected, None))
            report.add("step_missing", name, f'Step "{name}" missing: no {step_file(name)}')
            continue
        vein = fast(data)
        if vein is None:
            try:
                # The fast path declined it: the reference decides (decode_vein would only try the fast path again).
                vein = decode_vein_reference(data, step_schema or step_schema_for(data), file=step_file(name),
                                             limits=limits)
            except LodecError as exc:
                results.append(StepResult(name, "malformed", expected, None))
                code = "schema_mismatch" if isinstance(exc, SchemaMismatch) else "step_malformed"
                report.add(code, name, f'Step "{name}" malformed: {exc} [{exc.code}]')
                continue
        fingerprint = vein.fingerprint
        record = vein.record
        inner = record.get("stepName")
        if fingerprint == expected and inner == name:  # expected is not None: a verified step
            results.append(StepResult(name, "verified", expected, fingerprint))
            veins[name] = vein
            deps[name] = record.get("dependsOn", _NO_DEPS)
            continue
        status = "verified"
        if expected is None:
            status = "unpinned"
        elif fingerprint != expected:
            status = "tampered"
            report.add("step_tampered", name, f'Step "{name}" tampered: expected {expected}, got {fingerprint}')
        if inner != name:
            status = "renamed" if status == "verified" else status
            report.add("step_renamed", name, f'Step "{name}" renamed: {step_file(name)} holds stepName {inner!r}')
        results.append(StepResult(name, status, expected, fingerprint))

    order = _listed_order_if_topological(names, deps)
    if order is None:
        # Dangling means "not a step of this stack", including steps that failed.
        problems, order = graph_problems({**{n: [] for n in seen if n not in deps}, **deps})
        for code, step, message in problems:
            report.add(code, step, message)

    _check_skill_pins(report, manifest, veins, all_steps_verified=len(veins) == len(names))

    entry = manifest.get("entryPoint")
    if entry is not None:
        if entry not in seen:
            report.add("entry_point_invalid", entry, f'entry point "{entry}" is not a step of this stack')
        elif entry in deps and deps[entry]:
            report.add(
                "entry_point_invalid", entry, f'entry point "{entry}" is not a root: it depends on {", ".join(deps[entry])}'
            )

    return Candidate(manifest_bytes, manifest, digest, veins, tuple(order))


def _check_skill_pins(
    report: VerificationReport, manifest: dict[str, Any], veins: dict[str, Vein], *, all_steps_verified: bool
) -> None:
    """``skill-stack-v2``: every step's ``skillRef`` pinned, every pin well formed and used."""
    pins: dict[str, str] | None = manifest.get(SKILL_DIGESTS)
    if pins is None:
        return
    for ref, pin in pins.items():
        if not is_fingerprint(pin):
            report.add("skill_pin_malformed", None, f'skill pin for "{ref}" is {pin!r}, not blake3:<64 lowercase hex>')
    used: set[str] = set()
    for name, vein in veins.items():
        ref = vein.record["skillRef"]
        used.add(ref)
        if ref not in pins:
            report.add("skill_unpinned", name, f'Step "{name}" uses "{ref}", which has no pin in "{SKILL_DIGESTS}"')
    # A skill's outside settings are pinned as "<ref>#settings", used when the skill is.
    used |= {ref + "#settings" for ref in used}  # lodec.format.tree.SETTINGS_PIN_SUFFIX
    if all_steps_verified:
        # Only judged when every step decoded: a step that failed could be the user.
        for ref in sorted(set(pins) - used):
            report.add("skill_pin_unused", None, f'"{SKILL_DIGESTS}" pins "{ref}", which no step uses')
