"""The build-side commands: schema, compile, inspect, stack, verify, key, sign, pack, unpack, import.

Each command parses its arguments, calls one use case of ``lodec.app`` and
renders the result (``lodec.cli.render``). Exit codes: 0 success, 1 invalid
input or verification failed, 2 usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from .. import __version__
from .options import CONTEXT, F, json_option, TrustArgs, trust_options, workspace_option
from .render import compiled_out, echo, emit, error_line, first_use_note, outcome, printable, report_out, result


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="lodec")
def main() -> None:
    """Compile agent workflow steps to canonical, fingerprinted .vein files,
    pin them in SkillStack manifests, sign and pack them, and verify a stack
    before anything runs.

    \b
    The main job, on the bundled example (one stack source, docs/stack-source.md):
      lodec build stacks/code-review/lodec-stack.toml
      lodec run stacks/code-review/code-review-stack.json --workspace stacks/code-review/fixture

    \b
    Signed distribution (docs/signing.md):
      lodec key generate alice
      lodec sign STACK.json --key alice.key --expires-in 30d
      lodec pack STACK.json -o NAME.lodepack
      lodec verify NAME.lodepack --key alice.pub [--key bob.pub --threshold 2]
      lodec push NAME.lodepack oci://HOST/REPO[:TAG]       (or oci-layout:DIR; docs/distribution.md)
      lodec pull oci://HOST/REPO:TAG -o NAME.lodepack --key alice.pub

    Exit codes: 0 ok, 1 invalid input or verification failed, 2 usage error.
    """


# ------------------------------------------------------------------ schema


@click.group(context_settings=CONTEXT)
def schema() -> None:
    """Validate .lode schemas."""


@schema.command("check", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option('Print {"ok", "schemas": [{"file", "ok", "name", "version", "fields", "digest"} or {"file", "ok", "error"}]}.')
def schema_check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate FILES (.lode schemas) and print each schema's digest.

    A schema is {"schema": "lode", "version": N, "name": ..., "fields": [...],
    "reserved": [...]}; each field has a unique positive "id", a unique "name",
    a "type" (string, int, bool, bytes, T[] or map<string,T>) and "required".

    \b
      lodec schema check schemas/skill-step-v1.lode
    """
    from ..app import build

    results = build.check_schemas(files)
    if as_json:
        result({"schemas": [r.to_dict() for r in results]}, ok=all(r.error is None for r in results))
    else:
        for r in results:
            if r.error is not None:
                echo(error_line(r.error), err=True)
                continue
            row = r.to_dict()
            echo(f"{r.file}: ok: {row['name']} v{row['version']}, {row['fields']} fields, schema digest {row['digest']}")
    sys.exit(1 if any(r.error is not None for r in results) else 0)


# ----------------------------------------------------------------- compile


@click.command(context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="The .lode schema (a file, or a built-in name: skill-step-v2 adds run conditions). "
                   "Default: the built-in skill-step-v1.")
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="The .vein path for one source; a directory for several (or ending in /).")
@json_option('Print {"ok", "compiled": [{"source", "output", "bytes", "fingerprint"}]}.')
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success (errors still go to stderr).")
def compile(sources: tuple[str, ...], schema_path: str | None, output: str, as_json: bool, quiet: bool) -> None:
    """Compile SOURCES (strict JSON records) into canonical .vein files.

    With several sources, OUTPUT is a directory and each record is written
    to OUTPUT/<stepName>.vein (or <name>.vein for schemas without stepName).
    Every source is checked before anything is written; files are written
    atomically. Prints the size and the BLAKE3 fingerprint of each.

    \b
      lodec compile steps/lint-step.json -o stacks/code-review/steps/lint.vein
      lodec compile src/*.json -o steps/ --json
    """
    from ..app import build

    with outcome(as_json), _progress(len(sources), "Compiling", quiet or as_json) as bar:
        compiled = build.compile_sources(sources, output, schema_path, progress=bar.update)
    compiled_out(compiled, as_json, quiet)


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


