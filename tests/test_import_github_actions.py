"""GitHub Actions importer: real workflows from the corpus and small inline cases.

The corpus files are copies (see ``tests/corpus/PROVENANCE.md``) so the tests
run wherever the repository is cloned; expected facts below were read off the
files by hand, not computed with YAML here.
"""

from __future__ import annotations

import textwrap
import time
import unicodedata
from pathlib import Path

import pytest

from lodec.errors import FileMissing, FileUnreadable, LimitExceeded, LodecError, SourceError
from lodec.importers.github_actions import (
    MAX_WORKFLOW_BYTES,
    RECORD_FIELDS,
    WorkflowImport,
    import_workflow,
    import_workflow_text,
    safe_name,
)
from lodec.names import check_name

CORPUS = Path(__file__).resolve().parent / "corpus" / "github-actions"
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "github-actions"

# file -> number of SkillSteps: one per job step, plus one per reusable-workflow job.
EXPECTED_STEP_COUNTS = {
    "pydantic-ci.yml": 147,  # 26 jobs, all with steps
    "ruff-ci.yaml": 214,  # 30 jobs, all with steps
    "tokio-ci.yml": 213,  # 44 jobs with 212 steps + 1 reusable-workflow job
    "tokio-loom.yml": 24,  # 6 jobs x 4 steps
    "uv-ci.yml": 32,  # 2 jobs with 12 steps + 20 reusable-workflow jobs
}
CORPUS_FILES = sorted(EXPECTED_STEP_COUNTS)
RECORD_KEYS = RECORD_FIELDS
#: The fields of the first mapping (steps, uses/run, needs, with), compared where the rest is beside the point.
CORE_KEYS = ("stepName", "skillRef", "dependsOn", "inputs")


def core(step: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in step.items() if k in CORE_KEYS}


def load(text: str, filename: str = "workflow.yml") -> WorkflowImport:
    return import_workflow_text(textwrap.dedent(text), filename=filename)


def by_name(result: WorkflowImport) -> dict[str, dict[str, object]]:
    return {str(step["stepName"]): step for step in result.steps}


def names(result: WorkflowImport) -> list[str]:
    return [str(step["stepName"]) for step in result.steps]


def inputs_of(step: dict[str, object]) -> dict[str, str]:
    value = step.get("inputs", {})
    assert isinstance(value, dict)
    return value


def deps_of(step: dict[str, object]) -> list[str]:
    value = step.get("dependsOn", [])
    assert isinstance(value, list)
    return value


def source_error(text: str, filename: str = "workflow.yml") -> SourceError:
    with pytest.raises(SourceError) as info:
        load(text, filename)
    error = info.value
    assert error.file == filename
    assert "\n" not in str(error)
    return error


def assert_well_formed(result: WorkflowImport) -> None:
    """Invariants every import must satisfy, whatever the workflow."""
    assert check_name(result.name, what="stack name") == result.name
    assert isinstance(result.description, str)
    assert result.description
    for key, value in result.metadata.items():
        assert isinstance(key, str)
        assert isinstance(value, str)
    seen: set[str] = set()
    for step in result.steps:
        assert tuple(step) == tuple(k for k in RECORD_KEYS if k in step)
        name = step["stepName"]
        assert isinstance(name, str)
        assert check_name(name) == name
        assert name.lower() not in seen, f"duplicate name {name}"
        seen.add(name.lower())
        skill_ref = step["skillRef"]
        assert isinstance(skill_ref, str)
        assert skill_ref.startswith("gha:")
        assert len(skill_ref) > len("gha:")
        if "dependsOn" in step:
            deps = step["dependsOn"]
            assert isinstance(deps, list)
            assert deps, "empty dependsOn must be left out"
            assert all(isinstance(d, str) for d in deps)
            assert len(set(deps)) == len(deps)
        if "inputs" in step:
            inputs = step["inputs"]
            assert isinstance(inputs, dict)
            assert inputs, "empty inputs must be left out"
            for key, value in inputs.items():
                assert isinstance(key, str)
                assert isinstance(value, str)
                assert unicodedata.is_normalized("NFC", key)
                assert unicodedata.is_normalized("NFC", value)
    all_names = {str(step["stepName"]) for step in result.steps}
    for step in result.steps:
        for dep in deps_of(step):
            assert dep in all_names, f"{step['stepName']} depends on unknown {dep}"
    assert_acyclic(result)


