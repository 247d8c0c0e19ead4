#!/bin/sh
# The main job on the seed example: compile the three steps, build the stack, pin its skills, verify it,
# all from stacks/code-review/lodec-stack.toml. Run from the repository root. Deterministic and incremental:
# the committed files are rewritten byte for byte, and only when their bytes change.
set -eu
lodec build stacks/code-review/lodec-stack.toml
