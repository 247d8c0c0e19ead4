"""Import a GitHub Actions workflow as SkillStep source records.

A pure mapping: YAML text in, plain records out. The CLI command
``lodec import github-actions`` writes the records, compiles them and builds
the stack; nothing here touches the file system except :func:`import_workflow`,
which only reads the workflow file.

The mapping follows the GitHub Actions workflow syntax reference
(https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax):

* every ``jobs.<job_id>.steps[*]`` entry becomes one SkillStep, named
  ``<job_id>.<step id or 0-based index>`` and made safe (see :func:`safe_name`);
* ``skillRef`` is ``gha:<uses>`` or ``gha:run``;
* ``inputs`` are the ``with:`` entries plus the step-level ``run``, ``shell``
  and ``working-directory``, all as strings;
* ``dependsOn`` is the previous step of the same job; a job's first step
  depends on the last step of every job in its ``needs:``;
* a job that calls a reusable workflow (job-level ``uses:``) becomes one step
  named ``<job_id>``; its ``secrets:`` are never copied.

``docs/import-github-actions.md`` documents the mapping, the YAML 1.1 caveats
and the limits in full.
"""

from __future__ import annotations

import datetime
import errno
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import NoReturn

import yaml

from ..errors import FileMissing, FileUnreadable, LimitExceeded, SourceError
from ..files import read_bounded
from ..format.strictjson import pointer as json_pointer
from ..names import MAX_NAME_LENGTH, check_name
from ..stack.graph import first_cycle
from ..format.unicode import nfc

__all__ = [
    "MAX_WORKFLOW_BYTES",
    "WorkflowImport",
    "import_workflow",
    "import_workflow_text",
    "safe_name",
]

#: Largest workflow accepted, in UTF-8 bytes. Real workflows are far smaller
#: (the largest in the test corpus is 56 KB); the cap bounds the pure-Python
#: YAML parser's time and memory before any work is done.
MAX_WORKFLOW_BYTES = 1024 * 1024

# Step-level keys copied into ``inputs`` next to the ``with:`` entries.
_STEP_LEVEL_INPUTS = ("run", "shell", "working-directory")

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_DEFAULT_TAG_HANDLES = {"!": "!", "!!": "tag:yaml.org,2002:"}


@dataclass(frozen=True)
class WorkflowImport:
    """The result of importing one workflow.

    Attributes:
        name: stack name, the workflow file's stem made safe (``tokio-ci``).
        description: the workflow's ``name:``, or
            ``"GitHub Actions workflow <file>"`` when it has none.
        metadata: ``importedFrom`` (``"github-actions"``), ``workflow`` (the
            file's base name) and, when the workflow has triggers,
            ``triggerOn`` (sorted event names joined by ``,``).
        steps: SkillStep source records in file order (jobs in file order,
            steps in job order), each
            ``{"stepName": str, "skillRef": str, "dependsOn": [str, ...],
            "inputs": {str: str}}`` with ``dependsOn`` and ``inputs`` left
            out when empty.
    """

    name: str
    description: str
    metadata: dict[str, str]
    steps: list[dict[str, object]]


_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def unpinned_uses(imported: WorkflowImport) -> list[tuple[str, str]]:
    """``(step name, uses)`` for every action or reusable workflow not pinned to an immutable reference.

    Pinned: a local path (``./…``, or the self-repository form ``$/…``: both
    versioned with the workflow itself), a
    ``docker://`` image by digest (``@sha256:…``), and ``owner/repo[/path]@<sha>``
    with a full 40- (or 64-) hex commit SHA. Anything else (``@v4``, ``@main``,
    a short SHA, no ``@``) can be moved after approval: a tag force-pushed to
    other code (as in the tj-actions/changed-files incident) changes what runs
    while the stack's fingerprints stay the same.
    """
    out = []
    for record in imported.steps:
        ref = str(record["skillRef"])
        if not ref.startswith("gha:") or ref == "gha:run":
            continue
        uses = ref.removeprefix("gha:")
        if uses.startswith(("./", "$/")):  # this repository, at the workflow's own commit
            continue
        if uses.startswith("docker://"):
            if "@sha256:" not in uses:
                out.append((str(record["stepName"]), uses))
            continue
        _, at, version = uses.rpartition("@")
        if not at or not _FULL_SHA.fullmatch(version):
            out.append((str(record["stepName"]), uses))
    return out


