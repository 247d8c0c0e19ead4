"""Trust policies: which public keys are trusted, and how many must sign.

A policy is a list of rules tried in order; the first whose ``stacks``
pattern (``fnmatch`` syntax, case-sensitive) matches the stack name
applies. Only names that follow the name rule of ``lodec.names`` (ASCII
letters, digits, ``. _ -``) match any rule: a look-alike such as
``rеlease-prod`` (Cyrillic ``е``) matches none, so it never falls through
to a weaker rule. Each rule names its trusted keys and a threshold ``t``:
a stack needs valid signatures from at least ``t`` **distinct** keys of that rule
(DSSE v1 "(t, n) multi-signature verification"; TUF's threshold).

``--key A.pub --key B.pub --threshold 2`` on the command line is the policy
with one rule ``stacks = "*"``. A policy file (TOML, ``docs/signing.md``)::

    version = 1

    [keys]
    alice = "keys/alice.pub"            # relative to the policy file
    bob = "ssh-ed25519 AAAAC3Nza... bob@example"   # or inline

    [[rules]]
    stacks = "release-*"
    keys = ["alice", "bob"]
    threshold = 2

    [[rules]]
    stacks = "*"
    keys = ["alice", "bob"]
    threshold = 1

Key lifecycle (``docs/signing.md`` §Key lifecycle): a key may be given as
a table with a validity window, and keyids may be revoked::

    revoked = ["sha256:57fc0694..."]    # these keys' signatures count for nothing

    [keys]
    carol = { key = "keys/carol.pub", not-before = 2026-01-01T00:00:00Z, not-after = 2027-01-01T00:00:00Z }

A signature by a revoked key, or by a key whose window does not hold the
verification time (``not-before <= now < not-after``), counts for nothing
toward any threshold and is reported as ``revoked`` / ``outside_window``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import EnvelopeError
from ..format.records import FrozenRecord
from ..names import is_safe_name
from .keys import PublicKey, load_public_key, parse_public_key
from .statement import date, datetime, format_time, parse_time, timezone

MAX_POLICY_BYTES = 1024 * 1024
_NO_WINDOWS: Mapping[str, KeyWindow] = {}  # the default's marker, never stored


class TrustRule(FrozenRecord):
    """One rule: stack-name ``pattern``, distinct trusted ``keys``, ``threshold`` (1 <= t <= len(keys))."""

    __slots__ = ("pattern", "keys", "threshold")
    pattern: str
    keys: tuple[PublicKey, ...]
    threshold: int

    def __init__(self, pattern: str, keys: tuple[PublicKey, ...], threshold: int) -> None:
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "threshold", threshold)


class KeyWindow(FrozenRecord):
    """A key's validity window: aware UTC bounds, either may be ``None`` (open)."""

    __slots__ = ("not_before", "not_after")
    not_before: datetime | None
    not_after: datetime | None

    def __init__(self, not_before: datetime | None = None, not_after: datetime | None = None) -> None:
        object.__setattr__(self, "not_before", not_before)
        object.__setattr__(self, "not_after", not_after)

    def holds(self, now: datetime) -> bool:
        """``not_before <= now < not_after`` (an open bound always holds)."""
        return ((self.not_before is None or self.not_before <= now)
                and (self.not_after is None or now < self.not_after))

    def describe(self) -> str:
        """``valid from A until B`` in RFC 3339 UTC, for messages."""
        parts = []
        if self.not_before is not None:
            parts.append(f"from {format_time(self.not_before)}")
        if self.not_after is not None:
            parts.append(f"until {format_time(self.not_after)}")
        return "valid " + " ".join(parts)


