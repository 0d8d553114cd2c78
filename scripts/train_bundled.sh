#!/usr/bin/env bash
# Reproduces the two bundled models from the tutorial's data set (NAMELANG_DATA, or
# ../shared/data/names beside the project). CPU, deterministic for a given machine;
# the default model trains in under two minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export NAMELANG_DATA="${NAMELANG_DATA:-$(cd .. && pwd)/shared/data/names}"
out=python/namelang/models
namelang train --recipe tutorial --seed 2022 --output "$out/tutorial.safetensors"
# Two members (seeds 2023, 2024), each a GRU of 48 over the letters plus a hashed 1-6 gram
# branch, merged into one GRU of 96 whose logits are their mean (block-diagonal: the
# kernels skip its zero blocks); names read case- and space-blind (Cyrillic and Greek
# romanised); Faker's surname lists as a second corpus (namelang.corpus: at most 300 rows
# a language, each weighing 0.3 of a data set row; needs the train extra), which also
# settles the data set's names listed under several languages. The table reads only the
# n-grams at least two distinct training names hold (namelang.known_ngrams); letters
# outside ASCII count as evidence after training (namelang.marks). The logit adjustment
# also leans toward the data set's line shares (--line-prior: its files repeat names,
# which training on distinct pairs under-counts), by a weight chosen on validation.
namelang train --cell gru --input embedding --embedding-dim 32 --hidden-size 48 --ensemble 2 \
    --ngram-max 6 --ngram-buckets 32768 --ngram-min-names 2 --dropout 0.5 --class-weight-power 0.5 \
    --feminine-forms --epochs 10 --distinct --corpus faker --corpus-settles --seed 2023 --marks --line-prior \
    --output "$out/default.safetensors"