def import_workflow(path: str | os.PathLike[str]) -> WorkflowImport:
    """Read a workflow file (UTF-8) and import it.

    See :func:`import_workflow_text` for the mapping. Errors name the file as
    ``str(path)``.

    Raises:
        LimitExceeded: the file is larger than :data:`MAX_WORKFLOW_BYTES`
            (checked before it is parsed).
        SourceError: the file cannot be read (``cannot read workflow: ...``;
            a missing file included), is not UTF-8 (location
            ``@<byte offset>``), or is not a workflow lodec can import.
    """
    label = os.fspath(path)
    try:
        data = read_bounded(path, MAX_WORKFLOW_BYTES, follow=True)
    except LimitExceeded:
        raise LimitExceeded(f"workflow is larger than {MAX_WORKFLOW_BYTES} bytes", file=label) from None
    except FileMissing:
        # Worded like the other read errors, which carry the OS's strerror.
        raise SourceError(f"cannot read workflow: {os.strerror(errno.ENOENT)}", file=label) from None
    except FileUnreadable as exc:
        raise SourceError(f"cannot read workflow: {exc.message}", file=label) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            "workflow is not valid UTF-8", file=label, location=f"@{exc.start}"
        ) from exc
    return import_workflow_text(text, filename=label)


def import_workflow_text(text: str, *, filename: str) -> WorkflowImport:
    """Import a GitHub Actions workflow given as YAML text.

    Args:
        text: the workflow YAML.
        filename: the workflow's path or label; its base name goes into the
            metadata, its stem becomes the stack name, and errors carry it.

    Returns:
        A :class:`WorkflowImport`; the same text and file name always give an
        equal result.

    Raises:
        LimitExceeded: ``text`` is larger than :data:`MAX_WORKFLOW_BYTES`.
        SourceError: the YAML is malformed (the message gives line and
            column), uses merge keys (``<<``), or does not have the shape of
            a workflow: no ``jobs``, a job with neither ``steps`` nor
            ``uses``, a step with neither or both of ``uses`` and ``run``, a
            ``needs:`` naming an unknown job or forming a cycle, a ``with:``
            value that is not a scalar, a non-string key, an input key set
            twice, ... ``location`` is a JSON pointer into the workflow such
            as ``/jobs/build/steps/3``.
    """
    return _Importer(filename).run(text)


def safe_name(raw: str, *, fallback: str = "step") -> str:
    """Make ``raw`` fit the name rule of :mod:`lodec.names`.

    NFC-normalise, replace every character outside ``[A-Za-z0-9._-]`` with
    ``-``, strip leading characters that are not a letter or digit (use
    ``fallback`` if nothing is left), keep at most 128 characters.
    Uniqueness is not handled here.

    >>> safe_name("build (linux/x64).cache")
    'build--linux-x64-.cache'
    >>> safe_name("__init.0")
    'init.0'
    """
    name = _UNSAFE_NAME_CHARS.sub("-", nfc(raw))
    name = name.lstrip("._-")[:MAX_NAME_LENGTH]
    return name or fallback


class _Namer:
    """Hands out safe names that are unique across one workflow."""

    def __init__(self) -> None:
        # Compared in lower case: names become file names, and two names that
        # differ only in case would clash on case-insensitive file systems.
        self._taken: set[str] = set()

    def claim(self, raw: str) -> str:
        base = safe_name(raw)
        name = base
        counter = 1
        while name.lower() in self._taken:
            counter += 1
            suffix = f"-{counter}"
            name = base[: MAX_NAME_LENGTH - len(suffix)] + suffix
        self._taken.add(name.lower())
        return check_name(name)