def assert_acyclic(result: WorkflowImport) -> None:
    """Kahn's algorithm must consume every step."""
    deps = {str(s["stepName"]): deps_of(s) for s in result.steps}
    indegree = {name: len(d) for name, d in deps.items()}
    users: dict[str, list[str]] = {name: [] for name in deps}
    for name, d in deps.items():
        for dep in d:
            users[dep].append(name)
    ready = [name for name, n in indegree.items() if n == 0]
    visited = 0
    while ready:
        name = ready.pop()
        visited += 1
        for user in users[name]:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
    assert visited == len(deps), "dependency graph has a cycle"


# -- real corpus ---------------------------------------------------------------


def test_corpus_copy_is_complete() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == CORPUS_FILES
    assert (CORPUS.parent / "PROVENANCE.md").is_file()


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="shared corpus not present")
@pytest.mark.parametrize("filename", CORPUS_FILES)
def test_corpus_copy_matches_shared_corpus(filename: str) -> None:
    assert (CORPUS / filename).read_bytes() == (SHARED_CORPUS / filename).read_bytes()


@pytest.mark.parametrize("filename", CORPUS_FILES)
def test_corpus_workflow_imports_well_formed(filename: str) -> None:
    result = import_workflow(CORPUS / filename)
    assert_well_formed(result)
    assert len(result.steps) == EXPECTED_STEP_COUNTS[filename]
    assert result.metadata["importedFrom"] == "github-actions"
    assert result.metadata["workflow"] == filename


@pytest.mark.parametrize("filename", CORPUS_FILES)
def test_corpus_import_is_deterministic(filename: str) -> None:
    text = (CORPUS / filename).read_text(encoding="utf-8")
    assert import_workflow_text(text, filename=filename) == import_workflow(CORPUS / filename)


def test_tokio_needs_become_dependencies_on_last_steps() -> None:
    steps = by_name(import_workflow(CORPUS / "tokio-ci.yml"))
    # basics: needs [clippy, fmt, docs, minrust]; those jobs have 5, 4, 4 and 5 steps.
    assert steps["basics.0"]["dependsOn"] == ["clippy.4", "fmt.3", "docs.3", "minrust.4"]
    # test-tokio-full: needs basics (a string), then a chain of its own 5 steps.
    assert steps["test-tokio-full.0"]["dependsOn"] == ["basics.0"]
    for i in range(1, 5):
        assert steps[f"test-tokio-full.{i}"]["dependsOn"] == [f"test-tokio-full.{i - 1}"]
    assert "test-tokio-full.5" not in steps
    # Jobs without needs start with no dependency.
    assert "dependsOn" not in steps["clippy.0"]


def test_tokio_step_kinds_and_inputs() -> None:
    steps = by_name(import_workflow(CORPUS / "tokio-ci.yml"))
    assert steps["basics.0"]["skillRef"] == "gha:run"
    assert steps["basics.0"]["inputs"] == {"run": "exit 0"}
    assert steps["clippy.0"]["skillRef"] == "gha:actions/checkout@v7"
    # The one step with an id is named by it.
    assert steps["get-latest-kernel-version.fetch"]["skillRef"] == "gha:run"
    # valgrind's toolchain: 1.82 is a YAML number, kept in GitHub's string form.
    assert steps["valgrind.1"]["inputs"] == {"toolchain": "1.82"}
    # freebsd-x86_64's vmactions step has copyback: false.
    assert inputs_of(steps["freebsd-x86_64.1"])["copyback"] == "false"


def test_tokio_reusable_workflow_job_is_one_step() -> None:
    steps = by_name(import_workflow(CORPUS / "tokio-ci.yml"))
    step = core(steps["test-io-uring-on-specific-kernel-versions"])
    assert step == {
        "stepName": "test-io-uring-on-specific-kernel-versions",
        "skillRef": "gha:./.github/workflows/uring-kernel-version-test.yml",
        "dependsOn": ["get-latest-kernel-version.fetch", "basics.0"],
        "inputs": {"kernel_version": "${{ matrix.kernel_version }}"},
    }


