#!/usr/bin/env python3
"""End-to-end check of the compliance-release stack, as a user would drive it: through the `lodec` CLI.

In a temporary git project holding a small fixture app (package.json with real
dependency names, README, .env.example, src/signup.js with an email field, and
canary files that must never be opened), it installs the four skills with
`lodec skill add`, compiles, builds, locks and verifies the stack, plans it,
runs it, and then changes the evidence: the QA report removed, an upstream
artifact tampered in the store, every upstream made clean. It checks the
journal, analytics, discard, resolve, and where state goes from a git
subdirectory and outside git with a fake HOME.

Every `lodec` here runs under a throwaway interpreter whose start-up installs
an audit hook (sys.addaudithook) that logs the path of every `open`. lodec
hands that interpreter to the steps (LODEC_PYTHON), so the log records what
lodec and every Python step opened: the canary check reads that log.

Usage: python stacks/compliance-release/e2e.py [--keep] [--reports DIR]
Prints one line per check, then `N passed, M failed` as its last line; exit 0 only when none failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REPORTS = HERE / "example" / "reports"
STACK_NAME = "compliance-release"
STEPS = ("review", "qa", "security", "license-audit", "privacy-check", "release-readiness")
UPSTREAMS = STEPS[:5]
SKILLS = ("tool-evidence", "license-audit", "privacy-check", "release-readiness")
CANARY = "LODEC-CANARY-7f3a9c1e"
CANARY_FILES = (".env", ".env.local", ".env.production", "credentials.json", "id_rsa", "server.pem")

AUDIT_MODULE = '''
import os, sys
_LOG = {log!r}
_busy = False
def _hook(event, args):
    global _busy
    if event != "open" or _busy or not args or isinstance(args[0], int):
        return
    _busy = True
    try:
        path = os.path.abspath(os.fsdecode(args[0]))
        line = (str(os.getpid()) + "\\t" + path + "\\n").encode("utf-8", "surrogateescape")
        if "LODEC_RUN_ID" in os.environ:
            # A step runs sealed: a file it writes outside its sandbox is lost, so report on
            # stderr, which lodec keeps in the run's steps/<step>/stderr.log.
            os.write(2, b"lodec-open-audit\\t" + line)
            return
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except Exception:
        pass
    finally:
        _busy = False
sys.addaudithook(_hook)
'''


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: Any = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok    {name}")
        else:
            self.failed += 1
            print(f"FAIL  {name}" + (f": {detail}" if detail != "" else ""))
        return ok


def audit_interpreter(root: Path, log: Path) -> Path:
    """A venv whose interpreter sees this interpreter's packages and logs every open to ``log``."""
    venv.create(root, with_pip=False, symlinks=True)
    python = root / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_lodec_open_audit.py").write_text(AUDIT_MODULE.format(log=str(log)))
    (site / "_lodec_open_audit.pth").write_text("import _lodec_open_audit\n")
    parents = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in dict.fromkeys(parents))
    (site / "_lodec_parent_site.pth").write_text(lines)
    return python