class TrustPolicy(FrozenRecord):
    """Ordered rules; ``rule_for(name)`` is the first that matches.

    ``revoked``: keyids whose signatures count for nothing. ``windows``:
    keyid -> ``KeyWindow``; a key outside its window at the verification
    time counts for nothing. ``key_status`` judges one key.
    """

    __slots__ = ("rules", "source", "revoked", "windows")
    rules: tuple[TrustRule, ...]
    source: str
    revoked: frozenset[str]
    windows: Mapping[str, KeyWindow]

    def __init__(self, rules: tuple[TrustRule, ...], source: str = "<policy>",
                 revoked: frozenset[str] = frozenset(), windows: Mapping[str, KeyWindow] = _NO_WINDOWS) -> None:
        setter = object.__setattr__
        setter(self, "rules", rules)
        setter(self, "source", source)
        setter(self, "revoked", revoked)
        setter(self, "windows", {} if windows is _NO_WINDOWS else windows)  # a fresh dict each, as default_factory

    def key_status(self, keyid: str, now: datetime | None) -> str:
        """``valid``, ``revoked`` or ``outside_window`` for a trusted key at ``now``.

        Without ``now`` (no reference time) a windowed key is ``outside_window``:
        a window that cannot be checked is not assumed to hold.
        """
        if keyid in self.revoked:
            return "revoked"
        window = self.windows.get(keyid)
        if window is not None and (now is None or not window.holds(now)):
            return "outside_window"
        return "valid"

    def rule_for(self, name: str) -> TrustRule | None:
        """The first rule whose pattern matches ``name`` (``fnmatch.fnmatchcase``), or ``None``.

        A name that breaks the name rule matches no rule (``None``). The
        empty name stands for "no name claimed" (an unreadable payload):
        it is matched as before, so the signatures are still checked and
        the payload then refused for what it is.
        """
        if name and not is_safe_name(name):
            return None
        for rule in self.rules:
            # "*" (every --key policy's one rule) matches every name: no pattern to translate and compile.
            if rule.pattern == "*" or _fnmatchcase(name, rule.pattern):
                return rule
        return None