def test_uv_reusable_workflow_jobs() -> None:
    result = import_workflow(CORPUS / "uv-ci.yml")
    steps = by_name(result)
    # uv calls its reusable workflows with the self-repository form "$/...".
    assert core(steps["plan"]) == {"stepName": "plan", "skillRef": "gha:$/.github/workflows/plan.yml"}
    assert core(steps["check-lint"]) == {
        "stepName": "check-lint",
        "skillRef": "gha:$/.github/workflows/check-lint.yml",
        "dependsOn": ["plan"],
        "inputs": {
            "code-changed": "${{ needs.plan.outputs.test-code }}",
            "save-rust-cache": "${{ needs.plan.outputs.save-rust-cache }}",
        },
    }
    # review has `secrets: inherit` and no `with:`: recorded in jobSecrets, not in inputs.
    assert steps["review"]["jobSecrets"] == '"inherit"'
    assert core(steps["review"]) == {
        "stepName": "review",
        "skillRef": "gha:$/.github/workflows/pull-request-security-review.yml",
        "dependsOn": ["plan"],
    }
    assert steps["test-smoke"]["dependsOn"] == ["plan", "build-dev-binaries"]
    reusable = [s for s in result.steps if "." not in str(s["stepName"])]
    assert len(reusable) == 20
    assert all(str(s["skillRef"]).startswith("gha:$/.github/workflows/") for s in reusable)
    # A steps job needing reusable-workflow jobs depends on their single steps.
    assert steps["required-checks-passed.0"]["dependsOn"] == [
        "check-fmt",
        "check-lint",
        "check-docs",
        "check-generated-files",
        "test",
        "build-dev-binaries",
    ]


def test_uv_secrets_are_never_copied() -> None:
    result = import_workflow(CORPUS / "uv-ci.yml")
    for step in result.steps:
        inputs = inputs_of(step)
        assert "secrets" not in inputs
        assert "inherit" not in inputs.values()


def test_uv_with_numbers_and_booleans() -> None:
    steps = by_name(import_workflow(CORPUS / "uv-ci.yml"))
    checkout = steps["test-publish.0"]
    assert checkout["skillRef"] == "gha:actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
    assert checkout["inputs"] == {"fetch-depth": "0", "persist-credentials": "false"}


def test_pydantic_inputs() -> None:
    steps = by_name(import_workflow(CORPUS / "pydantic-ci.yml"))
    assert steps["lint.0"]["inputs"] == {"persist-credentials": "false"}
    assert steps["lint.1"]["inputs"] == {
        "python-version": "${{ matrix.python-version }}",  # the matrix is not expanded
        "enable-cache": "true",
    }
    # send-tweet's last step is a run step with `shell: python`.
    tweet = steps["send-tweet.2"]
    assert tweet["skillRef"] == "gha:run"
    assert inputs_of(tweet)["shell"] == "python"
    assert "run" in inputs_of(tweet)
    # coverage-pr-comment: `needs: coverage-combine` (a string); that job has 10 steps.
    assert steps["coverage-pr-comment.0"]["dependsOn"] == ["coverage-combine.9"]
    # maturin-action takes an input named working-directory: a with entry, no clash.
    assert inputs_of(steps["core-build-sdist.2"])["working-directory"] == "pydantic-core"


def test_ruff_numbers_in_github_string_form() -> None:
    steps = by_name(import_workflow(CORPUS / "ruff-ci.yaml"))
    assert inputs_of(steps["prek.2"])["node-version"] == "24"
    assert inputs_of(steps["docs.3"])["python-version"] == "3.13"


@pytest.mark.parametrize(
    ("filename", "triggers", "description"),
    [
        ("tokio-ci.yml", "pull_request,push", "CI"),
        ("tokio-loom.yml", "pull_request,push", "Loom"),
        ("ruff-ci.yaml", "pull_request,push,workflow_dispatch", "CI"),
        ("uv-ci.yml", "pull_request,push,workflow_dispatch", "CI"),
        ("pydantic-ci.yml", "pull_request,push", "CI"),
    ],
)
def test_corpus_stack_fields(filename: str, triggers: str, description: str) -> None:
    # PyYAML reads every corpus file's `on:` key as True; triggers must still come out.
    result = import_workflow(CORPUS / filename)
    assert result.name == filename.rsplit(".", 1)[0]
    assert result.description == description
    assert result.metadata == {
        "importedFrom": "github-actions",
        "workflow": filename,
        "triggerOn": triggers,
    }


