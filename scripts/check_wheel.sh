#!/usr/bin/env bash
# Builds the abi3 wheel and installs it, without torch, into a fresh virtual environment
# in a temporary folder: predict, score and score_batch must work there and never import
# torch. Run by scripts/test.sh after the tests; prints the wheel's size.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
maturin build --release --quiet -o "$work/dist" 2>/dev/null
wheel=$(ls "$work"/dist/namelang-*-abi3-*.whl)
echo "wheel: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel" pyarrow
cd "$work"  # away from the source tree: the installed wheel is what runs
printf 'Zhou\nHinton\n\n' > names.txt
"$work/venv/bin/namelang" score names.txt -o scored.csv -q
"$work/venv/bin/python" - <<'PY'
import importlib.util
import sys

import pyarrow as pa

import namelang

assert "torch" not in sys.modules and importlib.util.find_spec("torch") is None
top = namelang.load().predict(["Hinton", "Zhou"], k=2)
assert top[1][0][0] == "Chinese", top
table = namelang.score_batch(pa.array(["Zhou", None, "Tanaka"]))
assert table.column("language").to_pylist() == ["Chinese", None, "Japanese"], table
assert table.column("error").to_pylist() == [None, "null", None]
summary = namelang.score_file("names.txt", "again.csv", progress=False)
rows = open("scored.csv", encoding="utf-8").read().splitlines()
assert summary.rows == 3 and len(rows) == 4 and rows[1].startswith("Zhou,Zhou,Chinese,"), rows
assert "torch" not in sys.modules
print("wheel without torch: predict, score and score_batch work, torch never imported")
PY
