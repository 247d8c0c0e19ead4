"""The pull command push prints works as printed: --plain-http when the push needed it, --unsigned for an
unsigned pack (pull refuses an unsigned pack given only --key, and a loopback registry over TLS)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from ..conftest import run_cli, unavailable
from ..registry import RegistryServer


def _pack(tmp_path: Path, seed_stack: Path, keys: dict[str, Path] | None) -> Path:
    if keys is not None:
        assert run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key")[0] == 0
    pack = tmp_path / "seed.lodepack"
    code, _out, err = run_cli("pack", seed_stack, "-o", pack)
    assert code == 0, err
    return pack


def _hint(out: str) -> list[str]:
    [line] = [line for line in out.splitlines() if line.startswith("Pull it with: ")]
    return shlex.split(line.removeprefix("Pull it with: "))


def test_the_printed_pull_of_an_unsigned_pack_works(tmp_path: Path, seed_stack: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # rollback state outside any repository: $LODEC_HOME
    pack = _pack(tmp_path, seed_stack, None)
    code, out, err = run_cli("push", pack, f"oci-layout:{tmp_path / 'layout'}")
    assert code == 0, err
    words = _hint(out)
    assert "--unsigned" in words and "--key" not in words
    words[words.index("PACK.lodepack")] = str(tmp_path / "got.lodepack")
    code, _out, err = run_cli(*words[1:])
    assert code == 0, err


def test_the_printed_pull_from_a_loopback_registry_works(tmp_path: Path, seed_stack: Path, keys: dict[str, Path],
                                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("docker-registry") is None:
        unavailable("docker-registry (Debian package docker-registry) is not installed")
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # rollback state outside any repository: $LODEC_HOME
    pack = _pack(tmp_path, seed_stack, keys)
    (tmp_path / "registry").mkdir()
    server = RegistryServer(tmp_path / "registry")
    try:
        code, out, err = run_cli("push", pack, f"oci://{server.host}/team/seed", "--plain-http")
        assert code == 0, err
        words = _hint(out)
        assert "--plain-http" in words and "--key" in words
        words[words.index("PACK.lodepack")] = str(tmp_path / "got.lodepack")
        words[words.index("KEY.pub")] = f"{keys['alice']}.pub"
        code, _out, err = run_cli(*words[1:])
        assert code == 0, err
        assert (tmp_path / "got.lodepack").read_bytes() == pack.read_bytes()
    finally:
        server.stop()
