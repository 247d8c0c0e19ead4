#!/bin/sh
# Regenerates the real-tool report fixtures in this folder from sample/.
# Needs ruff, bandit and pytest in the dev venv (pip install ruff bandit; not
# lodec dependencies). See PROVENANCE.md for what each report should yield.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../../../.venv/bin}
cd "$here/sample"

# ruff writes absolute file names; strip this folder's prefix so the fixtures
# are machine-independent (the only post-processing applied to any report).
relative() { sed "s|$here/sample/||g"; }

"$bin/ruff" check --isolated --no-cache --output-format json app.py | relative > ../ruff-findings.json || true
"$bin/ruff" check --isolated --no-cache --output-format json clean.py | relative > ../ruff-clean.json
printf 'def broken(:\n    pass\n' |
  "$bin/ruff" check --isolated --no-cache --output-format json --stdin-filename broken.py - | relative > ../ruff-syntax.json || true

"$bin/bandit" -q -f json -o ../bandit-high.json app.py || true
"$bin/bandit" -q -f json -o ../bandit-medium.json medium.py || true
"$bin/bandit" -q -f json -o ../bandit-clean.json clean.py

tmp=$(mktemp -d)
"$bin/python" -m pytest -p no:cacheprovider -o addopts= --rootdir . -q --junitxml "$tmp/pass.xml" sample_checks.py
"$bin/python" -m pytest -p no:cacheprovider -o addopts= --rootdir . -q --junitxml "$tmp/fail.xml" sample_failing_checks.py || true
relative < "$tmp/pass.xml" > ../pytest-pass.xml
relative < "$tmp/fail.xml" > ../pytest-fail.xml
rm -rf "$tmp" __pycache__ .ruff_cache
