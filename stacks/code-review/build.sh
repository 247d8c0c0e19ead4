#!/bin/sh
# The main job on the seed example: compile the three steps, build the stack, pin its skills, verify it.
# Run from the repository root. Compiling is deterministic: the committed files are rewritten byte for byte.
set -eu
lodec compile steps/lint-step.json steps/analyze-step.json steps/review-step.json \
    -s schemas/skill-step-v1.lode -o stacks/code-review/steps/
lodec stack build stacks/code-review/steps/*.vein \
    --name code-review-pipeline --version 1.0.0 \
    --description "Lint, analyze, and AI-review code changes" \
    --entry lint --meta team=platform --meta triggerOn=pull_request \
    -o stacks/code-review/code-review-stack.json
lodec lock stacks/code-review/code-review-stack.json
lodec verify stacks/code-review/code-review-stack.json