@click.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="The .lode schema. Default: found from the header among the built-in schemas.")
@json_option('Print {"ok", "file", "header", "schema", "bytes", "fingerprint", "record"}.')
def inspect(file: str, schema_path: str | None, as_json: bool) -> None:
    """Decode FILE (.vein) and print its record as source JSON.

    Decoding proves canonical form; compiling the printed JSON again gives
    identical bytes.

    \b
      lodec inspect stacks/code-review/steps/lint.vein
      lodec inspect step.vein -s my-schema.lode --json
    """
    from ..app import build

    with outcome(as_json):
        inspected = build.inspect_vein(file, schema_path)
    if as_json:
        result(inspected.to_dict())
    else:
        emit(inspected.record)


# ------------------------------------------------------------------- stack


@click.group(context_settings=CONTEXT)
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
              help="Schema of the steps (a .lode file, or a built-in name such as skill-step-v2). "
                   "Default: the built-in step schema each vein's header names.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Manifest path (STACK.json).")
@json_option('Print {"ok", "output", "digest", "manifest", "warnings"}.')
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

    \b
      lodec stack build steps/*.vein --name code-review-pipeline --version 1.0.0 \
          --description "Lint, analyze, review" --entry lint -o code-review-stack.json
    """
    from ..app import build

    metadata = _meta(meta)
    with outcome(as_json):
        built = build.build_stack(veins, name=name, version=version, description=description, output=output,
                                  entry=entry, metadata=metadata, schema_path=schema_path)
    for w in built.warnings:
        echo(printable(f"lodec: warning: {w} [{w.code}]"), err=True)
    if as_json:
        emit({"ok": True, "output": output, "digest": built.digest, "manifest": built.manifest,
              "warnings": [w.to_dict() for w in built.warnings]})
    else:
        echo(f"Built {output}: {name} {version}, {len(built.manifest['steps'])} steps")
        echo(f"Manifest digest: {built.digest}")


# ------------------------------------------------------------------ verify


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@click.option("--envelope", "envelope_path", type=click.Path(dir_okay=False),
              help="DSSE envelope. Default: STACK.json.dsse beside the manifest.")
@trust_options
@workspace_option
@click.option("--no-skills", "no_skills", is_flag=True,
              help="Do not check the pinned skill folders (the output says so).")
@json_option('Print {"ok", "stack", "version", "digest", "steps", "problems"[, "trust"]}.')
def verify(
    target: str,
    steps_dir: str | None,
    envelope_path: str | None,
    trust: TrustArgs,
    workspace_dir: str | None,
    no_skills: bool,
    as_json: bool,
) -> None:
    """Verify a stack (STACK.json with steps/, or a .lodepack) and every step it pins. All or nothing.

    Checks the manifest against skill-stack-v1 (v2 when it pins skills);
    every listed step present, canonical, pinned, with the pinned
    fingerprint and its own stepName; no pin without a step; the DAG closed
    and acyclic; every skill pinned (v2); the entry point a root; and every
    pinned skill folder, found as `lodec run` finds it, still has its pinned
    tree digest (--no-skills skips this and says so).

    \b
    With --key (or --policy) it first checks the DSSE envelope: valid
    signatures from THRESHOLD distinct trusted keys (none the policy revokes
    or holds outside its validity window) over the exact manifest bytes;
    the signed digest, name and version; the expiry (freeze); and
    that the version is not older than the one verified before (rollback).
    A success records the version in the state file.
      lodec verify stack.json --key alice.pub --key bob.pub --threshold 2
      lodec verify release.lodepack --policy trust.toml --name code-review-pipeline

    Reports every problem with a stable code; exit 0 verified, 1 rejected.
    """
    from ..app.verify import verify_target
    from ..app import Workspace

    with outcome(as_json, target):
        workspace = Workspace.discover(workspace_dir, state_file=trust.state)
        result = verify_target(target, workspace, trust.options(), steps_dir=steps_dir, envelope=envelope_path,
                               check_skills=not no_skills)
    first_use_note(result)
    report_out(result.report, target, as_json, result.note)


@click.command("check-pins", context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@trust_options
@workspace_option
@json_option('Print {"ok", "stack", "version", "digest", "counts", "pins": [{"step", "job", "field", "ref", '
             '"status", "vein"}]}.')
def check_pins(target: str, steps_dir: str | None, trust: TrustArgs, workspace_dir: str | None,
               as_json: bool) -> None:
    """Apply the pin policy to a stack already imported: list every action, reusable workflow and image it runs.

    Verifies the stack first (as `lodec verify`; signatures with --key or
    --policy), then classifies each gha: reference and each job container
    or service image: pinned (a full commit SHA), image-digest (@sha256:),
    local-action (./ in this repository) and same-repo-workflow (./.github/
    workflows/ or $/), both versioned with the workflow itself, or unpinned
    (a tag, branch, short SHA or image tag, which can be moved to other code
    after approval). One line per unpinned reference, with its step, job and
    vein; a summary line. Exit 1 if any is unpinned, 0 otherwise.

    \b
      lodec check-pins /tmp/tokio/stack.json
      lodec check-pins release.lodepack --key alice.pub --json
    """
    from ..app import Workspace
    from ..app.pins import check_pins as check

    with outcome(as_json, target):
        workspace = Workspace.discover(workspace_dir, state_file=trust.state)
        report = check(target, workspace, trust.options(), steps_dir=steps_dir)
    if as_json:
        emit(report.to_dict())
    else:
        for row in report.rows:
            if row["status"] != "pinned" and row["status"] != "image-digest":
                where = "uses" if row["field"] == "uses" else row["field"]
                echo(printable(f"{row['vein']}: step {row['step']} (job {row['job']}) {where} {row['ref']}: "
                               f"{row['status']}"))
        counts = ", ".join(f"{n} {k}" for k, n in report.counts().items()) or "no references"
        verdict = f"{len(report.unpinned)} unpinned" if report.unpinned else "every reference pinned"
        echo(printable(f"{report.stack} {report.version}: {counts}; {verdict}"))
    sys.exit(1 if report.unpinned else 0)


# -------------------------------------------------------------------- keys


@click.group(context_settings=CONTEXT)
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
@json_option('Print {"ok", "private", "public", "keyid"}.')
def key_generate(name: str, passphrase_env: str | None, force: bool, as_json: bool) -> None:
    """Write NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SubjectPublicKeyInfo PEM).

    NAME may include a directory (keys/alice). Keep NAME.key secret; give
    NAME.pub to whoever verifies. The keyid printed is the SHA-256 of the
    public key's DER encoding (see `lodec key id`).

    \b
      lodec key generate alice
      lodec key generate keys/bob --passphrase-env BOB_PASSPHRASE
    """
    from ..app import signing

    passphrase = _passphrase(passphrase_env)
    with outcome(as_json):
        k = signing.generate_key_pair(name, passphrase=passphrase, force=force)
    if as_json:
        result({"private": str(k.private), "public": str(k.public), "keyid": k.keyid})
    else:
        enc = ", encrypted" if k.encrypted else ""
        echo(f"Wrote {k.private} (private{enc}, mode 0600) and {k.public}")
        echo(f"Keyid: {k.keyid}")


@key.command("id", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--passphrase-env", "passphrase_env", metavar="VAR", help="Passphrase of an encrypted private key.")
@json_option('Print {"ok", "file", "keyid"}.')
def key_id(file: str, passphrase_env: str | None, as_json: bool) -> None:
    """Print the keyid of FILE: a public key (PEM or ssh-ed25519) or a private key.

    keyid = "sha256:" + hex SHA-256 of the DER SubjectPublicKeyInfo, the
    same for a key in PEM or OpenSSH form:
    openssl pkey -pubin -in K.pub -outform DER | sha256sum

    \b
      lodec key id alice.pub
      lodec key id ~/.ssh/id_ed25519.pub
    """
    from ..app import signing

    passphrase = _passphrase(passphrase_env)
    with outcome(as_json):
        keyid = signing.key_id(file, passphrase=passphrase)
    if as_json:
        result({"file": file, "keyid": keyid})
    else:
        echo(keyid)


# -------------------------------------------------------------------- sign


@click.command(context_settings=CONTEXT)
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
@json_option('Print {"ok", "envelope", "keyid", "added", "signatures", "expires", "stack", "version", "digest"}.')
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
    from ..app import signing
    from ..app.options import now_or, parse_now

    with outcome(as_json):
        now = now_or(parse_now(now_text))
        expires = signing.parse_expiry(now, expires_text, expires_in)
    passphrase = _passphrase(passphrase_env)
    with outcome(as_json):
        signed = signing.sign_manifest(manifest, key_path, now=now, expires=expires, passphrase=passphrase,
                                       steps_dir=steps_dir, envelope=envelope_path)
    if as_json:
        result(signed.to_dict())
    else:
        verb = "Signed" if signed.added else "Already signed by this key:"
        echo(f"{verb} {signed.stack} {signed.version} → {signed.envelope} ({signed.signatures} signature(s), "
             f"expires {signed.expires})")
        echo(f"Keyid: {signed.keyid}")


# -------------------------------------------------------------------- pack


@click.command(context_settings=CONTEXT)
@click.argument("manifest", metavar="STACK.json", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Pack to write (NAME.lodepack).")
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@click.option("--envelope", "envelope_path", type=click.Path(dir_okay=False),
              help="DSSE envelope to include. Default: STACK.json.dsse beside the manifest, if present.")
@workspace_option
@json_option('Print {"ok", "output", "bytes", "steps", "skills", "signed", "digest"}.')
def pack(manifest: str, output: str, steps_dir: str | None, envelope_path: str | None, workspace_dir: str | None,
         as_json: bool) -> None:
    """Write one file holding STACK.json, its step veins, the schemas, the signatures and the pinned skills.

    The stack is verified first, skills included: every skill skillDigests
    pins is found as `lodec verify` and `lodec run` find it (skills/ beside
    STACK.json, then the workspace's .lodec/skills, then $LODEC_HOME/skills)
    and must hash to its pin; the pack carries exactly those files. The pack
    is deterministic (the same inputs give the same bytes) and its digest is
    printed (BLAKE3 and SHA-256 of the file, as b3sum / sha256sum print
    them). Format: docs/pack-format.md. Consumers run
    `lodec verify NAME.lodepack --key ...`, `lodec run NAME.lodepack --key ...`
    or `lodec unpack`.

    \b
      lodec pack code-review-stack.json -o code-review.lodepack
    """
    from ..app import Workspace, signing

    with outcome(as_json):
        workspace = Workspace.discover(workspace_dir)
        packed = signing.pack_manifest(manifest, output, steps_dir=steps_dir, envelope=envelope_path,
                                       workspace=workspace)
    if as_json:
        result(packed.to_dict())
    else:
        signed = "signed" if packed.signed else "UNSIGNED"
        skills = f"{len(packed.skills)} skills, " if packed.skills else ""
        echo(f"Packed {packed.stack} {packed.version} → {output}: {packed.steps} steps, {skills}{signed}, "
             f"{packed.size} bytes")
        echo(f"Pack digest: blake3:{packed.blake3}")
        echo(f"             sha256:{packed.sha256}")


@click.command(context_settings=CONTEXT)
@click.argument("pack_file", metavar="PACK.lodepack", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Directory to extract into (must be new or empty).")
@trust_options
@workspace_option
@click.option("--unsigned", is_flag=True, help="Accept an unsigned pack (core verification only; no --key).")
@json_option("Print the verification report and the files written.")
def unpack(
    pack_file: str,
    output: str,
    trust: TrustArgs,
    workspace_dir: str | None,
    unsigned: bool,
    as_json: bool,
) -> None:
    """Verify PACK.lodepack, then extract it into OUTPUT. Nothing is written unless it verifies.

    Writes <manifest>.json, <manifest>.json.dsse, steps/<name>.vein,
    skills/<name>/... (the skills a lodepack-v2 carries) and
    schemas/{step,stack}.lode: exactly the verified bytes, as regular
    files. Refuses a non-empty OUTPUT; a pack cannot hold links, paths
    outside OUTPUT, duplicate members or members over the size caps.

    \b
      lodec unpack release.lodepack -o release/ --key alice.pub --key bob.pub --threshold 2
    """
    from ..app import signing
    from ..app import Workspace

    with outcome(as_json, pack_file):
        workspace = Workspace.discover(workspace_dir, state_file=trust.state)
        unpacked = signing.unpack_pack(pack_file, output, trust.options(), unsigned=unsigned, workspace=workspace)
    report = unpacked.verification.report
    first_use_note(unpacked.verification)
    if not report.ok:
        report_out(report, pack_file, as_json)
    if as_json:
        emit({**report.to_dict(), "output": output, "files": [str(p) for p in unpacked.files]})
    else:
        echo(f"Verified {report.stack} {report.version} and unpacked {len(unpacked.files)} files into {output}")


# ------------------------------------------------------------------ import


@click.group("import", context_settings=CONTEXT)
def import_() -> None:
    """Import GitHub Actions, Argo Workflows and Nanostack workflows as step sources and a stack, for review."""


def _import_command(command: str, source: str, metavar: str, name_help: str, *,
                    extra: tuple[Callable[[F], F], ...] = (), json_fields: str = "") -> Callable[[F], F]:
    """``lodec import <command> SOURCE -o DIR [--name] [--version] [extra...] [--json]``: what every importer takes."""

    def wrap(f: F) -> F:
        decorators = [
            import_.command(command, context_settings=CONTEXT),
            click.argument(source, metavar=metavar, type=click.Path(dir_okay=False)),
            click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
                         help="Directory to write src/<stepName>.json, steps/<stepName>.vein and stack.json into."),
            click.option("--name", help=name_help),
            click.option("--version", "version", default="1.0.0", show_default=True, help="Stack version."),
            *extra,
            json_option('Print {"ok", "workflow", "stack", "name", "steps", "digest", "unpinned"' + json_fields + "}."),
        ]
        for decorate in reversed(decorators):
            f = decorate(f)
        return f

    return wrap


@_import_command("github-actions", "workflow", "WORKFLOW", "Stack name. Default: the workflow file's stem, made safe.",
                 extra=(click.option("--require-pinned", is_flag=True,
                                     help="Refuse (exit 1, nothing written) an action or reusable workflow not pinned "
                                          "to a full commit SHA."),),
                 json_fields=', "pins"')
def import_github_actions(workflow: str, output: str, name: str | None, version: str, require_pinned: bool,
                          as_json: bool) -> None:
    """Turn a GitHub Actions WORKFLOW into step sources, compiled steps (gha-step-v1) and a stack.

    One step per job step, named <job>.<step id or index>; skillRef gha:<uses>
    or gha:run; inputs from with: plus run, shell and working-directory;
    dependsOn the previous step of the job, or the last step of every job in
    needs:. A job calling a reusable workflow becomes one step. Every field
    that changes behaviour (env, if, permissions, runs-on, container,
    services, timeouts, continue-on-error, strategy, concurrency, defaults,
    environment, outputs, secrets as expressions, on:) is in each step's
    fingerprinted record; if: becomes a run condition where exact, else is
    kept verbatim (lodec run refuses it). A key lodec does not know is
    refused; every problem is listed at once. See docs/import-github-actions.md.
    Then: `lodec verify OUTPUT/stack.json`, `lodec plan OUTPUT/stack.json`.

    \b
      lodec import github-actions .github/workflows/ci.yml -o imported/
      lodec import github-actions ci.yml -o imported/ --require-pinned
    """
    from ..app import build

    with outcome(as_json):
        imported = build.import_github_actions(workflow, output, name=name, version=version,
                                               require_pinned=require_pinned)
    by_uses: dict[str, list[str]] = {}
    for step, uses in imported.unpinned:
        by_uses.setdefault(uses, []).append(step)
    for uses, steps in by_uses.items():
        who = f"step {steps[0]!r}" + (f" and {len(steps) - 1} more" if len(steps) > 1 else "")
        echo(printable(f"lodec: warning: {workflow}: {uses} ({who}) is not pinned to a full commit SHA: a tag or "
                       "branch can be moved to other code after approval (--require-pinned refuses it)"), err=True)
    own = [p for p in imported.pins if p["status"] in ("local-action", "same-repo-workflow")]
    if own:
        echo(printable(f"lodec: note: {workflow}: {len(own)} reference(s) are this repository's own "
                       f"({', '.join(sorted({p['status'] for p in own}))}), versioned with the workflow itself"),
             err=True)
    _imported(imported, as_json)


@_import_command("argo", "workflow", "WORKFLOW.yaml", "Stack name. Default: metadata.name (or generateName), made safe.")
def import_argo(workflow: str, output: str, name: str | None, version: str, as_json: bool) -> None:
    """Turn an Argo Workflow or WorkflowTemplate into steps (argo-step-v1) and a stack.

    The entrypoint's dag tasks (or the steps of a steps template) become one
    step each; skillRef argo:<template>; dependsOn from dependencies/depends
    (a steps group depends on the group before it); inputs from the
    arguments' parameters. depends maps to a run condition where exact
    (A && B: on success; A.Failed: on failure; (A.Succeeded || A.Failed):
    always) and is kept verbatim otherwise, as are when and dag.target
    (lodec run refuses those). The task, the template it calls and the
    workflow spec are fingerprinted. See docs/import-argo.md. Then:
    `lodec verify OUTPUT/stack.json`, `lodec plan OUTPUT/stack.json`.

    \b
      lodec import argo workflow.yaml -o imported/
    """
    from ..app import build

    with outcome(as_json):
        imported = build.import_argo(workflow, output, name=name, version=version)
    _imported(imported, as_json)


@_import_command("nanostack", "stack_file", "STACK.json", "Stack name. Default: the stack's name, made safe.")
def import_nanostack(stack_file: str, output: str, name: str | None, version: str, as_json: bool) -> None:
    """Turn a Nanostack custom stack (stack.json) into SkillSteps (skill-step-v1) and a stack.

    One step per phase of phase_graph, dependsOn its depends_on; a custom
    skill becomes skill:<name> with inputs path and concurrency (add the
    skill, `lodec lock`, run); a built-in phase becomes nanostack:<phase>.
    See docs/import-nanostack.md.

    \b
      lodec import nanostack stack.json -o imported/
    """
    from ..app import build

    with outcome(as_json):
        imported = build.import_nanostack(stack_file, output, name=name, version=version)
    _imported(imported, as_json)


def _imported(imported: Any, as_json: bool) -> None:
    if as_json:
        result(imported.to_dict())
    else:
        echo(printable(f"Imported {imported.workflow} → {imported.stack}: {imported.name}, {imported.steps} steps"))
        echo(f"Manifest digest: {imported.digest}")


COMMANDS = (schema, compile, inspect, stack, verify, check_pins, key, sign, pack, unpack, import_)
