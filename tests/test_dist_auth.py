"""Credential lookup for registries (lodec.dist.auth): environment, Docker config file, credential helpers.

The end-to-end checks against real registries (htpasswd, token) are in tests/test_dist.py; these pin the
lookup rules themselves, including the refusals.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from lodec.dist.auth import find_credentials
from lodec.errors import DistributionError


def config(tmp_path: Path, doc: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": "/usr/bin:/bin"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_environment_comes_first(tmp_path: Path) -> None:
    env = config(tmp_path, {"auths": {"r.example": {"auth": b64("cfg:pw")}}})
    env.update(LODEC_REGISTRY_USERNAME="ci", LODEC_REGISTRY_PASSWORD="secret")
    creds = find_credentials("r.example", env)
    assert creds is not None and (creds.username, creds.password) == ("ci", "secret")
    assert "secret" not in repr(creds)


@pytest.mark.parametrize("key", ["r.example:5000", "https://r.example:5000", "https://r.example:5000/v2/",
                                 "http://r.example:5000/v1/"])
def test_auths_keys_match_as_docker_writes_them(key: str, tmp_path: Path) -> None:
    env = config(tmp_path, {"auths": {key: {"auth": b64("u:p:with:colons")}}})
    creds = find_credentials("r.example:5000", env)
    assert creds is not None and (creds.username, creds.password) == ("u", "p:with:colons")
    assert find_credentials("other.example:5000", env) is None
    assert find_credentials("r.example", env) is None  # another port is another registry


def test_username_password_and_identity_token_entries(tmp_path: Path) -> None:
    env = config(tmp_path, {"auths": {"a.example": {"username": "u", "password": "p"},
                                      "b.example": {"identitytoken": "refresh-me"}}})
    a, b = find_credentials("a.example", env), find_credentials("b.example", env)
    assert a is not None and (a.username, a.password, a.identity_token) == ("u", "p", None)
    assert b is not None and b.identity_token == "refresh-me"


def test_no_config_file_is_anonymous(tmp_path: Path) -> None:
    assert find_credentials("r.example", {"DOCKER_CONFIG": str(tmp_path / "none")}) is None


@pytest.mark.parametrize("doc", [{"auths": {"r.example": {"auth": "%%%not base64"}}},
                                 {"auths": {"r.example": {"auth": b64("no colon")}}}])
def test_a_malformed_auth_entry_is_a_clear_error(doc: object, tmp_path: Path) -> None:
    with pytest.raises(DistributionError) as err:
        find_credentials("r.example", config(tmp_path, doc))
    assert err.value.code == "registry_auth" and err.value.location == "/auths/r.example/auth"


@pytest.mark.parametrize("text", ['{"auths": {"r.example": {}, "r.example": {}}}', '["auths"]'])
def test_a_config_file_that_is_not_a_json_object_is_a_clear_error(text: str, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(DistributionError) as err:
        find_credentials("r.example", {"DOCKER_CONFIG": str(tmp_path)})
    assert err.value.code == "registry_auth" and "config.json" in str(err.value)


def helper(tmp_path: Path, name: str, script: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / f"docker-credential-{name}"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}:/usr/bin:/bin"


def test_cred_helpers_and_creds_store(tmp_path: Path) -> None:
    path = helper(tmp_path, "one", 'read s; echo \'{"Username": "helper-user", "Secret": "helper-secret"}\'\n')
    path = helper(tmp_path, "store", 'read s; [ "$s" = "s.example" ] || { echo "credentials not found"; exit 1; }\n'
                                     'echo \'{"Username": "<token>", "Secret": "id-token"}\'\n')
    env = config(tmp_path, {"credHelpers": {"h.example": "one"}, "credsStore": "store",
                            "auths": {"a.example": {"auth": b64("u:p")}}})
    env["PATH"] = path
    h = find_credentials("h.example", env)
    assert h is not None and (h.username, h.password) == ("helper-user", "helper-secret")
    s = find_credentials("s.example", env)
    assert s is not None and s.identity_token == "id-token"  # "<token>": the protocol's identity-token marker
    a = find_credentials("a.example", env)  # the store has none for it: auths answers
    assert a is not None and (a.username, a.password) == ("u", "p")


def test_a_missing_or_broken_credential_helper_is_a_clear_error(tmp_path: Path) -> None:
    env = config(tmp_path, {"credHelpers": {"h.example": "absent"}})
    with pytest.raises(DistributionError) as err:
        find_credentials("h.example", env)
    assert err.value.code == "registry_auth" and "docker-credential-absent" in err.value.message
    env = config(tmp_path, {"credHelpers": {"h.example": "noisy"}})
    env["PATH"] = helper(tmp_path, "noisy", "echo not json\n")
    with pytest.raises(DistributionError) as err:
        find_credentials("h.example", env)
    assert "gave no Username and Secret" in err.value.message
    env = config(tmp_path, {"credHelpers": {"h.example": "../../bin/sh"}})
    with pytest.raises(DistributionError) as err:
        find_credentials("h.example", env)
    assert "not a plain name" in err.value.message


def test_attack_a_docker_config_naming_a_credential_helper_by_path_cannot_run_a_program_off_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile (or planted) Docker config names ``credHelpers`` ``x/../../evil``: without the plain-name rule,
    ``docker-credential-x/../../evil`` is a relative path, and the program it resolves to from the current
    directory would run (and be handed the server name). It is refused before anything runs."""
    work = tmp_path / "a" / "b"
    (work / "docker-credential-x").mkdir(parents=True)
    marker = tmp_path / "ran"
    evil = tmp_path / "a" / "evil"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{\"Username\": \"u\", \"Secret\": \"s\"}}'\n")
    evil.chmod(0o755)
    monkeypatch.chdir(work)
    (tmp_path / "conf").mkdir()
    env = config(tmp_path / "conf", {"credHelpers": {"h.example": "x/../../evil"}})
    with pytest.raises(DistributionError) as err:
        find_credentials("h.example", env)
    assert err.value.code == "registry_auth" and "not a plain name" in err.value.message
    assert not marker.exists(), "the program named by path ran"
