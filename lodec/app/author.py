"""``lodec build``: from one stack source (``docs/stack-source.md``) to a compiled, locked, verified stack.

Everything is computed in memory and checked first (every problem reported at
once); then only files whose bytes change are written, atomically, the
manifest after the veins, and veins no source produces are removed. A build
with nothing changed writes nothing (bytes and mtimes kept).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FileMissing, LodecError, ManyErrors, SourceError, StackError
from ..store.workspace import Workspace


@dataclass(frozen=True)
class BuildWarning:
    """Something the build did or found that the author must know: ``code``, ``file``, ``message``."""

    code: str
    file: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "file": self.file, "message": self.message}

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class BuiltStep:
    """One compiled step: its name, where its source is, its vein path, fingerprint, and whether it was written."""

    name: str
    source: str
    vein: Path
    fingerprint: str
    written: bool


@dataclass
class Built:
    """What ``build_source`` did. ``written``/``removed`` list every file changed; empty for a no-op build."""

    source: str
    manifest: Path
    name: str
    version: str
    digest: str
    steps: list[BuiltStep]
    skills: dict[str, str]
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    warnings: list[BuildWarning] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True, "source": self.source, "manifest": str(self.manifest), "stack": self.name,
            "version": self.version, "digest": self.digest,
            "steps": [{"name": s.name, "source": s.source, "vein": str(s.vein), "fingerprint": s.fingerprint,
                       "written": s.written} for s in self.steps],
            "skillDigests": dict(self.skills),
            "written": [str(p) for p in self.written], "removed": [str(p) for p in self.removed],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def build_source(path: str | None, workspace: Workspace) -> Built:
    """Compile every step of the stack source at ``path`` (default ``lodec-stack.toml``), build the manifest,
    lock its skills, verify the result as ``lodec verify`` would, then write what changed.

    Veins go to ``steps/<stepName>.vein`` beside the manifest; ``*.vein`` files
    there that no source produces are removed. Skills are found as ``lodec run``
    finds them (``skills/`` beside the manifest, the workspace's ``.lodec/skills``,
    ``$LODEC_HOME/skills``) and pinned (``skillDigests``); a pin that changes and
    a signature envelope (``STACK.json.dsse``) that no longer matches the manifest
    are reported as warnings.

    Raises:
        SourceError: the stack source is unreadable or invalid (``source_invalid``).
        ManyErrors: every problem at once (a step source that does not compile,
            duplicate step names, a graph or entry-point problem, a skill missing
            or invalid, a verification problem), each naming its file and place;
            nothing is written. (A single problem is raised as itself.)
        LodecError: ``file_unwritable``.
    """
    from ..files import atomic_write_many
    from ..format.compiler import compile_file, compile_value
    from ..run.skills import load_skills, skill_pins
    from ..stack.manifest import build_manifest, lock_manifest, manifest_json
    from ..stack.source import DEFAULT_SOURCE, load_stack_source
    from .build import _same_bytes, schema_or_builtin

    try:
        src = load_stack_source(path or DEFAULT_SOURCE)
    except FileMissing as exc:
        if path is not None:
            raise
        raise FileMissing(f"no stack source here: write one (docs/stack-source.md; `lodec skill init NAME` scaffolds "
                          "a skill for it), or name it: lodec build PATH", file=exc.file) from None
    _check_destination(src)
    schema = schema_or_builtin(str(src.schema) if src.schema is not None else None, "skill-step-v1")
    steps_dir = src.manifest.parent / "steps"
    errors: list[LodecError] = []
    compiled: list[tuple[str, Any]] = []  # (label, vein)
    for step in src.steps:
        try:
            if step.path is not None:
                vein = compile_file(step.path, schema)
            else:
                vein = compile_value(step.record, schema, file=src.file)
        except LodecError as exc:
            if step.path is None:
                exc.location = step.place + (exc.location or "")
            errors.append(exc)
            continue
        compiled.append((step.label if step.path is not None else f"{src.file}#{step.place}", vein))
    by_name: dict[str, tuple[str, Any]] = {}
    for label, vein in compiled:
        name = vein.record.get("stepName")
        if not isinstance(name, str):
            errors.append(StackError(f"schema {vein.schema.name} has no stepName field; not a step", code="not_a_step",
                                     file=label))
        elif name in by_name:
            errors.append(StackError(f'duplicate step name "{name}" (also in {by_name[name][0]})',
                                     code="duplicate_step", file=label))
        else:
            by_name[name] = (label, vein)
    manifest: dict[str, Any] | None = None
    if not errors:
        try:
            manifest = build_manifest([v for _, v in compiled], name=src.name, version=src.version,
                                      description=src.description, entry=src.entry, metadata=src.metadata)
        except LodecError as exc:
            errors.append(exc.with_file(src.file))
    roots = workspace.skill_roots(src.manifest)
    if src.skills_dir.resolve() not in roots:
        errors.append(SourceError(
            f"{src.skills_dir} is not a folder lodec verify and lodec run look in for skills "
            f"({', '.join(str(r) for r in roots)})", code="source_invalid", file=src.file, location="/skills-dir"))
    refs = sorted({str(v.record["skillRef"]) for _, v in compiled if "skillRef" in v.record})
    overrides = _settings_from_source(src, refs, errors)
    skills, skill_errors = load_skills(refs, roots, settings=overrides)
    errors.extend(e.with_file(src.file) if e.file is None else e for e in skill_errors)
    base = Path(os.path.realpath(Path(src.file).parent))
    for skill in skills.values():
        folder = Path(os.path.realpath(skill.source.parent))
        if skill.name in overrides and folder != base and base not in folder.parents:
            # The settings file goes beside the folder run finds: here an installed skill shared by other stacks.
            errors.append(SourceError(
                f"skill:{skill.name} is found in {skill.source}, outside the stack source's folder {base}: its "
                f"settings would be written over {folder / (skill.name + '.lodec.toml')}, for every stack that uses "
                f"it; copy the skill into {src.skills_dir} to set them here", code="source_invalid", file=src.file,
                location=f"/skill/{skill.name}"))
    if errors:
        raise errors[0] if len(errors) == 1 else ManyErrors(errors)
    assert manifest is not None
    pins = skill_pins(skills)
    locked, digest = lock_manifest(manifest, pins)
    manifest_bytes = manifest_json(locked)
    veins = {name: vein for name, (_, vein) in by_name.items()}
    _verify(src.manifest, manifest_bytes, veins, steps_dir, schema, roots, overrides)

    built = Built(src.file, src.manifest, src.name, src.version, digest, [], pins)
    writes: list[tuple[Path, bytes]] = []
    for skill in skills.values():
        if skill.name in overrides:  # the stack source's [skill.<name>] settings, beside the folder run finds
            beside = skill.source.parent / f"{skill.name}.lodec.toml"
            data = overrides[skill.name][0]
            if not _same_bytes(beside, data):
                writes.append((beside, data))
    for name in locked["steps"]:
        label, vein = by_name[name]
        target = steps_dir / f"{name}.vein"
        changed = not _same_bytes(target, vein.data)
        if changed:
            writes.append((target, vein.data))
        built.steps.append(BuiltStep(name, label, target, vein.fingerprint, changed))
    old_bytes = _read_manifest(src.manifest)  # read once: for the pin warnings and to skip an unchanged write
    built.warnings.extend(_pin_warnings(_json_object(old_bytes), pins, str(src.manifest)))
    stale = _stale_veins(steps_dir, {f"{n}.vein" for n in by_name})
    manifest_changed = old_bytes != manifest_bytes
    atomic_write_many(writes)
    if manifest_changed:
        # Written after the veins: a manifest on disk means every step it pins is there.
        atomic_write_many([(src.manifest, manifest_bytes)])
    for path in stale:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LodecError(f"cannot remove a vein no source produces: {exc.strerror or exc}",
                             code="file_unwritable", file=str(path)) from None
        built.removed.append(path)
    built.written = [p for p, _ in writes] + ([src.manifest] if manifest_changed else [])
    envelope = _envelope_warning(src.manifest, manifest_bytes)
    if envelope is not None:
        built.warnings.append(envelope)
    return built


def _settings_from_source(src: Any, refs: list[str], errors: list[LodecError]) -> dict[str, tuple[bytes, str]]:
    """The stack source's ``[skill.<name>]`` tables as settings files (name -> ``(bytes, label)``)."""
    from ..format.tree import skill_name
    from ..run.skills import settings_toml

    used = set()
    for ref in refs:
        try:
            used.add(skill_name(ref))
        except LodecError:
            pass
    out: dict[str, tuple[bytes, str]] = {}
    for name, table in src.skill_settings.items():
        where = f"/skill/{name}"
        if name not in used:
            errors.append(SourceError(f"no step uses skill:{name}", code="source_invalid", file=src.file,
                                      location=where))
            continue
        try:
            data = settings_toml(table, header=f"lodec settings of skill {name}, written by `lodec build` from "
                                 f"{Path(src.file).name} [skill.{name}]: edit them there.")
        except LodecError as exc:
            errors.append(SourceError(exc.message, code="source_invalid", file=src.file,
                                      location=f"{where}/{(exc.location or '').replace('.', '/')}"))
            continue
        out[name] = (data, f"{src.file} [skill.{name}]")
    return out


