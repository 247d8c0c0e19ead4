#!/usr/bin/env python3
"""Benchmark: bytes per step, vein against minified JSON, protobuf and MessagePack.

What is measured
    Every seed step (``steps/*.json`` in the repository) and every step that
    ``lodec import github-actions`` makes from the workflows in the corpus
    (``/work/shared/corpus/github-actions/``), each encoded five ways:

    vein
        ``lodec.compile_value`` against ``skill-step-v1``: the 13-byte header
        plus the body (canonical CBOR, a map keyed by field id). The header is
        reported separately; the body is what the protobuf target compares.
    minified JSON
        The source record exactly as ``lodec import`` writes it to ``src/``
        (or as the seed file holds it), re-serialised with
        ``json.dumps(record, separators=(",", ":"), ensure_ascii=False)``.
    protobuf
        A proto3 message equivalent to SkillStep, built at run time with the
        ``google.protobuf`` descriptor API (no generated code):
        ``string stepName = 1; string skillRef = 2; repeated string dependsOn = 3;
        map<string, string> inputs = 4; repeated string outputs = 5;
        string fingerprint = 6;``. The field numbers are the ``.lode`` field
        ids. ``SerializeToString(deterministic=True)`` (map entries sorted).
        proto3 leaves out empty strings and empty lists, as the vein does.
    MessagePack (msgspec), two ways
        ``msgspec.msgpack.encode`` of the record with its field names as keys
        (what a program would usually write), and of the same record keyed by
        field id, as the vein body is, empty values left out as in the vein.

    Every encoding is decoded again and compared with the record (so a size
    is never that of a lossy encoding).

Targets
    - every vein body no larger than the protobuf encoding of the same record;
    - the whole corpus (every vein, headers included) at most 0.6x the
      minified JSON of the same records.

Run
    python benches/bench_size.py [--corpus DIR] [--csv FILE] [--json]

    with a Python that has lodec, protobuf and msgspec (the ``bench`` extra:
    ``pip install '.[bench]'``). Deterministic: no timing, no randomness.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path("/work/shared/corpus/github-actions")
BODY_TARGET = "vein body <= protobuf, every record"
TOTAL_TARGET_RATIO = 0.6
FORMATS = ("vein", "body", "json", "protobuf", "msgpack_names", "msgpack_ids", "payload")
LABELS = {
    "vein": "vein (header + body)",
    "body": "vein body",
    "json": "minified JSON",
    "protobuf": "protobuf (proto3)",
    "msgpack_names": "MessagePack, names",
    "msgpack_ids": "MessagePack, ids",
    "payload": "string payload only",
}

try:
    import msgspec
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    import lodec
    from lodec.format.codec import HEADER_SIZE, decode_vein, record_to_json
    from lodec.importers.github_actions import import_workflow
except ImportError as exc:  # pragma: no cover - depends on the interpreter used
    sys.exit(f"bench_size: {exc}; run it with a Python that has lodec[bench]: pip install '.[bench]'")


# ------------------------------------------------------------------ protobuf


def skill_step_message() -> Any:
    """The proto3 SkillStep message class, built from a FileDescriptorProto (fields numbered as the .lode ids)."""
    schema = lodec.skill_step_schema()
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="bench_skill_step.proto", package="lodecbench", syntax="proto3")
    msg = fdp.message_type.add(name="SkillStep")
    entry = msg.nested_type.add(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    for f in sorted(schema.fields, key=lambda f: f.id):
        assert f.type.scalar == "string", f  # SkillStep has string, string[] and map<string,string> only
        if f.type.kind == "map":
            msg.field.add(name=f.name, number=f.id, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                          type_name=".lodecbench.SkillStep.InputsEntry")  # fmt: skip
        elif f.type.kind == "array":
            msg.field.add(name=f.name, number=f.id, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
        else:
            msg.field.add(name=f.name, number=f.id, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("lodecbench.SkillStep"))


PROTO_SOURCE = """syntax = "proto3";
package lodecbench;
// SkillStep (schemas/skill-step-v1.lode); field numbers = .lode field ids.
message SkillStep {
  string stepName = 1;
  string skillRef = 2;
  repeated string dependsOn = 3;
  map<string, string> inputs = 4;
  repeated string outputs = 5;
  string fingerprint = 6;
}"""


def to_protobuf(cls: Any, record: dict[str, Any]) -> bytes:
    m = cls()
    for key, value in record.items():
        if key == "inputs":
            m.inputs.update(value)
        elif isinstance(value, list):
            getattr(m, key).extend(value)
        else:
            setattr(m, key, value)
    data: bytes = m.SerializeToString(deterministic=True)
    return data


def from_protobuf(cls: Any, data: bytes) -> dict[str, Any]:
    m = cls.FromString(data)
    out: dict[str, Any] = {}
    for f in m.DESCRIPTOR.fields:
        value = getattr(m, f.name)
        if f.name == "inputs":
            value = dict(value)
        elif not isinstance(value, str):
            value = list(value)
        if value not in ("", [], {}):
            out[f.name] = value
    return out


# ------------------------------------------------------------------ records


def records(corpus: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(source, stepName, record)`` for the seed steps, then every imported corpus step."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for path in sorted((REPO / "steps").glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        out.append(("seed", rec["stepName"], rec))
    files = sorted([*corpus.glob("*.yml"), *corpus.glob("*.yaml")])
    if not files:
        sys.exit(f"bench_size: no workflows in {corpus}")
    for path in files:
        imported = import_workflow(path)
        for rec in imported.steps:
            # Imports are gha-step-v1 records now (every behavioural field as canonical JSON); the SkillStep
            # part of each (fields 1-4) keeps these figures comparable with the earlier runs.
            core = {k: rec[k] for k in ("stepName", "skillRef", "dependsOn", "inputs") if k in rec}
            out.append((path.name, core["stepName"], core))
    return out


def payload(record: dict[str, Any]) -> int:
    """UTF-8 bytes of every string in the record (map keys too): what any uncompressed encoding must hold."""
    n = 0
    for value in record.values():
        if isinstance(value, str):
            n += len(value.encode())
        elif isinstance(value, dict):
            n += sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        else:
            n += sum(len(v.encode()) for v in value)
    return n


def nonempty(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v not in ("", [], {})}


def measure(corpus: Path) -> list[dict[str, Any]]:
    schema = lodec.skill_step_schema()
    ids = {f.name: f.id for f in schema.fields}
    proto = skill_step_message()
    rows = []
    for source, name, rec in records(corpus):
        vein = lodec.compile_value(rec, schema, file=f"{source}#{name}")
        canonical = record_to_json(decode_vein(vein.data, schema).record, schema)
        js = json.dumps(rec, separators=(",", ":"), ensure_ascii=False).encode()
        pb = to_protobuf(proto, rec)
        mp_names = msgspec.msgpack.encode(rec)
        by_id = {ids[k]: v for k, v in sorted(nonempty(rec).items(), key=lambda kv: ids[kv[0]])}
        mp_ids = msgspec.msgpack.encode(by_id)
        # every encoding must give the record back
        assert nonempty(json.loads(js)) == nonempty(canonical), name
        assert from_protobuf(proto, pb) == nonempty(canonical), name
        assert nonempty(msgspec.msgpack.decode(mp_names)) == nonempty(canonical), name
        assert {k: v for k, v in msgspec.msgpack.decode(mp_ids).items()} == {
            ids[k]: v for k, v in nonempty(canonical).items()
        }, name
        rows.append({
            "source": source, "step": name,
            "vein": vein.size, "body": vein.size - HEADER_SIZE, "json": len(js), "protobuf": len(pb),
            "msgpack_names": len(mp_names), "msgpack_ids": len(mp_ids), "payload": payload(rec),
        })  # fmt: skip
    return rows


# ------------------------------------------------------------------ report


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals = {f: sum(r[f] for r in rows) for f in FORMATS}
    per_step = {
        f: {
            "mean": totals[f] / len(rows),
            "median": statistics.median(r[f] for r in rows),
            "min": min(r[f] for r in rows),
            "max": max(r[f] for r in rows),
        }
        for f in FORMATS
    }
    over = [r for r in rows if r["body"] > r["protobuf"]]
    diffs = [r["body"] - r["protobuf"] for r in rows]
    by_source: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = by_source.setdefault(r["source"], {"steps": 0, **{f: 0 for f in FORMATS}, "body_over_protobuf": 0})
        s["steps"] += 1
        for f in FORMATS:
            s[f] += r[f]
        s["body_over_protobuf"] += r["body"] > r["protobuf"]
    ratio = totals["vein"] / totals["json"]
    return {
        "steps": len(rows),
        "totals": totals,
        "per_step": per_step,
        "by_source": by_source,
        "body_minus_protobuf": {"min": min(diffs), "median": statistics.median(diffs), "max": max(diffs)},
        "body_over_protobuf": [
            {k: r[k] for k in ("source", "step", "body", "protobuf")} for r in sorted(over, key=lambda r: r["protobuf"] - r["body"])
        ],
        "targets": {
            "body_le_protobuf": {"target": BODY_TARGET, "records_over": len(over), "met": not over},
            "total_vs_json": {
                "target_max": TOTAL_TARGET_RATIO, "ratio": ratio, "body_only_ratio": totals["body"] / totals["json"],
                "met": ratio <= TOTAL_TARGET_RATIO,
            },
        },
    }  # fmt: skip


def print_report(res: dict[str, Any]) -> None:
    s = res["summary"]
    n = s["steps"]
    print(f"bench_size  {res['date']}")
    print(f"machine: {res['machine']}")
    print(f"input:   {n} SkillStep records: {s['by_source'].get('seed', {}).get('steps', 0)} seed steps "
          f"(steps/*.json) and every step `lodec import github-actions` makes from {res['corpus']} "
          f"({len(s['by_source']) - 1} workflows)")
    print(f"method:  byte counts, no timing; every encoding decoded back and compared; lodec {res['versions']['lodec']}, "
          f"protobuf {res['versions']['protobuf']} ({res['versions']['protobuf_impl']}), msgspec {res['versions']['msgspec']}")
    print()
    head = f"{'format':<22} {'total B':>9} {'mean B/step':>12} {'median':>7} {'min':>5} {'max':>6} {'x JSON':>7} {'x protobuf':>11}"
    print(head)
    print("-" * len(head))
    t = s["totals"]
    for f in FORMATS:
        p = s["per_step"][f]
        print(f"{LABELS[f]:<22} {t[f]:>9,} {p['mean']:>12.1f} {p['median']:>7g} {p['min']:>5} {p['max']:>6} "
              f"{t[f] / t['json']:>7.3f} {t[f] / t['protobuf']:>11.3f}")
    print("(string payload only: the UTF-8 bytes of the strings themselves, no framing, a floor for any "
          "uncompressed encoding)")
    print(f"(vein header: {HEADER_SIZE} B per step, {HEADER_SIZE * n:,} B in all, "
          f"{HEADER_SIZE * n / t['vein']:.1%} of the vein total)")
    print()
    print("by source (total bytes):")
    head2 = f"  {'source':<16} {'steps':>5} " + " ".join(f"{f:>13}" for f in FORMATS) + f" {'body>pb':>8}"
    print(head2)
    for src, v in s["by_source"].items():
        print(f"  {src:<16} {v['steps']:>5} " + " ".join(f"{v[f]:>13,}" for f in FORMATS) + f" {v['body_over_protobuf']:>8}")
    d = s["body_minus_protobuf"]
    print()
    print(f"vein body - protobuf, per record: min {d['min']:+d} B, median {d['median']:+g} B, max {d['max']:+d} B")
    over = s["body_over_protobuf"]
    if over:
        print(f"records whose vein body is larger than protobuf: {len(over)} of {n}; worst:")
        for r in over[:8]:
            print(f"  {r['source']}#{r['step']}: body {r['body']} B, protobuf {r['protobuf']} B ({r['body'] - r['protobuf']:+d})")
    tg = s["targets"]
    b, j = tg["body_le_protobuf"], tg["total_vs_json"]
    print()
    print(f"target:  every vein body <= protobuf: {'PASS' if b['met'] else 'MISS'} "
          f"({b['records_over']} of {n} records larger)")
    print(f"target:  corpus veins <= {j['target_max']}x minified JSON: {'PASS' if j['met'] else 'MISS'} "
          f"({j['ratio']:.3f}x with headers; bodies alone {j['body_only_ratio']:.3f}x)")
    print()
    print("protobuf message (built with the descriptor API):")
    for line in PROTO_SOURCE.splitlines():
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="GitHub Actions workflows (*.yml)")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help="write the per-step table to FILE")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    import google.protobuf
    from google.protobuf.internal import api_implementation

    rows = measure(args.corpus)
    res = {
        "benchmark": "bench_size",
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, Linux {platform.release()}, Python {platform.python_version()}",
        "corpus": str(args.corpus),
        "versions": {
            "lodec": lodec.__version__, "protobuf": google.protobuf.__version__,
            "protobuf_impl": api_implementation.Type(), "msgspec": msgspec.__version__,
        },
        "summary": summarise(rows),
        "rows": rows,
    }
    if args.csv is not None:
        with args.csv.open("w", newline="") as out:
            w = csv.DictWriter(out, fieldnames=["source", "step", *FORMATS])
            w.writeheader()
            w.writerows(rows)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
