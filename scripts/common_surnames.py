"""namelang's models and the n-gram baselines on the most common surnames of each
language (`tests/data/common_surnames.tsv`), side by side.

A row is right when the top language is one of the languages a careful person accepts
for that name (Smith: English, Scottish or Irish). Figures: share right; share right
weighted by 1/rank within each language's list (the commonest names count most); the
number of wrong answers with probability >= 0.8; and each language's share right.

    NAMELANG_DATA=../shared/data/names python scripts/common_surnames.py [MODEL ...] [--baselines]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LIST = Path(__file__).resolve().parent.parent / "tests" / "data" / "common_surnames.tsv"


@dataclass
class CommonName:
    language: str
    rank: int
    name: str
    accepted: set[str]


def read_list(path: Path = LIST) -> list[CommonName]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            language, rank, name, accepted = line.split("\t")
            rows.append(CommonName(language, int(rank), name, set(accepted.split(","))))
    return rows


@dataclass
class Figures:
    right: float
    weighted: float
    confident_errors: int
    by_language: dict[str, float]
    wrong: list[str]


def judge(rows: list[CommonName], top: list[str], prob: np.ndarray) -> Figures:
    """Figures of one model's top answers (language, probability) on the list."""
    hits = np.array([t in r.accepted for r, t in zip(rows, top, strict=True)])
    weights = np.array([1.0 / r.rank for r in rows])
    languages = sorted({r.language for r in rows})
    by_language = {
        lang: float(np.mean([h for r, h in zip(rows, hits, strict=True) if r.language == lang]))
        for lang in languages
    }
    wrong = [
        f"{r.name}: {t} {p:.2f}"
        for r, t, p, h in zip(rows, top, prob, hits, strict=True)
        if not h and p >= 0.8
    ]
    return Figures(
        right=float(hits.mean()),
        weighted=float((hits * weights).sum() / weights.sum()),
        confident_errors=len(wrong),
        by_language=by_language,
        wrong=wrong,
    )


def judge_model(rows: list[CommonName], classifier) -> Figures:
    answers = classifier.predict([r.name for r in rows], k=1)
    top = [a[0][0] if a else "" for a in answers]
    prob = np.array([a[0][1] if a else 0.0 for a in answers])
    return judge(rows, top, prob)


def main() -> None:
    from namelang.classifier import load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default", "tutorial"])
    parser.add_argument("--baselines", action="store_true", help="also the n-gram baselines")
    parser.add_argument("--data", help="data folder for the baselines (default: NAMELANG_DATA)")
    parser.add_argument("--wrong", action="store_true", help="list the confident errors")
    args = parser.parse_args()
    rows = read_list()
    results = [(m, judge_model(rows, load(m))) for m in args.models]
    if args.baselines:
        from baselines import baselines
        from namelang.data import load_names, split_names

        split = split_names(load_names(args.data), seed=2022)
        for name, predict_proba in baselines(split, len(split.categories)):
            probs = predict_proba([r.name for r in rows])
            best = probs.argmax(1)
            top = [split.categories[i] for i in best]
            results.append((name, judge(rows, top, probs.max(1))))
    languages = sorted({r.language for r in rows})
    print(f"| model | right | weighted by rank | wrong at p >= 0.8 | {' | '.join(languages)} |")
    print("|---" * (4 + len(languages)) + "|")
    for name, f in results:
        per = " | ".join(f"{f.by_language[lang]:.2f}" for lang in languages)
        print(f"| {name} | {f.right:.3f} | {f.weighted:.3f} | {f.confident_errors} | {per} |")
        if args.wrong:
            print("  " + "; ".join(f.wrong))


if __name__ == "__main__":
    main()