def _verify(manifest: Path, manifest_bytes: bytes, veins: dict[str, Any], steps_dir: Path, schema: Any,
            roots: list[Path], overrides: dict[str, tuple[bytes, str]] | None = None) -> None:
    """Verify the built stack in memory as ``lodec verify`` verifies it on disk (steps, graph, skill pins),
    with the settings the build is about to write (``overrides``) in place of those on disk."""
    from ..format.tree import SkillTree, check_pins, load_tree, skill_name
    from ..stack.verify import check_stack, seal

    def load(ref: str) -> SkillTree:
        tree = load_tree(ref, roots)
        given = (overrides or {}).get(skill_name(ref))
        return tree.with_settings(*given) if given else tree

    prefix = os.path.join(os.fspath(steps_dir), "")
    report, candidate = check_stack(
        manifest_bytes, lambda name: veins[name].data if name in veins else None, manifest_file=str(manifest),
        step_file=lambda name: f"{prefix}{name}.vein", step_schema=schema)
    if candidate is not None:
        pins = candidate.manifest.get("skillDigests") or {}
        _trees, problems = check_pins(dict(pins), load)
        for code, message in problems:
            report.add(code, None, message)
    seal(report, candidate)
    if not report.ok:
        errors: list[LodecError] = [LodecError(p.message, code=p.code, file=str(manifest)) for p in report.problems]
        raise errors[0] if len(errors) == 1 else ManyErrors(errors)


