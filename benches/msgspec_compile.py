#!/usr/bin/env python3
"""The peer of ``lodec compile`` in ``bench_compile.py``: msgspec Struct -> MessagePack + BLAKE3, one file each.

``python msgspec_compile.py OUT_DIR SOURCE.json ...``

For each source: read it, decode it with ``msgspec.json.decode`` into a
typed ``Struct`` of the SkillStep fields (unknown fields refused, types
checked), encode it as MessagePack, hash it with BLAKE3 and keep it under
``<stepName>.msgpack``. Then the same atomic writes as ``lodec compile``
(``lodec.files.atomic_write_many``), written here with the standard library
only: each file to a new temp file beside its target (``O_CREAT | O_EXCL``,
mode 0644), one ``os.sync`` for the batch, a rename over each target, an
fsync of the directory. A crash leaves every target absent, as it was, or
complete. Prints the number of files and the BLAKE3 of the last one.

Not lodec: what lodec does per record beyond this (canonical form, NFC,
limits, name rule, schema digest in the fingerprint) is its own cost.
"""

from __future__ import annotations

import os
import sys

import msgspec
from blake3 import blake3


class SkillStep(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    stepName: str
    skillRef: str
    dependsOn: list[str] = []
    inputs: dict[str, str] = {}
    outputs: list[str] = []
    fingerprint: str = ""


def main(argv: list[str]) -> int:
    out_dir, sources = argv[0], argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    decoder = msgspec.json.Decoder(SkillStep)
    encoder = msgspec.msgpack.Encoder()
    items: list[tuple[str, bytes]] = []
    digest = ""
    for src in sources:
        with open(src, "rb") as fh:
            step = decoder.decode(fh.read())
        data = encoder.encode(step)
        digest = blake3(data).hexdigest()
        items.append((os.path.join(out_dir, step.stepName + ".msgpack"), data))
    staged: list[tuple[str, str]] = []
    pid = os.getpid()
    try:
        for i, (target, data) in enumerate(items):
            head, tail = os.path.split(target)
            tmp = os.path.join(head, f".{tail}.{pid}.{i}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            staged.append((tmp, target))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        os.sync()
        for tmp, target in staged:
            os.replace(tmp, target)
        dfd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    print(len(items), digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
