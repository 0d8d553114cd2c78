"""Text -> ASCII -> indices: the public face of the native text pipeline."""

from __future__ import annotations

import os
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from namelang import _native

if TYPE_CHECKING:  # numpy loads on first use, keeping `import namelang` light
    import numpy as np

ALPHABET: str = _native.ALPHABET
"""The 57 letters, `string.ascii_letters + " .,;'"`; a letter's index is its position."""


def to_ascii(name: str) -> str:
    """NFD, drop combining marks, keep only ALPHABET letters (no transliteration)."""
    return _native.to_ascii(name)


def romanize(name: str) -> str:
    """Cyrillic and Greek letters in Latin (case kept), everything else as it is: what
    models with the `romanize` text rule read before `to_ascii` (`Иванов` -> `Ivanov`,
    `Παπαδόπουλος` -> `Papadopoulos`). The tables: README, "Names in Cyrillic and Greek"."""
    return _native.romanize(name)


NameOrder = Literal["given-first", "family-first"]
FullName = bool | NameOrder
"""`full_name=`: False (the names are surnames), True or "given-first" ("John Smith"),
or "family-first" ("Wang Xiaoming": Chinese, Korean, Vietnamese, Japanese and Hungarian
lists often write names so)."""


def surnames(names: Iterable[str], order: FullName = "given-first") -> list[str]:
    """The family name of each full name. Given-first (or True), particles kept: "John
    Smith" and "Smith, John" -> "Smith", "Jan van den Berg" -> "van den Berg", "Maria da
    Silva" -> "da Silva". Family-first, the first word: "Nguyễn Văn An" -> "Nguyễn"
    ("Family, Given" reads the same in either order). False: the names as they are.
    Another order is a ValueError (a TypeError when not a bool or str)."""
    return _native.surnames(names, order)


def scored_parts(names: list[str], full_name: FullName) -> list[str]:
    """The part of each name a model scores: the names, or the family names of full
    names written in the order `full_name` gives (True: given-first)."""
    return names if full_name is False else surnames(names, full_name)


def to_ascii_batch(names: Iterable[str]) -> list[str]:
    """`to_ascii` of each name, in parallel for large batches."""
    return _native.to_ascii_batch(names)


def encode(names: Iterable[str], text_rule: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Normalise and encode: int64 `indices` (B, T_max) and `lengths` (B,); padding is 0.
    `text_rule="trim_lower"` reads names as such models do: surrounding spaces dropped,
    case folded."""
    return _native.encode(names, text_rule)


def apply_text_rule(names: Iterable[str], text_rule: str) -> list[str]:
    """The letters a model with this `text_rule` reads from each name, as text."""
    return _native.apply_text_rule(names, text_rule)


def one_hot(names: Iterable[str]) -> np.ndarray:
    """float32 (T_max, B, 57), time first like the tutorial's `lineToTensor`, zero-padded."""
    return _native.one_hot(names)


def script_of(name: str) -> str | None:
    """The writing system most of a name's letters belong to, from their Unicode names
    ("Cyrillic", "Greek", "Han (CJK)", "Arabic", "Latin", ...); None without letters. Tells a
    user why a name with no Latin letters gets no answer."""

    scripts = Counter(
        unicodedata.name(c, "UNKNOWN").split()[0].title()
        for c in name
        if unicodedata.category(c).startswith("L")
    )
    if not scripts:
        return None
    script = scripts.most_common(1)[0][0]
    return {"Cjk": "Han (CJK)"}.get(script, script)


def set_num_threads(n: int) -> None:
    """Threads for native batch work; 0 restores the default (NAMELANG_NUM_THREADS or all
    cores). At most `_native.max_threads()` (4 per core): more is a ValueError, and a
    larger NAMELANG_NUM_THREADS is capped there."""
    if n < 0:
        raise ValueError(f"thread count must be >= 0, got {n}")
    _native.set_num_threads(min(n, 2**63))  # past usize: refused by the same rule


def _warn_if_threads_capped() -> None:

    raw = os.environ.get("NAMELANG_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > _native.max_threads():
        warnings.warn(
            f"NAMELANG_NUM_THREADS={raw} is more than {_native.max_threads()} (4 per core); "
            f"using {_native.max_threads()}",
            stacklevel=3,
        )


_warn_if_threads_capped()


def get_num_threads() -> int:
    """Threads native batch work uses now."""
    return _native.get_num_threads()
