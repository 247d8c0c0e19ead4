"""Use case: what changed between two versions of a stack, for the person about to approve the new one.

``diff_stacks(old, new)`` verifies both (manifests with their steps, or
packs; skills checked against their pins) and compares them: the manifest's
fields, the steps (added, removed, changed field by field), the skills whose
code changed (file by file) and the capabilities that widened (network,
read and write paths, environment, concurrency). Output: ``docs/signing.md``
§Review an update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LodecError
from .verify import NotVerified, verify_target

if TYPE_CHECKING:
    from ..format.tree import SkillTree
    from ..store.workspace import Workspace

#: Concurrency classes from least to most exclusive: a move up widens what a step may do to others.
_CONCURRENCY = ("read", "write", "exclusive")


@dataclass
class Change:
    """One changed value: ``where`` (a field, a path, a capability), before and after (JSON values)."""

    where: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "old": self.old, "new": self.new}


@dataclass
class SkillChange:
    """A skill whose tree digest changed: files added, removed and changed, and its capabilities that widened."""

    ref: str
    old_digest: str
    new_digest: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    widened: list[Change] = field(default_factory=list)
    settings: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "old": self.old_digest, "new": self.new_digest, "added": self.added,
                "removed": self.removed, "changed": self.changed,
                "widened": [c.to_dict() for c in self.widened], "settings": [c.to_dict() for c in self.settings]}


@dataclass
class StackDiff:
    """The difference between two verified stacks (``to_dict`` is the ``--json`` shape)."""

    old: str
    new: str
    manifest: list[Change] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[Change]] = field(default_factory=dict)
    skills_added: list[str] = field(default_factory=list)
    skills_removed: list[str] = field(default_factory=list)
    skills: list[SkillChange] = field(default_factory=list)

    @property
    def widened(self) -> bool:
        """Whether any skill's capabilities widened, or a skill was added (everything it may do is new)."""
        return bool(self.skills_added) or any(s.widened for s in self.skills)

    @property
    def same(self) -> bool:
        return not (self.manifest or self.added or self.removed or self.changed or self.skills_added
                    or self.skills_removed or self.skills)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True, "old": self.old, "new": self.new, "same": self.same, "widened": self.widened,
            "manifest": [c.to_dict() for c in self.manifest],
            "steps": {"added": self.added, "removed": self.removed,
                      "changed": {k: [c.to_dict() for c in v] for k, v in self.changed.items()}},
            "skills": {"added": self.skills_added, "removed": self.skills_removed,
                       "changed": [s.to_dict() for s in self.skills]},
        }


def diff_stacks(old: str, new: str, workspace: Workspace | None = None) -> StackDiff:
    """Compare two stacks (each ``STACK.json`` with its steps, or a ``.lodepack``), both verified first.

    Raises:
        NotVerified: either stack does not verify (``.report`` has every problem).
        LodecError: a file cannot be read.
    """
    from ..format.codec import record_to_json
    before, after = _verified(old, workspace), _verified(new, workspace)
    a, b = before.require(), after.require()
    out = StackDiff(old, new)
    keep = ("name", "version", "description", "entryPoint", "metadata")
    for key in keep:
        if a.manifest.get(key) != b.manifest.get(key):
            out.manifest.append(Change(f"/{key}", a.manifest.get(key), b.manifest.get(key)))
    out.added = sorted(set(b.steps) - set(a.steps))
    out.removed = sorted(set(a.steps) - set(b.steps))
    for name in sorted(set(a.steps) & set(b.steps)):
        if a.steps[name].fingerprint == b.steps[name].fingerprint:
            continue
        va, vb = a.steps[name], b.steps[name]
        ra, rb = record_to_json(va.record, va.schema), record_to_json(vb.record, vb.schema)
        out.changed[name] = [Change(f"/{k}", ra.get(k), rb.get(k)) for k in sorted(set(ra) | set(rb))
                             if ra.get(k) != rb.get(k)]
    sa, sb = before.skills, after.skills
    out.skills_added = sorted(set(sb) - set(sa))
    out.skills_removed = sorted(set(sa) - set(sb))
    for ref in sorted(set(sa) & set(sb)):
        # A skill changes when its folder or its outside settings (<name>.lodec.toml) change.
        if (sa[ref].digest, sa[ref].settings_digest) != (sb[ref].digest, sb[ref].settings_digest):
            out.skills.append(_skill_change(sa[ref], sb[ref]))
    return out


def _verified(target: str, workspace: Workspace | None) -> Any:
    result = verify_target(target, workspace)
    if not result.ok:
        exc = NotVerified(result.report, f"cannot compare: {target} does not verify "
                                         f"({len(result.report.problems)} problem(s))")
        exc.file = target
        raise exc
    return result


def _skill_change(old: SkillTree, new: SkillTree) -> SkillChange:
    change = SkillChange(old.ref, old.digest, new.digest)
    fa = {f.path: f for f in old.files}
    fb = {f.path: f for f in new.files}
    change.added = sorted(set(fb) - set(fa))
    change.removed = sorted(set(fa) - set(fb))
    change.changed = sorted(p for p in set(fa) & set(fb) if (fa[p].data, fa[p].mode) != (fb[p].data, fb[p].mode))
    ca, cb = _config(old, fa), _config(new, fb)
    if ca is None or cb is None:
        return change
    if cb.network and not ca.network:
        change.widened.append(Change("network", ca.network, cb.network))
    for key in ("read", "write", "env"):
        if set(getattr(cb, key)) - set(getattr(ca, key)):
            change.widened.append(Change(key, list(getattr(ca, key)), list(getattr(cb, key))))
    if _CONCURRENCY.index(cb.concurrency) > _CONCURRENCY.index(ca.concurrency):
        change.widened.append(Change("concurrency", ca.concurrency, cb.concurrency))
    for key in ("command", "timeout"):
        if getattr(ca, key) != getattr(cb, key):
            va, vb = getattr(ca, key), getattr(cb, key)
            change.settings.append(Change(key, list(va) if isinstance(va, tuple) else va,
                                          list(vb) if isinstance(vb, tuple) else vb))
    return change


def _config(tree: SkillTree, files: dict[str, Any]) -> Any:
    """The skill's ``lodec.toml`` settings (``files``: its files by path), or ``None`` if they do not parse (the
    file diff still shows)."""
    from ..run.skills import parse_config

    sidecar = files.get("lodec.toml")
    data = tree.settings if tree.settings is not None else sidecar.data if sidecar is not None else None
    if data is None:
        return None
    try:
        return parse_config(data, file=tree.settings_source or f"{tree.source}/lodec.toml", files=files)
    except LodecError:
        return None
