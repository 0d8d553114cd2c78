"""The hostile names the tests share: each gets its well-defined row or answer on every
path and both backends, never a crash, a hang or a dropped row."""

from __future__ import annotations

# Names a UTF-8 line can hold: blank, spaces only, no Latin letters, accents and
# punctuation, quotes the CSV writer doubles, a name past the default max length, case
# and spaces the text rule folds, Cyrillic and Greek (romanised by the default model,
# no letters to the tutorial's), right-to-left script beside Latin letters, combining
# marks alone.
HOSTILE_LINES = [
    "Hinton",
    "",
    "   ",
    "王",
    "Zhou",
    "Ślusàrski",
    "O'Neil, Jr.",
    'Quote"d',
    "x" * 300,
    "Schmidhuber",
    "SMITH",
    "  tanaka ",
    "Иванов",
    "Παπαδόπουλος",
    "\u05e9\u05dc\u05d5\u05dd abc",
    "\u0301" * 10,
]

# Only in memory: lone surrogates (no UTF-8 file holds them) and NUL.
HOSTILE_IN_MEMORY = ["\ud800abc", "a\ud800b\udfff", "a\0b"]

HOSTILE_NAMES = HOSTILE_LINES + HOSTILE_IN_MEMORY

# A million letters: one name, its own length in work, never the batch's.
LONG_NAME = "Ab" * 500_000
