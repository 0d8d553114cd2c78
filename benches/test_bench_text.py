"""to-ASCII and encoding: the tutorial's functions, a numpy lookup table, Rust."""

from __future__ import annotations

import namelang
import numpy as np
import pytest
from namelang import reference

TABLE = np.full(256, -1, dtype=np.int64)
for i, c in enumerate(namelang.ALPHABET):
    TABLE[ord(c)] = i


def numpy_encode(ascii_names: list[str]) -> np.ndarray:
    width = max(map(len, ascii_names))
    joined = "".join(n.ljust(width, "\0") for n in ascii_names).encode("ascii")
    return TABLE[np.frombuffer(joined, np.uint8).reshape(len(ascii_names), width)]


@pytest.mark.benchmark(group="to_ascii")
def test_to_ascii_tutorial(benchmark, many_names):
    benchmark(lambda: [reference.unicodeToAscii(n) for n in many_names])


@pytest.mark.benchmark(group="to_ascii")
def test_to_ascii_rust(benchmark, many_names):
    benchmark(namelang.to_ascii_batch, many_names)


@pytest.mark.benchmark(group="encode (few names)")
def test_encode_tutorial_line_to_tensor(benchmark, few_names):
    benchmark(lambda: [reference.lineToTensor(reference.unicodeToAscii(n)) for n in few_names])


@pytest.mark.benchmark(group="encode (few names)")
def test_encode_rust_few(benchmark, few_names):
    benchmark(namelang.encode, few_names)


@pytest.mark.benchmark(group="encode")
def test_encode_numpy_lookup_of_ascii(benchmark, many_names):
    ascii_names = namelang.to_ascii_batch(many_names)
    benchmark(numpy_encode, ascii_names)


@pytest.mark.benchmark(group="encode")
def test_encode_rust(benchmark, many_names):
    benchmark(namelang.encode, many_names)
