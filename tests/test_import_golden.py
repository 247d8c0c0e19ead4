"""Golden vectors of the importers' wire form: the new step schemas' digests and the manifest digest of every
GitHub Actions corpus import (tests/golden/import/import-digests.json). A change to a schema, to the mapping or to
the canonical JSON of a field changes these: make it deliberately, then update the file and the docs.
(The Argo and Nanostack imports are compared file by file in tests/test_import_argo_nanostack.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lodec
from lodec.app.build import import_github_actions
from tests.conftest import ROOT

GOLDEN = json.loads((ROOT / "tests" / "golden" / "import" / "import-digests.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN["schemas"]))
def test_step_schema_digest_is_pinned_and_documented(name: str) -> None:
    digest = lodec.format_fingerprint(lodec.builtin_schema(name).digest)
    assert digest == GOLDEN["schemas"][name]
    docs = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert digest in docs, f"{name}'s digest is not in docs/"


@pytest.mark.parametrize("name", sorted(GOLDEN["github-actions"]))
def test_github_actions_import_digest_is_pinned(name: str, tmp_path: Path) -> None:
    got = import_github_actions(str(ROOT / "tests" / "corpus" / "github-actions" / name), str(tmp_path))
    assert {"steps": got.steps, "digest": got.digest} == GOLDEN["github-actions"][name]
