"""Models on the held-out names the data set writes with marks (letters outside ASCII):
the lines of the tutorial split's validation and test parts (seed 2022) as written, whose
name holds a Latin letter outside ASCII (`namelang.marks.candidates`). Neither part is
trained on, from any source; the split itself keeps only their ASCII forms, so these
rows are the one held-out check of what a model makes of marks. Figures: rows, accuracy,
and the share of rows answered at probability >= 0.8 that are wrong.

    NAMELANG_DATA=../shared/data/names python scripts/marked_names.py [MODEL ...]
"""

from __future__ import annotations

import argparse

import numpy as np
from namelang.classifier import load
from namelang.data import load_names, split_names
from namelang.marks import candidates
from namelang.text import to_ascii_batch


def marked_rows(data: str | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """(held-out lines written with marks as (line, language), the categories)."""
    names = load_names(data)
    split = split_names(names, seed=2022)
    held = {name for name, _ in split.valid + split.test}
    rows = [
        (line, c)
        for c, language in enumerate(split.categories)
        for line, read in zip(names[language], to_ascii_batch(names[language]), strict=True)
        if read in held and candidates(line)
    ]
    return rows, split.categories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"])
    parser.add_argument("--data", help="data folder (default: NAMELANG_DATA)")
    args = parser.parse_args()
    rows, _ = marked_rows(args.data)
    labels = np.array([c for _, c in rows])
    print("| model | rows | accuracy | wrong at p >= 0.8 |")
    print("|---|---|---|---|")
    for model in args.models:
        probs = np.exp(load(model).log_probs([line for line, _ in rows]))
        top = probs.argmax(1)
        sure = probs.max(1) >= 0.8
        wrong = int((sure & (top != labels)).sum())
        print(f"| {model} | {len(rows)} | {(top == labels).mean():.3f} | {wrong} |")


if __name__ == "__main__":
    main()
