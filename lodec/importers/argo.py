"""Import an Argo Workflows ``Workflow`` / ``WorkflowTemplate`` as ``argo-step-v1`` records.

A pure mapping (``docs/import-argo.md``), following the Argo Workflows field
reference (``DAGTemplate``, ``DAGTask``, ``WorkflowStep``) and its "enhanced
depends logic":

* the entrypoint template (``spec.entrypoint``) is expanded: each ``dag``
  task, or each step of a ``steps`` template, becomes one step named after
  it (made safe); templates it calls are not expanded further;
* ``skillRef`` is ``argo:<template>`` (``argo:<WorkflowTemplate>/<template>``
  for a ``templateRef``, ``argo:inline`` for an inline template);
* ``dependsOn``: the tasks a ``dag`` task's ``dependencies`` or ``depends``
  names; in a ``steps`` template every step of the previous group;
* ``depends`` maps to a run condition where exact and is kept verbatim
  (``runIfExpression["argo-depends"]``) otherwise; ``when`` is always kept
  verbatim (``argo-when``), a ``dag.target`` too (``argo-target``);
* the task as written, the template it calls and the workflow ``spec``
  (without its templates) are recorded as canonical JSON, so every field that
  changes what runs is fingerprinted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, NoReturn

from ..errors import LimitExceeded, LodecError, ManyErrors, SourceError
from ..format.unicode import nfc
from ..names import check_name
from .common import Namer, read_source_text, safe_name, yaml_kind
from .yamlsafe import load_yaml

__all__ = ["MAX_ARGO_BYTES", "RECORD_FIELDS", "ArgoImport", "import_argo", "import_argo_text"]

#: Largest Argo file accepted, in UTF-8 bytes (as for GitHub Actions workflows).
MAX_ARGO_BYTES = 1024 * 1024
KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate")
#: The record's keys in schema order (``schemas/argo-step-v1.lode``).
RECORD_FIELDS = ("stepName", "skillRef", "dependsOn", "inputs", "runIf", "runIfExpression", "task", "template",
                 "entrypoint", "workflow")
_RESULTS = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"}
_TOKEN = re.compile(r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*))")


@dataclass(frozen=True)
class ArgoImport:
    """The result of importing one Argo file: stack ``name``, ``description``, ``metadata`` and the
    ``steps`` (``argo-step-v1`` source records in file order)."""

    name: str
    description: str
    metadata: dict[str, str]
    steps: list[dict[str, object]]


def import_argo(path: str | os.PathLike[str]) -> ArgoImport:
    """Read an Argo ``Workflow``/``WorkflowTemplate`` YAML file (UTF-8) and import it.

    Raises:
        LimitExceeded: over :data:`MAX_ARGO_BYTES`, or a YAML bound (``lodec.importers.yamlsafe``).
        SourceError: unreadable, not UTF-8, not YAML, or not an Argo workflow lodec can import;
            ``ManyErrors`` of them when there are several (every problem at once).
    """
    return import_argo_text(read_source_text(path, MAX_ARGO_BYTES, "Argo file"), filename=os.fspath(path))


def import_argo_text(text: str, *, filename: str) -> ArgoImport:
    """Import Argo YAML text; see the module docstring and ``docs/import-argo.md``. Raises as :func:`import_argo`."""
    return _Importer(filename).run(text)


# ------------------------------------------------------------------ depends expressions


@dataclass(frozen=True)
class _Term:
    task: str
    result: str | None  # None: the bare task name


def _parse_depends(text: str) -> tuple[list[str], Any] | None:
    """``(tasks named, expression tree)``, or ``None`` if ``text`` is not a depends expression.

    Tree: ``("and"|"or", [children])``, ``("not", child)`` or a ``_Term``.
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        tokens.append(("op", m.group("op")) if m.group("op") else ("name", m.group("name")))
        pos = m.end()
    names: list[str] = []
    at = 0

    def peek() -> tuple[str, str] | None:
        return tokens[at] if at < len(tokens) else None

    def parse_or() -> Any:
        nonlocal at
        parts = [parse_and()]
        while peek() == ("op", "||"):
            at += 1
            parts.append(parse_and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def parse_and() -> Any:
        nonlocal at
        parts = [parse_not()]
        while peek() == ("op", "&&"):
            at += 1
            parts.append(parse_not())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def parse_not() -> Any:
        nonlocal at
        tok = peek()
        if tok == ("op", "!"):
            at += 1
            return ("not", parse_not())
        if tok == ("op", "("):
            at += 1
            inner = parse_or()
            if peek() != ("op", ")"):
                raise ValueError("unbalanced parentheses")
            at += 1
            return inner
        if tok is None or tok[0] != "name":
            raise ValueError("expected a task name")
        at += 1
        task, dot, result = tok[1].rpartition(".")
        if dot and result in _RESULTS:
            term = _Term(task, result)
        else:
            term = _Term(tok[1], None)
        if term.task not in names:
            names.append(term.task)
        return term

    try:
        tree = parse_or()
    except ValueError:
        return None
    if at != len(tokens):
        return None
    return names, tree


def _exact_condition(tree: Any, can_only_succeed_or_fail: dict[str, bool], unskippable: dict[str, bool]) -> str | None:
    """``success``/``failure``/``always`` when a depends tree states one exactly, else ``None``.

    * ``A && B.Succeeded && ...``: success over them (a bare ``A`` also
      accepts ``A.Skipped``/``A.Daemoned``, so A must be unable to be skipped);
    * ``A.Failed || B.Failed ...`` (or one): failure over them, when each can
      only succeed or fail (a root task without ``when``): lodec also counts
      a step skipped for an upstream failure as failed, Argo does not;
    * ``(A.Succeeded || A.Failed) && ...``, one group per task: always over
      them, under the same proviso.
    """
    def terms(node: Any, op: str) -> list[Any]:
        return node[1] if isinstance(node, tuple) and node[0] == op else [node]

    conj = terms(tree, "and")
    if all(isinstance(t, _Term) and t.result in (None, "Succeeded") for t in conj):
        if all(t.result == "Succeeded" or unskippable[t.task] for t in conj):
            return "success"
        return None
    disj = terms(tree, "or")
    if all(isinstance(t, _Term) and t.result == "Failed" for t in disj):
        return "failure" if all(can_only_succeed_or_fail[t.task] for t in disj) else None
    for group in conj:
        alts = terms(group, "or")
        if not (len(alts) == 2 and all(isinstance(a, _Term) for a in alts)
                and {a.result for a in alts} == {"Succeeded", "Failed"} and alts[0].task == alts[1].task
                and can_only_succeed_or_fail[alts[0].task]):
            return None
    return "always"


# ------------------------------------------------------------------ the importer


class _Importer:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        name = PurePath(filename).name.encode("utf-8", "surrogateescape")
        self.basename = nfc(name.decode("utf-8", "replace"))
        self.errors: list[LodecError] = []

    def fail(self, message: str, location: str | None = None) -> NoReturn:
        raise SourceError(message, file=self.filename, location=location)

    def problem(self, message: str, location: str | None = None) -> None:
        self.errors.append(SourceError(message, file=self.filename, location=location))

    def run(self, text: str) -> ArgoImport:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_ARGO_BYTES:
            raise LimitExceeded(f"Argo file is {size} bytes; the limit is {MAX_ARGO_BYTES}", file=self.filename)
        doc = load_yaml(text, file=self.filename, what="the Argo file")
        if not isinstance(doc, dict):
            self.fail(f"the top level must be a mapping, got {yaml_kind(doc)}")
        kind = doc.get("kind")
        if kind not in KINDS:
            self.fail(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", "/kind")
        api = doc.get("apiVersion")
        if not (isinstance(api, str) and api.startswith("argoproj.io/")):
            self.fail(f"apiVersion must be argoproj.io/..., got {api!r}", "/apiVersion")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            self.fail(f"'spec' must be a mapping, got {yaml_kind(spec)}", "/spec")
        templates = spec.get("templates")
        if not isinstance(templates, list) or not templates:
            self.fail("'spec.templates' must be a non-empty list", "/spec/templates")
        by_name: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, t in enumerate(templates):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                self.problem("a template must be a mapping with a string 'name'", f"/spec/templates/{i}")
                continue
            if t["name"] in by_name:
                self.problem(f"template {t['name']!r} is defined twice", f"/spec/templates/{i}/name")
            by_name[t["name"]] = (i, t)
        entry = spec.get("entrypoint")
        if entry is None:
            flows = [n for n, (_, t) in by_name.items() if "dag" in t or "steps" in t]
            if len(flows) != 1:
                self.fail("no 'spec.entrypoint', and not exactly one dag or steps template to start from",
                          "/spec/entrypoint")
            entry = flows[0]
        if not isinstance(entry, str) or entry not in by_name:
            self.fail(f"entrypoint {entry!r} is not a template of this file", "/spec/entrypoint")
        index, template = by_name[entry]
        where = f"/spec/templates/{index}"
        shared = {
            "entrypoint": _json(self, {k: v for k, v in template.items() if k not in ("dag", "steps")}
                                | ({"dag": {k: v for k, v in template["dag"].items() if k != "tasks"}}
                                   if isinstance(template.get("dag"), dict) else {}), where),
            "workflow": _json(self, {k: v for k, v in spec.items() if k != "templates"}, "/spec"),
        }
        if "dag" in template:
            steps = self.dag(template, where, by_name, shared)
        elif "steps" in template:
            steps = self.steps(template, where, by_name, shared)
        else:
            self.fail(f"entrypoint {entry!r} is neither a dag nor a steps template", where)
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else ManyErrors(self.errors)
        raw_name = meta.get("name") or str(meta.get("generateName") or "").rstrip("-") or PurePath(self.basename).stem
        name = check_name(safe_name(str(raw_name), fallback="workflow"), what="stack name")
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        description = str(annotations.get("workflows.argoproj.io/description") or "").strip() or \
            f"Argo {kind} {self.basename}"
        metadata = {"importedFrom": "argo", "workflow": self.basename, "kind": str(kind), "entrypoint": entry}
        return ArgoImport(name, nfc(description), metadata, [_ordered(s) for s in steps])

    # -- dag --------------------------------------------------------------

    def dag(self, template: dict[str, Any], where: str, by_name: dict[str, tuple[int, dict[str, Any]]],
            shared: dict[str, str]) -> list[dict[str, object]]:
        dag = template["dag"]
        if not isinstance(dag, dict) or not isinstance(dag.get("tasks"), list) or not dag["tasks"]:
            self.fail("'dag.tasks' must be a non-empty list", where + "/dag/tasks")
        tasks: list[tuple[str, dict[str, Any]]] = []
        names: dict[str, str] = {}
        namer = Namer()
        for i, task in enumerate(dag["tasks"]):
            at = f"{where}/dag/tasks/{i}"
            if not isinstance(task, dict) or not isinstance(task.get("name"), str) or not task["name"]:
                self.problem("a task must be a mapping with a non-empty string 'name'", at)
                continue
            if task["name"] in names:
                self.problem(f"task {task['name']!r} is given twice", at + "/name")
                continue
            if "dependencies" in task and "depends" in task:
                self.problem("a task cannot have both 'dependencies' and 'depends'", at)
            names[task["name"]] = namer.claim(task["name"])
            tasks.append((at, task))
        # A task can only succeed or fail when it has no upstream and nothing can skip it (`when`, an empty
        # loop) or make it Daemoned.
        may_skip = {t["name"]: _may_skip(t, by_name) for _, t in tasks}
        plain = {t["name"]: not t.get("dependencies") and not t.get("depends") and not may_skip[t["name"]]
                 for _, t in tasks}
        by_task = {t["name"]: t for _, t in tasks}
        target = dag.get("target")
        out: list[dict[str, object]] = []
        for at, task in tasks:
            record = self.call(task, at, by_name, shared)
            record["stepName"] = names[task["name"]]
            deps: list[str] = []
            expressions: dict[str, str] = {}
            if "dependencies" in task:
                listed = task["dependencies"]
                if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
                    self.problem("'dependencies' must be a list of task names", at + "/dependencies")
                    listed = []
                deps = list(dict.fromkeys(listed))
                # Argo reads `dependencies: [A]` as `A`, or `(A || A.Failed)` etc. when A has continueOn
                # (workflow/common/ancestry.go, expandDependency): kept verbatim in that resolved form.
                if any(may_skip.get(d, False) or _continues_on(by_task.get(d)) for d in deps):
                    expressions["argo-depends"] = " && ".join(_resolved(d, by_task.get(d)) for d in deps)
            elif "depends" in task:
                text = task["depends"]
                if not isinstance(text, str) or not text.strip():
                    self.problem("'depends' must be a non-empty expression", at + "/depends")
                    text = ""
                parsed = _parse_depends(text) if text else None
                if text and parsed is None:
                    self.problem(f"'depends' is not an Argo depends expression: {text!r}", at + "/depends")
                if parsed is not None:
                    deps, tree = parsed
                    known = {d: plain.get(d, False) for d in deps}
                    unskippable = {d: not may_skip.get(d, True) for d in deps}
                    kind = _exact_condition(tree, known, unskippable) if all(d in names for d in deps) else None
                    if kind is None:
                        expressions["argo-depends"] = text.strip()
                    elif kind != "success":
                        record["runIf"] = kind
            for dep in deps:
                if dep not in names:
                    self.problem(f"task {task['name']!r} depends on unknown task {dep!r}", at)
                elif dep == task["name"]:
                    self.problem(f"task {task['name']!r} depends on itself", at)
            if "when" in task:
                expressions["argo-when"] = _text(task["when"])
            if target is not None:
                expressions["argo-target"] = _text(target)
            if expressions:
                record["runIfExpression"] = expressions
            if deps:
                record["dependsOn"] = [names.get(d, d) for d in deps]
            out.append(record)
        return out

    # -- steps ------------------------------------------------------------

    def steps(self, template: dict[str, Any], where: str, by_name: dict[str, tuple[int, dict[str, Any]]],
              shared: dict[str, str]) -> list[dict[str, object]]:
        groups = template["steps"]
        if not isinstance(groups, list) or not groups:
            self.fail("'steps' must be a non-empty list of step groups", where + "/steps")
        namer = Namer()
        previous: list[str] = []
        # The group before, as Argo reads it: each step's name and whether Argo goes on past it other than
        # on success (skipped by `when` or an empty loop, Daemoned, or failed/errored with continueOn).
        previous_steps: list[tuple[str, dict[str, Any]]] = []
        out: list[dict[str, object]] = []
        for g, group in enumerate(groups):
            at_group = f"{where}/steps/{g}"
            entries = group if isinstance(group, list) else [group]
            current: list[str] = []
            current_steps: list[tuple[str, dict[str, Any]]] = []
            loose = [(n, st) for n, st in previous_steps if _may_skip(st, by_name) or _continues_on(st)]
            for i, step in enumerate(entries):
                at = f"{at_group}/{i}" if isinstance(group, list) else at_group
                if not isinstance(step, dict) or not isinstance(step.get("name"), str) or not step["name"]:
                    self.problem("a step must be a mapping with a non-empty string 'name'", at)
                    continue
                record = self.call(step, at, by_name, shared)
                record["stepName"] = namer.claim(step["name"])
                if previous:
                    # A group starts once every step of the group before it succeeded (Argo steps semantics).
                    record["dependsOn"] = list(previous)
                expressions: dict[str, str] = {}
                if loose:
                    # lodec's success over the group before would skip where Argo goes on.
                    expressions["argo-depends"] = " && ".join(_resolved(n, st) for n, st in previous_steps)
                if "when" in step:
                    expressions["argo-when"] = _text(step["when"])
                if expressions:
                    record["runIfExpression"] = expressions
                current.append(str(record["stepName"]))
                current_steps.append((step["name"], step))
                out.append(record)
            previous = current or previous
            previous_steps = current_steps or previous_steps
        return out

    # -- one call ------------------------------------------------------------

    def call(self, task: dict[str, Any], at: str, by_name: dict[str, tuple[int, dict[str, Any]]],
             shared: dict[str, str]) -> dict[str, object]:
        record: dict[str, object] = {}
        if isinstance(task.get("template"), str):
            ref = task["template"]
            if ref not in by_name:
                self.problem(f"template {ref!r} is not defined in this file", at + "/template")
            else:
                index, called = by_name[ref]
                record["template"] = _json(self, called, f"/spec/templates/{index}")
            record["skillRef"] = "argo:" + ref
        elif isinstance(task.get("templateRef"), dict):
            tr = task["templateRef"]
            scope = "cluster/" if tr.get("clusterScope") else ""
            record["skillRef"] = f"argo:{scope}{tr.get('name')}/{tr.get('template')}"
        elif "inline" in task:
            record["skillRef"] = "argo:inline"
        else:
            self.problem("a task needs 'template', 'templateRef' or 'inline'", at)
            record["skillRef"] = "argo:unknown"
        params = (task.get("arguments") or {}).get("parameters") if isinstance(task.get("arguments"), dict) else None
        inputs: dict[str, str] = {}
        if isinstance(params, list):
            for p in params:
                if isinstance(p, dict) and isinstance(p.get("name"), str) and "value" in p:
                    inputs[nfc(p["name"])] = nfc(str(p["value"]))
        if inputs:
            record["inputs"] = inputs
        record["task"] = _json(self, task, at)
        record.update(shared)
        return record


_LOOPS = ("withItems", "withParam", "withSequence")


def _may_skip(task: dict[str, Any], by_name: dict[str, tuple[int, dict[str, Any]]]) -> bool:
    """Whether Argo may end ``task`` other than Succeeded/Failed/Errored, which a bare dependency (``A`` =
    ``A.Succeeded || A.Skipped || A.Daemoned``) and the next group of a steps template accept: a ``when``
    (Skipped), a loop (an empty ``withParam``/``withItems`` is "Skipped, empty params"), or a template that may be
    a daemon (Daemoned, while still running): ``daemon: true``, or a ``templateRef`` lodec cannot see."""
    if "when" in task or any(k in task for k in _LOOPS):
        return True
    if isinstance(task.get("template"), str):
        called = by_name.get(task["template"], (0, {}))[1]
        return bool(called.get("daemon"))
    if isinstance(task.get("inline"), dict):
        return bool(task["inline"].get("daemon"))
    return True


def _continues_on(task: dict[str, Any] | None) -> bool:
    """Whether ``task`` has a ``continueOn`` (``failed``/``error``): Argo goes on past its failure."""
    cont = task.get("continueOn") if task else None
    return isinstance(cont, dict) and bool(cont.get("failed") or cont.get("error"))


def _resolved(name: str, task: dict[str, Any] | None) -> str:
    """``name`` as a dependency the way Argo resolves one (``A``; ``(A || A.Failed)`` with continueOn)."""
    cont = task.get("continueOn") if task else None
    extra = []
    if isinstance(cont, dict):
        if cont.get("error"):
            extra.append(f"{name}.Errored")
        if cont.get("failed"):
            extra.append(f"{name}.Failed")
    return f"({' || '.join([name, *extra])})" if extra else name


def _text(value: Any) -> str:
    """An expression as written: a string as is (NFC), any other YAML value as its JSON text (``true``, ``3``)."""
    return nfc(value) if isinstance(value, str) else json.dumps(_plain(value), ensure_ascii=False)


def _json(importer: _Importer, value: Any, where: str) -> str:
    """Canonical JSON (keys sorted, no whitespace, UTF-8 kept) of a YAML value; refuses what JSON cannot hold."""
    try:
        return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        importer.fail(f"a value cannot be recorded: {exc}", where)


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"a key must be a string, got {yaml_kind(k)} (quote it)")
            key = nfc(k)
            if key in out:  # two spellings of one key once NFC-normalised: keeping the last would drop one silently
                raise ValueError(f"key {key!r} is given twice once normalised to NFC")
            out[key] = _plain(v)
        return out
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} (quote it)")


def _ordered(record: dict[str, object]) -> dict[str, object]:
    return {key: record[key] for key in RECORD_FIELDS if key in record}

