#!/usr/bin/env bash
# Reproduces the two bundled models from the tutorial's data set (NAMELANG_DATA, or
# ../shared/data/names beside the project). CPU, deterministic for a given machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export NAMELANG_DATA="${NAMELANG_DATA:-$(cd .. && pwd)/shared/data/names}"
out=python/namelang/models
namelang train --recipe tutorial --seed 2022 --output "$out/tutorial.safetensors"
namelang train --cell gru --input embedding --embedding-dim 64 --hidden-size 256 \
    --weight-decay 1e-5 --epochs 8 --distinct --seed 2022 --output "$out/default.safetensors"
