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
def dataset_names(names_by_language) -> list[str]:
    return [n for names in names_by_language.values() for n in names]