def _fnmatchcase(name: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(name, pattern)


def _distinct(keys: Sequence[PublicKey]) -> tuple[PublicKey, ...]:
    seen: dict[str, PublicKey] = {}
    for k in keys:
        seen.setdefault(k.keyid, k)
    return tuple(seen.values())


def policy_from_keys(keys: Sequence[PublicKey], threshold: int | None = None) -> TrustPolicy:
    """The one-rule policy of ``--key``/``--threshold`` (threshold default 1).

    The same key given twice counts once.

    Raises:
        ValueError: no keys, or ``threshold`` not in 1..(distinct keys).
    """
    distinct = _distinct(keys)
    t = 1 if threshold is None else threshold
    if not distinct:
        raise ValueError("no trusted keys")
    if not 1 <= t <= len(distinct):
        raise ValueError(f"threshold {t} needs 1 to {len(distinct)} (the number of distinct trusted keys)")
    return TrustPolicy((TrustRule("*", distinct, t),), "--key")


def _fail(message: str, file: str, at: str) -> EnvelopeError:
    return EnvelopeError(message, code="policy_invalid", file=file, location=at)


#: Besides letters and digits: the name rule's ``. _ -`` and fnmatch's ``* ? [ ] !``.
_PATTERN_CHARACTERS = "._-*?[]!"


def parse_policy(data: bytes, *, file: str = "<policy>", base: str | os.PathLike[str] = ".") -> TrustPolicy:
    """Parse a TOML trust policy (see the module docstring). Key paths are relative to ``base``.

    Raises:
        EnvelopeError: code ``policy_invalid`` with the place (``/rules/0/threshold``).
        KeyInvalid: a named key file is not an Ed25519 public key.
        FileMissing, FileUnreadable, LimitExceeded: a named key file cannot
            be read or is over ``MAX_KEY_FILE_BYTES``.
    """
    import tomllib

    try:
        doc: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(f"not TOML: {exc}", file, "/") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and inline tables
        raise _fail("not a trust policy: arrays or tables nested too deeply", file, "/") from None
    if doc.get("version") != 1:
        raise _fail("version must be 1", file, "/version")
    extra = sorted(set(doc) - {"version", "keys", "rules", "revoked"})
    if extra:
        raise _fail(f"unknown field {extra[0]!r}", file, f"/{extra[0]}")
    revoked = _revoked(doc.get("revoked", []), file)
    keys_doc = doc.get("keys")
    if not isinstance(keys_doc, dict) or not keys_doc:
        raise _fail("[keys] must name at least one key: label = \"path/to/key.pub\"", file, "/keys")
    keys: dict[str, PublicKey] = {}
    windows: dict[str, KeyWindow] = {}
    for label, value in keys_doc.items():
        at = f"/keys/{label}"
        window = None
        if isinstance(value, dict):
            extra = sorted(set(value) - {"key", "not-before", "not-after"})
            if extra:
                raise _fail(f"unknown field {extra[0]!r} (a key table has key, not-before, not-after)",
                            file, f"{at}/{extra[0]}")
            window = KeyWindow(_when(value.get("not-before"), file, f"{at}/not-before"),
                               _when(value.get("not-after"), file, f"{at}/not-after"))
            if window.not_before and window.not_after and window.not_before >= window.not_after:
                raise _fail("not-after must be later than not-before", file, f"{at}/not-after")
            value, at = value.get("key"), f"{at}/key"
        if not isinstance(value, str) or not value.strip():
            raise _fail("must be a key file path or an inline public key", file, at)
        text = value.strip()
        if text.startswith(("ssh-", "-----BEGIN")):
            keys[label] = parse_public_key(text.encode("utf-8"), source=f"{file}#{at}")
        else:
            keys[label] = load_public_key(os.fspath(Path(base) / text))
        if window is not None and (window.not_before or window.not_after):
            kid = keys[label].keyid
            if windows.get(kid, window) != window:
                raise _fail(f"this key ({kid}) has another window under another label", file, f"/keys/{label}")
            windows[kid] = window
    rules_doc = doc.get("rules")
    if not isinstance(rules_doc, list) or not rules_doc:
        raise _fail("needs at least one [[rules]] table", file, "/rules")
    rules = []
    for i, rule in enumerate(rules_doc):
        at = f"/rules/{i}"
        if not isinstance(rule, dict):
            raise _fail("must be a table", file, at)
        extra = sorted(set(rule) - {"stacks", "keys", "threshold"})
        if extra:
            raise _fail(f"unknown field {extra[0]!r}", file, f"{at}/{extra[0]}")
        pattern = rule.get("stacks")
        if not isinstance(pattern, str) or not pattern:
            raise _fail('"stacks" must be a stack-name pattern such as "release-*" or "*"', file, f"{at}/stacks")
        # Only safe names are matched, so a character no safe name has (a look-alike, a space) makes a dead rule.
        bad = next((c for c in pattern if not (c.isascii() and (c.isalnum() or c in _PATTERN_CHARACTERS))), None)
        if bad is not None:
            raise _fail(f'"stacks" contains {ascii(bad)}, which no stack name has (names are A-Z a-z 0-9 . _ -; '
                        "patterns add * ? [ ] !), so the rule could never match", file, f"{at}/stacks")
        labels = rule.get("keys")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise _fail('"keys" must list key labels from [keys]', file, f"{at}/keys")
        for j, label in enumerate(labels):
            if label not in keys:
                raise _fail(f"no key {label!r} in [keys]", file, f"{at}/keys/{j}")
        distinct = _distinct([keys[x] for x in labels])
        threshold = rule.get("threshold")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= len(distinct):
            raise _fail(f"threshold must be an integer from 1 to {len(distinct)} (distinct keys in this rule)",
                        file, f"{at}/threshold")
        rules.append(TrustRule(pattern, distinct, threshold))
    return TrustPolicy(tuple(rules), file, revoked, windows)


_KEYID = r"sha256:[0-9a-f]{64}"  # compiled by `re` when a policy revokes keys


def _revoked(value: Any, file: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _fail('"revoked" must list keyids such as "sha256:<64 hex>" (lodec key id KEY.pub)', file, "/revoked")
    for i, keyid in enumerate(value):
        if not re.fullmatch(_KEYID, keyid):
            raise _fail(f"{keyid!r} is not a keyid: sha256:<64 lowercase hex> (lodec key id KEY.pub)",
                        file, f"/revoked/{i}")
    return frozenset(value)


def _when(value: Any, file: str, at: str) -> datetime | None:
    """A window bound: a TOML offset date-time, a date (midnight UTC) or an RFC 3339 string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _fail("has no time zone; write it with Z for UTC, e.g. 2027-01-01T00:00:00Z", file, at)
        return value.astimezone(timezone.utc).replace(microsecond=0)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError as exc:
            raise _fail(str(exc), file, at) from None
    raise _fail("must be an RFC 3339 date-time such as 2027-01-01T00:00:00Z", file, at)


def load_policy(path: str | os.PathLike[str], *, follow: bool = True) -> TrustPolicy:
    """Read and parse a policy file; key paths resolve beside it.

    A policy the user names (``--policy``) may be a symbolic link, followed
    (resolved once; key paths still resolve beside the path as given);
    ``follow=False`` (the workspace's default policy, which lodec finds
    itself) refuses a link. A FIFO or other special file is refused.

    Raises:
        EnvelopeError, KeyInvalid: as ``parse_policy``.
        FileMissing, FileUnreadable, LimitExceeded: the policy file (or a
            key file it names) cannot be read or is over its size limit.
    """
    from ..files import read_bounded

    label = os.fspath(path)
    data = read_bounded(path, MAX_POLICY_BYTES, follow=follow)
    return parse_policy(data, file=label, base=Path(path).parent)
