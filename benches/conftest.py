"""Shared inputs for the pytest-benchmark suites. NAMELANG_BENCH_SCALE sets the size:
"full" (default), or "smoke" (tiny inputs: checks that every benchmark runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NAMELANG_DATA", str(ROOT.parent / "shared" / "data" / "names"))
SMOKE = os.environ.get("NAMELANG_BENCH_SCALE", "full") == "smoke"


def sized(full: int, smoke: int) -> int:
    return smoke if SMOKE else full


@pytest.fixture(scope="session")
def dataset_names() -> list[str]:
    from namelang.data import load_names

    return [n for names in load_names().values() for n in names]


@pytest.fixture(scope="session")
def many_names(dataset_names) -> list[str]:
    """About 200,000 names (the dataset repeated), shuffled the same way each run."""
    import random

    n = sized(200_000, 500)
    names = (dataset_names * (n // len(dataset_names) + 1))[:n]
    random.Random(0).shuffle(names)
    return names


@pytest.fixture(scope="session")
def distinct_names(dataset_names) -> list[str]:
    """Each normalised name once (17,422), shuffled: no row repeats another."""
    from namelang.bench import distinct_names

    names = distinct_names(dataset_names)
    return names[: sized(len(names), 300)]


@pytest.fixture(scope="session")
def few_names(many_names) -> list[str]:
    """A sample small enough for the tutorial's one-name-at-a-time code."""
    return many_names[: sized(2000, 50)]


def run(benchmark, fn, *args, slow: bool = False, **kwargs):
    """benchmark(fn, ...); slow cases (seconds a call) run 3 rounds instead of 5+."""
    if slow and not SMOKE:
        return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=3, iterations=1)
    return benchmark(fn, *args, **kwargs)