def _read_manifest(path: Path) -> bytes | None:
    """The bytes of the manifest already at ``path`` (a regular file, not followed), or ``None``."""
    from ..files import read_bounded
    from ..limits import DEFAULT_LIMITS

    try:
        return read_bounded(path, DEFAULT_LIMITS.max_file_bytes)
    except (OSError, LodecError):
        return None


def _json_object(data: bytes | None) -> dict[str, Any] | None:
    """``data`` as a JSON object, or ``None`` (absent or not a JSON object: the manifest is rebuilt anyway)."""
    try:
        doc = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _pin_warnings(old: dict[str, Any] | None, pins: dict[str, str], file: str) -> list[BuildWarning]:
    """A warning for each skill whose pin the build changes or removes: never silently."""
    before = old.get("skillDigests") if old is not None else None
    if not isinstance(before, dict):
        return []
    out = []
    for ref in sorted(set(before) | set(pins)):
        was, now = before.get(ref), pins.get(ref)
        if was is not None and now is not None and was != now:
            out.append(BuildWarning("skill_pin_changed", file, f"{ref}: pin changed from {was} to {now} (its folder "
                                    "or settings changed; review the change, then sign again)"))
        elif was is not None and now is None:
            out.append(BuildWarning("skill_pin_removed", file, f"{ref}: pin removed (no step uses it any more)"))
    return out


