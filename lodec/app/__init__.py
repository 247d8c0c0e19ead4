"""The application layer: lodec's use cases, with typed inputs and results.

The command line parses arguments, calls one use case and renders its
result; the Python API calls the same functions. Modules:

- ``options``: ``TrustOptions`` (keys, threshold, policy, expected name, time) and ``OptionsError``;
- ``verify``: verify a target (manifest or pack, signed or not) — the one verification every command shares;
- ``build``: compile, inspect, schema check, stack build, import;
- ``signing``: keys, sign, pack, unpack;
- ``runs``: skills, lock, plan, run, resolve, artifact, journal, analytics, runs list and discard;
- ``engine``: run on Temporal workers (``run_temporal``) and be one (``serve_worker``); ``docs/temporal.md``;
- ``distribute``: push a pack to an OCI registry or image layout; pull one, verified before it is written.

Every use case that touches state takes the command's ``Workspace``. ``printable``
(``lodec.names``) is re-exported for the front end, which escapes text through it.
"""

from __future__ import annotations

from ..names import SPACE_SEPARATORS, printable
from ..store.workspace import Workspace

__all__ = ["SPACE_SEPARATORS", "Workspace", "printable"]
