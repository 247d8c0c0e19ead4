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
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import NoReturn

from ..errors import LimitExceeded, LodecError, ManyErrors, SourceError
from ..format.strictjson import pointer as json_pointer
from ..format.unicode import nfc
from ..names import check_name
from ..stack.graph import first_cycle, topological_order
from .common import Namer, read_source_text, safe_name, yaml_kind
from .yamlsafe import load_yaml

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
    #: step name -> JSON pointer of its ``uses:`` in the workflow (for messages about pinning).
    places: dict[str, str] = field(default_factory=dict, compare=False)


_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


#: What :func:`classify_uses` says of a reference; only ``unpinned`` can be moved after approval.
PIN_KINDS = ("pinned", "unpinned", "local-action", "same-repo-workflow", "image-digest")


def classify_uses(uses: str) -> str:
    """How a ``uses:`` (or an image) is pinned, one of :data:`PIN_KINDS`.

    * ``same-repo-workflow``: a reusable workflow of this repository
      (``./.github/workflows/…`` or the self-repository form ``$/…``),
      versioned with the calling workflow itself;
    * ``local-action``: an action in this repository (``./path``), likewise;
    * ``image-digest``: ``docker://image@sha256:<hex>`` (or a bare image by digest);
    * ``pinned``: ``owner/repo[/path]@<sha>`` with a full 40- (or 64-) hex commit SHA;
    * ``unpinned``: anything else (``@v4``, ``@main``, a short SHA, no ``@``,
      ``docker://image:tag``): a tag or branch force-pushed to other code (as
      in the tj-actions/changed-files incident) changes what runs while the
      stack's fingerprints stay the same.
    """
    if uses.startswith("$/") or uses.startswith("./.github/workflows/"):
        return "same-repo-workflow"
    if uses.startswith("./"):
        return "local-action"
    if uses.startswith("docker://"):
        return "image-digest" if re.search(r"@sha256:[0-9a-f]{64}$", uses) else "unpinned"
    _, at, version = uses.rpartition("@")
    return "pinned" if at and _FULL_SHA.fullmatch(version) else "unpinned"


def unpinned_uses(imported: WorkflowImport) -> list[tuple[str, str]]:
    """``(step name, uses)`` for every action or reusable workflow :func:`classify_uses` calls ``unpinned``."""
    out = []
    for record in imported.steps:
        ref = str(record["skillRef"])
        if not ref.startswith("gha:") or ref == "gha:run":
            continue
        uses = ref.removeprefix("gha:")
        if classify_uses(uses) == "unpinned":
            out.append((str(record["stepName"]), uses))
    return out


def pin_rows(records: list[dict[str, object]]) -> list[dict[str, str]]:
    """Every reference imported GitHub Actions records pin code by, classified (:func:`classify_uses`).

    One row per ``uses:`` (``{"step", "job", "field": "uses", "ref", "status"}``)
    and per container or service image of its job, once per job
    (``field`` ``jobContainer`` / ``jobServices.<name>``). Images by tag are
    ``unpinned``; images by digest ``image-digest``.
    """
    rows: list[dict[str, str]] = []
    seen_jobs: set[str] = set()
    for record in records:
        step, job = str(record["stepName"]), str(record.get("job", ""))
        ref = str(record.get("skillRef", ""))
        if ref.startswith("gha:") and ref != "gha:run":
            uses = ref.removeprefix("gha:")
            rows.append({"step": step, "job": job, "field": "uses", "ref": uses, "status": classify_uses(uses)})
        if job in seen_jobs:
            continue
        seen_jobs.add(job)
        for field_name, image in _images(record):
            rows.append({"step": step, "job": job, "field": field_name, "ref": image,
                         "status": "image-digest" if re.search(r"@sha256:[0-9a-f]{64}$", image) else "unpinned"})
    return rows