def test_steps_come_in_file_order() -> None:
    result = import_workflow(CORPUS / "tokio-loom.yml")
    jobs = ["loom-blocking", "loom-sync", "loom-time-driver", "loom-current-thread"]
    jobs += ["loom-multi-thread", "loom-util"]
    assert names(result) == [f"{job}.{i}" for job in jobs for i in range(4)]


# -- naming --------------------------------------------------------------------


def test_index_and_id_naming() -> None:
    result = load(
        """
        on: push
        jobs:
          build:
            steps:
              - uses: actions/checkout@v4
              - id: compile
                run: make
              - run: make test
        """
    )
    assert names(result) == ["build.0", "build.compile", "build.2"]
    steps = by_name(result)
    assert "dependsOn" not in steps["build.0"]
    assert steps["build.compile"]["dependsOn"] == ["build.0"]
    assert steps["build.2"]["dependsOn"] == ["build.compile"]


def test_unsafe_characters_are_replaced() -> None:
    result = load(
        """
        jobs:
          "build (linux/x64)":
            steps:
              - id: "step één?"
                run: echo
          "__private":
            steps:
              - id: ".hidden"
                run: echo
          "!!!":
            uses: org/repo/.github/workflows/w.yml@v1
        """
    )
    assert names(result) == ["build--linux-x64-.step---n-", "private..hidden", "step"]
    assert_well_formed(result)


def test_long_names_are_truncated_and_still_unique() -> None:
    job = "j" * 200
    result = load(
        f"""
        jobs:
          {job}:
            steps:
              - run: one
              - run: two
          {job}x:
            uses: org/repo/.github/workflows/w.yml@v1
        """
    )
    got = names(result)
    assert got == ["j" * 128, "j" * 126 + "-2", "j" * 126 + "-3"]
    assert_well_formed(result)


def test_collisions_get_numbered_suffixes() -> None:
    result = load(
        """
        jobs:
          a:
            steps:
              - id: b-c
                run: one
              - id: b/c
                run: two
              - id: b?c
                run: three
              - id: "4"
                run: four
              - run: five
        """
    )
    # "b/c" and "b?c" both become "b-c"; step id "4" takes the name that the
    # fifth step (index 4) would have had.
    assert names(result) == ["a.b-c", "a.b-c-2", "a.b-c-3", "a.4", "a.4-2"]
    steps = by_name(result)
    assert steps["a.4-2"]["dependsOn"] == ["a.4"]


def test_names_differing_only_in_case_are_made_distinct() -> None:
    result = load(
        """
        jobs:
          Build:
            uses: org/repo/.github/workflows/w.yml@v1
          build:
            uses: org/repo/.github/workflows/w.yml@v1
        """
    )
    assert names(result) == ["Build", "build-2"]


def test_safe_name_rule() -> None:
    assert safe_name("tokio-ci") == "tokio-ci"
    assert safe_name("a b/c\\d:e") == "a-b-c-d-e"
    assert safe_name("..x") == "x"
    assert safe_name("---") == "step"
    assert safe_name("", fallback="workflow") == "workflow"
    assert safe_name("é") == "step"  # non-ASCII letters are replaced too
    assert safe_name("e\u0301x") == safe_name("\u00e9x") == "x"
    assert len(safe_name("x" * 500)) == 128


def test_decomposed_and_composed_ids_name_alike() -> None:
    # NFC first, so both spellings of "é" give one "-", not two.
    assert safe_name("a.e\u0301") == safe_name("a.\u00e9") == "a.-"


# -- inputs --------------------------------------------------------------------


def test_with_values_become_github_strings() -> None:
    result = load(
        """
        jobs:
          j:
            steps:
              - uses: some/action@v1
                with:
                  yes-flag: true
                  no-flag: false
                  count: 3
                  negative: -7
                  version: 3.10
                  whole-float: 2.0
                  big: 1.0e+20
                  huge-int: 1000000000000000
                  empty:
                  tilde: ~
                  text: hello
                  quoted-bool: "true"
                  expression: ${{ github.sha }}
                  day: 2024-01-31
        """
    )
    assert result.steps[0]["inputs"] == {
        "yes-flag": "true",
        "no-flag": "false",
        "count": "3",
        "negative": "-7",
        "version": "3.1",  # a YAML number, as GitHub reads it too
        "whole-float": "2",
        "big": "1E+20",
        "huge-int": "1E+15",
        "empty": "",
        "tilde": "",
        "text": "hello",
        "quoted-bool": "true",
        "expression": "${{ github.sha }}",
        "day": "2024-01-31",
    }


