"""namelang's models beside character n-gram baselines, on the same split, side by side.

Baselines (scikit-learn, a dev-only dependency: `pip install scikit-learn`), each tuned
on the validation part only, then scored once on the test part:
  - char_wb 1-5 grams, TF-IDF (sublinear), LogisticRegression, C from {10, 30, 100}
  - the same, class_weight="balanced"
  - char_wb 1-4 gram counts, MultinomialNB, alpha from {0.03, 0.1, 0.3, 1}
Every model is scored on the test part as written, upper-cased, lower-cased and with
padded spaces: accuracy, macro recall, top-3 accuracy and ECE (15 bins).

    NAMELANG_DATA=../shared/data/names python scripts/baselines.py [MODEL ...]

MODEL: "default", "tutorial" or a model file path (default: both bundled models).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from namelang.calibration import expected_calibration_error
from namelang.classifier import load
from namelang.data import load_names, split_names
from namelang.evaluate import metrics, top_k_accuracy

VARIANTS = {
    "as written": lambda n: n,
    "UPPER": str.upper,
    "lower": str.lower,
    "  padded  ": lambda n: f"  {n}  ",
}


def figures(probs: np.ndarray, labels: np.ndarray, n: int) -> tuple[float, ...]:
    m = metrics(labels, probs.argmax(1), n)
    top3 = top_k_accuracy(probs, labels, 3)
    return m.accuracy, m.macro_recall, top3, expected_calibration_error(probs, labels)


def selection(probs: np.ndarray, labels: np.ndarray, n: int) -> float:
    m = metrics(labels, probs.argmax(1), n)
    return 0.5 * (m.accuracy + m.macro_recall)


def baselines(split, n: int):
    """(name, fitted predict_proba over raw names) for each baseline, tuned on valid."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    train_x = [name for name, _ in split.train]
    train_y = np.array([label for _, label in split.train])
    valid_x = [name for name, _ in split.valid]
    valid_y = np.array([label for _, label in split.valid])

    def tfidf():
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True)

    candidates = {
        "n-gram LogisticRegression": [
            make_pipeline(tfidf(), LogisticRegression(C=c, max_iter=2000)) for c in (10, 30, 100)
        ],
        "n-gram LogisticRegression, balanced": [
            make_pipeline(tfidf(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
            for c in (10, 30, 100)
        ],
        "n-gram MultinomialNB": [
            make_pipeline(
                CountVectorizer(analyzer="char_wb", ngram_range=(1, 4)), MultinomialNB(alpha=a)
            )
            for a in (0.03, 0.1, 0.3, 1.0)
        ],
    }
    for name, pipelines in candidates.items():
        start = time.perf_counter()
        best = max(
            (p.fit(train_x, train_y) for p in pipelines),
            key=lambda p: selection(p.predict_proba(valid_x), valid_y, n),
        )
        params = best.steps[-1][1].get_params()
        chosen = f"C={params['C']}" if "C" in params else f"alpha={params['alpha']}"
        print(f"# {name}: {chosen} by validation ({time.perf_counter() - start:.0f} s)")
        yield name, best.predict_proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default", "tutorial"])
    parser.add_argument("--data", help="data folder (default: NAMELANG_DATA)")
    args = parser.parse_args()
    split = split_names(load_names(args.data), seed=2022)
    n = len(split.categories)
    test_x = [name for name, _ in split.test]
    test_y = np.array([label for _, label in split.test])
    scorers = [(m, load(m).log_probs) for m in args.models]
    print("| model | test names | accuracy | macro recall | top-3 | ECE |")
    print("|---|---|---|---|---|---|")
    for name, scorer in [*scorers, *baselines(split, n)]:
        for variant, change in VARIANTS.items():
            out = scorer([change(x) for x in test_x])
            probs = np.nan_to_num(np.exp(out) if out.max(initial=0) <= 0 else out, nan=0.0)
            acc, mrec, top3, ece = figures(probs, test_y, n)
            print(f"| {name} | {variant} | {acc:.3f} | {mrec:.3f} | {top3:.3f} | {ece:.3f} |")


if __name__ == "__main__":
    main()
