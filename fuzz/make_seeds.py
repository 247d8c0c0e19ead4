"""Write the seed corpora (``fuzz/seeds/<target>/``) from the golden vectors and the example stack.

Run once before fuzzing (``python fuzz/make_seeds.py``); it is deterministic
(the signed seeds use the harnesses' fixed key and a fixed time).
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timezone
from pathlib import Path

from _common import MANIFEST, NOW, ROOT, fixed_key, seed_step_veins

import lodec
from lodec.format.pack import build_pack
from lodec.format.schema import BUILTIN_SCHEMAS, builtin_schema_bytes
from lodec.format.tree import read_tree
from lodec.sign.signer import sign_stack
from lodec.sign.statement import build_statement
from lodec.stack.verify import verify_stack

OUT = Path(__file__).resolve().parent / "seeds"


def put(target: str, data: bytes) -> None:
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> None:
    steps = seed_step_veins()
    index = {name: i for i, name in enumerate(BUILTIN_SCHEMAS)}
    # vein: first byte picks the schema (bit 7 set: the harness adds the header itself)
    for data in steps.values():
        put("vein", bytes([index["skill-step-v1"]]) + data)
        put("vein", bytes([0x80 | index["skill-step-v1"]]) + data[13:])
    v1 = (ROOT / "stacks" / "code-review" / "code-review-stack.json").read_bytes()
    stack = verify_stack(v1, steps.get).verified
    assert stack is not None, "the example stack does not verify"
    put("vein", bytes([index["skill-stack-v2"]]) + lodec.manifest_vein(stack.manifest).data)
    unlocked = {k: v for k, v in stack.manifest.items() if k != "skillDigests"}
    put("vein", bytes([index["skill-stack-v1"]]) + lodec.manifest_vein(unlocked).data)
    # imported steps: a GitHub Actions step, an Argo task with a verbatim depends, a v2 step with a run condition
    from lodec.importers.argo import import_argo
    from lodec.importers.github_actions import import_workflow

    gha = import_workflow(ROOT / "tests" / "corpus" / "github-actions" / "tokio-loom.yml").steps[1]
    argo = import_argo(ROOT / "tests" / "corpus" / "argo" / "dag-enhanced-depends.yaml").steps[3]
    v2 = {"stepName": "cleanup", "skillRef": "skill:tool", "dependsOn": ["build"], "runIf": "always"}
    for name, record in (("gha-step-v1", gha), ("argo-step-v1", argo), ("skill-step-v2", v2)):
        put("vein", bytes([index[name]]) + lodec.compile_value(record, lodec.builtin_schema(name)).data)
    # schemas
    for name in BUILTIN_SCHEMAS:
        put("schema", builtin_schema_bytes(name))
    for path in sorted((ROOT / "schemas").glob("*.lode")):
        put("schema", path.read_bytes())
    put("schema", b'{"schema":"lode","version":1,"name":"R","fields":[{"id":1,"name":"a","type":"map<string,int>"}],"reserved":[2,"b"]}')
    # manifests: the locked (v2) example and its v1 form
    put("manifest", MANIFEST.read_bytes())
    put("manifest", lodec.manifest_json(unlocked))
    # DSSE envelope + statement, signed with the fixed key
    key = fixed_key()
    envelope, _ = sign_stack(stack, key, now=datetime(2026, 11, 21, tzinfo=timezone.utc),
                             expires=datetime(2027, 1, 1, tzinfo=timezone.utc))
    put("dsse", envelope.to_json())
    put("dsse", envelope.payload)
    put("dsse", build_statement(stack.manifest_bytes, name=stack.name, version=stack.version, digest=stack.digest,
                                expires=NOW))
    # packs: unsigned and signed
    kw = dict(manifest_name="code-review-stack.json", step_schema=builtin_schema_bytes("skill-step-v1"),
              stack_schema=builtin_schema_bytes("skill-stack-v2"))
    put("pack", build_pack(manifest=stack.manifest_bytes, steps={n: v.data for n, v in stack.steps.items()}, **kw))
    put("pack", build_pack(manifest=stack.manifest_bytes, steps={n: v.data for n, v in stack.steps.items()}, envelope=envelope.to_json(), **kw))
    # a v2 pack: the example's pinned skills carried as their trees
    trees = {name: read_tree(ROOT / "stacks" / "code-review" / "skills" / name)
             for name in ("code-review", "eslint-check", "static-analysis")}
    put("pack", build_pack(manifest=stack.manifest_bytes, steps={n: v.data for n, v in stack.steps.items()},
                           skills=trees, **kw))
    for target in ("vein",):
        put(target, bytes([index["lodepack-v1"]]) + build_pack(manifest=stack.manifest_bytes, steps={n: v.data for n, v in stack.steps.items()}, **kw))
    # native: the vein seeds under the default limits (byte 1), then veins of random records of every schema
    # (ASCII, which the native decoder settles itself, and not), some under small limits
    import random

    import native_diff

    for path in sorted((OUT / "vein").glob("*")):
        raw = path.read_bytes()
        if raw:
            put("native", bytes([(raw[0] & 0x80) | (raw[0] & 0x7F) % len(BUILTIN_SCHEMAS), native_diff.DEFAULT]) + raw[1:])
    rng = random.Random(2026)
    for data in native_diff.random_veins(rng, 48) + native_diff.random_veins(rng, 12, ascii_only=False):
        put("native", data)
    for data in native_diff.random_veins(rng, 12):
        put("native", data[:1] + bytes([rng.randrange(0x80)]) + data[2:])
    # inputs kept from findings are seeds too
    for kept in sorted((ROOT / "tests" / "fuzz_regressions").glob("*/*")):
        if kept.is_file():
            put(kept.parent.name, kept.read_bytes())
    print(f"seeds written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