@dataclass
class _Job:
    """One imported job: its records in order and the jobs it needs."""

    job_id: str
    pointer: str
    records: list[dict[str, object]]
    needs: list[tuple[str, str]]  # (job id, pointer of that needs entry)


class _Importer:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        # A path from os.fsdecode may hold surrogate escapes; metadata must be valid text.
        name = PurePath(filename).name.encode("utf-8", "surrogateescape")
        self.basename = nfc(name.decode("utf-8", "replace"))

    def fail(self, message: str, location: str | None = None) -> NoReturn:
        raise SourceError(message, file=self.filename, location=location)

    # -- driver ----------------------------------------------------------

    def run(self, text: str) -> WorkflowImport:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_WORKFLOW_BYTES:
            raise LimitExceeded(
                f"workflow is {size} bytes; the limit is {MAX_WORKFLOW_BYTES}",
                file=self.filename,
            )
        document = self.load(text)
        if not isinstance(document, dict):
            self.fail(f"the top level must be a mapping, got {_kind(document)}")

        jobs_node = document.get("jobs")
        if jobs_node is None:
            self.fail("the workflow has no 'jobs'", "/jobs")
        if not isinstance(jobs_node, dict):
            self.fail(f"'jobs' must be a mapping, got {_kind(jobs_node)}", "/jobs")
        if not jobs_node:
            self.fail("'jobs' is empty", "/jobs")

        namer = _Namer()
        jobs: dict[str, _Job] = {}
        for job_key, job_node in jobs_node.items():
            job = self.job(job_key, job_node, namer)
            if job.job_id in jobs:
                # Only reachable when two keys differ before NFC normalisation.
                self.fail(f"job id {job.job_id!r} is given twice", job.pointer)
            jobs[job.job_id] = job
        self.link(jobs)

        steps = [_ordered(record) for job in jobs.values() for record in job.records]
        stem = PurePath(self.basename).stem
        return WorkflowImport(
            name=check_name(safe_name(stem, fallback="workflow"), what="stack name"),
            description=self.description(document),
            metadata=self.metadata(document),
            steps=steps,
        )

    def load(self, text: str) -> object:
        """Parse with ``yaml.safe_load``, turning every parser failure into SourceError."""
        try:
            self.refuse_merge_keys(text)
            return yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            self.fail(_describe_yaml_error(exc))
        except yaml.YAMLError as exc:
            # ReaderError and friends carry no mark; keep their text on one line.
            self.fail("invalid YAML: " + " ".join(str(exc).split()))
        except RecursionError:
            # PyYAML's composer recurses once per nesting level.
            self.fail("invalid YAML: nested too deeply")
        except (ValueError, OverflowError) as exc:
            # e.g. an implicit timestamp such as 2024-13-45.
            self.fail("invalid YAML value: " + " ".join(str(exc).split()))

    def refuse_merge_keys(self, text: str) -> None:
        """Refuse ``<<`` merge keys before loading.

        GitHub Actions does not support merge keys, and chains of them make
        PyYAML copy keys quadratically (a 135 KB file took 8 s): refusing them
        keeps loading linear. Plain aliases are fine: ``safe_load`` shares the
        aliased object instead of copying it. Scanning tokens is linear.
        """
        handles = dict(_DEFAULT_TAG_HANDLES)
        after_key = False
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.DocumentStartToken):
                handles = dict(_DEFAULT_TAG_HANDLES)
            elif isinstance(token, yaml.DirectiveToken) and token.name == "TAG":
                handle, prefix = token.value
                handles[handle] = prefix
            merge = False
            if isinstance(token, yaml.TagToken):
                handle, suffix = token.value
                merge = (handles.get(handle, "") if handle else "") + suffix == _MERGE_TAG
            elif isinstance(token, yaml.ScalarToken):
                merge = after_key and token.plain and token.value == "<<"
            if merge:
                mark = token.start_mark
                self.fail(
                    f"merge keys ('<<') are not supported (GitHub Actions does not "
                    f"support them either) at line {mark.line + 1}, column {mark.column + 1}"
                )
            # An anchor may sit between the key indicator and the key itself.
            if isinstance(token, yaml.KeyToken):
                after_key = True
            elif not isinstance(token, yaml.AnchorToken):
                after_key = False

    # -- jobs and steps --------------------------------------------------

    def job(self, job_key: object, job_node: object, namer: _Namer) -> _Job:
        job_id = self.key(job_key, "job id", _pointer("jobs", _key_label(job_key)))
        where = _pointer("jobs", job_id)
        if not isinstance(job_node, dict):
            self.fail(f"job {job_id!r} must be a mapping, got {_kind(job_node)}", where)
        needs = self.needs(job_node.get("needs"), where)
        steps_node = job_node.get("steps")
        uses = job_node.get("uses")

        if uses is not None:
            if steps_node is not None:
                self.fail(f"job {job_id!r} has both 'uses' and 'steps'", where)
            # A reusable-workflow call: one step. Its ``secrets:`` (a map or
            # ``inherit``) is deliberately not read: secrets never enter records.
            record: dict[str, object] = {
                "stepName": namer.claim(job_id),
                "skillRef": "gha:" + self.uses(uses, where + "/uses"),
            }
            inputs = self.with_inputs(job_node.get("with"), where + "/with")
            if inputs:
                record["inputs"] = inputs
            return _Job(job_id, where, [record], needs)

        if steps_node is None:
            self.fail(f"job {job_id!r} has neither 'steps' nor 'uses'", where)
        if not isinstance(steps_node, list):
            self.fail(
                f"'steps' of job {job_id!r} must be a list, got {_kind(steps_node)}",
                where + "/steps",
            )
        if not steps_node:
            self.fail(f"job {job_id!r} has no steps", where + "/steps")

        records: list[dict[str, object]] = []
        for index, step_node in enumerate(steps_node):
            step = self.step(job_id, index, step_node, f"{where}/steps/{index}", namer)
            if records:
                step["dependsOn"] = [records[-1]["stepName"]]
            records.append(step)
        return _Job(job_id, where, records, needs)

    def step(
        self, job_id: str, index: int, node: object, where: str, namer: _Namer
    ) -> dict[str, object]:
        if not isinstance(node, dict):
            self.fail(f"a step must be a mapping, got {_kind(node)}", where)
        step_id = node.get("id")
        if step_id is None:
            label = str(index)
        else:
            label = self.scalar_text(step_id, where + "/id", what="step id", strict=True)
        record: dict[str, object] = {"stepName": namer.claim(f"{job_id}.{label}")}

        has_uses, has_run = "uses" in node, "run" in node
        if has_uses and has_run:
            self.fail("a step cannot have both 'uses' and 'run'", where)
        if has_uses:
            record["skillRef"] = "gha:" + self.uses(node["uses"], where + "/uses")
        elif has_run:
            record["skillRef"] = "gha:run"
        else:
            self.fail("a step needs 'uses' or 'run'", where)

        inputs = self.with_inputs(node.get("with"), where + "/with")
        for key in _STEP_LEVEL_INPUTS:
            if key in node:
                if key in inputs:
                    self.fail(
                        f"input {key!r} is set both by the step and by its 'with:'",
                        _pointer_join(where + "/with", key),
                    )
                inputs[key] = self.scalar_text(node[key], _pointer_join(where, key))
        if inputs:
            record["inputs"] = inputs
        return record

    def needs(self, node: object, where: str) -> list[tuple[str, str]]:
        """``needs:`` as ``(job id, pointer)`` pairs, in order, without repeats."""
        if node is None:
            return []
        if isinstance(node, str):
            entries: list[tuple[object, str]] = [(node, where + "/needs")]
        elif isinstance(node, list):
            entries = [(item, f"{where}/needs/{i}") for i, item in enumerate(node)]
        else:
            self.fail(
                f"'needs' must be a job id or a list of job ids, got {_kind(node)}",
                where + "/needs",
            )
        result: list[tuple[str, str]] = []
        seen: set[str] = set()
        for item, pointer in entries:
            if not isinstance(item, str):
                self.fail(f"a 'needs' entry must be a job id, got {_kind(item)}", pointer)
            job_id = self.text(item, pointer)
            if job_id not in seen:
                seen.add(job_id)
                result.append((job_id, pointer))
        return result

    def link(self, jobs: dict[str, _Job]) -> None:
        """Check ``needs:`` and make each job's first step depend on them."""
        for job in jobs.values():
            for needed, pointer in job.needs:
                if needed == job.job_id:
                    self.fail(f"job {job.job_id!r} needs itself", pointer)
                if needed not in jobs:
                    self.fail(f"job {job.job_id!r} needs unknown job {needed!r}", pointer)
        self.refuse_cycles(jobs)
        for job in jobs.values():
            if job.needs:
                last_steps = [jobs[needed].records[-1]["stepName"] for needed, _ in job.needs]
                job.records[0]["dependsOn"] = last_steps

    def refuse_cycles(self, jobs: dict[str, _Job]) -> None:
        """Fail on the first ``needs:`` cycle met in file order."""
        cycle = first_cycle({job_id: [needed for needed, _ in job.needs] for job_id, job in jobs.items()})
        if cycle is not None:
            self.fail(
                "jobs form a cycle through 'needs': " + " -> ".join(cycle),
                jobs[cycle[-2]].pointer + "/needs",
            )

    # -- values ----------------------------------------------------------

    def text(self, value: str, where: str | None) -> str:
        """NFC form of ``value``; the codec refuses text that is not NFC."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            # A "\ud800" escape in a double-quoted YAML string yields a lone surrogate.
            self.fail(f"text contains the invalid code point U+{ord(value[exc.start]):04X}", where)
        return nfc(value)

    def uses(self, node: object, where: str) -> str:
        if not isinstance(node, str) or not node.strip():
            self.fail(f"'uses' must be a non-empty string, got {_kind(node)}", where)
        return self.text(node, where)

    def with_inputs(self, node: object, where: str) -> dict[str, str]:
        """``with:`` as a string map. Values follow GitHub's string conversion."""
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(f"'with' must be a mapping, got {_kind(node)}", where)
        inputs: dict[str, str] = {}
        for raw_key, raw_value in node.items():
            key = self.key(raw_key, "input name", _pointer_join(where, _key_label(raw_key)))
            pointer = _pointer_join(where, key)
            if key in inputs:
                # Only reachable when two keys differ before NFC normalisation.
                self.fail(f"input {key!r} is given twice", pointer)
            inputs[key] = self.scalar_text(raw_value, pointer)
        return inputs

    def key(self, raw: object, what: str, where: str) -> str:
        if isinstance(raw, str):
            return self.text(raw, where)
        hint = ""
        if isinstance(raw, bool):
            # YAML 1.1 reads on/off/yes/no/true/false keys as booleans.
            hint = " (YAML 1.1 reads on/off/yes/no as booleans: quote the key)"
        elif raw is None or isinstance(raw, (int, float)):
            hint = " (quote the key)"
        self.fail(f"{what} must be a string, got {_kind(raw)}{hint}", where)

    def scalar_text(
        self, value: object, where: str, *, what: str = "value", strict: bool = False
    ) -> str:
        """GitHub's string form of a YAML scalar.

        Booleans become ``true``/``false``, null becomes ``""``; numbers are
        doubles formatted like .NET ``ToString("G15")``, as the Actions runner
        does. With ``strict`` only strings are accepted.
        """
        if isinstance(value, str):
            return self.text(value, where)
        if strict:
            self.fail(f"{what} must be a string, got {_kind(value)} (quote it)", where)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            try:
                return _github_number(float(value))
            except OverflowError:
                self.fail(f"number {value} is out of range", where)
        if isinstance(value, datetime.datetime):
            # PyYAML already lost the original spelling; refuse rather than guess.
            self.fail(f"{what} is a YAML timestamp: quote it to keep it as written", where)
        if isinstance(value, datetime.date):
            return value.isoformat()
        self.fail(f"{what} must be a scalar, got {_kind(value)}", where)

    # -- stack-level fields ------------------------------------------------

    def description(self, document: Mapping[object, object]) -> str:
        name = document.get("name")
        if name is not None:
            text = self.scalar_text(name, "/name").strip()
            if text:
                return text
        return f"GitHub Actions workflow {self.basename}"

    def metadata(self, document: Mapping[object, object]) -> dict[str, str]:
        metadata = {"importedFrom": "github-actions", "workflow": self.basename}
        triggers = self.triggers(document)
        if triggers:
            metadata["triggerOn"] = ",".join(triggers)
        return metadata

    def triggers(self, document: Mapping[object, object]) -> list[str]:
        """Sorted event names of ``on:`` (a string, a list or a mapping)."""
        # YAML 1.1: PyYAML reads the plain key ``on`` as the boolean True.
        if True in document and "on" in document:
            self.fail("'on' is given twice", "/on")
        node = document.get(True, document.get("on"))
        if node is None:
            return []
        if isinstance(node, str):
            events: list[object] = [node]
        elif isinstance(node, (list, dict)):
            events = list(node)  # a mapping's keys are its events
        else:
            self.fail(f"'on' must be an event, a list or a mapping, got {_kind(node)}", "/on")
        names: set[str] = set()
        for event in events:
            if not isinstance(event, str):
                self.fail(f"an event name must be a string, got {_kind(event)}", "/on")
            names.add(self.text(event, "/on"))
        return sorted(names)


