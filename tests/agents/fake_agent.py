#!/usr/bin/env python3
"""A small deterministic stand-in for a coding agent's non-interactive mode, for lodec's agent-runner tests.

Run as lodec's agent runner runs an agent: argv from .lodec/agent.toml (here
``fake_agent.py --skill {skill_md} --out {output_dir} --prompt {prompt}``), the step
request (JSON) on stdin, LODEC_SKILL_MD in the environment. It reads the skill's
SKILL.md, follows it in the only way a program can (it reports what it read), and
writes every declared output: a JSON record of the skill's name and description
(from the frontmatter), the BLAKE3 of the SKILL.md bytes it was given, the step and
its inputs. Exits 3 if SKILL.md is not where the argv and LODEC_SKILL_MD say.
"""

import argparse
import json
import os
import sys
import time

import blake3


def frontmatter(text):
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}
    out = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "\t")):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skill", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prompt", default="")
    parser.add_argument("--extra", help="also write this undeclared file (to test the outputs rule)")
    parser.add_argument("--sleep", type=float, default=0, help="seconds to wait first (to test the timeout)")
    args = parser.parse_args()
    time.sleep(args.sleep)
    if args.skill != os.environ.get("LODEC_SKILL_MD") or not os.path.isfile(args.skill):
        sys.stderr.write("fake-agent: SKILL.md is not at %r (LODEC_SKILL_MD=%r)\n"
                         % (args.skill, os.environ.get("LODEC_SKILL_MD")))
        return 3
    with open(args.skill, "rb") as fh:
        data = fh.read()
    meta = frontmatter(data.decode("utf-8"))
    request = json.load(sys.stdin)
    step = request["step"]
    record = {
        "agent": "fake-agent",
        "skill": meta.get("name"),
        "description": meta.get("description"),
        "skill_md_blake3": blake3.blake3(data).hexdigest(),
        "step": step["name"],
        "inputs": request["inputs"],
        "prompt_names_skill_md": args.skill in args.prompt,
    }
    for name in step["outputs"]:
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    if args.extra:
        with open(os.path.join(args.out, args.extra), "w", encoding="utf-8") as fh:
            fh.write("not declared\n")
    print("fake-agent: carried out %s for %s" % (meta.get("name"), step["name"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