class Project:
    """The temporary world: a fake HOME, the audit interpreter, and a git project with the fixture app."""

    def __init__(self, base: Path, reports: Path) -> None:
        self.base = base
        self.reports = reports
        self.home = base / "home"
        self.home.mkdir()
        self.log = base / "opens.log"
        self.python = audit_interpreter(base / "audit-venv", self.log)
        self.root = base / "app"
        self.stack = self.root / "stack" / f"{STACK_NAME}-stack.json"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}
        env.update(HOME=str(self.home), GIT_CONFIG_NOSYSTEM="1", PYTHONDONTWRITEBYTECODE="1")
        return env

    def lodec(self, *args: Any, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), "-m", "lodec", *map(str, args)], cwd=cwd or self.root,
                              env=env or self.env(), capture_output=True, text=True, timeout=300)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def package(self, name: str, license_value: str) -> None:
        self.write(f"node_modules/{name}/package.json", json.dumps({"name": name, "version": "1.0.0",
                                                                    "license": license_value}) + "\n")

    def report(self, name: str, fixture: str) -> None:
        (self.root / "reports").mkdir(exist_ok=True)
        shutil.copyfile(self.reports / fixture, self.root / "reports" / name)

    def fixture_app(self) -> None:
        self.root.mkdir()
        subprocess.run(["git", "init", "-q", str(self.root)], check=True, env=self.env())
        self.write("package.json", json.dumps({
            "name": "signup-app", "version": "1.2.0", "private": True,
            "dependencies": {"express": "^4.19.2", "react": "^18.3.1", "dompurify": "^3.1.6",
                             "axe-core": "^4.9.1", "lodash": "^4.17.21"},
            "devDependencies": {"jest": "^29.7.0", "eslint": "^8.57.0"},
        }, indent=2) + "\n")
        for name, value in (("express", "MIT"), ("react", "MIT"), ("dompurify", "(MPL-2.0 OR Apache-2.0)"),
                            ("axe-core", "MPL-2.0"), ("jest", "MIT"), ("eslint", "MIT")):
            self.package(name, value)  # lodash has no node_modules entry: its licence is unknown
        self.write("README.md", "# signup-app\n\nA small sign-up service.\n\n## Usage\n\n    npm start\n")
        self.write(".env.example", "DATABASE_URL=postgres://localhost/signup_dev\nAPI_KEY=\nSMTP_PASSWORD=<your-password>\n")
        self.write("src/signup.js", (
            "export function signupForm() {\n"
            "  return `<form action=\"/api/signup\" method=\"post\">\n"
            "    <input type=\"email\" name=\"email\" required>\n"
            "    <button>Sign up</button>\n"
            "  </form>`;\n"
            "}\n"))
        for rel in CANARY_FILES:
            self.write(rel, f"SECRET={CANARY}\n")
        self.report("ruff.json", "ruff-findings.json")
        self.report("pytest.xml", "pytest-pass.xml")
        self.report("bandit.json", "bandit-clean.json")
        self.write(".gitignore", ".lodec/\nnode_modules/\n.env\n")

    def run(self, *extra: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            stack: Path | None = None, workspace: Path | None = None) -> tuple[int, dict[str, Any], str]:
        done = self.lodec("run", stack or self.stack, "--workspace", workspace or self.root, "--json", *extra,
                          cwd=cwd, env=env)
        record = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
        return done.returncode, record, done.stderr

    def artifact(self, record: dict[str, Any], step: str) -> dict[str, Any]:
        """``step``'s artifact.json of ``record``'s run, through `lodec artifact` (re-hashed; refused if changed)."""
        done = self.lodec("artifact", step, "--run", record.get("run", "?"))
        if done.returncode != 0:
            raise RuntimeError(f"lodec artifact {step}: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def decision(self, record: dict[str, Any]) -> dict[str, Any]:
        """A BLOCKED release-readiness decision: its step failed (outputs discarded), the JSON is on its stdout."""
        done = self.lodec("logs", "release-readiness", "--stdout", "--run", record.get("run", "?"))
        if done.returncode != 0 or "\n" not in done.stdout:
            raise RuntimeError(f"lodec logs release-readiness: {done.stderr.strip()}")
        return json.loads(done.stdout.split("\n", 1)[1])


def summary(artifact: dict[str, Any]) -> dict[str, Any]:
    return artifact.get("summary", {})


def checks_by_phase(artifact: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("phase"): c for c in summary(artifact).get("checks", [])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    parser.add_argument("--reports", type=Path, default=REPORTS, help="folder of the example tool reports")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lodec-compliance-e2e-"))
    c = Checks()
    try:
        scenario(Project(base, args.reports), c)
    except Exception as exc:  # a crash is a failed check, and the count is still printed
        c.check(f"harness ran to the end ({type(exc).__name__}: {exc})", False)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


def scenario(p: Project, c: Checks) -> None:
    p.fixture_app()
    state = p.root / ".lodec"

    # ---- install and validate the skills, the way the README does
    for name in SKILLS:
        done = p.lodec("skill", "add", HERE / "skills" / name)
        c.check(f"lodec skill add {name}", done.returncode == 0, done.stderr.strip())
    installed = [state / "skills" / name for name in SKILLS]
    c.check("skills installed under the git root's .lodec/skills", all((d / "SKILL.md").is_file() for d in installed))
    done = p.lodec("skill", "check", *installed)
    c.check("lodec skill check passes for the four installed skills", done.returncode == 0, done.stderr.strip())

    # ---- compile, build, lock, verify
    stack_dir = p.stack.parent
    done = p.lodec("compile", *sorted((HERE / "src").glob("*.json")), "-o", stack_dir / "steps")
    c.check("lodec compile of the six steps", done.returncode == 0, done.stderr.strip())
    veins = [stack_dir / "steps" / f"{s}.vein" for s in STEPS]
    done = p.lodec("stack", "build", *veins, "--name", STACK_NAME, "--version", "1.0.0",
                   "--description", "Release evidence (review, qa, security), license audit and privacy check, "
                   "composed into a release decision",
                   "--meta", "kind=compliance-release", "-o", p.stack)
    c.check("lodec stack build", done.returncode == 0, done.stderr.strip())
    done = p.lodec("lock", p.stack)
    c.check("lodec lock pins the installed skills", done.returncode == 0, done.stderr.strip())
    done = p.lodec("verify", p.stack, "--json")
    verified = json.loads(done.stdout) if done.returncode == 0 else {}
    c.check("lodec verify", done.returncode == 0 and verified.get("ok") is True, done.stdout + done.stderr)
    committed = p.lodec("verify", HERE / f"{STACK_NAME}-stack.json", "--json")
    ours = verified.get("digest")
    theirs = json.loads(committed.stdout).get("digest") if committed.returncode == 0 else None
    c.check("the stack built here has the committed manifest's digest", ours is not None and ours == theirs,
            f"{ours} != {theirs}")

    # ---- plan: license-audit and privacy-check share a read batch before release-readiness
    done = p.lodec("plan", p.stack)
    batches = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    where = {s: b["batch"] for b in batches for s in b["steps"]}
    kinds = {b["batch"]: b["type"] for b in batches}
    c.check("plan: license-audit and privacy-check are in one batch",
            where.get("license-audit") is not None and where.get("license-audit") == where.get("privacy-check"), batches)
    c.check("plan: that batch is a read batch", kinds.get(where.get("license-audit")) == "read", batches)
    c.check("plan: release-readiness comes after all five upstreams",
            all(where.get("release-readiness", 0) > where.get(u, 99) for u in UPSTREAMS), batches)

    # ---- run 1: the fixture as it is
    open(p.log, "w").close()
    code, first, err = p.run()
    c.check("run 1 exits 0", code == 0, err.strip())
    c.check("run 1: all six steps succeeded",
            [first.get("steps", {}).get(s, {}).get("status") for s in STEPS] == ["succeeded"] * 6, err.strip())
    lic = p.artifact(first, "license-audit")
    c.check("license-audit counts", summary(lic).get("counts") == {
        "total": 7, "permissive": 5, "weak_copyleft": 1, "strong_copyleft": 0, "unknown": 1}, summary(lic).get("counts"))
    c.check("license-audit is WARN (one unknown licence)", summary(lic).get("status") == "WARN", summary(lic))
    c.check("license-audit flags lodash as unknown",
            [(f.get("name"), f.get("class")) for f in summary(lic).get("flagged", [])] == [("lodash", "unknown")],
            summary(lic).get("flagged"))
    classes = {d.get("name"): d.get("class") for d in lic.get("dependencies", [])}
    c.check("license-audit: (MPL-2.0 OR Apache-2.0) is permissive, MPL-2.0 weak copyleft",
            classes.get("dompurify") == "permissive" and classes.get("axe-core") == "weak_copyleft", classes)
    priv = p.artifact(first, "privacy-check")
    c.check("privacy-check is WARN", summary(priv).get("status") == "WARN", summary(priv))
    c.check("privacy-check reports the email field in src/signup.js",
            any(s.get("kind") == "personal_data" and s.get("file") == "src/signup.js" and s.get("evidence") == "email"
                for s in summary(priv).get("signals", [])), summary(priv).get("signals"))
    c.check("privacy-check: privacy_note missing", summary(priv).get("missing") == ["privacy_note"], summary(priv))

    opened = p.log.read_text().splitlines() if p.log.exists() else []
    for log in sorted(state.glob("runs/*/steps/*/stderr.log")):  # what sealed steps reported
        opened += [line.removeprefix("lodec-open-audit\t") for line in log.read_text(errors="replace").splitlines()
                   if line.startswith("lodec-open-audit\t")]
    paths = {line.split("\t", 1)[1] for line in opened if "\t" in line}
    c.check("audit log saw the step open .env.example and src/signup.js",
            str(p.root / ".env.example") in paths and str(p.root / "src" / "signup.js") in paths, len(paths))
    touched = sorted(x for x in paths for rel in CANARY_FILES if x == str(p.root / rel))
    c.check("no canary (.env, .env.local, .env.production, credentials.json, id_rsa, server.pem) was opened",
            not touched, touched)
    leaked = [str(f) for f in state.rglob("*") if f.is_file() and CANARY.encode() in f.read_bytes()]
    c.check("no canary content in any run record, log or artifact", not leaked, leaked)

    done = p.lodec("resolve", p.stack, "release-readiness")
    resolved = json.loads(done.stdout) if done.returncode == 0 else {}
    keys = sorted(resolved.get("upstream_artifacts", {}))
    c.check("resolve release-readiness: all five upstreams",
            keys == sorted(f"{u}/artifact.json" for u in UPSTREAMS), keys)
    c.check("resolve: all five verified, each with a path",
            set(resolved.get("upstream_status", {}).values()) == {"verified"}
            and all(resolved.get("upstream_artifacts", {}).values()), resolved)

    rr = p.artifact(first, "release-readiness")
    c.check("release-readiness is WARN", summary(rr).get("status") == "WARN", summary(rr))
    c.check("release-readiness checks the five phases in order",
            [x.get("phase") for x in summary(rr).get("checks", [])] == list(UPSTREAMS), summary(rr).get("checks"))
    by = checks_by_phase(rr)
    c.check("release-readiness sees review WARN (ruff findings) and qa, security OK",
            [by.get(x, {}).get("status") for x in ("review", "qa", "security")] == ["WARN", "OK", "OK"], by)

    # ---- run 2: the QA report is removed
    (p.root / "reports" / "pytest.xml").unlink()
    code, second, err = p.run()
    rec = second.get("steps", {}).get("release-readiness", {})
    c.check("run 2 exits 1: the BLOCKED gate fails its step (exit_nonzero, exit code 1)",
            code == 1 and (rec.get("status"), rec.get("reason"), rec.get("exit_code")) == ("failed", "exit_nonzero", 1),
            rec or err)
    c.check("run 2's failure lines carry the decision", "| release-readiness: BLOCKED: Release blocked: " in err
            and "qa evidence missing" in err and "| release-readiness: qa MISSING" in err, err)
    qa = p.artifact(second, "qa")
    c.check("qa is MISSING without its report", summary(qa).get("status") == "MISSING", summary(qa))
    rr2 = p.decision(second)
    c.check("release-readiness is BLOCKED when QA evidence is missing", summary(rr2).get("status") == "BLOCKED",
            summary(rr2))
    c.check("release-readiness names qa as MISSING", checks_by_phase(rr2).get("qa", {}).get("status") == "MISSING",
            summary(rr2).get("checks"))
    p.report("pytest.xml", "pytest-pass.xml")

    # ---- an upstream artifact tampered in the store after run 1
    blob = Path(resolved["upstream_artifacts"]["license-audit/artifact.json"])
    blob.chmod(0o644)
    forged = dict(lic, summary={**summary(lic), "status": "OK", "headline": "forged"})
    blob.write_text(json.dumps(forged))
    code, strict, err = p.run("--step", "release-readiness", "--reuse", first["run"])
    rec = strict.get("steps", {}).get("release-readiness", {})
    c.check("strict trust: release-readiness does not start on a tampered upstream (exit 1)",
            code == 1 and (rec.get("status"), rec.get("reason")) == ("skipped", "upstream_untrusted"), rec or err)
    code, normal, err = p.run("--step", "release-readiness", "--reuse", first["run"], "--trust", "normal")
    c.check("normal trust: the partial run runs the gate, which blocks (exit 1)",
            code == 1 and "| release-readiness: license-audit TAMPERED" in err, err.strip())
    rr3 = p.decision(normal)
    lic_check = checks_by_phase(rr3).get("license-audit", {})
    c.check("release-readiness marks license-audit TAMPERED", lic_check.get("status") == "TAMPERED", lic_check)
    c.check("the tampered artifact was not used as evidence", lic_check.get("evidence") is None, lic_check)
    c.check("release-readiness is BLOCKED on a tampered upstream", summary(rr3).get("status") == "BLOCKED", summary(rr3))
    done = p.lodec("resolve", p.stack, "release-readiness", "--run", first["run"])
    status = json.loads(done.stdout).get("upstream_status", {}) if done.returncode == 0 else {}
    c.check("resolve shows the tampered upstream as integrity_mismatch",
            status.get("license-audit/artifact.json") == "integrity_mismatch", status)

    # ---- run 4: every upstream clean
    p.write("README.md", (p.root / "README.md").read_text()
            + "\n## Privacy\n\nThe sign-up form collects an email address, used only to send the account link.\n")
    p.package("lodash", "MIT")
    p.report("ruff.json", "ruff-clean.json")
    code, clean, err = p.run()
    c.check("run 4 exits 0", code == 0, err.strip())
    for step in UPSTREAMS:
        art = p.artifact(clean, step)
        c.check(f"clean project: {step} is OK", summary(art).get("status") == "OK", summary(art))
    rr4 = p.artifact(clean, "release-readiness")
    c.check("release-readiness is OK when every upstream is present, verified and OK",
            summary(rr4).get("status") == "OK", summary(rr4))

    # ---- journal, analytics, discard
    done = p.lodec("journal", clean["run"])
    c.check("journal has a section per step", done.returncode == 0 and all(f"## {s}\n" in done.stdout for s in STEPS),
            done.stderr.strip())
    done = p.lodec("analytics", "--json")
    figures = json.loads(done.stdout) if done.returncode == 0 else {}
    counts = {s: sum(figures.get("steps", {}).get(s, {}).get("counts", {}).values()) for s in STEPS}
    c.check("analytics counts each upstream step in each full run (3)", all(counts[s] == 3 for s in UPSTREAMS), counts)
    c.check("analytics counts release-readiness in every run (5)", counts["release-readiness"] == 5, counts)
    # Runs 1 and 2 produced the same license-audit bytes, so both record the blob tampered after run 2.
    c.check("analytics lists the tampered artifact under runs 1 and 2",
            sorted(figures.get("tampered", [])) == sorted(f"{r['run']}/license-audit/artifact.json"
                                                         for r in (first, second)), figures.get("tampered"))
    done = p.lodec("runs", "discard", clean["run"], "--dry-run")
    listed = [Path(line.strip()) for line in done.stdout.splitlines() if line.strip().startswith("/")]
    run_dir = state / "runs" / clean["run"]
    c.check("discard --dry-run lists the run's record and journal",
            done.returncode == 0 and run_dir / "run.json" in listed and run_dir / "journal.md" in listed, done.stdout)
    c.check("discard --dry-run deletes nothing", bool(listed) and all(x.exists() for x in listed), listed)

    # ---- from a git subdirectory: state at the root, none in the subdirectory
    sub = p.root / "docs"
    sub.mkdir()
    before = set(os.listdir(state / "runs"))
    code, _rec, err = p.run(cwd=sub, stack=Path("..") / "stack" / p.stack.name, workspace=Path(".."))
    c.check("run from a git subdirectory exits 0", code == 0, err.strip())
    c.check("no .lodec in the subdirectory", not (sub / ".lodec").exists())
    c.check("the run is recorded at the git root", len(set(os.listdir(state / "runs")) - before) == 1)

    # ---- outside git, with a fake HOME
    outside = p.base / "nogit"
    shutil.copytree(p.root, outside, ignore=shutil.ignore_patterns(".git", ".lodec"))
    env = p.env()
    git_root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=outside, env=env,
                              capture_output=True, text=True)
    c.check("the copy is outside any git repository", git_root.returncode != 0, git_root.stdout)
    for name in SKILLS:
        p.lodec("skill", "add", HERE / "skills" / name, cwd=outside, env=env)
    c.check("outside git, skill add installs under $HOME/.lodec/skills",
            all((p.home / ".lodec" / "skills" / n / "SKILL.md").is_file() for n in SKILLS))
    code, rec, err = p.run(cwd=outside, env=env, stack=outside / "stack" / p.stack.name, workspace=outside)
    c.check("outside git, the run exits 0", code == 0, err.strip())
    runs_home = p.home / ".lodec" / "runs"
    c.check("outside git, the run is recorded under $HOME/.lodec/runs",
            runs_home.is_dir() and rec.get("run") in os.listdir(runs_home), rec.get("run"))
    c.check("outside git, nothing is written to the project", not (outside / ".lodec").exists())


if __name__ == "__main__":
    sys.exit(main())
