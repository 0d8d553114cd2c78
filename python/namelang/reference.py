"""The tutorial's own functions, kept verbatim in logic: the oracle the native code is
tested against ("Classifying Names with a Character-Level RNN"). Not the product: slow
on purpose, and only imported by tests and benchmarks."""

from __future__ import annotations

import string
import unicodedata

import numpy as np

all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)


def unicodeToAscii(s: str) -> str:
    return "".join(
        c
        for c in unicodedata.normalize("NFD", s)
        if unicodedata.category(c) != "Mn" and c in all_letters
    )


def letterToIndex(letter: str) -> int:
    return all_letters.find(letter)


def lineToTensor(line: str):
    import torch

    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


def encode(names: list[str]):
    """(indices (B, T_max), lengths (B,)) as int64 numpy arrays, built letter by letter."""

    lines = [unicodeToAscii(n) for n in names]
    width = max((len(line) for line in lines), default=0)
    indices = np.zeros((len(lines), width), dtype=np.int64)
    for b, line in enumerate(lines):
        for t, letter in enumerate(line):
            indices[b, t] = letterToIndex(letter)
    return indices, np.array([len(line) for line in lines], dtype=np.int64)


def one_hot(names: list[str]):
    """(T_max, B, 57) float32 numpy array: each name's `lineToTensor`, zero-padded."""

    tensors = [lineToTensor(unicodeToAscii(n)) for n in names]
    width = max((t.shape[0] for t in tensors), default=0)
    out = np.zeros((width, len(names), n_letters), dtype=np.float32)
    for b, t in enumerate(tensors):
        out[: t.shape[0], b] = t[:, 0].numpy()
    return out


def RNN(input_size: int, hidden_size: int, output_size: int):
    """The tutorial's cell, as its class defines it."""
    import torch
    from torch import nn

    class _RNN(nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super().__init__()
            self.hidden_size = hidden_size
            self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
            self.i2o = nn.Linear(input_size + hidden_size, output_size)
            self.softmax = nn.LogSoftmax(dim=1)

        def forward(self, input, hidden):
            combined = torch.cat((input, hidden), 1)
            hidden = self.i2h(combined)
            output = self.i2o(combined)
            output = self.softmax(output)
            return output, hidden

        def initHidden(self):
            return torch.zeros(1, self.hidden_size)

    return _RNN(input_size, hidden_size, output_size)


def evaluate(rnn, line_tensor):
    """The tutorial's `evaluate`: one name, one letter at a time."""
    hidden = rnn.initHidden()
    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)
    return output


# Beyond the tutorial: the oracles for the trimmed, lower-cased text rule and the hashed
# n-gram branch (namelang.model), written plainly.


def trim_lower(s: str) -> str:
    """The letters a "trim_lower" model reads: ASCII form, surrounding spaces dropped,
    upper case folded to lower."""
    return unicodeToAscii(s).strip(" ").lower()


# The romanisation of Cyrillic and Greek (`rust/romanize.rs`, whose header gives the
# sources), written plainly: one word at a time, left to right.

_CYRILLIC = dict(
    zip(
        "абвгґдеёєжзиіїйјклљмнњопрстћќђѓуўфхцчџѕшщъьыэюя",
        "a b v g g d e e ye zh z i i yi y j k l lj m n nj o p r s t c kj dj gj u u f kh ts ch "
        "dz dz sh sch - - y e yu ya".split(),
        strict=True,
    )
)
_UKRAINIAN = {"г": "h", "и": "y", "щ": "shch", "х": "kh"}
_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξοπρσςτυφχψω",
        "a v g d e z i th i k l m n x o p r s s t y f ch ps o".split(),
        strict=True,
    )
)
_GREEK_PAIRS = {"ου": "ou", "αι": "ai", "ει": "ei", "οι": "oi", "γγ": "ng", "γξ": "nx", "γχ": "nch"}
_GREEK_OPENING = {"μπ": ("b", "mb"), "ντ": ("d", "nt"), "γκ": ("g", "ng")}
_VOICELESS = set("θκξπσςτφχψ")


def _is_cyrillic(c: str) -> bool:
    return "\u0400" <= c <= "\u04ff"


def _is_greek(c: str) -> bool:
    return "\u0370" <= c <= "\u03ff" or "\u1f00" <= c <= "\u1fff"


def _greek_base(c: str) -> str:
    return unicodedata.normalize("NFD", c)[0].lower()


def _letter(s: str, i: int) -> bool:
    return 0 <= i < len(s) and s[i].isalpha()


def _cased(latin: str, s: str, at: int) -> str:
    """`latin` in the case of s[at]: all capitals when its neighbour letter is a capital."""
    if not s[at].isupper() or not latin:
        return latin
    neighbour = s[at + 1] if _letter(s, at + 1) else s[at - 1] if _letter(s, at - 1) else ""
    if neighbour.isupper():
        return latin.upper()
    return latin[0].upper() + latin[1:]


def _word_around(s: str, i: int) -> str:
    """The run of letters and apostrophes holding s[i]."""
    inside = lambda j: 0 <= j < len(s) and (s[j].isalpha() or s[j] in "'\u2019")  # noqa: E731
    start, end = i, i
    while inside(start - 1):
        start -= 1
    while inside(end):
        end += 1
    return s[start:end]


