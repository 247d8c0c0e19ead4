"""Pack verification: a ``.lodepack`` judged from its members alone, signed or not. No I/O.

``check_pack`` runs the same checks as for loose files on the members'
bytes (``lodec.stack.verify.check_stack``, or with a policy
``lodec.sign.trust.check_signed_stack``), then adds pack membership: a
step member the manifest does not list, or a skill member it does not pin
in ``skillDigests``, is a problem (``pack_member_unlisted``), since a pack
carries nothing unverified. (Whether each carried skill matches its pin is
judged by ``lodec.app.verify``, over ``lodec.format.tree.check_pins``.)
``verify_pack`` seals that into a verdict. Format: ``docs/pack-format.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SchemaError
from ..format.schema import Schema, parse_schema
from ..format.tree import SKILL_REF_PREFIX
from ..stack.manifest import SKILL_DIGESTS
from ..stack.verify import Candidate, VerificationReport, check_stack, sealed, sealed_on_first_use

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from ..format.pack import Pack
    from .policy import TrustPolicy
    from .state import TrustedVersion


#: The fields verification (and ``lodec run``) reads from a step or a manifest,
#: with the type and ``required`` flag they have in the built-in schemas. A
#: pack's schema members must keep them so: any schema verifies under pins
#: that were computed with it, so without this check a hand-made schema
#: (``dependsOn`` an ``int``, no ``skillRef``) reached code that assumes them.
_STEP_FIELDS = {"stepName": ("string", True), "skillRef": ("string", True), "dependsOn": ("string[]", False)}
_STACK_FIELDS = {
    "name": ("string", True), "version": ("string", True), "description": ("string", True),
    "steps": ("string[]", True), "stepFingerprints": ("map<string,string>", True),
    "entryPoint": ("string", False), "metadata": ("map<string,string>", False),
    "skillDigests": ("map<string,string>", False),
}


def _check_fields(schema: Schema, spec: dict[str, tuple[str, bool]], source: str) -> Schema:
    for name, (spelling, required) in spec.items():
        f = schema.by_name.get(name)
        if f is None and not required:
            continue
        if f is None or f.type.spelling != spelling or (required and not f.required):
            want = f"{'a required' if required else 'an optional'} {spelling} field {name!r}"
            raise SchemaError(f"schema {schema.name} must have {want}, as verification reads it",
                              file=source, location=f"field {name!r}")
    return schema


def _schemas(pack: Pack, file: str) -> tuple[Schema, Schema]:
    step, stack = f"{file}#stepSchema", f"{file}#stackSchema"
    return (_check_fields(parse_schema(pack.step_schema, source=step), _STEP_FIELDS, step),
            _check_fields(parse_schema(pack.stack_schema, source=stack), _STACK_FIELDS, stack))


def check_pack(
    pack: Pack,
    *,
    file: str = "<pack>",
    policy: TrustPolicy | None = None,
    now: datetime | None = None,
    trusted_versions: Mapping[str, TrustedVersion] | None = None,
    expected_name: str | None = None,
) -> tuple[VerificationReport, Candidate | None]:
    """The checks of a pack without the verdict: ``(report, candidate)`` for ``seal``.

    Membership: every step member is a step of the manifest and every skill
    member ``<name>`` is pinned as ``skill:<name>`` in its ``skillDigests``
    (else ``pack_member_unlisted``). The carried skills' tree digests are not
    compared here (``lodec.app.verify`` does, with the pins that verified).

    With ``policy`` and ``now`` the members go through signed verification
    (DSSE envelope member, threshold, freeze, rollback against
    ``trusted_versions``, ``expected_name``); without, the core checks.

    Raises:
        SchemaError: a schema member is not a valid ``.lode`` schema, or
            lacks (or retypes) a field verification reads: ``stepName``,
            ``skillRef``, ``dependsOn`` of a step; ``name``, ``version``,
            ``description``, ``steps``, ``stepFingerprints``, ``entryPoint``,
            ``metadata``, ``skillDigests`` of a manifest (code ``schema_invalid``).
        ValueError: ``policy`` without ``now``.
    """
    step_schema, stack_schema = _schemas(pack, file)
    manifest_file = f"{file}#{pack.manifest_name}"

    def step_file(name: str) -> str:
        return f"{file}#steps/{name}.vein"

    read_step = pack.steps.get
    if policy is not None:
        if now is None:
            raise ValueError("signed verification needs the reference time `now`")
        # Imported here: an unsigned pack's verify needs none of the signed stages (keys, clock, digests).
        from .trust import check_signed_stack

        report, candidate = check_signed_stack(
            pack.manifest, pack.envelope, read_step, policy=policy, now=now,
            trusted_versions=trusted_versions, expected_name=expected_name,
            manifest_file=manifest_file, envelope_file=f"{file}#envelope", step_file=step_file,
            step_schema=step_schema, stack_schema=stack_schema,
        )
    else:
        report, candidate = check_stack(pack.manifest, read_step, manifest_file=manifest_file, step_file=step_file,
                                        step_schema=step_schema, stack_schema=stack_schema)
    if report.digest is not None:
        # Once the manifest is parsed, report.steps names every step it lists or pins.
        for name in sorted(set(pack.steps) - {s.name for s in report.steps}):
            report.add("pack_member_unlisted", name, f"{file}: member steps/{name}.vein is not a step of the stack")
    if candidate is not None:
        pinned = {ref[len(SKILL_REF_PREFIX):] for ref in candidate.manifest.get(SKILL_DIGESTS) or {}
                  if ref.startswith(SKILL_REF_PREFIX)}
        for name in sorted(set(pack.skills) - pinned):
            report.add("pack_member_unlisted", None, f"{file}: member skills/{name} is not a skill the stack pins "
                                                     f"({SKILL_REF_PREFIX}{name} is not in {SKILL_DIGESTS})")
    return report, candidate


_VERIFY_DOC = """Verify a pack from its members alone: ``check_pack`` sealed.

Takes ``check_pack``'s arguments; returns the ``VerificationReport``. Raises
what ``check_pack`` raises.
"""

if TYPE_CHECKING:
    verify_pack = sealed(check_pack, "verify_pack", _VERIFY_DOC)

else:  # `lodec verify` calls check_pack and seals its result itself
    __getattr__ = sealed_on_first_use(globals(), "verify_pack", check_pack, _VERIFY_DOC)
