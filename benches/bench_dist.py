#!/usr/bin/env python3
"""Benchmark: lodec's OCI client (lodec.dist.registry, on requests) vs oras-py, against one real registry.

What is measured
    Against Debian's ``docker-registry`` (CNCF Distribution 2.8) started on
    loopback by this script (storage in a temp dir), for blobs of each size
    (default 1 MiB and 64 MiB, random bytes, a fresh blob every round so
    nothing is skipped as already there):

    upload
        lodec: ``Registry.put_blob`` (HEAD, POST, monolithic PUT ?digest=).
        oras-py: ``Registry.upload_blob`` of the same bytes from a file
        (its default: POST then monolithic PUT).
    download
        lodec: ``Registry.get_blob`` (streamed, bounded by the descriptor's
        size, sha256 checked, bytes in memory).
        oras-py: ``Registry.download_blob`` (streamed to a file; no size
        bound and no digest check).
    integrity probe (once)
        One stored blob has a byte flipped on disk; each client downloads it.
        lodec refuses (``digest_mismatch``); oras-py returns normally and the
        file it wrote has another sha256. This, not speed, decided the ADR
        (docs/adr/0003-oci-distribution-client.md).

    Rounds alternate the two clients; each figure is the median (and the
    min-max) of the rounds, the ratio lodec/oras-py per round then its median.

Run
    .venv/bin/pip install -e '.[bench]'     # oras-py is a bench extra only
    .venv/bin/python benches/bench_dist.py [--sizes 1,64] [--rounds 7]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lodec.dist import Descriptor, parse_reference  # noqa: E402
from lodec.dist.registry import Registry  # noqa: E402
from tests.registry import RegistryServer, registry_binary  # noqa: E402


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:8.1f} ms ({min(xs) * 1000:.1f}-{max(xs) * 1000:.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,64", help="blob sizes in MiB, comma-separated")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if registry_binary() is None:
        print("docker-registry is not installed (apt-get install docker-registry)", file=sys.stderr)
        return 1
    try:
        import oras.provider
    except ImportError:
        print("oras-py is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    import logging

    logging.getLogger("oras").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="lodec-bench-dist-") as tmp:
        server = RegistryServer(Path(tmp))
        try:
            ours = Registry(parse_reference(f"oci://{server.host}/bench/lodec"), push=True, plain_http=True)
            theirs = oras.provider.Registry(hostname=server.host, insecure=True)
            container = theirs.get_container(f"{server.host}/bench/oras")
            print(f"registry: docker-registry (Distribution 2.8) on {server.host}; rounds: {args.rounds}")
            print(f"{'size':>8} {'op':<9} {'lodec':>32} {'oras-py':>32} {'lodec/oras':>11}")
            for mib in (int(s) for s in args.sizes.split(",")):
                times: dict[tuple[str, str], list[float]] = {}
                for _ in range(args.rounds):
                    data = os.urandom(mib << 20)
                    digest = "sha256:" + hashlib.sha256(data).hexdigest()
                    desc = Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))
                    path = Path(tmp) / "blob"
                    path.write_bytes(data)
                    layer = {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}
                    t = time.perf_counter()
                    ours.put_blob(data)
                    times.setdefault(("lodec", "upload"), []).append(time.perf_counter() - t)
                    t = time.perf_counter()
                    resp = theirs.upload_blob(str(path), container, layer)
                    assert resp.status_code in (200, 201, 202), resp.status_code
                    times.setdefault(("oras", "upload"), []).append(time.perf_counter() - t)
                    t = time.perf_counter()
                    got = ours.get_blob(desc)
                    times.setdefault(("lodec", "download"), []).append(time.perf_counter() - t)
                    assert got == data
                    t = time.perf_counter()
                    theirs.download_blob(container, digest, str(Path(tmp) / "out"))
                    times.setdefault(("oras", "download"), []).append(time.perf_counter() - t)
                for op in ("upload", "download"):
                    a, b = times[("lodec", op)], times[("oras", op)]
                    ratio = statistics.median(x / y for x, y in zip(a, b))
                    print(f"{mib:>5} MiB {op:<9} {med(a):>32} {med(b):>32} {ratio:>10.2f}x")
            # Integrity probe: a byte flipped in the registry's storage.
            data = os.urandom(1 << 20)
            ours.put_blob(data)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            theirs.upload_blob(str(_write(Path(tmp) / "probe", data)), container,
                               {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)})
            stored = server.blob_file(digest)
            flipped = bytearray(stored.read_bytes())
            flipped[100] ^= 1
            stored.write_bytes(bytes(flipped))
            try:
                ours.get_blob(Descriptor(media_type="application/octet-stream", digest=digest, size=len(data)))
                lodec_probe = "ACCEPTED the tampered blob"
            except Exception as exc:  # noqa: BLE001 - the probe reports whatever happens
                lodec_probe = f"refused: {getattr(exc, 'code', type(exc).__name__)}"
            out = Path(tmp) / "probe-out"
            try:
                theirs.download_blob(container, digest, str(out))
                got = "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
                oras_probe = ("returned normally; the file's sha256 " + ("matches" if got == digest else
                                                                         "does NOT match the digest asked for"))
            except Exception as exc:  # noqa: BLE001
                oras_probe = f"refused: {type(exc).__name__}"
            print(f"integrity probe (1 MiB blob, one byte flipped in storage): lodec {lodec_probe}; oras-py "
                  f"{oras_probe}")
        finally:
            server.stop()
    return 0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


if __name__ == "__main__":
    sys.exit(main())