def test_run_shell_and_working_directory_are_copied() -> None:
    result = load(
        """
        jobs:
          j:
            steps:
              - name: not copied
                if: always()
                env:
                  TOKEN: ${{ secrets.TOKEN }}
                run: |
                  cargo test
                  cargo doc
                shell: bash -eo pipefail {0}
                working-directory: crates/core
                timeout-minutes: 5
        """
    )
    assert result.steps[0] == {
        "stepName": "j.0",
        "skillRef": "gha:run",
        "inputs": {
            "run": "cargo test\ncargo doc\n",
            "shell": "bash -eo pipefail {0}",
            "working-directory": "crates/core",
        },
        "runIf": "always",
        "job": "j",
        "env": '{"TOKEN":"${{ secrets.TOKEN }}"}',
        "if": '"always()"',
        "timeoutMinutes": "5",
    }


def test_input_set_by_step_and_with_is_an_error() -> None:
    error = source_error(
        """
        jobs:
          j:
            steps:
              - run: make
                with:
                  shell: bash
                shell: sh
        """
    )
    assert error.location == "/jobs/j/steps/0/with/shell"


def test_with_key_named_like_a_step_key_is_fine_on_its_own() -> None:
    result = load(
        """
        jobs:
          j:
            steps:
              - uses: CodSpeedHQ/action@v3
                with:
                  run: cargo codspeed run
                  working-directory: bench
        """
    )
    assert result.steps[0]["skillRef"] == "gha:CodSpeedHQ/action@v3"
    assert result.steps[0]["inputs"] == {"run": "cargo codspeed run", "working-directory": "bench"}


def test_reusable_workflow_secrets_are_recorded_but_literal_values_only_as_digests() -> None:
    result = load(
        """
        jobs:
          call-a:
            uses: org/repo/.github/workflows/a.yml@v1
            with:
              level: 2
              dry-run: true
            secrets:
              token: ${{ secrets.DEPLOY_TOKEN }}
              password: hunter2
          call-b:
            needs: call-a
            uses: ./.github/workflows/b.yml
            secrets: inherit
        """
    )
    assert [core(s) for s in result.steps] == [
        {
            "stepName": "call-a",
            "skillRef": "gha:org/repo/.github/workflows/a.yml@v1",
            "inputs": {"level": "2", "dry-run": "true"},
        },
        {
            "stepName": "call-b",
            "skillRef": "gha:./.github/workflows/b.yml",
            "dependsOn": ["call-a"],
        },
    ]
    from blake3 import blake3

    assert result.steps[0]["jobSecrets"] == ('{"password":"blake3:' + blake3(b'"hunter2"').hexdigest()
                                             + '","token":"${{ secrets.DEPLOY_TOKEN }}"}')
    assert result.steps[1]["jobSecrets"] == '"inherit"'
    assert "hunter2" not in repr(result)


def test_strings_are_nfc_normalised() -> None:
    result = load(
        """
        jobs:
          j:
            steps:
              - uses: "act/caf\u0065\u0301@v1"
                with:
                  "cl\u0065\u0301": "valu\u0065\u0301"
        """
    )
    step = result.steps[0]
    assert step["skillRef"] == "gha:act/caf\u00e9@v1"
    assert step["inputs"] == {"cl\u00e9": "valu\u00e9"}


def test_anchors_and_aliases_are_resolved() -> None:
    result = load(
        """
        jobs:
          a:
            steps:
              - &checkout
                uses: actions/checkout@v4
                with: {fetch-depth: 0}
          b:
            steps:
              - *checkout
              - run: make
        """
    )
    steps = by_name(result)
    assert steps["b.0"]["inputs"] == {"fetch-depth": "0"}
    assert steps["b.0"]["skillRef"] == "gha:actions/checkout@v4"


