"""Probabilities that mean what they say: temperature fitting, expected calibration
error, and split-conformal prediction sets. numpy only, so scoring needs no torch.

A prediction set at coverage level a holds every language whose probability is at
least the threshold fitted for a on the validation split (score 1 - p(true language),
its ceil((n + 1) a)-th smallest value q, threshold 1 - q); it always holds the best
language. Thresholds fall as the level rises, so sets are nested."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np

# Coverage levels a model file stores thresholds for: 0.50, 0.51, ..., 0.99.
LEVELS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))
ECE_BINS = 15


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    z = logits.astype(np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T): golden-section
    search on log T in [log 0.05, log 20] (the NLL is unimodal in T)."""
    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


def reliability(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of top-1 probability: (mean confidence, accuracy, rows);
    NaN for an empty bin."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / rows
        accuracy = np.bincount(which, weights=correct, minlength=bins) / rows
    return mean_conf, accuracy, rows


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Row-weighted mean |accuracy - confidence| over equal-width top-1 bins."""
    mean_conf, accuracy, rows = reliability(probs, labels, bins)
    used = rows > 0
    if not used.any():
        return float("nan")
    gaps = np.abs(accuracy[used] - mean_conf[used])
    return float((gaps * rows[used]).sum() / rows[used].sum())


def conformal_thresholds(
    probs: np.ndarray, labels: np.ndarray, levels: tuple[float, ...] = LEVELS
) -> dict[str, float]:
    """Split conformal on held-out rows: level -> probability threshold."""
    scores = np.sort(1.0 - probs[np.arange(len(labels)), labels])
    n = len(scores)
    out = {}
    for level in levels:
        k = math.ceil((n + 1) * level)
        q = 1.0 if k > n else float(scores[k - 1])
        out[f"{level:.2f}"] = max(0.0, 1.0 - q)
    return out


def threshold(conformal: Mapping[str, object] | str | None, coverage: float) -> float:
    """The probability threshold a model file stores for `coverage` (0.50-0.99, in
    steps of 0.01)."""
    if conformal is None:
        raise ValueError(
            "this model file holds no conformal thresholds: retrain it with "
            "`namelang train` to get prediction sets"
        )
    table = json.loads(conformal) if isinstance(conformal, str) else conformal
    key = f"{coverage:.2f}"
    if not 0.5 <= coverage <= 0.99 or abs(float(key) - coverage) > 1e-9:
        raise ValueError(f"coverage must be one of 0.50, 0.51, ..., 0.99, got {coverage}")
    return float(table["thresholds"][key])  # type: ignore[index]


def coverage_report(probs: np.ndarray, labels: np.ndarray, cut: float) -> tuple[float, float]:
    """(share of rows whose set holds the truth, mean set size) at this threshold: a
    measurement over many rows; each row's own set comes from the native `Job`."""
    sizes = np.maximum((probs >= cut).sum(axis=1), 1)
    best = probs.argmax(axis=1)
    holds = (probs[np.arange(len(labels)), labels] >= cut) | (best == labels)
    return float(holds.mean()), float(sizes.mean())
