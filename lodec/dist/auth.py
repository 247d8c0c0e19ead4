"""Registry credentials the usual way: the environment, then the Docker config file and its credential helpers.

Looked up, for a registry host ``HOST[:PORT]``, in this order:

1. ``LODEC_REGISTRY_USERNAME`` and ``LODEC_REGISTRY_PASSWORD`` (both set):
   for every registry the command talks to (CI secrets);
2. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (what
   ``docker login`` / ``oras login`` write): ``credHelpers[HOST]``, else
   ``credsStore`` -- a ``docker-credential-<name>`` program asked with
   ``get`` (the Docker credential helper protocol) -- else ``auths[HOST]``
   (``auth`` = base64 ``user:password``, or ``username``/``password``, or
   ``identitytoken``). Keys written as URLs (``https://HOST/v1/``) match too.

No credentials means anonymous access (a registry may still hand out an
anonymous token for public repositories).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import msgspec

from ..errors import DistributionError, FileMissing
from ..files import read_bounded
from ..limits import Limits
from .oci import parse_json

USERNAME_ENV = "LODEC_REGISTRY_USERNAME"
PASSWORD_ENV = "LODEC_REGISTRY_PASSWORD"
_CONFIG_LIMITS = Limits(max_file_bytes=1024 * 1024, max_json_depth=8)
#: What a credential helper's answer may hold; a helper printing more is refused.
_HELPER_OUTPUT_BYTES = 64 * 1024
_DOCKER_HUB = "https://index.docker.io/v1/"


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """A user name and password (or an OAuth2 ``identity_token``), and where they came from (for messages)."""

    username: str = ""
    password: str = ""
    identity_token: str | None = None
    source: str = ""

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    env = os.environ if env is None else env
    folder = env.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def _auth_error(message: str, file: str, location: str | None = None) -> DistributionError:
    return DistributionError(message, code="registry_auth", file=file, location=location)


def _host_of(key: str) -> str:
    """A config key as a host: ``https://HOST/v1/`` -> ``HOST``."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            break
    return key.split("/", 1)[0]


def _keys_for(host: str) -> set[str]:
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        return {"docker.io", "registry-1.docker.io", "index.docker.io"}
    return {host}


def find_credentials(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for ``host`` (``HOST[:PORT]``), or ``None`` for anonymous access.

    Raises:
        DistributionError: ``registry_auth``: the Docker config file is not
            valid JSON, an entry is malformed, or a credential helper is
            missing, fails, or answers with something that is not its protocol's JSON.
    """
    env = os.environ if env is None else env
    user, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
    if user and password:
        return Credentials(username=user, password=password, source=f"${USERNAME_ENV}")
    path = config_path(env)
    try:
        data = read_bounded(path, _CONFIG_LIMITS.max_file_bytes, follow=True)
    except FileMissing:
        return None
    where = os.fspath(path)
    doc = parse_json(data, where, limits=_CONFIG_LIMITS, error=_auth_error)
    keys = _keys_for(host)
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _host_of(key) in keys and isinstance(helper, str):
                return _from_helper(helper, key, where, env)
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        found = _from_helper(store, _DOCKER_HUB if "docker.io" in keys else host, where, env, missing_ok=True)
        if found is not None:
            return found
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _host_of(key) in keys and isinstance(entry, dict):
            return _from_entry(entry, where, f"/auths/{key}")
    return None


def _from_entry(entry: dict[str, object], where: str, location: str) -> Credentials | None:
    token = entry.get("identitytoken")
    user, password = entry.get("username"), entry.get("password")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _auth_error("auth is not base64 of user:password", where, f"{location}/auth") from None
        if not sep:
            raise _auth_error("auth is not base64 of user:password", where, f"{location}/auth")
    if isinstance(token, str) and token:
        return Credentials(username=user if isinstance(user, str) else "", identity_token=token, source=where)
    if isinstance(user, str) and isinstance(password, str) and (user or password):
        return Credentials(username=user, password=password, source=where)
    return None


def _from_helper(helper: str, server: str, where: str, env: Mapping[str, str], *,
                 missing_ok: bool = False) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` for ``server`` (the Docker credential helper protocol), found on
    ``env``'s ``PATH`` and run with ``env``."""
    if not helper.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise _auth_error(f"credential helper name {helper!r} is not a plain name", where)
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, "get"], input=server.encode("utf-8"), capture_output=True, timeout=60,
                              check=False, env=dict(env))
    except FileNotFoundError:
        raise _auth_error(f"credential helper {program} is not installed (named in the Docker config)", where) \
            from None
    except subprocess.TimeoutExpired:
        raise _auth_error(f"credential helper {program} did not answer within 60 s", where) from None
    out = done.stdout[:_HELPER_OUTPUT_BYTES + 1]
    if done.returncode != 0:
        if missing_ok or b"credentials not found" in (out + done.stderr).lower():
            return None
        raise _auth_error(f"credential helper {program} failed (exit {done.returncode})", where)
    try:
        if len(out) > _HELPER_OUTPUT_BYTES:
            raise ValueError("too long")
        answer = json.loads(out)
        user, secret = answer["Username"], answer["Secret"]
        if not isinstance(user, str) or not isinstance(secret, str):
            raise ValueError("not text")
    except (ValueError, KeyError, TypeError):
        raise _auth_error(f"credential helper {program} gave no Username and Secret", where) from None
    if user == "<token>":  # the protocol's marker for an identity (refresh) token
        return Credentials(identity_token=secret, source=program)
    return Credentials(username=user, password=secret, source=program)
