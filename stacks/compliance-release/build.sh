#!/bin/sh
# Compile the six steps, build the stack, pin its skills (skills/ beside the stack), verify it.
# Run from anywhere; paths are relative to this folder. Deterministic: the committed files are rewritten byte for byte.
set -eu
cd "$(dirname "$0")"
lodec compile src/review.json src/qa.json src/security.json \
    src/license-audit.json src/privacy-check.json src/release-readiness.json -o steps/
lodec stack build steps/review.vein steps/qa.vein steps/security.vein \
    steps/license-audit.vein steps/privacy-check.vein steps/release-readiness.vein \
    --name compliance-release --version 1.0.0 \
    --description "Release evidence (review, qa, security), license audit and privacy check, composed into a release decision" \
    --meta kind=compliance-release \
    -o compliance-release-stack.json
lodec lock compliance-release-stack.json
lodec verify compliance-release-stack.json