def _check_destination(src: Any) -> None:
    """Refuse a build that would write outside its stack source's folder, or through a link.

    The manifest (and ``steps/`` beside it, whose stale ``*.vein`` files a build removes) must lie inside
    the stack source's folder once links are resolved: a source pointing its ``manifest`` at another
    stack's would overwrite that manifest and remove that stack's veins. A ``steps`` folder that is a
    link is refused too (it could lead into a skill's folder).

    Raises:
        SourceError: ``source_invalid`` at ``/manifest``; LodecError: ``file_link`` for a linked ``steps``.
    """
    base = Path(os.path.realpath(Path(src.file).parent))
    folder = Path(os.path.realpath(src.manifest.parent))
    if folder != base and base not in folder.parents:
        raise SourceError(f"the manifest {src.manifest} resolves to {folder / src.manifest.name}, outside the stack "
                          f"source's folder {base}: a build writes only beside its source",
                          code="source_invalid", file=src.file, location="/manifest")
    steps_dir = src.manifest.parent / "steps"
    if steps_dir.is_symlink() or src.manifest.is_symlink():
        link = steps_dir if steps_dir.is_symlink() else src.manifest
        raise LodecError(f"{link} is a symbolic link; lodec build does not write through links", code="file_link",
                         file=str(link))


def _stale_veins(steps_dir: Path, produced: set[str]) -> list[Path]:
    """``*.vein`` entries of ``steps_dir`` that no source produces (not followed if links; sorted)."""
    try:
        with os.scandir(steps_dir) as it:
            return sorted(Path(e.path) for e in it if e.name.endswith(".vein") and e.name not in produced
                          and not e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _envelope_warning(manifest: Path, manifest_bytes: bytes) -> BuildWarning | None:
    """A warning when ``STACK.json.dsse`` beside the manifest does not approve these manifest bytes."""
    import blake3

    from ..sign.dsse import MAX_ENVELOPE_BYTES, parse_envelope
    from ..sign.statement import load_payload, statement_from_json
    from .verify import envelope_path_for, read_optional

    path = envelope_path_for(manifest)
    try:
        data = read_optional(path, MAX_ENVELOPE_BYTES)
    except LodecError as exc:
        return BuildWarning("envelope_stale", str(path), f"cannot be read ({exc.message}); sign the stack again")
    if data is None:
        return None
    now = blake3.blake3(manifest_bytes).hexdigest()
    try:
        envelope = parse_envelope(data, file=str(path))
        signed = statement_from_json(load_payload(envelope.payload, file=str(path)), file=str(path))
    except LodecError as exc:
        return BuildWarning("envelope_stale", str(path), f"cannot be read ({exc.message}); sign the stack again")
    if signed.subject_digests.get("blake3") == now:
        return None
    return BuildWarning("envelope_stale", str(path), f"no longer matches {manifest} (it approves "
                        f"blake3:{signed.subject_digests.get('blake3')}, the manifest is now blake3:{now}); its "
                        "signatures do not cover this stack: review it and sign again (lodec sign)")


# ------------------------------------------------------------------ skill init

_SKILL_MD = """---
name: {name}
description: {description}
---

# {name}

{intro}

## Input

The lodec step request, JSON on standard input: the step's `inputs`, and
`upstream_artifacts` (the files earlier steps produced, read-only).

## Output

Write each file the step declares in its `outputs` into the folder named by
`$LODEC_OUTPUT_DIR` (the request's `output_dir`), and nothing else.
"""

_INTRO_AGENT = """Instructions for whoever carries out this skill: an agent (this skill has no
program of its own, so lodec hands this file to the workspace's agent runner)
or, once you add one, the skill's own program."""

_INTRO_PROGRAM = """What this skill does, for the people and agents who read it. lodec runs its
program, `scripts/run` (the `command` of `{name}.lodec.toml` beside this
folder), with the step request on standard input."""

_SETTINGS = """# lodec's settings for the skill {name}: how to run it and what it may touch (docs/skill-contract.md).
# Kept beside the folder, not in it, so {name}/ stays a plain Agent Skill whose digest is its own bytes.
{command}concurrency = "read"  # read | write | exclusive
timeout = 600         # seconds

[capabilities]
network = false
read = []             # workspace paths it reads
write = []            # workspace paths it writes
env = []              # environment variables passed through
"""

_PROGRAM = """#!/bin/sh
# The skill's entry program: runs scripts/run.py with the interpreter lodec runs under (docs/skill-contract.md).
exec "${LODEC_PYTHON:-python3}" "$LODEC_SKILL_DIR/scripts/run.py" "$@"
"""

_PROGRAM_PY = """# Reads the lodec step request (JSON) on stdin and writes every declared output into $LODEC_OUTPUT_DIR.
import json
import os
import sys

request = json.load(sys.stdin)
for name in request["step"]["outputs"]:
    with open(os.path.join(os.environ["LODEC_OUTPUT_DIR"], name), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"step": request["step"]["name"], "inputs": request["inputs"]}) + "\\n")
print(request["step"]["name"] + ": done")
"""


@dataclass(frozen=True)
class InitSkill:
    """A skill scaffolded by ``init_skill``: its folder, settings file and the validated skill."""

    folder: Path
    settings: Path
    digest: str
    program: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "folder": str(self.folder), "settings": str(self.settings), "digest": self.digest,
                "runner": "command" if self.program else "agent"}


