"""The commands of the ``lodec`` command line (click), imported on first use by ``lodec.cli``.

``lodec.cli`` holds ``main`` (this module's group, loaded lazily), the
fast path for ``--version`` and ``verify``, and the helpers they share with
these commands (``_fail``, ``_emit``, ``_report_out``, ``_verify_target``).
Exit codes: 0 success, 1 invalid input or verification failed, 2 usage
error. Errors are one line on stderr (``lodec: FILE: LOCATION: message``);
``--json`` prints machine-readable results on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from . import _emit, _fail, _now, _policy, _report_out, _state_path, _verify_target
from ..errors import LodecError

if TYPE_CHECKING:
    from ..format.schema import Schema

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _schema(path: str | None, default: str) -> Schema:
    from ..format.schema import builtin_schema, load_schema

    return builtin_schema(default) if path is None else load_schema(path)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="lodec")
def main() -> None:
    """Compile agent workflow steps to canonical, fingerprinted .vein files,
    pin them in SkillStack manifests, sign and pack them, and verify a stack
    before anything runs.

    \b
    The main job, on the bundled example:
      lodec compile steps/*-step.json -o stacks/code-review/steps/
      lodec stack build stacks/code-review/steps/*.vein --name code-review-pipeline \\
          --version 1.0.0 --description "..." --entry lint -o stacks/code-review/code-review-stack.json
      lodec verify stacks/code-review/code-review-stack.json

    \b
    Signed distribution (docs/signing.md):
      lodec key generate alice
      lodec sign STACK.json --key alice.key --expires-in 30d
      lodec pack STACK.json -o NAME.lodepack
      lodec verify NAME.lodepack --key alice.pub [--key bob.pub --threshold 2]

    Exit codes: 0 ok, 1 invalid input or verification failed, 2 usage error.
    """


# ------------------------------------------------------------------ schema


@main.group(context_settings=CONTEXT)
def schema() -> None:
    """Validate .lode schemas."""


@schema.command("check", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
def schema_check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate FILES (.lode schemas) and print each schema's digest.

    A schema is {"schema": "lode", "version": N, "name": ..., "fields": [...],
    "reserved": [...]}; each field has a unique positive "id", a unique "name",
    a "type" (string, int, bool, bytes, T[] or map<string,T>) and "required".
    """
    from ..format.fingerprint import format_fingerprint
    from ..format.schema import load_schema

    results = []
    failed = False
    for path in files:
        try:
            s = load_schema(path)
        except LodecError as exc:
            failed = True
            results.append({"file": path, "ok": False, "error": exc.to_dict()})
            if not as_json:
                click.echo(f"lodec: {exc} [{exc.code}]", err=True)
            continue
        digest = format_fingerprint(s.digest)
        results.append(
            {"file": path, "ok": True, "name": s.name, "version": s.version, "fields": len(s.fields), "digest": digest}
        )
        if not as_json:
            click.echo(f"{path}: ok: {s.name} v{s.version}, {len(s.fields)} fields, schema digest {digest}")
    if as_json:
        _emit(results)
    sys.exit(1 if failed else 0)


# ----------------------------------------------------------------- compile


@main.command(context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="The .lode schema. Default: the built-in skill-step-v1.")
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="The .vein path for one source; a directory for several (or ending in /).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: source, output, bytes, fingerprint.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success (errors still go to stderr).")
def compile(sources: tuple[str, ...], schema_path: str | None, output: str, as_json: bool, quiet: bool) -> None:
    """Compile SOURCES (strict JSON records) into canonical .vein files.

    With several sources, OUTPUT is a directory and each record is written
    to OUTPUT/<stepName>.vein (or <name>.vein for schemas without stepName).
    Every source is checked before anything is written; files are written
    atomically. Prints the size and the BLAKE3 fingerprint of each.
    """
    from ..format.compiler import compile_file, default_output_path
    from ..files import atomic_write_many

    out = Path(output)
    to_dir = len(sources) > 1 or output.endswith(("/", "\\")) or out.is_dir()
    try:
        s = _schema(schema_path, "skill-step-v1")
        compiled = []
        targets: dict[Path, str] = {}
        with _progress(len(sources), "Compiling", quiet or as_json) as bar:
            for src in sources:
                vein = compile_file(src, s)
                target = default_output_path(src, vein, out) if to_dir else out
                if target in targets:
                    raise LodecError(
                        f"writes {target}, as does {targets[target]}", code="duplicate_output", file=src
                    )
                targets[target] = src
                compiled.append((src, target, vein))
                bar.update(1)
        atomic_write_many([(target, vein.data) for _src, target, vein in compiled])
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit([{"source": s_, "output": str(t), "bytes": v.size, "fingerprint": v.fingerprint} for s_, t, v in compiled])
    elif not quiet:
        for src, target, vein in compiled:
            click.echo(f"Compiled {src} → {target} ({vein.size} bytes)")
            click.echo(f"Fingerprint: {vein.fingerprint}")


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress(total: int, label: str, silent: bool) -> Any:
    # Progress only for long work on a terminal; quiet when piped.
    if silent or total < 200 or not sys.stderr.isatty():
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr)


# ----------------------------------------------------------------- inspect


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="The .lode schema. Default: found from the header among the built-in schemas.")
@click.option("--json", "as_json", is_flag=True, help="Also print the header and the fingerprint.")
def inspect(file: str, schema_path: str | None, as_json: bool) -> None:
    """Decode FILE (.vein) and print its record as source JSON.

    Decoding proves canonical form; compiling the printed JSON again gives
    identical bytes.
    """
    from ..format.codec import HEADER_SIZE, decode_vein, record_to_json
    from ..files import read_bounded
    from ..format.fingerprint import format_fingerprint
    from ..limits import DEFAULT_LIMITS
    from ..format.schema import BUILTIN_SCHEMAS, builtin_schema, load_schema

    try:
        data = read_bounded(file, DEFAULT_LIMITS.max_file_bytes)
        if schema_path is not None:
            s = load_schema(schema_path)
        else:
            candidates = [builtin_schema(n) for n in BUILTIN_SCHEMAS]
            match = [c for c in candidates if data[5:13] == c.schema_id]
            s = match[0] if match else candidates[0]
            if not match and data[:4] == b"VEIN" and len(data) >= HEADER_SIZE:
                raise LodecError(
                    f"schema id {data[5:13].hex()} is not a built-in schema; pass -s SCHEMA.lode",
                    code="schema_unknown",
                    file=file,
                    location="byte 5 (header)",
                )
        vein = decode_vein(data, s, file=file)
    except LodecError as exc:
        _fail(exc, as_json)
    record = record_to_json(vein.record, s)
    if as_json:
        _emit(
            {
                "file": file,
                "header": {"magic": "VEIN", "formatVersion": data[4], "schemaId": data[5:13].hex()},
                "schema": {"name": s.name, "version": s.version, "digest": format_fingerprint(s.digest)},
                "bytes": vein.size,
                "fingerprint": vein.fingerprint,
                "record": record,
            }
        )
    else:
        _emit(record)


# ------------------------------------------------------------------- stack


@main.group(context_settings=CONTEXT)
def stack() -> None:
    """Build SkillStack manifests."""


def _meta(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        if key in out:
            raise click.BadParameter(f"key {key!r} given twice", param_hint="--meta")
        out[key] = value
    return out


@stack.command("build", context_settings=CONTEXT)
@click.argument("veins", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Stack name (a safe name: A-Z a-z 0-9 . _ -).")
@click.option("--version", "version", required=True, help="Stack version, e.g. 1.0.0 (semantic versioning).")
@click.option("--description", required=True, help="One line saying what the stack does.")
@click.option("--entry", help="Entry point: a root step (one with no dependsOn).")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata entry; repeat for more.")
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="Schema of the steps. Default: the built-in skill-step-v1.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Manifest path (STACK.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and its digest as JSON.")
def stack_build(
    veins: tuple[str, ...],
    name: str,
    version: str,
    description: str,
    entry: str | None,
    meta: tuple[str, ...],
    schema_path: str | None,
    output: str,
    as_json: bool,
) -> None:
    """Write a SkillStack manifest pinning VEINS by fingerprint.

    Steps are listed in deterministic topological order (ties by name).
    Refuses duplicate step names, dangling dependsOn, cycles, and an entry
    point that is not a root. `lodec verify` expects the veins in steps/
    beside the manifest, named <stepName>.vein.
    """
    from ..format.codec import decode_vein
    from ..files import atomic_write, read_bounded
    from ..limits import DEFAULT_LIMITS
    from ..stack.manifest import build_manifest, manifest_json, manifest_vein

    metadata = _meta(meta)
    try:
        s = _schema(schema_path, "skill-step-v1")
        decoded = [decode_vein(read_bounded(p, DEFAULT_LIMITS.max_file_bytes), s, file=p) for p in veins]
        manifest = build_manifest(
            decoded, name=name, version=version, description=description, entry=entry, metadata=metadata
        )
        digest = manifest_vein(manifest).fingerprint
        atomic_write(output, manifest_json(manifest))
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"output": output, "digest": digest, "manifest": manifest})
    else:
        click.echo(f"Built {output}: {name} {version}, {len(manifest['steps'])} steps")
        click.echo(f"Manifest digest: {digest}")


# ------------------------------------------------------------------ verify


def _trust_options(f: Any) -> Any:
    f = click.option("--now", "now_text", metavar="TIMESTAMP",
                     help="Reference time (RFC 3339, e.g. 2027-01-31T00:00:00Z). Default: the current time.")(f)
    f = click.option("--state", "state_path", type=click.Path(dir_okay=False),
                     help="Rollback state file. Default: .lodec/trusted-stacks.json at the git repository root, "
                          "or $LODEC_HOME/trusted-stacks.json (~/.lodec) outside git.")(f)
    f = click.option("--name", "expected_name", metavar="STACK",
                     help="The stack name you asked for; a stack signed under another name is refused.")(f)
    f = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                     help="Trust policy file (TOML): trusted keys and thresholds per stack-name pattern.")(f)
    f = click.option("--threshold", type=click.IntRange(min=1),
                     help="Valid signatures needed from distinct --key keys. Default: 1.")(f)
    f = click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False),
                     help="A trusted public key (NAME.pub or ssh-ed25519); repeat for more.")(f)
    return f


def _verified_files(manifest: str, steps_dir: str | None, action: str) -> Any:
    """The VerifiedStack of MANIFEST, or print its problems and raise (for sign and pack)."""
    from ..app.loaders import verify_stack_files

    report = verify_stack_files(manifest, steps_dir)
    if not report.ok:
        for p in report.problems:
            click.echo(f"{p.message} [{p.code}]", err=True)
        raise LodecError(f"not {action}: the stack fails verification ({len(report.problems)} problem(s))",
                         code="verification_failed", file=manifest)
    return report.require()


@main.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@click.option("--envelope", "envelope_path", type=click.Path(dir_okay=False),
              help="DSSE envelope. Default: STACK.json.dsse beside the manifest.")
@_trust_options
@click.option("--json", "as_json", is_flag=True,
              help='Print {"ok", "stack", "version", "digest", "steps", "problems"[, "trust"]}.')
def verify(
    target: str,
    steps_dir: str | None,
    envelope_path: str | None,
    keys: tuple[str, ...],
    threshold: int | None,
    policy_path: str | None,
    expected_name: str | None,
    state_path: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """Verify a stack (STACK.json with steps/, or a .lodepack) and every step it pins. All or nothing.

    Checks the manifest against skill-stack-v1 (v2 when it pins skills);
    every listed step present, canonical, pinned, with the pinned
    fingerprint and its own stepName; no pin without a step; the DAG closed
    and acyclic; every skill pinned (v2); the entry point a root.

    \b
    With --key (or --policy) it first checks the DSSE envelope: valid
    signatures from THRESHOLD distinct trusted keys over the exact manifest
    bytes; the signed digest, name and version; the expiry (freeze); and
    that the version is not older than the one verified before (rollback).
    A success records the version in the state file.
      lodec verify stack.json --key alice.pub --key bob.pub --threshold 2
      lodec verify release.lodepack --policy trust.toml --name code-review-pipeline

    Reports every problem with a stable code; exit 0 verified, 1 rejected.
    """
    try:
        report, note = _verify_target(target, steps_dir, envelope_path, keys, threshold, policy_path,
                                      expected_name, state_path, now_text)
    except LodecError as exc:
        _fail(exc, as_json)
    _report_out(report, target, as_json, note)


# -------------------------------------------------------------------- keys


@main.group(context_settings=CONTEXT)
def key() -> None:
    """Generate Ed25519 signing keys and print keyids."""


def _passphrase(var: str | None) -> bytes | None:
    import os

    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise click.BadParameter(f"environment variable {var} is not set or empty", param_hint="--passphrase-env")
    return value.encode("utf-8")


@key.command("generate", context_settings=CONTEXT)
@click.argument("name")
@click.option("--passphrase-env", "passphrase_env", metavar="VAR",
              help="Encrypt NAME.key with the passphrase in environment variable VAR.")
@click.option("--force", is_flag=True, help="Replace existing NAME.key / NAME.pub.")
@click.option("--json", "as_json", is_flag=True, help='Print {"private", "public", "keyid"}.')
def key_generate(name: str, passphrase_env: str | None, force: bool, as_json: bool) -> None:
    """Write NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SubjectPublicKeyInfo PEM).

    NAME may include a directory (keys/alice). Keep NAME.key secret; give
    NAME.pub to whoever verifies. The keyid printed is the SHA-256 of the
    public key's DER encoding (see `lodec key id`).
    """
    from ..files import atomic_write
    from ..names import is_safe_name
    from ..sign.keys import generate_key, private_key_pem

    base = Path(name)
    if not is_safe_name(base.name):
        raise click.BadParameter(f"{base.name!r} is not a safe file name (A-Z a-z 0-9 . _ -)", param_hint="NAME")
    private, public = base.with_name(base.name + ".key"), base.with_name(base.name + ".pub")
    passphrase = _passphrase(passphrase_env)
    try:
        for path in (private, public):
            if path.exists() and not force:
                raise LodecError("already exists; pass --force to replace it", code="file_exists", file=str(path))
        k = generate_key()
        atomic_write(private, private_key_pem(k, passphrase), mode=0o600)
        atomic_write(public, k.public.pem(), mode=0o644)
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"private": str(private), "public": str(public), "keyid": k.public.keyid})
    else:
        enc = ", encrypted" if passphrase else ""
        click.echo(f"Wrote {private} (private{enc}, mode 0600) and {public}")
        click.echo(f"Keyid: {k.public.keyid}")


@key.command("id", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--passphrase-env", "passphrase_env", metavar="VAR", help="Passphrase of an encrypted private key.")
@click.option("--json", "as_json", is_flag=True, help='Print {"file", "keyid"}.')
def key_id(file: str, passphrase_env: str | None, as_json: bool) -> None:
    """Print the keyid of FILE: a public key (PEM or ssh-ed25519) or a private key.

    keyid = "sha256:" + hex SHA-256 of the DER SubjectPublicKeyInfo, the
    same for a key in PEM or OpenSSH form:
    openssl pkey -pubin -in K.pub -outform DER | sha256sum
    """
    from ..sign.keys import load_any_key

    try:
        public = load_any_key(file, passphrase=_passphrase(passphrase_env))
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"file": file, "keyid": public.keyid})
    else:
        click.echo(public.keyid)


# -------------------------------------------------------------------- sign


@main.command(context_settings=CONTEXT)
@click.argument("manifest", metavar="STACK.json", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="Private key (NAME.key).")
@click.option("--passphrase-env", "passphrase_env", metavar="VAR", help="Passphrase of an encrypted key.")
@click.option("--expires", "expires_text", metavar="TIMESTAMP",
              help="Expiry of a new envelope (RFC 3339, e.g. 2027-01-31T00:00:00Z).")
@click.option("--expires-in", "expires_in", metavar="DURATION",
              help="Expiry of a new envelope from now: 90d, 12h, 2w ... Default: 90d.")
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@click.option("--envelope", "envelope_path", type=click.Path(dir_okay=False),
              help="Envelope to write. Default: STACK.json.dsse beside the manifest.")
@click.option("--now", "now_text", metavar="TIMESTAMP", help="Reference time. Default: the current time.")
@click.option("--json", "as_json", is_flag=True, help='Print {"envelope", "keyid", "added", "signatures", "expires"}.')
def sign(
    manifest: str,
    key_path: str,
    passphrase_env: str | None,
    expires_text: str | None,
    expires_in: str | None,
    steps_dir: str | None,
    envelope_path: str | None,
    now_text: str | None,
    as_json: bool,
) -> None:
    """Sign STACK.json with a private key: write or extend STACK.json.dsse.

    The stack is verified first (only a valid stack can be signed). The
    first signature creates a DSSE envelope whose payload is an in-toto
    Statement v1 approving the manifest's exact bytes, its canonical digest,
    name, version and expiry. Signing again with another key adds a
    signature to the same envelope. See docs/signing.md.

    \b
      lodec sign stack.json --key alice.key --expires-in 30d
      lodec sign stack.json --key bob.key
    """
    from ..files import atomic_write
    from ..app.loaders import envelope_path_for, read_optional
    from ..sign.dsse import MAX_ENVELOPE_BYTES, parse_envelope
    from ..sign.keys import load_private_key
    from ..sign.signer import sign_stack
    from ..sign.statement import format_time, parse_duration, parse_time

    if expires_text is not None and expires_in is not None:
        raise click.UsageError("give --expires or --expires-in, not both")
    now = _now(now_text)
    expires = None
    try:
        if expires_text is not None:
            expires = parse_time(expires_text)
        elif expires_in is not None:
            expires = now + parse_duration(expires_in)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires" if expires_text else "--expires-in") from None
    env_path = Path(envelope_path) if envelope_path is not None else envelope_path_for(manifest)
    try:
        private = load_private_key(key_path, passphrase=_passphrase(passphrase_env))
        stack = _verified_files(manifest, steps_dir, "signed")
        existing_bytes = read_optional(env_path, MAX_ENVELOPE_BYTES)
        existing = parse_envelope(existing_bytes, file=str(env_path)) if existing_bytes is not None else None
        envelope, added = sign_stack(stack, private, now=now, expires=expires, existing=existing,
                                     envelope_file=str(env_path))
        if added:
            atomic_write(env_path, envelope.to_json())
    except LodecError as exc:
        if exc.file is None:
            exc.file = manifest
        _fail(exc, as_json)
    from ..sign.statement import parse_statement

    approval = parse_statement(envelope.payload, file=str(env_path))
    summary = {"envelope": str(env_path), "keyid": private.public.keyid, "added": added,
               "signatures": len(envelope.signatures), "expires": format_time(approval.expires),
               "stack": approval.name, "version": approval.version, "digest": approval.digest}
    if as_json:
        _emit(summary)
    else:
        verb = "Signed" if added else "Already signed by this key:"
        click.echo(f"{verb} {approval.name} {approval.version} → {env_path} ({len(envelope.signatures)} signature(s), "
                   f"expires {summary['expires']})")
        click.echo(f"Keyid: {private.public.keyid}")


# -------------------------------------------------------------------- pack


@main.command(context_settings=CONTEXT)
@click.argument("manifest", metavar="STACK.json", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Pack to write (NAME.lodepack).")
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@click.option("--envelope", "envelope_path", type=click.Path(dir_okay=False),
              help="DSSE envelope to include. Default: STACK.json.dsse beside the manifest, if present.")
@click.option("--json", "as_json", is_flag=True, help='Print {"output", "bytes", "steps", "signed", "digest"}.')
def pack(manifest: str, output: str, steps_dir: str | None, envelope_path: str | None, as_json: bool) -> None:
    """Write one file holding STACK.json, its step veins, the schemas and the signatures.

    The stack is verified first. The pack is deterministic (the same inputs
    give the same bytes) and its digest is printed (BLAKE3 and SHA-256 of
    the file, as b3sum / sha256sum print them). Format: docs/pack-format.md.
    Consumers run `lodec verify NAME.lodepack --key ...` or `lodec unpack`.
    """
    from ..files import atomic_write
    from ..app.loaders import envelope_path_for, read_optional
    from ..format.pack import build_pack
    from ..format.schema import builtin_schema_bytes
    from ..sign.dsse import MAX_ENVELOPE_BYTES
    from ..sign.statement import file_digests
    from ..stack.manifest import stack_schema_name

    try:
        stack = _verified_files(manifest, steps_dir, "packed")
        env = Path(envelope_path) if envelope_path is not None else envelope_path_for(manifest)
        envelope = read_optional(env, MAX_ENVELOPE_BYTES)
        if envelope is None and envelope_path is not None:
            raise LodecError("no such file", code="file_not_found", file=str(env))
        if envelope is not None:
            from ..sign.dsse import parse_envelope

            parse_envelope(envelope, file=str(env))  # refuse to pack a malformed envelope
        data = build_pack(stack, manifest_name=Path(manifest).name,
                          step_schema=builtin_schema_bytes("skill-step-v1"),
                          stack_schema=builtin_schema_bytes(stack_schema_name(stack.manifest)),
                          envelope=envelope)
        atomic_write(output, data)
    except LodecError as exc:
        _fail(exc, as_json)
    digests = file_digests(data)
    summary = {"output": output, "bytes": len(data), "steps": len(stack.steps), "signed": envelope is not None,
               "digest": {"blake3": digests["blake3"], "sha256": digests["sha256"]}}
    if as_json:
        _emit(summary)
    else:
        signed = "signed" if envelope is not None else "UNSIGNED"
        click.echo(f"Packed {stack.name} {stack.version} → {output}: {len(stack.steps)} steps, {signed}, "
                   f"{len(data)} bytes")
        click.echo(f"Pack digest: blake3:{digests['blake3']}")
        click.echo(f"             sha256:{digests['sha256']}")


@main.command(context_settings=CONTEXT)
@click.argument("pack_file", metavar="PACK.lodepack", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Directory to extract into (must be new or empty).")
@_trust_options
@click.option("--unsigned", is_flag=True, help="Accept an unsigned pack (core verification only; no --key).")
@click.option("--json", "as_json", is_flag=True, help="Print the verification report and the files written.")
def unpack(
    pack_file: str,
    output: str,
    keys: tuple[str, ...],
    threshold: int | None,
    policy_path: str | None,
    expected_name: str | None,
    state_path: str | None,
    now_text: str | None,
    unsigned: bool,
    as_json: bool,
) -> None:
    """Verify PACK.lodepack, then extract it into OUTPUT. Nothing is written unless it verifies.

    Writes <manifest>.json, <manifest>.json.dsse, steps/<name>.vein and
    schemas/{step,stack}.lode: exactly the verified bytes, as regular
    files. Refuses a non-empty OUTPUT; a pack cannot hold links, paths
    outside OUTPUT, duplicate members or members over the size caps.

    \b
      lodec unpack release.lodepack -o release/ --key alice.pub --key bob.pub --threshold 2
    """
    from ..app.loaders import verify_pack_file
    from ..format.pack import unpack as unpack_files

    now = _now(now_text)
    try:
        policy = _policy(keys, threshold, policy_path)
        if policy is None and not unsigned:
            raise click.UsageError("unpack verifies signatures first: add --key A.pub (or --policy FILE), "
                                   "or --unsigned for a pack you trust by other means")
        if policy is not None and unsigned:
            raise click.UsageError("--unsigned cannot be combined with --key or --policy")
        pack, report = verify_pack_file(pack_file, policy=policy, now=now, expected_name=expected_name,
                                        state_path=_state_path(state_path) if policy is not None else None)
        if not report.ok:
            _report_out(report, pack_file, as_json)
        written = unpack_files(pack, report.require(), output)
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({**report.to_dict(), "output": output, "files": [str(p) for p in written]})
    else:
        click.echo(f"Verified {report.stack} {report.version} and unpacked {len(written)} files into {output}")


# ------------------------------------------------------------------ import


@main.group("import", context_settings=CONTEXT)
def import_() -> None:
    """Import workflows from other systems as SkillStep sources and a stack."""


@import_.command("github-actions", context_settings=CONTEXT)
@click.argument("workflow", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Directory to write src/<stepName>.json, steps/<stepName>.vein and stack.json into.")
@click.option("--name", help="Stack name. Default: the workflow file's stem, made safe.")
@click.option("--version", "version", default="1.0.0", show_default=True, help="Stack version.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def import_github_actions(workflow: str, output: str, name: str | None, version: str, as_json: bool) -> None:
    """Turn a GitHub Actions WORKFLOW into SkillStep sources, compiled steps and a stack.

    One step per job step, named <job>.<step id or index>; skillRef gha:<uses>
    or gha:run; inputs from with: plus run, shell and working-directory;
    dependsOn the previous step of the job, or the last step of every job in
    needs:. A job calling a reusable workflow becomes one step. Secrets are
    never copied. See docs/import-github-actions.md. Then:
    `lodec verify OUTPUT/stack.json`.
    """
    from ..format.compiler import compile_value
    from ..files import atomic_write, atomic_write_many
    from ..importers.github_actions import import_workflow
    from ..format.schema import skill_step_schema
    from ..stack.manifest import build_manifest, manifest_json, manifest_vein

    out = Path(output)
    try:
        imported = import_workflow(workflow)
        schema = skill_step_schema()
        veins = [compile_value(rec, schema, file=f"{workflow}#{rec['stepName']}") for rec in imported.steps]
        manifest = build_manifest(
            veins,
            name=name or imported.name,
            version=version,
            description=imported.description,
            metadata=imported.metadata,
        )
        files: list[tuple[str | Path, bytes]] = []
        for record, vein in zip(imported.steps, veins):
            step = vein.record["stepName"]
            files.append((out / "src" / f"{step}.json", (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()))
            files.append((out / "steps" / f"{step}.vein", vein.data))
        atomic_write_many(files)
        # The manifest last: a stack.json on disk means every step is there.
        atomic_write(out / "stack.json", manifest_json(manifest))
        digest = manifest_vein(manifest).fingerprint
    except LodecError as exc:
        _fail(exc, as_json)
    summary = {"workflow": workflow, "stack": str(out / "stack.json"), "name": manifest["name"],
               "steps": len(veins), "digest": digest}
    if as_json:
        _emit(summary)
    else:
        click.echo(f"Imported {workflow} → {out / 'stack.json'}: {manifest['name']}, {len(veins)} steps")
        click.echo(f"Manifest digest: {digest}")


from . import run_commands  # noqa: E402  (registers run, plan, lock, skill, resolve, runs, journal, analytics)