def _images(record: dict[str, object]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    container = json.loads(str(record["jobContainer"])) if "jobContainer" in record else None
    if isinstance(container, str):
        out.append(("jobContainer", container))
    elif isinstance(container, dict) and isinstance(container.get("image"), str):
        out.append(("jobContainer", container["image"]))
    services = json.loads(str(record["jobServices"])) if "jobServices" in record else None
    if isinstance(services, dict):
        for name, svc in sorted(services.items()):
            if isinstance(svc, dict) and isinstance(svc.get("image"), str):
                out.append((f"jobServices.{name}", svc["image"]))
    # An image that is an expression (``${{ matrix.image }}``) is resolved at run time: it cannot be judged.
    return [(f, i) for f, i in out if "${{" not in i]


def import_workflow(path: str | os.PathLike[str]) -> WorkflowImport:
    """Read a workflow file (UTF-8) and import it.

    See :func:`import_workflow_text` for the mapping. Errors name the file as
    ``str(path)``.

    Raises:
        LimitExceeded: the file is larger than :data:`MAX_WORKFLOW_BYTES`
            (checked before it is parsed).
        FileMissing: no such file (``file_not_found``).
        FileUnreadable: not a regular file, or no permission (``file_unreadable``).
        SourceError: the file is not UTF-8 (location ``@<byte offset>``), or
            is not a workflow lodec can import.
    """
    label = os.fspath(path)
    return import_workflow_text(read_source_text(path, MAX_WORKFLOW_BYTES, "workflow"), filename=label)


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


@dataclass
class _Job:
    """One imported job: its records in order, the jobs it needs, its ``if:`` and how its status reads."""

    job_id: str
    pointer: str
    records: list[dict[str, object]]
    needs: list[tuple[str, str]]  # (job id, pointer of that needs entry)
    job_if: str | None = None
    continue_on_error: bool = False
    # Per record: its step-level ``if:`` text (None when absent) and whether its failure is forgiven.
    step_ifs: list[str | None] = field(default_factory=list)
    step_coe: list[bool] = field(default_factory=list)


# Keys GitHub Actions defines (workflow syntax reference); a key outside these
# is refused, so no key that changes behaviour is ever silently left out.
_WORKFLOW_KEYS = {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
_JOB_KEYS = {"name", "permissions", "needs", "if", "runs-on", "snapshot", "environment", "concurrency", "outputs",
             "env", "defaults", "steps", "timeout-minutes", "strategy", "continue-on-error", "container",
             "services", "uses", "with", "secrets"}
_STEP_KEYS = {"id", "if", "name", "uses", "run", "working-directory", "shell", "with", "env",
              "continue-on-error", "timeout-minutes"}
# YAML key -> record field; each value is recorded as canonical JSON (``_canonical_json``).
# The workflow's ``name:`` is also ``${{ github.workflow }}`` (concurrency groups use it), so it is recorded too.
_WORKFLOW_FIELDS = {"on": "workflowOn", "env": "workflowEnv", "permissions": "workflowPermissions",
                    "concurrency": "workflowConcurrency", "defaults": "workflowDefaults", "name": "workflowName"}
_JOB_FIELDS = {"env": "jobEnv", "if": "jobIf", "runs-on": "jobRunsOn", "permissions": "jobPermissions",
               "container": "jobContainer", "services": "jobServices", "timeout-minutes": "jobTimeoutMinutes",
               "continue-on-error": "jobContinueOnError", "strategy": "jobStrategy",
               "concurrency": "jobConcurrency", "defaults": "jobDefaults", "environment": "jobEnvironment",
               "outputs": "jobOutputs", "secrets": "jobSecrets", "snapshot": "jobSnapshot"}
_STEP_FIELDS = {"env": "env", "if": "if", "timeout-minutes": "timeoutMinutes", "continue-on-error": "continueOnError"}
#: The record's keys in schema order (``schemas/gha-step-v1.lode``, field ids 1-34).
RECORD_FIELDS = ("stepName", "skillRef", "dependsOn", "inputs", "runIf", "runIfExpression", "job",
                 *_STEP_FIELDS.values(), *(f for f in _JOB_FIELDS.values()), *_WORKFLOW_FIELDS.values())
# The forms of ``if:`` a run condition states exactly (after removing ``${{ }}`` and spaces).
# ``!cancelled()`` is not among them: GitHub cancels a job itself too (timeout-minutes, fail-fast,
# cancel-in-progress), and there ``always()`` runs while ``!cancelled()`` does not; lodec has no such state.
_EXACT_IFS = {"success()": "success", "failure()": "failure", "always()": "always"}


# A status-check function call (GitHub matches function names case-insensitively). An ``if:`` without one
# is evaluated as ``success() && (<if>)``.
_STATUS_FUNCTION = re.compile(r"\b(?:success|failure|always|cancelled)\s*\(", re.IGNORECASE)


def _if_kind(text: str | None) -> str | None:
    """``success``/``failure``/``always`` for an ``if:`` a run condition states exactly (absent: ``success``),
    else ``None``."""
    if text is None:
        return "success"
    return _EXACT_IFS.get(re.sub(r"\s+", "", _unwrap(text)))


def _unwrap(text: str) -> str:
    s = text.strip()
    return s[3:-2].strip() if s.startswith("${{") and s.endswith("}}") else s


class _Importer:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        # A path from os.fsdecode may hold surrogate escapes; metadata must be valid text.
        name = PurePath(filename).name.encode("utf-8", "surrogateescape")
        self.basename = nfc(name.decode("utf-8", "replace"))
        self.errors: list[LodecError] = []
        self.places: dict[str, str] = {}

    def fail(self, message: str, location: str | None = None) -> NoReturn:
        raise SourceError(message, file=self.filename, location=location)

    def collect(self, exc: LodecError) -> None:
        self.errors.append(exc)

    # -- driver ----------------------------------------------------------

    def run(self, text: str) -> WorkflowImport:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_WORKFLOW_BYTES:
            raise LimitExceeded(
                f"workflow is {size} bytes; the limit is {MAX_WORKFLOW_BYTES}",
                file=self.filename,
            )
        document = load_yaml(text, file=self.filename, what="the workflow")
        if not isinstance(document, dict):
            self.fail(f"the top level must be a mapping, got {yaml_kind(document)}")

        jobs_node = document.get("jobs")
        if jobs_node is None:
            self.fail("the workflow has no 'jobs'", "/jobs")
        if not isinstance(jobs_node, dict):
            self.fail(f"'jobs' must be a mapping, got {yaml_kind(jobs_node)}", "/jobs")
        if not jobs_node:
            self.fail("'jobs' is empty", "/jobs")
        for key in document:
            if key is not True and key not in _WORKFLOW_KEYS:
                self.collect(SourceError(f"unknown workflow key {_key_label(key)!r} (lodec would not fingerprint "
                                         "it)", file=self.filename, location=_pointer(_key_label(key))))
        try:
            workflow = self.context(document, _WORKFLOW_FIELDS, "")
        except SourceError as exc:  # reported with the jobs' problems
            self.collect(exc)
            workflow = {}

        namer = Namer()
        jobs: dict[str, _Job] = {}
        for job_key, job_node in jobs_node.items():
            try:
                job = self.job(job_key, job_node, namer, workflow)
            except SourceError as exc:
                self.collect(exc)
                continue
            if job is None:
                continue
            if job.job_id in jobs:
                # Only reachable when two keys differ before NFC normalisation.
                self.collect(SourceError(f"job id {job.job_id!r} is given twice", file=self.filename,
                                         location=job.pointer))
                continue
            jobs[job.job_id] = job
        if not self.errors:
            self.link(jobs)
        if not self.errors:
            self.conditions(jobs)
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else ManyErrors(self.errors)

        steps = [_ordered(record) for job in jobs.values() for record in job.records]
        stem = PurePath(self.basename).stem
        return WorkflowImport(
            name=check_name(safe_name(stem, fallback="workflow"), what="stack name"),
            description=self.description(document),
            metadata=self.metadata(document),
            steps=steps,
            places=self.places,
        )

    # -- jobs and steps --------------------------------------------------

    def context(self, node: Mapping[object, object], fields: Mapping[str, str], where: str) -> dict[str, str]:
        """The recorded fields of ``node``: each present key's value as canonical JSON."""
        out: dict[str, str] = {}
        for key, name in fields.items():
            value = node.get(key)
            if key == "on":
                # YAML 1.1: PyYAML reads the plain key ``on`` as the boolean True.
                value = node.get(True, node.get("on"))
            if key in node or (key == "on" and True in node):
                if key == "secrets":
                    value = self.hide_literals(value)
                out[name] = self.canonical_json(value, _pointer_join(where, key))
        return out

    def hide_literals(self, value: object) -> object:
        """A reusable workflow's ``secrets:`` with every literal value replaced by its BLAKE3 digest
        (``blake3:<hex>``): expressions (``${{ secrets.TOKEN }}``) and ``inherit`` are kept as written, so
        a changed literal still changes the fingerprint while the record never carries it."""
        if not isinstance(value, dict):
            return value
        from blake3 import blake3

        out: dict[object, object] = {}
        for k, v in value.items():
            if isinstance(v, str) and v.strip().startswith("${{") and v.strip().endswith("}}"):
                out[k] = v
            else:
                literal = json.dumps(v, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
                out[k] = "blake3:" + blake3(literal).hexdigest()
        return out

    def job(self, job_key: object, job_node: object, namer: Namer, workflow: dict[str, str]) -> _Job | None:
        job_id = self.key(job_key, "job id", _pointer("jobs", _key_label(job_key)))
        where = _pointer("jobs", job_id)
        if not isinstance(job_node, dict):
            self.fail(f"job {job_id!r} must be a mapping, got {yaml_kind(job_node)}", where)
        for key in job_node:
            if key not in _JOB_KEYS:
                self.fail(f"unknown job key {_key_label(key)!r} (lodec would not fingerprint it)",
                          _pointer_join(where, _key_label(key)))
        needs = self.needs(job_node.get("needs"), where)
        steps_node = job_node.get("steps")
        uses = job_node.get("uses")
        job_if = self.scalar_text(job_node["if"], where + "/if") if "if" in job_node else None
        coe = job_node.get("continue-on-error", False) is not False
        context = {"job": job_id, **self.context(job_node, _JOB_FIELDS, where), **workflow}

        if uses is not None:
            if steps_node is not None:
                self.fail(f"job {job_id!r} has both 'uses' and 'steps'", where)
            # A reusable-workflow call: one step; its ``secrets:`` (a map of
            # expressions such as ``${{ secrets.TOKEN }}``, or ``inherit``) is
            # recorded as written: names and expressions, never a secret's value.
            record: dict[str, object] = {
                "stepName": namer.claim(job_id),
                "skillRef": "gha:" + self.uses(uses, where + "/uses"),
            }
            self.places[str(record["stepName"])] = where + "/uses"
            inputs = self.with_inputs(job_node.get("with"), where + "/with")
            if inputs:
                record["inputs"] = inputs
            record.update(context)
            return _Job(job_id, where, [record], needs, job_if, coe, [None], [False])
        for key in ("with", "secrets"):
            if key in job_node:
                self.fail(f"'{key}' is only for a job that calls a reusable workflow ('uses')", where + "/" + key)

        if steps_node is None:
            self.fail(f"job {job_id!r} has neither 'steps' nor 'uses'", where)
        if not isinstance(steps_node, list):
            self.fail(
                f"'steps' of job {job_id!r} must be a list, got {yaml_kind(steps_node)}",
                where + "/steps",
            )
        if not steps_node:
            self.fail(f"job {job_id!r} has no steps", where + "/steps")

        records: list[dict[str, object]] = []
        ifs: list[str | None] = []
        coes: list[bool] = []
        failed = False
        for index, step_node in enumerate(steps_node):
            try:
                step, step_if, step_coe = self.step(job_id, index, step_node, f"{where}/steps/{index}", namer)
            except SourceError as exc:
                self.collect(exc)
                failed = True
                continue
            if records:
                step["dependsOn"] = [records[-1]["stepName"]]
            step.update(context)
            records.append(step)
            ifs.append(step_if)
            coes.append(step_coe)
        if failed:  # every problem of the job is collected; the job itself is not linked
            return None
        return _Job(job_id, where, records, needs, job_if, coe, ifs, coes)

    def step(
        self, job_id: str, index: int, node: object, where: str, namer: Namer
    ) -> tuple[dict[str, object], str | None, bool]:
        if not isinstance(node, dict):
            self.fail(f"a step must be a mapping, got {yaml_kind(node)}", where)
        for key in node:
            if key not in _STEP_KEYS:
                self.fail(f"unknown step key {_key_label(key)!r} (lodec would not fingerprint it)",
                          _pointer_join(where, _key_label(key)))
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
            self.places[str(record["stepName"])] = where + "/uses"
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
        record.update(self.context(node, _STEP_FIELDS, where))
        step_if = self.scalar_text(node["if"], where + "/if") if "if" in node else None
        return record, step_if, node.get("continue-on-error", False) is not False

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
                f"'needs' must be a job id or a list of job ids, got {yaml_kind(node)}",
                where + "/needs",
            )
        result: list[tuple[str, str]] = []
        seen: set[str] = set()
        for item, pointer in entries:
            if not isinstance(item, str):
                self.fail(f"a 'needs' entry must be a job id, got {yaml_kind(item)}", pointer)
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
                    self.collect(SourceError(f"job {job.job_id!r} needs itself", file=self.filename,
                                             location=pointer))
                elif needed not in jobs:
                    self.collect(SourceError(f"job {job.job_id!r} needs unknown job {needed!r}",
                                             file=self.filename, location=pointer))
        if self.errors:
            return
        try:
            self.refuse_cycles(jobs)
        except SourceError as exc:
            self.collect(exc)
            return
        for job in jobs.values():
            if job.needs:
                last_steps = [jobs[needed].records[-1]["stepName"] for needed, _ in job.needs]
                job.records[0]["dependsOn"] = last_steps

    def conditions(self, jobs: dict[str, _Job]) -> None:
        """Map step and job ``if:`` to run conditions where exact, else keep them verbatim.

        Dependencies are a chain within a job and the needed jobs' last steps
        (``link``), and lodec judges a step by its upstream steps' statuses
        while GitHub judges it by the job's status so far. The two agree when
        every upstream step is *faithful*: its own status says whether
        everything of its job up to it succeeded, or the job was skipped (a
        step without a step-level ``if:`` other than ``success()``, without
        ``continue-on-error``, whose upstreams are faithful; a job's own
        ``if:`` does not matter, since a skipped job skips its whole chain). So:

        * a job's first step runs on the job's ``if:`` combined with its own:
          exact when one of them is absent or ``success()``, the other is
          exact, and (for ``success``/``failure``) the needed jobs' last steps
          are faithful; an exact step-level condition beside a job that may be
          skipped (``needs:``, or a job ``if:`` other than ``always()``) is not;
        * a later step on ``success()`` is exact when the step before is
          faithful; on ``failure()`` when also the job always runs and has no
          ``needs:``; on ``always()`` when the job always runs (no ``needs:``
          and no ``if:`` but ``success()``/``always()``, or ``if: always()``);
        * a needed job is faithful to the jobs needing it only when its last
          step is and it cannot run after a failed or skipped ancestor: GitHub
          judges job-level ``success()``/``failure()`` over every ancestor job.

        Anything else gets ``runIfExpression`` ``{"github-actions": ...}``
        with the ``if:`` as written (``success()`` where GitHub's implicit
        default is what lodec cannot state).
        """
        faithful: dict[str, bool] = {}
        # Per job: whether its last step's status says whether the job AND every ancestor job succeeded (or
        # the chain was skipped). GitHub judges a job's success()/failure() over all its ancestors, not only
        # its needs: after `z` fails, `a` (needs z, if: always()) runs and succeeds, yet `b` (needs a) is
        # skipped and `c` (needs a, if: failure()) runs. A job that can run after a failed or skipped
        # ancestor (an if: with a status function other than success(), given needs) is not faithful.
        job_faithful: dict[str, bool] = {}
        order = topological_order({j.job_id: [n for n, _ in j.needs] for j in jobs.values()})
        for job_id in order:
            job = jobs[job_id]
            job_kind = _if_kind(job.job_if)
            always_runs = job_kind == "always" or (not job.needs and job_kind == "success")
            for k, record in enumerate(job.records):
                step_if, step_kind = job.step_ifs[k], _if_kind(job.step_ifs[k])
                if k == 0:
                    ups_faithful = all(job_faithful[n] for n, _ in job.needs)
                else:
                    ups_faithful = faithful[str(job.records[k - 1]["stepName"])]
                if k == 0:
                    if step_kind == "success":
                        kind = job_kind
                    elif job_kind == "success" and not job.needs:
                        kind = step_kind
                    else:
                        kind = None
                    exact = kind is not None and (kind == "always" or ups_faithful)
                    parts = [p for p in (job.job_if, step_if) if p is not None]
                else:
                    kind = step_kind
                    if kind == "success":
                        exact = ups_faithful
                    elif kind == "failure":
                        # Step-level failure() may also see a failed ancestor job ("returns true if any
                        # ancestor job fails"): exact only in a job that has no ancestors.
                        exact = always_runs and not job.needs and ups_faithful
                    else:
                        exact = kind == "always" and always_runs
                    parts = [step_if] if step_if is not None else []
                if exact:
                    if kind != "success":
                        record["runIf"] = str(kind)
                else:
                    text = parts[0] if len(parts) == 1 else " && ".join(f"({_unwrap(p)})" for p in parts)
                    record["runIfExpression"] = {"github-actions": text or "success()"}
                # A job's own condition does not make a step unfaithful: a job skipped by it skips all
                # its steps (the chain), and a job that ran reports its own steps only.
                faithful[str(record["stepName"])] = (
                    step_kind == "success" and not job.step_coe[k] and not job.continue_on_error
                    and (ups_faithful or (k == 0 and job_kind == "always")))
            job_faithful[job_id] = faithful[str(job.records[-1]["stepName"])] and (
                not job.needs or job_kind == "success"
                or (job_kind is None and not _STATUS_FUNCTION.search(str(job.job_if))))

    def refuse_cycles(self, jobs: dict[str, _Job]) -> None:
        """Fail on the first ``needs:`` cycle met in file order."""
        cycle = first_cycle({job_id: [needed for needed, _ in job.needs] for job_id, job in jobs.items()})
        if cycle is not None:
            self.fail(
                "jobs form a cycle through 'needs': " + " -> ".join(cycle),
                jobs[cycle[-2]].pointer + "/needs",
            )

    def canonical_json(self, value: object, where: str) -> str:
        """``value`` as canonical JSON: keys sorted, no spaces, UTF-8 text kept, YAML types kept."""
        return json.dumps(self.plain(value, where), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)

    def plain(self, value: object, where: str) -> object:
        """A JSON-able copy of a YAML value (bounded: the loader capped its expanded size)."""
        if isinstance(value, str):
            return self.text(value, where)
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(f"number {value} is not finite", where)
            return value
        if isinstance(value, list):
            return [self.plain(v, f"{where}/{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, object] = {}
            for k, v in value.items():
                key = self.key(k, "key", _pointer_join(where, _key_label(k)))
                if key in out:
                    self.fail(f"key {key!r} is given twice", _pointer_join(where, key))
                out[key] = self.plain(v, _pointer_join(where, key))
            return out
        if isinstance(value, datetime.datetime):
            self.fail("a YAML timestamp: quote it to keep it as written", where)
        if isinstance(value, datetime.date):
            return value.isoformat()
        self.fail(f"a value of type {type(value).__name__} cannot be recorded", where)

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
            self.fail(f"'uses' must be a non-empty string, got {yaml_kind(node)}", where)
        return self.text(node, where)

    def with_inputs(self, node: object, where: str) -> dict[str, str]:
        """``with:`` as a string map. Values follow GitHub's string conversion."""
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(f"'with' must be a mapping, got {yaml_kind(node)}", where)
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
        self.fail(f"{what} must be a string, got {yaml_kind(raw)}{hint}", where)

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
            self.fail(f"{what} must be a string, got {yaml_kind(value)} (quote it)", where)
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
        self.fail(f"{what} must be a scalar, got {yaml_kind(value)}", where)

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
            self.fail(f"'on' must be an event, a list or a mapping, got {yaml_kind(node)}", "/on")
        names: set[str] = set()
        for event in events:
            if not isinstance(event, str):
                self.fail(f"an event name must be a string, got {yaml_kind(event)}", "/on")
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
    """The record with its keys in schema order (``gha-step-v1`` field ids)."""
    return {key: record[key] for key in RECORD_FIELDS if key in record}


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
    return str(key) if isinstance(key, (int, float)) else f"<{yaml_kind(key)}>"
