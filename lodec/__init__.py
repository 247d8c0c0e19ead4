"""lodec: canonical compiled skill steps, fingerprinted stacks, verify before run.

Layers, bottom to top (``docs/architecture.md``): ``format`` (schemas,
canonical CBOR veins, fingerprints, packs) -> ``stack`` (manifests, the DAG,
the I/O-free verification core) -> ``sign`` (DSSE, policies, signed
verification) -> ``store`` (files, the ``Workspace``, rollback state, CAS,
run records) -> ``run`` / ``importers`` -> ``app`` (use cases) -> ``cli``.
The names below are the public API; import them from ``lodec``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

# Lazy attributes keep `lodec --version` and `import lodec` cheap.
_EXPORTS = {
    "Limits": "limits",
    "DEFAULT_LIMITS": "limits",
    "LodecError": "errors",
    "SchemaError": "errors",
    "SourceError": "errors",
    "DecodeError": "errors",
    "LimitExceeded": "errors",
    "UnsafeNameError": "errors",
    "StackError": "errors",
    "VerificationFailed": "errors",
    "Schema": "format.schema",
    "load_schema": "format.schema",
    "parse_schema": "format.schema",
    "builtin_schema": "format.schema",
    "skill_step_schema": "format.schema",
    "skill_stack_schema": "format.schema",
    "Vein": "format.codec",
    "encode_record": "format.codec",
    "decode_vein": "format.codec",
    "record_to_json": "format.codec",
    "compile_source": "format.compiler",
    "compile_file": "format.compiler",
    "compile_value": "format.compiler",
    "fingerprint_bytes": "format.fingerprint",
    "format_fingerprint": "format.fingerprint",
    "build_manifest": "stack.manifest",
    "manifest_json": "stack.manifest",
    "manifest_vein": "stack.manifest",
    "topological_order": "stack.manifest",
    "verify_stack": "stack.verify",
    "VerificationReport": "stack.verify",
    "VerifiedStack": "stack.verify",
    "verify_stack_files": "app.verify",
    "verify_target": "app.verify",
    "VerifyResult": "app.verify",
    "TrustOptions": "app.options",
    "Workspace": "store.workspace",
    "check_name": "names",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lodec' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .format.codec import Vein, decode_vein, encode_record, record_to_json
    from .format.compiler import compile_file, compile_source, compile_value
    from .errors import (
        DecodeError,
        LimitExceeded,
        LodecError,
        SchemaError,
        SourceError,
        StackError,
        UnsafeNameError,
        VerificationFailed,
    )
    from .format.fingerprint import fingerprint_bytes, format_fingerprint
    from .limits import DEFAULT_LIMITS, Limits
    from .app.options import TrustOptions
    from .app.verify import VerifyResult, verify_stack_files, verify_target
    from .store.workspace import Workspace
    from .names import check_name
    from .format.schema import Schema, builtin_schema, load_schema, parse_schema, skill_stack_schema, skill_step_schema
    from .stack.manifest import build_manifest, manifest_json, manifest_vein, topological_order
    from .stack.verify import VerificationReport, VerifiedStack, verify_stack