def _cyrillic_lower(c: str) -> str:
    """Lower case; a letter the table lacks is read as the letter under its accent."""
    c = c.lower()[:1] or c
    return c if c in _CYRILLIC else unicodedata.normalize("NFD", c)[0].lower()


def _cyrillic_letter(s: str, i: int) -> str:
    c = _cyrillic_lower(s[i])
    following = _cyrillic_lower(s[i + 1]) if i + 1 < len(s) else ""
    if any(_cyrillic_lower(ch) in "іїєґ" for ch in _word_around(s, i)) and c in _UKRAINIAN:
        return _UKRAINIAN[c]
    if c in "иы" and following == "й" and not _letter(s, i + 2):
        return ""
    if c == "х" and not _letter(s, i - 1):
        return "h"
    latin = _CYRILLIC.get(c, s[i])
    return "" if latin == "-" else latin


def _greek_letters(s: str, i: int) -> tuple[str, int]:
    c = _greek_base(s[i])
    nxt = ""
    diaeresis = i + 1 < len(s) and "\u0308" in unicodedata.normalize("NFD", s[i + 1])
    if i + 1 < len(s) and _is_greek(s[i + 1]) and not diaeresis:
        nxt = _greek_base(s[i + 1])
    pair = c + nxt
    if pair in _GREEK_PAIRS:
        return _GREEK_PAIRS[pair], 2
    if pair in _GREEK_OPENING:
        return _GREEK_OPENING[pair][0 if not _letter(s, i - 1) else 1], 2
    if c in "αεη" and nxt == "υ":
        after = _greek_base(s[i + 2]) if i + 2 < len(s) and _is_greek(s[i + 2]) else ""
        voiceless = not after or after in _VOICELESS
        return {"α": "a", "ε": "e", "η": "i"}[c] + ("f" if voiceless else "v"), 2
    return _GREEK.get(c, s[i]), 1


def romanize(s: str) -> str:
    """Cyrillic and Greek letters in Latin, other characters as they are."""
    out, i = [], 0
    while i < len(s):
        if _is_cyrillic(s[i]):
            latin, used = _cyrillic_letter(s, i), 1
        elif _is_greek(s[i]):
            latin, used = _greek_letters(s, i)
        else:
            latin, used = s[i], 1
        out.append(_cased(latin, s, i))
        i += used
    return "".join(out)


def romanize_lower(s: str) -> str:
    """The letters a "romanize" model reads: `trim_lower` of the romanised name."""
    return trim_lower(romanize(s))


def fnv1a_64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) % (1 << 64)
    return h


def ngram_rows(letters: str, max_n: int, buckets: int) -> list[int]:
    """Table rows of every n-gram (1..max_n bytes) of "^letters$", start by start."""
    text = ("^" + letters + "$").encode("ascii")
    return [
        fnv1a_64(text[start : start + n]) % buckets
        for start in range(len(text))
        for n in range(1, max_n + 1)
        if start + n <= len(text)
    ]


# The set of n-grams a table was trained on (`namelang._native.known_ngrams`): the
# Parquet split block Bloom filter, keyed by murmur3's fmix64 of each n-gram's FNV-1a 64.
_SALT = (
    0x47B6137B, 0x44974D91, 0x8824AD5B, 0xA2B7289D, 0x705495C7, 0x2DF1424B, 0x9EFC4947, 0x5C6BFB31,
)  # fmt: skip
_M64 = (1 << 64) - 1


def _fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    return h ^ (h >> 33)


def _block_and_bits(words: list[list[int]], h: int) -> tuple[int, list[int]]:
    key = _fmix64(h)
    block = ((key >> 32) * len(words)) >> 32
    low = key & 0xFFFFFFFF
    return block, [1 << (((low * s) & 0xFFFFFFFF) >> 27) for s in _SALT]


def known_contains(words: list[list[int]], h: int) -> bool:
    block, bits = _block_and_bits(words, h)
    return all(w & b for w, b in zip(words[block], bits, strict=True))


def known_ngrams(letters: list[str], max_n: int, min_names: int) -> list[list[int]]:
    """The set's words (blocks of 8): every n-gram at least `min_names` distinct
    letter strings hold, 16 bits a key."""
    holders: dict[int, int] = {}
    for text in {("^" + s + "$").encode("ascii") for s in letters}:
        # A slice past the end repeats a shorter n-gram of the same start: the set drops it.
        grams = {text[a : a + n] for a in range(len(text)) for n in range(1, max_n + 1)}
        for h in {fnv1a_64(gram) for gram in grams}:
            holders[h] = holders.get(h, 0) + 1
    kept = sorted(h for h, n in holders.items() if n >= max(min_names, 1))
    words = [[0] * 8 for _ in range(max(1, -(-len(kept) * 16 // 256)))]
    for h in kept:
        block, bits = _block_and_bits(words, h)
        words[block] = [w | b for w, b in zip(words[block], bits, strict=True)]
    return words


def marks_held(name: str, marks: list[str]) -> list[int]:
    """Which of a model's marks (letters outside ASCII) a name holds, ascending: the name
    read as written, NFC then lower case (`rust/marks.rs`)."""
    read = unicodedata.normalize("NFC", name).lower()
    return sorted({marks.index(c) for c in read if c in marks})
