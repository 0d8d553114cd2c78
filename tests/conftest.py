from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The data set lives beside the project, never inside it; NAMELANG_DATA overrides.
os.environ.setdefault("NAMELANG_DATA", str(ROOT.parent / "shared" / "data" / "names"))


@pytest.fixture(scope="session")
def names_by_language() -> dict[str, list[str]]:
    from namelang.data import load_names

    try:
        return load_names()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def hostile_names() -> list[str]:
    """The shared hostile names (`tests/hostile.py`), in memory."""
    from .hostile import HOSTILE_NAMES

    return list(HOSTILE_NAMES)


@pytest.fixture(scope="session")
def dataset_names(names_by_language) -> list[str]:
    return [n for names in names_by_language.values() for n in names]


def write_languages(folder: Path, names_of: dict[str, list[str]]) -> Path:
    """A data folder of `<Language>.txt` files, one name a line."""
    folder.mkdir(parents=True, exist_ok=True)
    for language, names in names_of.items():
        (folder / f"{language}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return folder


def write_tiny_dataset(folder: Path) -> Path:
    """Three made-up languages whose names differ by their letters, for fast training."""
    import random

    rng = random.Random(0)
    alphabets = {"Alpha": "aeiklmnos", "Beta": "bdgruvwz", "Gamma": "cfhjpqtxy"}
    folder.mkdir(parents=True, exist_ok=True)
    for language, letters in alphabets.items():
        names = {
            "".join(rng.choice(letters) for _ in range(rng.randint(3, 9))).capitalize()
            for _ in range(60)
        }
        (folder / f"{language}.txt").write_text("\n".join(sorted(names)) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return write_tiny_dataset(tmp_path / "names")
