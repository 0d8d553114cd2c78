"""Letters outside ASCII as evidence ("marks"; the rule is `rust/marks.rs`): which ones a
model lists and their rows, counted over its training rows as written.

A mark's row holds, per language, log P(mark | language) - log P(mark): the share of the
language's training rows that hold the mark against its share of all rows, each pulled
toward the overall share by `ALPHA` rows (a language whose rows never hold it gets
log(ALPHA / (rows + ALPHA)), a strong but finite no). The rows are added to a name's
logits after training (naive Bayes beside the network, which never sees these letters),
so they leave the network's training and the test figures as they are: the data set's
parts are ASCII."""

from __future__ import annotations

import math
import unicodedata
from collections import Counter

import numpy as np

# Pseudo-rows pulling each language's share of a mark toward its share in all rows.
ALPHA = 10.0
# The fewest training rows a mark must be found in to be listed.
MIN_ROWS = 2


def candidates(name: str) -> set[str]:
    """The Latin letters outside ASCII a name holds (í, ł, ø, ễ), read as the Rust
    backend reads it (NFC, then lower case). Cyrillic and Greek letters are not marks:
    the romanize rule reads them already, and eight of them in one name, each counted
    as independent evidence, would make its answer certain beyond what the data says."""
    read = unicodedata.normalize("NFC", name).lower()
    return {c for c in read if ord(c) > 127 and unicodedata.name(c, "").startswith("LATIN ")}


def marks_table(
    written: list[tuple[str, int]],
    rows_per_language: list[int],
    alpha: float = ALPHA,
    min_rows: int = MIN_ROWS,
) -> tuple[tuple[str, ...], np.ndarray]:
    """(marks, (M, C) float32 rows) from the training rows as written (name, language)
    and each language's number of training rows (every row, written with marks or not)."""
    held: dict[str, Counter] = {}
    for name, label in written:
        for mark in candidates(name):
            held.setdefault(mark, Counter())[label] += 1
    marks = tuple(sorted(m for m, by in held.items() if sum(by.values()) >= min_rows))
    total = sum(rows_per_language)
    weight = np.zeros((len(marks), len(rows_per_language)), dtype=np.float32)
    for i, mark in enumerate(marks):
        share = sum(held[mark].values()) / total
        for c, rows in enumerate(rows_per_language):
            within = (held[mark][c] + alpha * share) / (rows + alpha)
            weight[i, c] = math.log(within) - math.log(share)
    return marks, weight
