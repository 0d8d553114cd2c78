"""Models on the test part's names that no Faker list holds: what the second corpus
cannot have taught, so a model trained with it must do no worse there than one without.

Rows of the tutorial split's test part (seed 2022) whose name, read as the `romanize`
rule reads it, is in none of the corpus's lists (`namelang.corpus.SOURCES`); figures:
accuracy and macro recall over those rows, then over their distinct (name, language)
pairs (Arabic's rows repeat a few names about 20 times each).

    NAMELANG_DATA=../shared/data/names python scripts/unlisted_names.py [MODEL ...]
"""

from __future__ import annotations

import argparse

import numpy as np
from namelang.classifier import load
from namelang.corpus import listed_names
from namelang.data import load_names, split_names
from namelang.evaluate import metrics
from namelang.text import apply_text_rule


def unlisted_rows(data: str | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """(the test rows no list holds, the categories)."""
    split = split_names(load_names(data), seed=2022)
    listed = listed_names(split.categories)
    reads = apply_text_rule([n for n, _ in split.test], "romanize")
    rows = [row for row, read in zip(split.test, reads, strict=True) if read not in listed]
    return rows, split.categories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"])
    parser.add_argument("--data", help="data folder (default: NAMELANG_DATA)")
    args = parser.parse_args()
    rows, categories = unlisted_rows(args.data)
    distinct = sorted(set(rows))
    n = len(categories)
    print(f"{len(rows)} test rows ({len(distinct)} distinct pairs) in no Faker list")
    print("| model | accuracy | macro recall | accuracy (pairs) | macro recall (pairs) |")
    print("|---|---|---|---|---|")
    for name in args.models:
        model = load(name)
        if list(model.categories) != categories:
            raise SystemExit(f"{name}: its languages are not the data set's")
        figures = []
        for part in (rows, distinct):
            probs = np.exp(model.log_probs([r for r, _ in part]))
            best = np.where(np.isnan(probs).any(1), -1, np.nan_to_num(probs).argmax(1))
            m = metrics(np.array([label for _, label in part]), best, n)
            figures += [m.accuracy, m.macro_recall]
        print(f"| {name} | " + " | ".join(f"{f:.3f}" for f in figures) + " |")


if __name__ == "__main__":
    main()
