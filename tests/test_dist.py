"""Distribution: `lodec push` / `lodec pull` through a real registry and through an OCI image layout.

The registry is Debian's ``docker-registry`` (CNCF Distribution 2.8) on
loopback, started by the session fixture; it has no referrers API, so the
referrer is found through the tag-schema fallback there, and through the
API behind ``ReferrersProxy`` (tests/registry.py). Attacks (a tampered blob
in the registry's storage, a swapped referrer, a pack short of the
threshold, plain HTTP off loopback) are each refused with nothing written
at ``-o``.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from lodec.dist import ENVELOPE_ARTIFACT_TYPE, ENVELOPE_MEDIA_TYPE, Descriptor, parse_reference
from lodec.dist.oci import INDEX_MEDIA_TYPE, index, referrer_manifest, referrers_tag
from lodec.dist.reference import ReferenceInvalid
from lodec.dist.registry import Registry
from lodec.format.pack import read_pack

from .conftest import VERIFY_AT, run_cli, sign_cli, unavailable
from .registry import ReferrersProxy, RegistryServer, registry_binary

_repos = itertools.count(1)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if registry_binary() is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def referrers_proxy(registry: RegistryServer):  # type: ignore[no-untyped-def]
    proxy = ReferrersProxy(registry)
    yield proxy
    proxy.stop()


@pytest.fixture
def repo() -> str:
    return f"lodec/t{next(_repos)}"


def keys_args(keys: dict[str, Path], *names: str) -> list[str]:
    return [a for n in names for a in ("--key", f"{keys[n]}.pub")]


def make_pack(manifest: Path, out: Path) -> Path:
    code, _, err = run_cli("pack", manifest, "-o", out)
    assert code == 0, err
    return out


def copy_unsigned(manifest: Path, folder: Path) -> Path:
    """The stack's manifest and steps copied into ``folder`` (without its envelope)."""
    folder.mkdir()
    shutil.copytree(manifest.parent / "steps", folder / "steps")
    shutil.copy(manifest, folder / manifest.name)
    return folder / manifest.name


@pytest.fixture
def signed_pack(signed_stack: Path, tmp_path: Path) -> Path:
    """The seed stack signed by alice and bob, packed."""
    return make_pack(signed_stack, tmp_path / "cr.lodepack")


def push(pack: Path, ref: str, *extra: str) -> dict:
    plain = ["--plain-http"] if ref.startswith("oci://") else []
    code, out, err = run_cli("push", pack, ref, "--json", *plain, *extra)
    assert code == 0, err
    return json.loads(out)


def pull(ref: str, out: Path, *extra: str) -> tuple[int, dict | None, str]:
    plain = ["--plain-http"] if ref.startswith("oci://") else []
    code, stdout, err = run_cli("pull", ref, "-o", out, "--json", *plain, "--now", VERIFY_AT,
                                "--state", out.parent / "state.json", *extra)
    assert "Traceback" not in err
    return code, (json.loads(stdout) if stdout.strip() else None), err


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() and not out.with_name(out.name + ".dsse").exists()
    assert not list(out.parent.glob(f".{out.name}*")), "a temp file was left beside the output"


# ------------------------------------------------------------------ registry


