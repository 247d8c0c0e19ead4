#!/usr/bin/env python3
"""Peer for bench_verify.py: verify N protobuf SkillStep records against a SHA-256 manifest, in Python.

    python pb_verify.py MANIFEST.json

MANIFEST.json is ``{"dir": "pb", "records": {"<stepName>": "<sha256 hex>", ...}}``
(``dir`` relative to the manifest). For every record: read ``<dir>/<stepName>.pb``,
hash it with ``hashlib.sha256`` and compare with the manifest, parse it as the
proto3 SkillStep message (``google.protobuf``, the message built at run time by
the descriptor API, as in ``bench_size.py``), and check that its ``stepName``
is the name it is listed under. Prints one line; exits 0 if every record
passes, 1 otherwise (each failure on stderr). This is the work ``lodec verify``
does per step (read, hash, decode, name check), without lodec's schema,
canonical-form and DAG checks: a floor for a Python verifier of protobuf records.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def skill_step_class():  # type: ignore[no-untyped-def]
    """``message SkillStep { string stepName = 1; string skillRef = 2; repeated string dependsOn = 3;
    map<string, string> inputs = 4; repeated string outputs = 5; string fingerprint = 6; }``"""
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="bench_skill_step.proto", package="lodecbench", syntax="proto3")
    msg = fdp.message_type.add(name="SkillStep")
    entry = msg.nested_type.add(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="stepName", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="skillRef", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="dependsOn", number=3, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    msg.field.add(name="inputs", number=4, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=".lodecbench.SkillStep.InputsEntry")  # fmt: skip
    msg.field.add(name="outputs", number=5, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    msg.field.add(name="fingerprint", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("lodecbench.SkillStep"))


def main() -> int:
    manifest_path = sys.argv[1]
    with open(manifest_path, "rb") as f:
        manifest = json.loads(f.read())
    base = os.path.join(os.path.dirname(manifest_path), manifest["dir"])
    SkillStep = skill_step_class()
    bad = 0
    for name, expected in manifest["records"].items():
        try:
            with open(os.path.join(base, name + ".pb"), "rb") as f:
                data = f.read()
        except OSError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            bad += 1
            continue
        if hashlib.sha256(data).hexdigest() != expected:
            print(f"{name}: sha256 mismatch", file=sys.stderr)
            bad += 1
            continue
        try:
            step = SkillStep.FromString(data)
        except Exception as exc:  # noqa: BLE001  (DecodeError)
            print(f"{name}: not a SkillStep: {exc}", file=sys.stderr)
            bad += 1
            continue
        if step.stepName != name:
            print(f"{name}: holds stepName {step.stepName!r}", file=sys.stderr)
            bad += 1
    n = len(manifest["records"])
    print(f"{n - bad} of {n} records verified" if bad else f"Verified {n} records")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
