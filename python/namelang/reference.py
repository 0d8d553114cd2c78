"""The tutorial's own functions, kept verbatim in logic: the oracle the native code is
tested against ("Classifying Names with a Character-Level RNN"). Not the product: slow
on purpose, and only imported by tests and benchmarks."""

from __future__ import annotations

import string
import unicodedata

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
    import numpy as np

    lines = [unicodeToAscii(n) for n in names]
    width = max((len(line) for line in lines), default=0)
    indices = np.zeros((len(lines), width), dtype=np.int64)
    for b, line in enumerate(lines):
        for t, letter in enumerate(line):
            indices[b, t] = letterToIndex(letter)
    return indices, np.array([len(line) for line in lines], dtype=np.int64)


def one_hot(names: list[str]):
    """(T_max, B, 57) float32 numpy array: each name's `lineToTensor`, zero-padded."""
    import numpy as np

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
