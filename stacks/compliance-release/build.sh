#!/bin/sh
# Compile the six steps, build the stack, pin its skills (skills/ beside the stack), verify it, all from
# lodec-stack.toml. Run from anywhere. Deterministic and incremental: the committed files are rewritten
# byte for byte, and only when their bytes change.
set -eu
lodec build "$(dirname "$0")/lodec-stack.toml"