def test_push_then_pull_by_tag_and_by_digest_round_trips_the_bytes(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    pushed = push(signed_pack, f"oci://{registry.host}/{repo}")
    assert pushed["reference"] == f"oci://{registry.host}/{repo}:1.0.0"  # the tag defaults to the version
    digest = pushed["manifest"]["digest"]
    assert pushed["pinned"] == f"oci://{registry.host}/{repo}@{digest}"
    for n, ref in enumerate((f"oci://{registry.host}/{repo}:1.0.0", f"oci://{registry.host}/{repo}@{digest}")):
        out = tmp_path / f"pulled{n}" / "cr.lodepack"
        out.parent.mkdir()
        code, doc, err = pull(ref, out, *keys_args(keys, "alice"))
        assert code == 0, err
        assert out.read_bytes() == signed_pack.read_bytes()
        assert out.with_name("cr.lodepack.dsse").read_bytes() == read_pack(signed_pack.read_bytes()).envelope
        assert doc is not None and doc["ok"] and doc["manifest"]["digest"] == digest
        assert doc["pinned"] == f"oci://{registry.host}/{repo}@{digest}"
        assert doc["referrer"]["digest"] == pushed["referrer"]["digest"]
        assert doc["stack"] == "code-review-pipeline" and doc["trust"]["threshold"] == 1


def test_pushing_the_same_pack_twice_gives_the_same_manifest_digest(
    registry: RegistryServer, repo: str, signed_pack: Path
) -> None:
    first = push(signed_pack, f"oci://{registry.host}/{repo}:a")
    second = push(signed_pack, f"oci://{registry.host}/{repo}:b")
    assert first["manifest"] == second["manifest"] and first["referrer"] == second["referrer"]
    assert second["uploaded"] == 0 and second["skipped"] == 3  # config, pack, envelope already there


def test_referrer_found_through_the_tag_schema_fallback(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    pushed = push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    digest = pushed["manifest"]["digest"]
    # Distribution 2.8 has no referrers API: the spec's fallback is the only way the referrer can be found.
    status, _ = registry.get(f"/v2/{repo}/referrers/{digest}")
    assert status == 404
    assert pushed["referrers"] == "fallback"
    assert referrers_tag(digest) in registry.tags(repo)
    status, body = registry.get(f"/v2/{repo}/manifests/{referrers_tag(digest)}", accept=INDEX_MEDIA_TYPE)
    listed = json.loads(body)["manifests"]
    assert [(d["digest"], d["artifactType"]) for d in listed] == [(pushed["referrer"]["digest"],
                                                                    ENVELOPE_ARTIFACT_TYPE)]
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci://{registry.host}/{repo}:v1", out, *keys_args(keys, "alice", "bob"))
    assert code == 0, err
    assert doc is not None and doc["referrers"] == "fallback" and doc["referrer"] == pushed["referrer"]


def test_referrer_found_through_the_referrers_api(
    registry: RegistryServer, referrers_proxy: ReferrersProxy, repo: str, signed_pack: Path,
    keys: dict[str, Path], tmp_path: Path
) -> None:
    pushed = push(signed_pack, f"oci://{referrers_proxy.host}/{repo}:v1")
    digest = pushed["manifest"]["digest"]
    assert pushed["referrers"] == "api"
    # A registry with the API gets no fallback tag: the API is then the only way to find the referrer.
    assert registry.tags(repo) == ["v1"]
    calls = referrers_proxy.api_calls
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci://{referrers_proxy.host}/{repo}@{digest}", out, *keys_args(keys, "alice"))
    assert code == 0, err
    assert doc is not None and doc["referrers"] == "api" and doc["referrer"] == pushed["referrer"]
    assert referrers_proxy.api_calls == calls + 1
    assert out.read_bytes() == signed_pack.read_bytes()


def test_tampered_pack_blob_in_registry_storage_is_refused_and_nothing_written(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    pushed = push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    blob = registry.blob_file(pushed["layer"]["digest"])
    original = blob.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    blob.write_bytes(bytes(tampered))
    try:
        out = tmp_path / "out" / "cr.lodepack"
        out.parent.mkdir()
        code, doc, err = pull(f"oci://{registry.host}/{repo}:v1", out, *keys_args(keys, "alice"))
        assert code == 1 and "[digest_mismatch]" in err, err
        assert doc is not None and doc["ok"] is False and doc["error"]["code"] == "digest_mismatch"
        assert_nothing_written(out)
    finally:
        blob.write_bytes(original)  # blobs are shared by digest across the session's repositories


def test_endless_data_a_registry_blob_longer_than_its_descriptor_is_refused_unread(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    pushed = push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    blob = registry.blob_file(pushed["layer"]["digest"])
    original = blob.read_bytes()
    blob.write_bytes(original + b"\0" * (1 << 20))  # the registry now serves 1 MiB more than the manifest says
    try:
        out = tmp_path / "out" / "cr.lodepack"
        out.parent.mkdir()
        code, doc, err = pull(f"oci://{registry.host}/{repo}:v1", out, *keys_args(keys, "alice"))
        assert code == 1 and "[limit_exceeded]" in err and "descriptor says" in err, err
        assert_nothing_written(out)
    finally:
        blob.write_bytes(original)


def test_an_artifact_that_is_not_a_lodec_pack_is_refused(registry: RegistryServer, repo: str,
                                                         keys: dict[str, Path], tmp_path: Path) -> None:
    from lodec.dist.oci import EMPTY_BLOB, dumps

    store = Registry(parse_reference(f"oci://{registry.host}/{repo}"), push=True, plain_http=True)
    store.put_blob(EMPTY_BLOB)
    layer = b"not a pack"
    store.put_blob(layer)
    empty = Descriptor.of("application/vnd.oci.empty.v1+json", EMPTY_BLOB).to_json()
    other = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "artifactType": "application/vnd.example.other.v1", "config": empty,
                   "layers": [Descriptor.of("application/vnd.lodec.lodepack.v1", layer).to_json()]})
    store.put_manifest(other, "other", artifact_type="application/vnd.example.other.v1")
    out = tmp_path / "cr.lodepack"
    code, _, err = pull(f"oci://{registry.host}/{repo}:other", out, *keys_args(keys, "alice"))
    assert code == 1 and "[artifact_invalid]" in err and "artifactType" in err, err
    assert_nothing_written(out)


def test_swapped_referrer_signed_by_an_untrusted_key_is_refused_and_nothing_written(
    registry: RegistryServer, repo: str, signed_pack: Path, signed_stack: Path, keys: dict[str, Path],
    tmp_path: Path
) -> None:
    pushed = push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    subject = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json", **{
        k: pushed["manifest"][k] for k in ("digest", "size")})
    # Mallory signs the same manifest and puts her envelope in place of alice's and bob's referrer.
    mallory_manifest = copy_unsigned(signed_stack, tmp_path / "mallory")
    sign_cli(mallory_manifest, keys["mallory"])
    envelope = mallory_manifest.with_name(mallory_manifest.name + ".dsse").read_bytes()
    store = Registry(parse_reference(f"oci://{registry.host}/{repo}"), push=True, plain_http=True)
    store.put_blob(envelope)
    swapped, _ = store.attach(referrer_manifest(Descriptor.of(ENVELOPE_MEDIA_TYPE, envelope), subject), subject,
                              artifact_type=ENVELOPE_ARTIFACT_TYPE)
    store._put_manifest(index([swapped]), referrers_tag(subject.digest), INDEX_MEDIA_TYPE)
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci://{registry.host}/{repo}:v1", out, *keys_args(keys, "alice", "bob"))
    assert code == 1 and "[referrer_mismatch]" in err, err
    assert_nothing_written(out)
    # With the swapped referrer removed and none left, a signed pack is still refused: the referrer is required.
    store._put_manifest(index([]), referrers_tag(subject.digest), INDEX_MEDIA_TYPE)
    code, doc, err = pull(f"oci://{registry.host}/{repo}:v1", out, *keys_args(keys, "alice", "bob"))
    assert code == 1 and "[referrer_missing]" in err, err
    assert_nothing_written(out)


def test_pull_verified_at_threshold_two_with_two_keys(
    registry: RegistryServer, repo: str, signed_pack: Path, signed_stack: Path, keys: dict[str, Path],
    tmp_path: Path
) -> None:
    push(signed_pack, f"oci://{registry.host}/{repo}:both")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci://{registry.host}/{repo}:both", out, *keys_args(keys, "alice", "bob"),
                          "--threshold", "2")
    assert code == 0, err
    assert doc is not None and doc["trust"]["threshold"] == 2 and len(doc["trust"]["signedBy"]) == 2, doc
    # The same stack signed by alice alone is short of the threshold: verified as lodec verify does, refused.
    alone = copy_unsigned(signed_stack, tmp_path / "alone")
    sign_cli(alone, keys["alice"])
    push(make_pack(alone, tmp_path / "alone.lodepack"), f"oci://{registry.host}/{repo}:alice")
    out2 = tmp_path / "out2" / "cr.lodepack"
    out2.parent.mkdir()
    code, doc, err = pull(f"oci://{registry.host}/{repo}:alice", out2, *keys_args(keys, "alice", "bob"),
                          "--threshold", "2")
    assert code == 1, err
    assert doc is not None and doc["ok"] is False
    assert "threshold_not_met" in {p["code"] for p in doc["problems"]}, doc["problems"]
    assert_nothing_written(out2)


