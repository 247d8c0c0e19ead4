"""The distribution commands: push and pull a pack through an OCI registry or an OCI image layout directory.

Each parses its arguments, calls one use case of ``lodec.app.distribute``
and renders the result. Exit codes: 0 success, 1 failure (transfer, check
or verification), 2 usage error.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from .options import CONTEXT, TrustArgs, json_option, trust_options, workspace_option
from .render import echo, emit, first_use_note, outcome, printable, report_out, signed_line

_PLAIN_HTTP = click.option("--plain-http", "plain_http", is_flag=True,
                           help="Speak HTTP, not HTTPS: only for a registry on loopback (localhost, 127.0.0.0/8, "
                                "::1), e.g. a test registry.")


def _progress(quiet: bool) -> Callable[[str], None] | None:
    """Progress lines on stderr (escaped), one per blob and manifest, also when not on a terminal (CI logs)."""
    if quiet:
        return None

    def say(line: str) -> None:
        echo(printable(line), err=True)

    return say


@click.command(context_settings=CONTEXT)
@click.argument("pack_file", metavar="PACK.lodepack", type=click.Path(dir_okay=False))
@click.argument("target", metavar="REFERENCE")
@_PLAIN_HTTP
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@json_option('Print {"ok", "reference", "pinned", "manifest", "layer", "referrer", "referrers", ...}.')
def push(pack_file: str, target: str, plain_http: bool, quiet: bool, as_json: bool) -> None:
    """Push PACK.lodepack to a registry or an OCI image layout, with its signatures as a referrer.

    \b
    REFERENCE is one of
      oci://HOST[:PORT]/REPO[:TAG]    an OCI registry (HTTPS; credentials from
                                      ~/.docker/config.json, $DOCKER_CONFIG, or
                                      $LODEC_REGISTRY_USERNAME/_PASSWORD)
      oci-layout:DIR[:TAG]            an OCI image layout directory (air-gapped transfer)
    TAG defaults to the stack's version.

    The pack must decode and pass its core checks. It is pushed as one OCI
    artifact (artifactType application/vnd.lodec.stack.v1, the pack as its
    one layer); the DSSE envelope it carries is attached as an OCI 1.1
    referrer (with the sha256-<hex> tag fallback for registries without the
    referrers API). The manifest digest printed pins exactly what was pushed.
    See docs/distribution.md.

    \b
      lodec push release.lodepack oci://registry.example.com/team/code-review:1.0.0
      lodec push release.lodepack oci-layout:./transfer
    """
    from ..app import distribute

    with outcome(as_json, pack_file):
        result = distribute.push(pack_file, target, plain_http=plain_http, progress=_progress(quiet or as_json))
    if as_json:
        emit(result.to_dict())
        return
    p = result.pushed
    signed = "signed" if result.signed else "UNSIGNED"
    echo(f"Pushed {printable(result.stack)} {printable(result.version)} ({signed}) → {printable(p.reference)}")
    echo(f"Manifest digest: {p.manifest.digest}")
    if p.referrer is not None:
        echo(f"Envelope referrer: {p.referrer.digest} ({p.referrers})")
    # A command that works as printed: the same transport, and keys only for a signed pack.
    how = (" --plain-http" if plain_http else "") + (" --key KEY.pub" if result.signed else " --unsigned")
    echo(f"Pull it with: lodec pull {printable(p.pinned)} -o PACK.lodepack{how}")


@click.command(context_settings=CONTEXT)
@click.argument("reference", metavar="REFERENCE")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .lodepack to write (its envelope goes beside it as PACK.dsse).")
@trust_options
@workspace_option
@click.option("--unsigned", is_flag=True, help="Accept an unsigned pack (core verification only; no --key).")
@_PLAIN_HTTP
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@json_option("Print the verification report with reference, pinned, manifest, referrer, referrers, output.")
def pull(reference: str, output: str, trust: TrustArgs, workspace_dir: str | None, unsigned: bool,
         plain_http: bool, quiet: bool, as_json: bool) -> None:
    """Pull a pack from a registry or an OCI layout, verify it as `lodec verify` does, then write it.

    \b
    REFERENCE is oci://HOST[:PORT]/REPO:TAG, oci://HOST[:PORT]/REPO@sha256:DIGEST,
    oci-layout:DIR:TAG or oci-layout:DIR@sha256:DIGEST.

    Every blob is read bounded by its descriptor's size and checked against
    its sha256 digest; the envelope the pack carries must be one of the
    referrers listed for it; then the pack is verified with --key/--policy
    (threshold, expiry, rollback state, skills) on a temporary copy. Only a
    pack that verified is written at OUTPUT (and OUTPUT.dsse), atomically:
    on any failure nothing is written there. Credentials as `docker login`
    leaves them (~/.docker/config.json, $DOCKER_CONFIG, credential helpers)
    or $LODEC_REGISTRY_USERNAME and $LODEC_REGISTRY_PASSWORD. See
    docs/distribution.md.

    \b
      lodec pull oci://registry.example.com/team/code-review:1.0.0 -o cr.lodepack \\
          --key alice.pub --key bob.pub --threshold 2
      lodec pull oci-layout:./transfer:1.0.0 -o cr.lodepack --key alice.pub
    """
    from ..app import Workspace, distribute

    with outcome(as_json, reference):
        workspace = Workspace.discover(workspace_dir, state_file=trust.state)
        result = distribute.pull(reference, output, trust.options(), unsigned=unsigned, plain_http=plain_http,
                                 workspace=workspace, progress=_progress(quiet or as_json))
    report = result.verification.report
    first_use_note(result.verification)
    if not result.ok:
        if as_json:
            emit(result.to_dict())
            raise SystemExit(1)
        report_out(report, reference, as_json)
    if as_json:
        emit(result.to_dict())
        return
    echo(f"Verified {printable(str(report.stack))} {printable(str(report.version))} from "
         f"{printable(result.pulled.reference)} ({len(report.steps)} steps)")
    v = report.verified
    if v is not None and v.envelope is not None:
        echo(signed_line(report))  # as lodec verify prints it
    echo(f"Wrote {printable(output)}" + (f" and {printable(result.files[0])}" if len(result.files) > 1 else ""))


COMMANDS = (push, pull)