def test_alias_bomb_is_refused_before_it_is_expanded() -> None:
    # tests/test_hostile_yaml.py measures the bound; here: the importer refuses in one line.
    levels = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 12):
        levels.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]")
    text = "\n".join(levels) + "\non: {push: {branches: *x11}}\njobs: {j: {steps: [{run: echo}]}}\n"
    start = time.perf_counter()
    with pytest.raises(LimitExceeded) as info:
        import_workflow_text(text, filename="bomb.yml")
    assert time.perf_counter() - start < 10  # 10**12 elements if ever expanded
    assert "once its aliases are expanded" in str(info.value) and "\n" not in str(info.value)


# -- needs ---------------------------------------------------------------------


def test_needs_as_string_and_as_list() -> None:
    result = load(
        """
        jobs:
          lint:
            steps:
              - run: lint-1
              - run: lint-2
          test:
            steps:
              - run: test-1
          build:
            needs: lint
            steps:
              - run: build-1
              - run: build-2
          release:
            needs: [build, test, lint, build]
            steps:
              - run: release
        """
    )
    steps = by_name(result)
    assert steps["build.0"]["dependsOn"] == ["lint.1"]
    assert steps["build.1"]["dependsOn"] == ["build.0"]
    # In needs order, without the repeated entry.
    assert steps["release.0"]["dependsOn"] == ["build.1", "test.0", "lint.1"]
    assert_well_formed(result)


def test_needs_may_name_a_later_job() -> None:
    result = load(
        """
        jobs:
          deploy:
            needs: [build]
            steps: [{run: deploy}]
          build:
            steps: [{run: build}]
        """
    )
    assert names(result) == ["deploy.0", "build.0"]  # file order, not graph order
    assert by_name(result)["deploy.0"]["dependsOn"] == ["build.0"]


def test_unknown_needs_is_an_error_with_location() -> None:
    error = source_error(
        """
        jobs:
          build:
            needs: [lint, tset]
            steps: [{run: make}]
          lint:
            steps: [{run: lint}]
        """
    )
    assert error.location == "/jobs/build/needs/1"
    assert "'tset'" in error.message
    error = source_error(
        """
        jobs:
          build:
            needs: nope
            steps: [{run: make}]
        """
    )
    assert error.location == "/jobs/build/needs"


def test_locations_escape_pointer_tokens_and_stay_printable() -> None:
    # RFC 6901: "~" -> "~0", "/" -> "~1"; control characters as \\uXXXX keep the message on one line.
    error = source_error('jobs: {"x/y~z": {steps: [{run: a, with: {"k\\tv": [1]}}]}}')
    assert error.location == "/jobs/x~1y~0z/steps/0/with/k\\u0009v"
    error = source_error('jobs: {j: {steps: [{run: a, with: {"run": b}}]}}')
    assert error.location == "/jobs/j/steps/0/with/run"


def test_needs_cycle_is_reported_along_its_edges_from_the_first_job() -> None:
    error = source_error(
        """
        jobs:
          a: {steps: [{run: a}]}
          b: {needs: [a, d], steps: [{run: b}]}
          c: {needs: b, steps: [{run: c}]}
          d: {needs: c, steps: [{run: d}]}
        """
    )
    assert error.message == "jobs form a cycle through 'needs': b -> d -> c -> b"
    assert error.location == "/jobs/c/needs"


def test_needs_cycle_and_self_need_are_errors() -> None:
    error = source_error(
        """
        jobs:
          a:
            needs: c
            steps: [{run: a}]
          b:
            needs: a
            steps: [{run: b}]
          c:
            needs: b
            steps: [{run: c}]
        """
    )
    assert "a -> c -> b -> a" in error.message
    assert error.location is not None
    assert error.location.endswith("/needs")
    error = source_error(
        """
        jobs:
          a:
            needs: a
            steps: [{run: a}]
        """
    )
    assert error.location == "/jobs/a/needs"


# -- triggers and stack fields ----------------------------------------------------


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("on: push", "push"),
        ("on: [push, pull_request, push]", "pull_request,push"),
        (
            "on:\n  workflow_dispatch:\n  schedule:\n    - cron: '0 0 * * *'",
            "schedule,workflow_dispatch",
        ),
        ('"on": [release]', "release"),
    ],
)
def test_trigger_forms(on: str, expected: str) -> None:
    text = on + "\njobs:\n  j:\n    steps:\n      - run: x\n"
    result = import_workflow_text(text, filename="w.yml")
    assert result.metadata["triggerOn"] == expected


