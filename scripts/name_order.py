"""Full names of the common-surnames list's Chinese, Korean, Vietnamese and Japanese
surnames, each with five common given names of its language (of our choosing, as lists
romanise them), written three ways and read with each name order: the share whose top
language is one the list accepts for the surname.

    python scripts/name_order.py [MODEL ...]
"""

from __future__ import annotations

import argparse

from common_surnames import read_list
from namelang.classifier import load

GIVEN = {
    "Chinese": ["Wei", "Fang", "Xiaoming", "Li Na", "Jun"],
    "Korean": ["Min-jun", "Seo-yeon", "Ji-hoon", "Soo-jin", "Hyun-woo"],
    "Vietnamese": ["Van An", "Thi Mai", "Minh Tuan", "Thi Lan", "Duc Anh"],
    "Japanese": ["Taro", "Yuki", "Hiroshi", "Keiko", "Haruto"],
}
WRITINGS = {
    "Given Family": lambda family, given: f"{given} {family}",
    "Family, Given": lambda family, given: f"{family}, {given}",
    "Family Given": lambda family, given: f"{family} {given}",
}


def table(model: str) -> list[tuple[str, str, float]]:
    """(writing, order, share right) for every writing and order, surnames alone first."""
    rows = [r for r in read_list() if r.language in GIVEN]
    classifier = load(model)

    def right(names: list[str], order, accepted: list[set[str]]) -> float:
        answers = classifier.predict(names, k=1, full_name=order)
        top = [a[0][0] if a else None for a in answers]
        return sum(t in a for t, a in zip(top, accepted, strict=True)) / len(names)

    out = [("surname alone", "-", right([r.name for r in rows], False, [r.accepted for r in rows]))]
    pairs = [(r, g) for r in rows for g in GIVEN[r.language]]
    accepted = [r.accepted for r, _ in pairs]
    for writing, write in WRITINGS.items():
        names = [write(r.name, g) for r, g in pairs]
        for order in ("given-first", "family-first"):
            out.append((writing, order, right(names, order, accepted)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"])
    for model in parser.parse_args().models:
        print(f"| {model} | written | read | right |\n|---|---|---|---|")
        for writing, order, share in table(model):
            print(f"| | {writing} | {order} | {share:.3f} |")


if __name__ == "__main__":
    main()
