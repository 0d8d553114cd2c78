"""Model quality: accuracy, macro recall, per-class precision and recall, the confusion
matrix, and the plots (confusion matrix as the tutorial draws it, loss curve)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from namelang.calibration import ECE_BINS, expected_calibration_error, reliability


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    macro_recall: float
    precision: np.ndarray  # (C,), NaN where a class is never predicted
    recall: np.ndarray  # (C,), NaN where a class has no rows
    support: np.ndarray  # (C,) rows per true class
    confusion: np.ndarray  # (C, C) counts, rows true, columns predicted

    def summary(self) -> dict[str, float]:
        return {"accuracy": round(self.accuracy, 4), "macro_recall": round(self.macro_recall, 4)}


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Metrics:
    """Rows whose prediction is -1 (no letters) count as wrong."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scored = y_pred >= 0
    matrix = confusion_matrix(y_true[scored], y_pred[scored], n_classes)
    support = np.bincount(y_true, minlength=n_classes)
    predicted = matrix.sum(axis=0)
    hits = np.diag(matrix).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / support, np.nan)
        precision = np.where(predicted > 0, hits / predicted, np.nan)
    return Metrics(
        accuracy=float(hits.sum() / max(len(y_true), 1)),
        macro_recall=float(np.nanmean(recall)) if (support > 0).any() else float("nan"),
        precision=precision,
        recall=recall,
        support=support,
        confusion=matrix,
    )


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the k most probable (NaN rows miss)."""
    if len(labels) == 0:
        return float("nan")
    top = np.argsort(-np.nan_to_num(probs, nan=-1.0), axis=1, kind="stable")[:, :k]
    return float((top == np.asarray(labels)[:, None]).any(axis=1).mean())


def format_table(m: Metrics, categories: list[str]) -> str:
    lines = [f"{'language':<12} {'precision':>9} {'recall':>7} {'rows':>6}"]
    for i, name in enumerate(categories):
        lines.append(f"{name:<12} {m.precision[i]:>9.3f} {m.recall[i]:>7.3f} {m.support[i]:>6d}")
    lines.append(
        f"accuracy {m.accuracy:.4f}   macro recall {m.macro_recall:.4f}   rows {m.support.sum()}"
    )
    return "\n".join(lines)


def plot_confusion(
    m: Metrics, categories: list[str], path: str | os.PathLike[str], title: str = ""
) -> None:
    """Row-normalised confusion matrix with a label on every tick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = m.confusion / m.confusion.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(8, 8))
    image = ax.matshow(np.nan_to_num(normalised), vmin=0, vmax=1)
    fig.colorbar(image, fraction=0.046)
    ax.set_xticks(range(len(categories)), categories, rotation=90)
    ax.set_yticks(range(len(categories)), categories)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    heading = f"accuracy {m.accuracy:.3f}, macro recall {m.macro_recall:.3f}"
    ax.set_title(f"{title}\n{heading}" if title else heading)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(
    probs: np.ndarray, labels: np.ndarray, path: str | os.PathLike[str], title: str = ""
) -> None:
    """Reliability diagram: accuracy against mean top-1 probability per bin, with the
    diagonal a calibrated model would follow and the rows in each bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confidence, accuracy, rows = reliability(probs, labels)
    ece = expected_calibration_error(probs, labels)
    edges = np.linspace(0, 1, ECE_BINS + 1)
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
    used = rows > 0
    ax.bar(edges[:-1][used], accuracy[used], width=1 / ECE_BINS, align="edge",
           edgecolor="black", alpha=0.7, label="accuracy per bin")  # fmt: skip
    ax.plot(confidence[used], accuracy[used], "ro", markersize=4, label="(confidence, accuracy)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    heading = f"reliability, {ECE_BINS} bins: ECE {ece:.3f}"
    ax.set_title(f"{title}\n{heading}" if title else heading)
    hist.bar(edges[:-1], rows, width=1 / ECE_BINS, align="edge", edgecolor="black")
    hist.set_xlabel("top-1 probability")
    hist.set_ylabel("rows")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: dict, path: str | os.PathLike[str], title: str = "") -> None:
    """Training loss (and validation figures when present) against progress."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    # Markers, so a history of one epoch still shows its point.
    ax.plot(history["x"], history["loss"], marker=".", label="training loss")
    ax.set_xlabel(history.get("x_label", "epoch"))
    ax.set_ylabel("loss")
    if history.get("valid_accuracy"):
        other = ax.twinx()
        other.plot(history["x"], history["valid_accuracy"], "g--", label="valid accuracy")
        other.plot(history["x"], history["valid_macro_recall"], "r:", label="valid macro recall")
        other.set_ylabel("validation")
        other.legend(loc="center right")
    ax.legend(loc="lower left")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