def test_missing_on_and_name_give_defaults() -> None:
    result = load(
        """
        jobs:
          j:
            steps: [{run: x}]
        """,
        filename="some/dir/My Workflow.yaml",
    )
    assert result.name == "My-Workflow"
    assert result.description == "GitHub Actions workflow My Workflow.yaml"
    assert result.metadata == {"importedFrom": "github-actions", "workflow": "My Workflow.yaml"}


def test_on_given_twice_is_an_error() -> None:
    error = source_error('on: push\n"on": pull_request\njobs: {j: {steps: [{run: x}]}}\n')
    assert error.location == "/on"


# -- errors --------------------------------------------------------------------


def test_yaml_syntax_error_reports_line_and_column() -> None:
    error = source_error("jobs:\n  build:\n    steps:\n      - run: a: b\n")
    assert "line 4" in error.message
    assert "column 15" in error.message
    assert str(error).startswith("workflow.yml: invalid YAML at line 4")
    error = source_error("jobs:\n  j:\n    steps:\n      - with: {a: [1, 2}\n")
    assert "line 4" in error.message


@pytest.mark.parametrize(
    ("text", "location", "fragment"),
    [
        ("- a\n- b\n", None, "top level must be a mapping"),
        ("", None, "top level must be a mapping"),
        ("name: x\n", "/jobs", "no 'jobs'"),
        ("jobs: [a]\n", "/jobs", "'jobs' must be a mapping"),
        ("jobs: {}\n", "/jobs", "'jobs' is empty"),
        ("jobs: {j: 3}\n", "/jobs/j", "must be a mapping"),
        ("jobs: {j: {runs-on: x}}\n", "/jobs/j", "neither 'steps' nor 'uses'"),
        ("jobs: {j: {steps: []}}\n", "/jobs/j/steps", "has no steps"),
        ("jobs: {j: {steps: {run: x}}}\n", "/jobs/j/steps", "must be a list"),
        ("jobs: {j: {steps: [run]}}\n", "/jobs/j/steps/0", "must be a mapping"),
        ("jobs: {j: {steps: [{name: x}]}}\n", "/jobs/j/steps/0", "needs 'uses' or 'run'"),
        (
            "jobs: {j: {steps: [{run: x, uses: a@v1}]}}\n",
            "/jobs/j/steps/0",
            "both 'uses' and 'run'",
        ),
        (
            "jobs: {j: {uses: a/b/c.yml@v1, steps: [{run: x}]}}\n",
            "/jobs/j",
            "both 'uses' and 'steps'",
        ),
        ("jobs: {j: {steps: [{uses: 7}]}}\n", "/jobs/j/steps/0/uses", "'uses' must be"),
        (
            "jobs: {j: {steps: [{uses: a@v1, with: [x]}]}}\n",
            "/jobs/j/steps/0/with",
            "'with' must be a mapping",
        ),
        (
            "jobs: {j: {steps: [{uses: a@v1, with: {k: [1]}}]}}\n",
            "/jobs/j/steps/0/with/k",
            "must be a scalar",
        ),
        (
            "jobs: {j: {steps: [{uses: a@v1, with: {on: 1}}]}}\n",
            "/jobs/j/steps/0/with/true",
            "quote the key",
        ),
        (
            "jobs: {j: {steps: [{id: 3, run: x}]}}\n",
            "/jobs/j/steps/0/id",
            "step id must be a string",
        ),
        ("jobs: {j: {needs: {a: 1}, steps: [{run: x}]}}\n", "/jobs/j/needs", "'needs' must be"),
        ("jobs: {j: {needs: [1], steps: [{run: x}]}}\n", "/jobs/j/needs/0", "must be a job id"),
        ("jobs: {yes: {steps: [{run: x}]}}\n", "/jobs/true", "job id must be a string"),
        ("on: 5\njobs: {j: {steps: [{run: x}]}}\n", "/on", "'on' must be"),
        (
            "jobs: {j: {steps: [{uses: a@v1, with: {t: 2001-12-14t21:59:43.10-05:00}}]}}\n",
            "/jobs/j/steps/0/with/t",
            "timestamp",
        ),
        ('jobs: {j: {steps: [{run: "\\ud800"}]}}\n', "/jobs/j/steps/0/run", "U+D800"),
    ],
)
def test_shape_errors(text: str, location: str | None, fragment: str) -> None:
    error = source_error(text)
    assert error.location == location
    assert fragment in error.message