def test_rollback_a_tag_moved_back_to_an_older_signed_version_is_refused(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    import lodec

    from .conftest import EXPIRES, SEED_SOURCES

    # 1.1.0 of the same stack, signed by the same people.
    newer = tmp_path / "newer"
    (newer / "steps").mkdir(parents=True)
    veins = [lodec.compile_file(src, lodec.skill_step_schema()) for src in SEED_SOURCES.values()]
    for name, vein in zip(SEED_SOURCES, veins):
        (newer / "steps" / f"{name}.vein").write_bytes(vein.data)
    manifest = newer / "code-review-stack.json"
    manifest.write_bytes(lodec.manifest_json(lodec.build_manifest(
        veins, name="code-review-pipeline", version="1.1.0", description="Lint, analyze, and AI-review code changes",
        entry="lint")))
    sign_cli(manifest, keys["alice"], "--expires", EXPIRES)
    sign_cli(manifest, keys["bob"])
    push(make_pack(manifest, tmp_path / "newer.lodepack"), f"oci://{registry.host}/{repo}:stable")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci://{registry.host}/{repo}:stable", out, *keys_args(keys, "alice"))
    assert code == 0 and doc is not None and doc["version"] == "1.1.0", err
    # Someone with push access moves the tag back to the older, validly signed 1.0.0.
    push(signed_pack, f"oci://{registry.host}/{repo}:stable")
    again = tmp_path / "out" / "again.lodepack"
    code, doc, err = pull(f"oci://{registry.host}/{repo}:stable", again, *keys_args(keys, "alice"))
    assert code == 1 and doc is not None and "rollback" in {p["code"] for p in doc["problems"]}, doc
    assert_nothing_written(again)


def test_pull_of_a_pack_signed_by_an_untrusted_key_is_refused(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci://{registry.host}/{repo}:v1", out, *keys_args(keys, "mallory"))
    assert code == 1 and doc is not None and doc["ok"] is False
    assert_nothing_written(out)


def test_pull_of_a_missing_tag_is_artifact_not_found(registry: RegistryServer, repo: str, keys: dict[str, Path],
                                                       tmp_path: Path) -> None:
    out = tmp_path / "cr.lodepack"
    code, doc, err = pull(f"oci://{registry.host}/{repo}:nope", out, *keys_args(keys, "alice"))
    assert code == 1 and "[artifact_not_found]" in err
    assert_nothing_written(out)


# ------------------------------------------------------------------ layout


def test_oci_layout_round_trip_with_referrer(signed_pack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    layout = tmp_path / "transfer"
    pushed = push(signed_pack, f"oci-layout:{layout}:v1")
    assert pushed["referrers"] == "layout"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    listed = json.loads((layout / "index.json").read_text())["manifests"]
    digest, referrer = pushed["manifest"]["digest"], pushed["referrer"]["digest"]
    assert [(d["digest"], (d.get("annotations") or {}).get("org.opencontainers.image.ref.name")) for d in listed] \
        == [(digest, "v1"), (referrer, None)]
    ref_doc = json.loads((layout / "blobs" / "sha256" / referrer.split(":")[1]).read_text())
    assert ref_doc["subject"]["digest"] == digest and ref_doc["artifactType"] == ENVELOPE_ARTIFACT_TYPE
    assert pushed["pinned"] == f"oci-layout:{layout}@{digest}"
    for n, ref in enumerate((f"oci-layout:{layout}:v1", f"oci-layout:{layout}@{digest}")):
        out = tmp_path / f"out{n}" / "cr.lodepack"
        out.parent.mkdir()
        code, doc, err = pull(ref, out, *keys_args(keys, "alice", "bob"), "--threshold", "2")
        assert code == 0, err
        assert out.read_bytes() == signed_pack.read_bytes()
        assert doc is not None and doc["referrers"] == "layout" and doc["referrer"]["digest"] == referrer


def test_oci_layout_tampered_blob_is_refused_and_nothing_written(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    layout = tmp_path / "transfer"
    pushed = push(signed_pack, f"oci-layout:{layout}:v1")
    blob = layout / "blobs" / "sha256" / pushed["layer"]["digest"].split(":")[1]
    for name, data in (("flipped", bytes([blob.read_bytes()[0] ^ 1]) + blob.read_bytes()[1:]),
                       ("endless", blob.read_bytes() + b"\0" * 4096)):
        blob.write_bytes(data)
        out = tmp_path / name / "cr.lodepack"
        out.parent.mkdir()
        code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
        assert code == 1 and "[digest_mismatch]" in err, (name, err)
        assert_nothing_written(out)


def test_oci_layout_push_again_keeps_good_blobs_and_rewrites_a_damaged_one(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    layout = tmp_path / "transfer"
    first = push(signed_pack, f"oci-layout:{layout}:v1")
    again = push(signed_pack, f"oci-layout:{layout}:v1")
    assert again["manifest"] == first["manifest"] and again["uploaded"] == 0 and again["skipped"] == 3
    blob = layout / "blobs" / "sha256" / first["layer"]["digest"].split(":", 1)[1]
    blob.write_bytes(b"\0" * blob.stat().st_size)  # damaged in place: same size, wrong bytes
    repaired = push(signed_pack, f"oci-layout:{layout}:v1")
    assert repaired["uploaded"] == 1 and repaired["skipped"] == 2
    assert blob.read_bytes() == signed_pack.read_bytes()
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
    assert code == 0 and out.read_bytes() == signed_pack.read_bytes(), err


def test_oci_layout_swapped_referrer_is_refused(
    signed_pack: Path, signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    layout = tmp_path / "transfer"
    pushed = push(signed_pack, f"oci-layout:{layout}:v1")
    mallory_manifest = copy_unsigned(signed_stack, tmp_path / "mallory")
    sign_cli(mallory_manifest, keys["mallory"])
    envelope = mallory_manifest.with_name(mallory_manifest.name + ".dsse").read_bytes()
    from lodec.dist.layout import Layout

    store = Layout(layout)
    subject = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json", **{
        k: pushed["manifest"][k] for k in ("digest", "size")})
    store.put_blob(envelope)
    store.attach(referrer_manifest(Descriptor.of(ENVELOPE_MEDIA_TYPE, envelope), subject), subject,
                 artifact_type=ENVELOPE_ARTIFACT_TYPE)
    doc = json.loads((layout / "index.json").read_text())
    doc["manifests"] = [d for d in doc["manifests"] if d["digest"] != pushed["referrer"]["digest"]]
    (layout / "index.json").write_text(json.dumps(doc))
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice", "bob"))
    assert code == 1 and "[referrer_mismatch]" in err, err
    assert_nothing_written(out)


# ------------------------------------------------------------------ usage


@pytest.mark.parametrize("command", ["push", "pull"])
def test_plain_http_to_a_non_loopback_host_is_refused(command: str, signed_pack: Path, keys: dict[str, Path],
                                                      tmp_path: Path) -> None:
    ref = "oci://registry.example.com/team/cr:v1"
    args = [signed_pack, ref] if command == "push" else [ref, "-o", tmp_path / "x.lodepack", "--key",
                                                          f"{keys['alice']}.pub"]
    code, _, err = run_cli(command, *args, "--plain-http")
    assert code == 2 and "loopback" in err and "TLS" in err, err
    assert not (tmp_path / "x.lodepack").exists()


@pytest.mark.parametrize("command", ["pull", "unpack"])
def test_pull_or_unpack_without_keys_or_unsigned_or_with_both_is_a_usage_error(
    command: str, keys: dict[str, Path], tmp_path: Path
) -> None:
    args = ([f"oci-layout:{tmp_path}:v1", "-o", tmp_path / "x.lodepack"] if command == "pull"
            else [tmp_path / "x.lodepack", "-o", tmp_path / "out"])
    code, _, err = run_cli(command, *args)
    assert code == 2 and f"{command} verifies signatures first" in err and "--unsigned" in err, err
    code, _, err = run_cli(command, *args, "--unsigned", "--key", f"{keys['alice']}.pub")
    assert code == 2 and "--unsigned cannot be combined with --key" in err, err
    assert not (tmp_path / "x.lodepack").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", [
    "oci://", "oci://host", "oci://host/", "oci://host/Upper:v1", "oci://host/repo:bad tag", "oci://host/r@sha256:12",
    "oci://ho st/r:v1", "docker://host/r:v1", "oci-layout:", "oci-layout:dir@md5:00",
    # path characters in a repository or tag (they end up in request paths):
    "oci://host/repo:..", "oci://host/../repo:v1", "oci://host/repo/..:v1", "oci://host/repo:v1%2f..",
    "oci://host/repo:../../x", "oci://host/repo:.hidden", "oci://host//etc/passwd:v1", "oci://host/repo:v1?x=1",
])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ReferenceInvalid):
        parse_reference(text)


def test_references_parse() -> None:
    r = parse_reference("oci://localhost:5000/a/b-c:1.0.0")
    assert (r.host, r.repository, r.tag, r.digest, r.hostname) == ("localhost:5000", "a/b-c", "1.0.0", None,
                                                                   "localhost")
    d = "sha256:" + "ab" * 32
    r = parse_reference(f"oci://[::1]:5000/a@{d}")
    assert (r.hostname, r.digest, r.tag) == ("::1", d, None)
    r = parse_reference("oci-layout:/tmp/x:y/out:v2")
    assert (r.directory, r.tag) == ("/tmp/x:y/out", "v2")
    assert parse_reference("oci-layout:./out").tag is None


# ------------------------------------------------------------------ authentication

#: bcrypt (cost 4) of "correct horse" for the user "tester": the registry's htpasswd line.
_HTPASSWD = "tester:$2b$04$91Lbsw5Dp3rJsgRCMsxlIuvCfhrxZssLkp4Uqjz89kl9QXuR5Ch8q\n"


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if registry_binary() is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    server = RegistryServer(tmp_path_factory.mktemp("private-registry"), htpasswd=_HTPASSWD)
    yield server
    server.stop()


def docker_config(folder: Path, doc: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(doc))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    monkeypatch.delenv("LODEC_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("LODEC_REGISTRY_PASSWORD", raising=False)


def test_credentials_from_the_docker_config_file_push_and_pull(
    private_registry: RegistryServer, signed_pack: Path, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    ref = f"oci://{private_registry.host}/team/cr:v1"
    docker_config(tmp_path / "anonymous", {}, monkeypatch)
    code, _, err = run_cli("push", signed_pack, ref, "--plain-http")
    assert code == 1 and "[registry_auth]" in err and "no credentials" in err, err
    docker_config(tmp_path / "wrong", {"auths": {private_registry.host: {
        "auth": base64.b64encode(b"tester:wrong").decode()}}}, monkeypatch)
    code, _, err = run_cli("push", signed_pack, ref, "--plain-http")
    assert code == 1 and "[registry_auth]" in err and "config.json" in err, err
    docker_config(tmp_path / "right", {"auths": {f"http://{private_registry.host}/v2/": {
        "auth": base64.b64encode(b"tester:correct horse").decode()}}}, monkeypatch)
    push(signed_pack, ref)
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(ref, out, *keys_args(keys, "alice"))
    assert code == 0, err
    assert out.read_bytes() == signed_pack.read_bytes()


def test_attack_registry_credentials_are_not_sent_to_the_host_a_blob_download_is_redirected_to(
    private_registry: RegistryServer, signed_pack: Path, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry sends blob downloads to object storage on another host (here another loopback port): lodec
    follows, but the registry's credentials stay with the registry; the storage host never sees them."""
    from .registry import ObjectStorage, RedirectingRegistry

    docker_config(tmp_path / "empty", {}, monkeypatch)
    monkeypatch.setenv("LODEC_REGISTRY_USERNAME", "tester")
    monkeypatch.setenv("LODEC_REGISTRY_PASSWORD", "correct horse")
    storage = ObjectStorage(private_registry)
    front = RedirectingRegistry(private_registry, lambda digest: f"http://{storage.host}/{digest}")
    try:
        ref = f"oci://{front.host}/team/redirected:v1"
        push(signed_pack, ref)
        out = tmp_path / "out" / "cr.lodepack"
        out.parent.mkdir()
        code, _, err = pull(ref, out, *keys_args(keys, "alice"))
        assert code == 0, err
        assert out.read_bytes() == signed_pack.read_bytes()
        assert front.redirected >= 1 and storage.authorizations, "the blob download was not redirected"
        assert storage.authorizations == [None] * len(storage.authorizations), storage.authorizations
    finally:
        front.stop()
        storage.stop()


def test_attack_registry_credentials_are_not_sent_to_an_upload_location_on_another_host(
    private_registry: RegistryServer, signed_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry (or whoever answers for it) starts a blob upload with a ``Location`` on another host: lodec
    may send the blob there (registries do hand uploads to storage), but never the registry's credentials."""
    from .registry import ObjectStorage, UploadElsewhere

    docker_config(tmp_path / "empty", {}, monkeypatch)
    monkeypatch.setenv("LODEC_REGISTRY_USERNAME", "tester")
    monkeypatch.setenv("LODEC_REGISTRY_PASSWORD", "correct horse")
    elsewhere = ObjectStorage(private_registry)
    front = UploadElsewhere(private_registry, elsewhere.host)
    try:
        code, _, err = run_cli("push", signed_pack, f"oci://{front.host}/team/upload-elsewhere:v1", "--plain-http")
        assert code == 1 and "Traceback" not in err, err  # the other host stores nothing: the push fails
        assert elsewhere.authorizations, "the upload was not sent to the other host"
        assert elsewhere.authorizations == [None] * len(elsewhere.authorizations), elsewhere.authorizations
    finally:
        front.stop()
        elsewhere.stop()


def test_attack_an_upload_location_over_plain_http_off_loopback_is_refused_before_sending(
    registry: RegistryServer, repo: str, signed_pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --plain-http loopback registry hands the blob upload to plain HTTP off loopback (192.0.2.1, TEST-NET-1:
    never contacted): the pack would cross the network in clear. Refused before anything is sent, as for a
    redirect."""
    from lodec.dist import registry as client

    from .registry import UploadElsewhere

    monkeypatch.setattr(client, "TIMEOUT_S", 3.0)  # were the refused host contacted, fail fast rather than hang
    front = UploadElsewhere(registry, "192.0.2.1")
    try:
        code, _, err = run_cli("push", signed_pack, f"oci://{front.host}/{repo}:v1", "--plain-http")
        assert code == 1 and "[registry_error]" in err and "sends the upload to http://192.0.2.1/upload" in err \
            and "plain HTTP off loopback" in err, err
    finally:
        front.stop()


def test_credentials_from_a_docker_credential_helper_and_from_the_environment(
    private_registry: RegistryServer, signed_pack: Path, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-lodectest"
    # The Docker credential helper protocol: `get` reads the server on stdin, prints Username and Secret.
    helper.write_text("#!/bin/sh\nread server\n"
                      f"[ \"$server\" = \"{private_registry.host}\" ] || exit 1\n"
                      "echo '{\"ServerURL\": \"'$server'\", \"Username\": \"tester\", \"Secret\": \"correct horse\"}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    docker_config(tmp_path / "helper", {"credHelpers": {private_registry.host: "lodectest"}}, monkeypatch)
    push(signed_pack, f"oci://{private_registry.host}/team/helper:v1")
    docker_config(tmp_path / "none", {}, monkeypatch)
    monkeypatch.setenv("LODEC_REGISTRY_USERNAME", "tester")
    monkeypatch.setenv("LODEC_REGISTRY_PASSWORD", "correct horse")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = pull(f"oci://{private_registry.host}/team/helper:v1", out, *keys_args(keys, "alice"))
    assert code == 0, err


# ------------------------------------------------------------------ the whole way


@pytest.mark.parametrize("transfer", ["registry", "oci-layout"])
def test_a_stack_signed_by_two_people_pushed_then_pulled_on_a_clean_machine_verifies_and_runs(
    transfer: str, request: pytest.FixtureRequest, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import EXPIRES, ROOT

    if transfer == "registry":
        registry: RegistryServer = request.getfixturevalue("registry")
        where = f"oci://{registry.host}/{request.getfixturevalue('repo')}"
        pull_ref, pull_args = f"{where}:1.0.0", ["--plain-http"]
    else:  # air-gapped: the layout directory is all that crosses to the consumer
        where = f"oci-layout:{tmp_path / 'usb'}"
        pull_ref, pull_args = f"{where}:1.0.0", []

    example = ROOT / "stacks" / "code-review"
    publisher = tmp_path / "publisher"
    shutil.copytree(example, publisher)
    manifest = publisher / "code-review-stack.json"
    manifest.with_name(manifest.name + ".dsse").unlink(missing_ok=True)
    sign_cli(manifest, keys["alice"], "--expires", EXPIRES)
    sign_cli(manifest, keys["bob"])
    pushed = push(make_pack(manifest, tmp_path / "cr.lodepack"), where)
    shutil.rmtree(publisher)  # the publisher's files, skills included, are gone
    (tmp_path / "cr.lodepack").unlink()

    # The consumer's machine: the registry address and two public keys; no skills, no state.
    machine = tmp_path / "consumer"
    (machine / "keys").mkdir(parents=True)
    for who in ("alice", "bob"):
        shutil.copy(f"{keys[who]}.pub", machine / "keys" / f"{who}.pub")
    shutil.copytree(example / "fixture", machine / "project")
    (machine / "home").mkdir()
    monkeypatch.setenv("LODEC_HOME", str(machine / "home"))
    monkeypatch.chdir(machine)
    trusted = ["--key", "keys/alice.pub", "--key", "keys/bob.pub", "--threshold", "2", "--now", VERIFY_AT]
    code, out, err = run_cli("pull", pull_ref, "-o", "cr.lodepack", *pull_args, "--json", *trusted)
    assert code == 0, err
    assert json.loads(out)["manifest"]["digest"] == pushed["manifest"]["digest"]
    code, out, err = run_cli("run", "cr.lodepack", *trusted, "--workspace", "project", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "succeeded" and list(record["steps"]) == ["lint", "static-analysis", "ai-review"]


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A registry behind Bearer token authentication, with its token server, both on loopback."""
    from .registry import TokenServer

    if registry_binary() is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(root, "tester", "correct horse")
    server = RegistryServer(root, token=tokens.registry_config())
    yield server, tokens
    server.stop()
    tokens.stop()


def test_bearer_token_from_the_realm_with_docker_config_credentials(
    token_registry: tuple[RegistryServer, object], signed_pack: Path, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    server, tokens = token_registry
    ref = f"oci://{server.host}/team/cr:v1"
    docker_config(tmp_path / "none", {}, monkeypatch)
    code, _, err = run_cli("push", signed_pack, ref, "--plain-http")
    assert code == 1 and "[registry_auth]" in err, err
    docker_config(tmp_path / "right", {"auths": {server.host: {
        "auth": base64.b64encode(b"tester:correct horse").decode()}}}, monkeypatch)
    push(signed_pack, ref)
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = pull(ref, out, *keys_args(keys, "alice"))
    assert code == 0, err
    assert out.read_bytes() == signed_pack.read_bytes()
    assert tokens.issued >= 2  # one token for the push (pull,push), one for the pull


def test_credential_theft_a_token_realm_over_plain_http_off_loopback_gets_no_credentials(
    tmp_path_factory: pytest.TempPathFactory, signed_pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from .registry import TokenServer

    if registry_binary() is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("rogue-realm")
    tokens = TokenServer(root, "tester", "correct horse")
    # The registry sends clients to a plain-HTTP realm elsewhere (192.0.2.1 is TEST-NET-1: never contacted).
    server = RegistryServer(root, token=tokens.registry_config(realm="http://192.0.2.1/token"))
    try:
        docker_config(tmp_path / "right", {"auths": {server.host: {
            "auth": base64.b64encode(b"tester:correct horse").decode()}}}, monkeypatch)
        code, _, err = run_cli("push", signed_pack, f"oci://{server.host}/team/cr:v1", "--plain-http")
        assert code == 1 and "[registry_auth]" in err and "not HTTPS" in err, err
    finally:
        server.stop()
        tokens.stop()


# ------------------------------------------------------------------ an independent OCI client


def skopeo(*args: str) -> None:
    import subprocess

    exe = shutil.which("skopeo")
    if exe is None:
        unavailable("skopeo is not installed (apt-get install skopeo)")
    assert exe is not None
    done = subprocess.run([exe, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_skopeo_reads_the_layout_lodec_writes_and_copies_the_artifact_byte_for_byte(
    registry: RegistryServer, repo: str, signed_pack: Path, tmp_path: Path
) -> None:
    layout = tmp_path / "transfer"
    pushed = push(signed_pack, f"oci-layout:{layout}:v1")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{registry.host}/{repo}:v1")
    status, body = registry.get(f"/v2/{repo}/manifests/v1", accept="application/vnd.oci.image.manifest.v1+json")
    assert status == 200
    import hashlib

    assert "sha256:" + hashlib.sha256(body).hexdigest() == pushed["manifest"]["digest"]
    assert registry.blob_file(pushed["layer"]["digest"]).read_bytes() == signed_pack.read_bytes()


def test_lodec_pulls_from_a_layout_skopeo_wrote(
    registry: RegistryServer, repo: str, seed_stack: Path, tmp_path: Path
) -> None:
    unsigned = make_pack(seed_stack, tmp_path / "unsigned.lodepack")
    push(unsigned, f"oci://{registry.host}/{repo}:v1")
    layout = tmp_path / "by-skopeo"
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/{repo}:v1", f"oci:{layout}:v1")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci-layout:{layout}:v1", out, "--unsigned")
    assert code == 0, err
    assert out.read_bytes() == unsigned.read_bytes()


# ------------------------------------------------------------------ golden vectors


def test_golden_oci_manifests(seed_stack: Path, tmp_path: Path) -> None:
    from lodec.dist.oci import MANIFEST_MEDIA_TYPE, PACK_MEDIA_TYPE, TITLE, pack_manifest, sha256_digest
    from .conftest import ROOT

    golden = json.loads((ROOT / "tests" / "golden" / "oci-manifests.json").read_text())
    seed = make_pack(seed_stack, tmp_path / "seed.lodepack")
    layer = Descriptor.of(PACK_MEDIA_TYPE, seed.read_bytes(), annotations={TITLE: "seed.lodepack"})
    manifest = pack_manifest(layer, name="code-review-pipeline", version="1.0.0")
    assert manifest.decode() == golden["packManifest"]["json"]
    assert sha256_digest(manifest) == golden["packManifest"]["digest"]
    envelope = golden["envelope"].encode()
    referrer = referrer_manifest(Descriptor.of(ENVELOPE_MEDIA_TYPE, envelope),
                                 Descriptor.of(MANIFEST_MEDIA_TYPE, manifest))
    assert referrer.decode() == golden["referrerManifest"]["json"]
    assert sha256_digest(referrer) == golden["referrerManifest"]["digest"]
    # The command writes exactly these bytes.
    pushed = push(seed, f"oci-layout:{tmp_path / 'layout'}:1.0.0")
    assert pushed["manifest"]["digest"] == golden["packManifest"]["digest"]


def test_text_output_and_progress_lines(signed_pack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    layout = tmp_path / "transfer"
    code, out, err = run_cli("push", signed_pack, f"oci-layout:{layout}")
    assert code == 0, err
    assert f"Pushed code-review-pipeline 1.0.0 (signed) → oci-layout:{layout}:1.0.0" in out
    assert "Manifest digest: sha256:" in out and "Envelope referrer: sha256:" in out
    assert "Pushed pack sha256:" in err and "Attached envelope referrer" in err  # progress, also off a terminal
    target = tmp_path / "got" / "cr.lodepack"
    code, out, err = run_cli("pull", f"oci-layout:{layout}:1.0.0", "-o", target, "--key", f"{keys['alice']}.pub",
                             "--key", f"{keys['bob']}.pub", "--threshold", "2", "--now", VERIFY_AT,
                             "--state", tmp_path / "state.json")
    assert code == 0, err
    assert "Verified code-review-pipeline 1.0.0 from oci-layout:" in out and "Signed by 2 of 2 required trusted key(s): " in out
    assert "; expires 2027-01-01T00:00:00Z" in out  # threshold and expiry, as lodec verify prints them
    assert f"Wrote {target} and {target}.dsse" in out
    assert "Pulled pack sha256:" in err and "digest checked" in err
    code, out, err = run_cli("push", signed_pack, f"oci-layout:{layout}", "-q")
    assert code == 0 and err == ""


# ------------------------------------------------------------------ redirects


@pytest.mark.parametrize("where", ["http://192.0.2.1/cdn/{digest}", "file:///etc/passwd",
                                   "ftp://127.0.0.1/{digest}"])
def test_attack_blob_redirect_to_plain_http_off_loopback_or_another_scheme_is_refused(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A registry (or whoever answers for it) sends the blob download elsewhere: to a plain-HTTP host off
    loopback (192.0.2.1, TEST-NET-1: never contacted), to file://, to another scheme. lodec speaks TLS to
    registries, plain HTTP only on loopback: the redirect is refused before anything is sent there, nothing is
    written. A redirect to another loopback registry is followed (object storage is a normal place for blobs)."""
    from lodec.dist import registry as client

    from .registry import RedirectingRegistry

    monkeypatch.setattr(client, "TIMEOUT_S", 3.0)  # were the refused host contacted, fail fast rather than hang
    pushed = push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    front = RedirectingRegistry(registry, lambda digest: where.format(digest=digest))
    try:
        out = tmp_path / "out" / "cr.lodepack"
        out.parent.mkdir()
        code, doc, err = pull(f"oci://{front.host}/{repo}:v1", out, *keys_args(keys, "alice"))
        assert code == 1 and "[registry_error]" in err and "redirect" in err, err
        assert front.redirected == 1
        assert_nothing_written(out)
    finally:
        front.stop()
    # The same front sending blobs to the registry itself over loopback: followed, the pull verifies.
    good = RedirectingRegistry(registry, lambda digest: f"http://{registry.host}/v2/{repo}/blobs/{digest}")
    try:
        out = tmp_path / "ok" / "cr.lodepack"
        out.parent.mkdir()
        code, doc, err = pull(f"oci://{good.host}/{repo}@{pushed['manifest']['digest']}", out,
                              *keys_args(keys, "alice"))
        assert code == 0, err
        assert good.redirected >= 1 and out.read_bytes() == signed_pack.read_bytes()
    finally:
        good.stop()


def test_attack_layout_entries_and_blobs_leading_out_of_the_layout_are_refused_without_hanging(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """A layout prepared by someone else: index.json entries whose digest is a path (``../``, absolute), the pack
    blob replaced by a FIFO (no writer: a blocking open would hang the pull), by a link to /dev/zero (endless
    bytes) or to a file outside the layout. Each is refused with a one-line error; nothing is written."""
    import os

    layout = tmp_path / "transfer"
    pushed = push(signed_pack, f"oci-layout:{layout}:v1")
    index_file = layout / "index.json"
    original = index_file.read_bytes()
    doc = json.loads(original)
    for i, bad in enumerate(("sha256:../../../../etc/passwd", "/etc/passwd", "sha256:" + "A" * 64)):
        entry = dict(doc["manifests"][0], digest=bad)
        index_file.write_text(json.dumps({**doc, "manifests": [entry]}))
        out = tmp_path / f"path{i}" / "cr.lodepack"
        out.parent.mkdir()
        code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
        assert code == 1 and "[artifact_not_found]" in err, err  # the entry is not a sha256 descriptor: skipped
        assert_nothing_written(out)
    index_file.write_bytes(original)
    blob = layout / "blobs" / "sha256" / pushed["layer"]["digest"].split(":")[1]
    saved = blob.read_bytes()
    outside = tmp_path / "outside.lodepack"
    outside.write_bytes(saved)
    for name, plant in (("fifo", lambda: os.mkfifo(blob)), ("zero", lambda: blob.symlink_to("/dev/zero")),
                        ("outside", lambda: blob.symlink_to(outside))):
        blob.unlink()
        plant()
        out = tmp_path / name / "cr.lodepack"
        out.parent.mkdir()
        code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
        assert code == 1 and ("FIFO" in err or "symbolic link" in err), (name, err)
        assert err.count("\n") == 1, err
        assert_nothing_written(out)
    blob.unlink()
    blob.write_bytes(saved)
    out = tmp_path / "ok" / "cr.lodepack"
    out.parent.mkdir()
    assert pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))[0] == 0  # restored: it pulls


def test_a_layout_holding_many_artifacts_still_finds_the_referrer_of_the_last_push(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """A layout used as an archive: 80 other artifacts pushed into it before this signed pack (other versions,
    other tools' artifacts). Its referrer is found, however many entries come before it."""
    from lodec.dist.layout import Layout
    from lodec.dist.oci import ARTIFACT_TYPE, EMPTY_BLOB, PACK_MEDIA_TYPE, pack_manifest

    layout = tmp_path / "archive"
    store = Layout(layout)
    store.put_blob(EMPTY_BLOB)
    for i in range(80):
        data = f"pack {i}".encode()
        store.put_blob(data)
        store.put_manifest(pack_manifest(Descriptor.of(PACK_MEDIA_TYPE, data), name="other", version=f"0.{i}"),
                           f"0.{i}", artifact_type=ARTIFACT_TYPE)
    pushed = push(signed_pack, f"oci-layout:{layout}:v1")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    code, doc, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
    assert code == 0, err
    assert doc is not None and doc["referrer"]["digest"] == pushed["referrer"]["digest"]


def test_attack_hostile_manifests_duplicate_keys_deep_nesting_swapped_media_type_are_refused(
    registry: RegistryServer, repo: str, signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """Manifests a registry stores as sent, made to be read one way by the registry (Go: the last duplicate key
    wins) and another by a lenient client: ``layers`` given twice (a decoy pack, then the real one), 5 000
    levels of nesting in an unknown field, the manifest declaring itself an image index. Each refused
    (artifact_invalid), nothing written."""
    from lodec.dist.oci import EMPTY_BLOB, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE

    pushed = push(signed_pack, f"oci://{registry.host}/{repo}:v1")
    store = Registry(parse_reference(f"oci://{registry.host}/{repo}"), push=True, plain_http=True)
    store.put_blob(EMPTY_BLOB)
    decoy = b"a decoy that is not the signed pack"
    store.put_blob(decoy)
    real = json.dumps({**pushed["layer"], "mediaType": "application/vnd.lodec.lodepack.v1"})
    fake = json.dumps(Descriptor.of("application/vnd.lodec.lodepack.v1", decoy).to_json())
    empty = json.dumps(Descriptor.of("application/vnd.oci.empty.v1+json", EMPTY_BLOB).to_json())
    head = (f'{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","artifactType":"application/vnd.lodec.stack.v1",'
            f'"config":{empty},')
    hostile = {
        "duplicate": (head + f'"layers":[{fake}],"layers":[{real}]}}').encode(),
        "nested": (head + f'"layers":[{real}],"x":' + "[" * 5000 + "]" * 5000 + "}").encode(),
        "index": (head.replace(MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE) + f'"layers":[{real}]}}').encode(),
    }
    pulled = []
    for name, data in hostile.items():
        try:
            store._put_manifest(data, name, MANIFEST_MEDIA_TYPE)
        except Exception as exc:  # the registry refused to store it: nothing for a client to misread
            assert "registry_error" in repr(exc) or "400" in str(exc), exc
            continue
        out = tmp_path / name / "cr.lodepack"
        out.parent.mkdir()
        code, _, err = pull(f"oci://{registry.host}/{repo}:{name}", out, *keys_args(keys, "alice"))
        assert code == 1 and "[artifact_invalid]" in err, (name, err)
        assert_nothing_written(out)
        pulled.append(name)
    assert "duplicate" in pulled and "nested" in pulled, pulled  # the registry stored these as sent


def test_attack_a_referrers_list_of_a_million_entries_is_refused_unfetched(
    registry: RegistryServer, referrers_proxy: ReferrersProxy, repo: str, signed_pack: Path,
    keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The referrers API answers with more envelope referrers than anyone signs (a million would be ~200 MB:
    the 4 MiB bound stops it; 20 000 fit under it, and lodec fetches at most 64). Refused before any is
    fetched, nothing written."""
    pushed = push(signed_pack, f"oci://{referrers_proxy.host}/{repo}:v1")
    digest = pushed["manifest"]["digest"]
    key = (repo, digest)
    saved = list(referrers_proxy.referrers.get(key, []))
    # lodec hangs up on an answer over its bound: the proxy's "broken pipe" is expected, not printed.
    monkeypatch.setattr(referrers_proxy.server, "handle_error", lambda *args: None)
    try:
        for count, expected in ((1_000_000, "limit_exceeded"), (20_000, "limit_exceeded")):
            referrers_proxy.referrers[key] = [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 500,
                 "digest": "sha256:" + f"{i:064x}", "artifactType": ENVELOPE_ARTIFACT_TYPE} for i in range(count)]
            out = tmp_path / str(count) / "cr.lodepack"
            out.parent.mkdir()
            code, _, err = pull(f"oci://{referrers_proxy.host}/{repo}@{digest}", out, *keys_args(keys, "alice"))
            assert code == 1 and f"[{expected}]" in err, err
            assert_nothing_written(out)
    finally:
        referrers_proxy.referrers[key] = saved


def test_attack_pull_output_planted_as_a_link_is_replaced_not_written_through(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """``-o PACK`` and ``PACK.dsse`` planted as links to a file elsewhere (say ~/.bashrc): a refused pull leaves
    the links and their targets alone; a verified pull replaces the links with the files, the targets unchanged."""
    layout = tmp_path / "transfer"
    push(signed_pack, f"oci-layout:{layout}:v1")
    victim = tmp_path / "victim.rc"
    victim.write_text("export PATH=/usr/bin\n")
    out = tmp_path / "out" / "cr.lodepack"
    out.parent.mkdir()
    out.symlink_to(victim)
    out.with_name(out.name + ".dsse").symlink_to(victim)
    code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "mallory"))  # not a signer: refused
    assert code == 1 and out.is_symlink() and victim.read_text() == "export PATH=/usr/bin\n", err
    code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
    assert code == 0, err
    assert not out.is_symlink() and out.read_bytes() == signed_pack.read_bytes()
    assert not out.with_name(out.name + ".dsse").is_symlink()
    assert victim.read_text() == "export PATH=/usr/bin\n"


def test_attack_push_into_a_layout_whose_blobs_folder_is_a_link_writes_nothing_elsewhere(
    signed_pack: Path, tmp_path: Path
) -> None:
    """A layout directory prepared by someone else (a USB stick) whose ``blobs`` or ``blobs/sha256`` is a link
    to a folder outside it (say ~/.ssh): a push would write the blobs there. Refused (layout_invalid); nothing
    is written through the link, and index.json is not touched."""
    for linked in ("blobs", "blobs/sha256"):
        layout = tmp_path / linked.replace("/", "-") / "transfer"
        elsewhere = tmp_path / linked.replace("/", "-") / "elsewhere"
        elsewhere.mkdir(parents=True)
        layout.mkdir()
        (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (layout / linked).parent.mkdir(parents=True, exist_ok=True)
        (layout / linked).symlink_to(elsewhere)
        code, _, err = run_cli("push", signed_pack, f"oci-layout:{layout}:v1")
        assert code == 1 and "[layout_invalid]" in err and "link" in err, err
        assert list(elsewhere.rglob("*")) == [] and not (layout / "index.json").exists()


def test_attack_huge_index_or_manifest_in_a_layout_is_refused_unread(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """A layout whose index.json is 5 MiB (padding after the JSON), or whose index entry claims a 1 GiB manifest:
    refused by size (limit_exceeded) before it is read or parsed; nothing written."""
    layout = tmp_path / "transfer"
    push(signed_pack, f"oci-layout:{layout}:v1")
    index_file = layout / "index.json"
    original = index_file.read_bytes()
    index_file.write_bytes(original + b" " * (5 * 1024 * 1024))
    out = tmp_path / "big" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
    assert code == 1 and "[limit_exceeded]" in err, err
    assert_nothing_written(out)
    doc = json.loads(original)
    doc["manifests"][0]["size"] = 1 << 30
    index_file.write_text(json.dumps(doc))
    out = tmp_path / "claimed" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = pull(f"oci-layout:{layout}:v1", out, *keys_args(keys, "alice"))
    assert code == 1 and "[limit_exceeded]" in err, err
    assert_nothing_written(out)
