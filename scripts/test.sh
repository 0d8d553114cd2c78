#!/usr/bin/env bash
# Installs namelang with its test extras into ./.venv (created if missing) and runs
# every test: the Rust core's unit tests, clippy/fmt/ruff, the built wheel in a fresh
# environment without torch, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test]'
cargo test --quiet
cargo clippy --quiet --all-targets --features python -- -D warnings
cargo fmt --check
ruff check python tests benches
bash scripts/check_wheel.sh
python -m pytest "$@"