def test_keys_equal_after_nfc_are_duplicates() -> None:
    error = source_error(
        'jobs:\n  "\u00e9": {steps: [{run: x}]}\n  "e\u0301": {steps: [{run: y}]}\n'
    )
    assert error.location == "/jobs/\u00e9"
    error = source_error('jobs: {j: {steps: [{uses: a@v1, with: {"\u00e9": 1, "e\u0301": 2}}]}}\n')
    assert error.location == "/jobs/j/steps/0/with/\u00e9"


def test_job_without_steps_is_named_in_the_error() -> None:
    error = source_error("jobs:\n  deploy-docs:\n    runs-on: ubuntu-latest\n")
    assert "'deploy-docs'" in error.message


def test_merge_keys_are_refused() -> None:
    text = """
        base: &base {uses: actions/checkout@v4}
        jobs:
          j:
            steps:
              - <<: *base
                with: {fetch-depth: 0}
        """
    error = source_error(text)
    assert "merge keys" in error.message
    assert "line 6" in error.message
    error = source_error("jobs: {j: {steps: [{!!merge x: {run: y}}]}}\n")
    assert "merge keys" in error.message


def test_heredoc_and_quoted_angle_brackets_are_not_merge_keys() -> None:
    result = load(
        """
        jobs:
          j:
            steps:
              - run: |
                  cat <<EOF > out
                  <<: not a key
                  EOF
              - uses: a/b@v1
                with:
                  "<<": literal
        """
    )
    assert result.steps[1]["inputs"] == {"<<": "literal"}


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(LimitExceeded) as info:
        load("jobs: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in info.value.message and info.value.file == "workflow.yml"


def test_invalid_timestamp_is_an_error() -> None:
    error = source_error("jobs: {j: {steps: [{uses: a@v1, with: {d: 2024-13-45}}]}}\n")
    assert "invalid YAML value" in error.message


def test_control_character_is_an_error() -> None:
    error = source_error("jobs: {j: {steps: [{run: \x07}]}}\n")
    assert "invalid YAML" in error.message


def test_size_limit() -> None:
    text = "#" * MAX_WORKFLOW_BYTES + "\n"
    with pytest.raises(LimitExceeded) as info:
        import_workflow_text(text, filename="big.yml")
    assert info.value.file == "big.yml"


# -- reading files -------------------------------------------------------------


def test_import_workflow_reads_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "release.yml"
    path.write_text("name: Rélease\non: push\njobs: {j: {steps: [{run: x}]}}\n", encoding="utf-8")
    result = import_workflow(path)
    assert result.description == "Rélease"
    assert result.name == "release"
    assert result.metadata["workflow"] == "release.yml"


def test_import_workflow_rejects_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_bytes(b"jobs: {j: {steps: [{run: \xff}]}}\n")
    with pytest.raises(SourceError) as info:
        import_workflow(path)
    assert info.value.location == "@25"  # byte offset of 0xFF
    assert info.value.file == str(path)


def test_import_workflow_missing_file(tmp_path: Path) -> None:
    """A missing file is file_not_found (FileMissing), as for every other command (docs/errors.md)."""
    with pytest.raises(FileMissing) as info:
        import_workflow(tmp_path / "absent.yml")
    assert info.value.code == "file_not_found" and info.value.file == str(tmp_path / "absent.yml")


def test_import_workflow_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileUnreadable) as info:
        import_workflow(tmp_path)
    assert info.value.code == "file_unreadable" and "not a regular file" in info.value.message
    assert info.value.file == str(tmp_path)


def test_import_workflow_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    path.write_bytes(b"#" * (MAX_WORKFLOW_BYTES + 1))
    with pytest.raises(LimitExceeded) as info:
        import_workflow(path)
    assert info.value.message == f"workflow is larger than {MAX_WORKFLOW_BYTES} bytes"
    assert info.value.file == str(path)


def test_all_errors_are_lodec_errors() -> None:
    for text in ("{", "jobs: [", ": :", "jobs: {j: {steps: [{run: x, uses: y}]}}"):
        with pytest.raises(LodecError):
            import_workflow_text(text, filename="w.yml")