# -- helpers ------------------------------------------------------------------


def _github_number(value: float) -> str:
    """Format like .NET ``double.ToString("G15", InvariantCulture)``.

    The Actions runner stores every YAML number as a double and converts it
    to a string that way (``NumberToken.ToString``): ``3.10`` gives ``3.1``,
    ``24`` gives ``24``, ``1e20`` gives ``1E+20``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    # Python's "g" switches to exponent form at the same bounds as .NET's "G".
    return format(value, ".15g").replace("e", "E")


def _ordered(record: dict[str, object]) -> dict[str, object]:
    """The record with its keys in schema order (field ids 1-4)."""
    return {
        key: record[key] for key in ("stepName", "skillRef", "dependsOn", "inputs") if key in record
    }


def _printable(text: str) -> str:
    """``text`` with non-printable characters as ``\\uXXXX``, so locations stay on one line."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _pointer(*tokens: str) -> str:
    """The JSON pointer (RFC 6901, ``lodec.format.strictjson.pointer``) of ``tokens``, kept printable."""
    return _printable(json_pointer(list(tokens)))


def _pointer_join(base: str, token: str) -> str:
    """``base`` (a pointer) extended by one token."""
    return base + _pointer(token)


def _key_label(key: object) -> str:
    """A key as it may appear in a location, whatever its YAML type."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key) if isinstance(key, (int, float)) else f"<{_kind(key)}>"


def _kind(value: object) -> str:
    """A short, bounded description of a YAML value's type (never its content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """One line: what went wrong and where (1-based line and column)."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return "invalid YAML" + where + ": " + " ".join(problem.split())
