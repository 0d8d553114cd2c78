"""The native text pipeline against the tutorial's functions (the reference)."""

from __future__ import annotations

import random
import string
import sys
import unicodedata

import namelang
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from namelang import reference

# Code point ranges that random names are drawn from: Latin with accents, combining
# marks, Greek, Cyrillic, CJK, Hangul, symbols, emoji, unassigned and private use.
RANGES = [
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x1E00, 0x1EFF),
    (0x2000, 0x22FF),
    (0x3040, 0x30FF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0x1F300, 0x1FAFF),
    (0xE000, 0xE0FF),
    (0x2FE0, 0x2FEF),
    (0x10FFF0, 0x10FFFF),
    (0xD800, 0xDFFF),
]


def random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(0, 14)):
            lo, hi = RANGES[rng.randrange(len(RANGES))]
            chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


def test_alphabet_is_the_tutorials():
    assert string.ascii_letters + " .,;'" == namelang.ALPHABET
    assert len(namelang.ALPHABET) == 57


def test_tutorial_examples():
    assert namelang.to_ascii("Ślusàrski") == "Slusarski"
    assert namelang.to_ascii("Łukasz") == "ukasz"
    assert namelang.to_ascii_batch(["Ślusàrski", "", "Zhou"]) == ["Slusarski", "", "Zhou"]


def test_to_ascii_matches_reference_on_dataset(dataset_names):
    assert namelang.to_ascii_batch(dataset_names) == [
        reference.unicodeToAscii(n) for n in dataset_names
    ]


def test_every_code_point_matches_reference():
    # NFD acts per character for the letters kept (they have combining class 0), so
    # agreeing on each code point alone covers the Unicode tables completely.
    # Python's unicodedata (Unicode 14 on 3.11) is the reference for what it knows.
    points = [chr(c) for c in range(sys.maxunicode + 1)]
    ours = namelang.to_ascii_batch(points)
    theirs = [reference.unicodeToAscii(c) for c in points]
    differ = [
        (f"U+{ord(c):04X}", a, b) for c, a, b in zip(points, ours, theirs, strict=True) if a != b
    ]
    assert differ == [], f"Unicode {unicodedata.unidata_version} disagrees: {differ[:20]}"


def test_a_million_random_strings_match_reference():
    names = random_strings(1_000_000, seed=7)
    ours = namelang.to_ascii_batch(names)
    for name, got in zip(names, ours, strict=True):
        if got != reference.unicodeToAscii(name):
            pytest.fail(f"{name!r}: {got!r} != {reference.unicodeToAscii(name)!r}")


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.text(), max_size=8))
def test_hypothesis_strings_match_reference(names):
    assert namelang.to_ascii_batch(names) == [reference.unicodeToAscii(n) for n in names]
    indices, lengths = namelang.encode(names)
    ref_indices, ref_lengths = reference.encode(names)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(lengths, ref_lengths)


def test_encode_matches_reference_on_dataset(dataset_names):
    indices, lengths = namelang.encode(dataset_names)
    ref_indices, ref_lengths = reference.encode(dataset_names)
    assert indices.dtype == np.int64 and lengths.dtype == np.int64
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(lengths, ref_lengths)


def test_encode_random_strings_with_empty_and_letterless():
    names = [*random_strings(5000, seed=3), "", "王", "\u0301", "-- 1 --"]
    indices, lengths = namelang.encode(names)
    ref_indices, ref_lengths = reference.encode(names)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(lengths, ref_lengths)
    assert list(lengths[-4:]) == [0, 0, 0, 2]


def test_encode_of_nothing():
    indices, lengths = namelang.encode([])
    assert indices.shape == (0, 0) and lengths.shape == (0,)
    indices, lengths = namelang.encode(["", "王"])
    assert indices.shape == (2, 0) and list(lengths) == [0, 0]


def test_one_hot_equals_line_to_tensor(dataset_names):
    sample = [*dataset_names[::40], "", "Ślusàrski"]
    planes = namelang.one_hot(sample)
    assert planes.dtype == np.float32
    np.testing.assert_array_equal(planes, reference.one_hot(sample))
    for b in (0, len(sample) - 1):
        line = reference.lineToTensor(namelang.to_ascii(sample[b])).numpy()
        np.testing.assert_array_equal(planes[: len(line), b], line[:, 0])
        assert not planes[len(line) :, b].any()


def test_one_hot_random_strings():
    names = random_strings(3000, seed=11)
    np.testing.assert_array_equal(namelang.one_hot(names), reference.one_hot(names))


def test_arrays_are_writable_and_own_no_python_copy():
    indices, _ = namelang.encode(["abc"] * 10)
    assert indices.flags.c_contiguous and indices.flags.writeable


def test_batches_above_threshold_agree_across_thread_counts(dataset_names):
    names = dataset_names * 2
    try:
        namelang.set_num_threads(1)
        one = namelang.encode(names)
        namelang.set_num_threads(2)
        assert namelang.get_num_threads() == 2
        two = namelang.encode(names)
    finally:
        namelang.set_num_threads(0)
    np.testing.assert_array_equal(one[0], two[0])


def test_non_str_item_names_its_position():
    with pytest.raises(TypeError, match=r"names\[1\] is int"):
        namelang.to_ascii_batch(["a", 3])
    with pytest.raises(TypeError, match=r"names\[0\] is bytes"):
        namelang.encode([b"abc"])
    with pytest.raises(TypeError, match="single str"):
        namelang.encode("Hinton")
    with pytest.raises(TypeError):
        namelang.to_ascii(None)  # type: ignore[arg-type]


def test_hostile_strings(hostile_names):
    for name in hostile_names:
        assert namelang.to_ascii(name) == reference.unicodeToAscii(name), repr(name)
    surrogate = "a\ud800b\udfff"
    assert namelang.to_ascii(surrogate) == reference.unicodeToAscii(surrogate) == "ab"
    assert namelang.to_ascii("a\0b") == "ab"
    big = "Ab" * 500_000
    assert namelang.to_ascii(big) == big
    indices, lengths = namelang.encode([big, "x"])
    assert indices.shape == (2, 1_000_000) and list(lengths) == [1_000_000, 1]


def test_generators_are_accepted():
    assert namelang.to_ascii_batch(n for n in ["É", "b"]) == ["E", "b"]