def init_skill(name: str, parent: str = ".", *, description: str | None = None, program: bool = False) -> InitSkill:
    """Scaffold a valid Agent Skill ``<parent>/<name>/`` (``SKILL.md`` with the spec's frontmatter) and its lodec
    settings beside it (``<parent>/<name>.lodec.toml``), validated as ``lodec skill check`` validates a skill.

    Without ``program`` the skill holds instructions only (the workspace's agent runner carries it out);
    with it, ``scripts/run`` is its command.

    Raises:
        SkillError: ``skill_exists`` (the folder or settings file is there), ``skill_invalid`` (a name the
            Agent Skills specification refuses: lowercase letters, digits and single hyphens, at most 64),
            ``file_unwritable``.
    """
    import tempfile

    from ..errors import SkillError
    from ..run.skills import add_skill

    base = Path(parent)
    folder, settings = base / name, base / f"{name}.lodec.toml"
    for path in (folder, settings):
        if os.path.lexists(path):
            raise SkillError(f"{path} already exists", code="skill_exists", file=str(path))
    text = (description or f"Describe what {name} does and when an agent should use it.").strip()
    settings_text = _SETTINGS.format(name=name, command='command = ["scripts/run"]\n' if program else "").encode()
    draft = folder
    try:
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=base) as tmp:
            draft = Path(tmp) / name
            draft.mkdir()
            (draft / "SKILL.md").write_text(_SKILL_MD.format(
                name=name, description=json.dumps(text),
                intro=(_INTRO_PROGRAM.format(name=name) if program else _INTRO_AGENT)), encoding="utf-8")
            if program:
                (draft / "scripts").mkdir()
                (draft / "scripts" / "run").write_text(_PROGRAM, encoding="utf-8")
                (draft / "scripts" / "run.py").write_text(_PROGRAM_PY, encoding="utf-8")
                os.chmod(draft / "scripts" / "run", 0o755)
            (Path(tmp) / f"{name}.lodec.toml").write_bytes(settings_text)
            # Validated as `lodec skill check` validates, then put in place as `lodec skill add` installs.
            skill, _ = add_skill(draft, base)
    except OSError as exc:
        raise SkillError(f"cannot create: {exc.strerror or exc}", code="file_unwritable", file=str(base)) from None
    except LodecError as exc:
        raise SkillError(exc.message.replace(str(draft), str(folder)), code=exc.code, file=str(folder),
                         location=exc.location) from None
    return InitSkill(folder, settings, skill.digest, program)
