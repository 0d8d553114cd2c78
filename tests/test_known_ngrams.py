"""The set of n-grams an n-gram table was trained on (`ngram.known`): the native set
against its reference, the rows it keeps, both backends on a model that has one, and
the model files that state one wrongly."""

from __future__ import annotations

import namelang
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from namelang import _native, model_file, reference
from namelang.model import build, known_ngrams
from namelang.spec import ModelConfig, spec_of
from safetensors.numpy import save_file

from .test_backend_parity import check_parity
from .test_text import random_strings

CATEGORIES = [f"lang{i}" for i in range(5)]
TRAINED_ON = ["Ivanov", "Petrov", "Sidorov", "Kuznetsov", "Smith", "Smithson", "Nguyen", "Ng"]


def test_the_native_set_is_its_reference_bit_for_bit():
    names = [*random_strings(400, seed=11), *TRAINED_ON, "Petrov", "x" * 300, "", "Ж"]
    letters = _native.apply_text_rule(names, "trim_lower")
    for max_n, min_names in [(1, 1), (3, 2), (6, 2), (4, 3)]:
        words = _native.known_ngrams(names, max_n, "trim_lower", min_names)
        assert words.dtype == np.uint32 and words.shape[1] == 8
        want = np.array(reference.known_ngrams(letters, max_n, min_names), dtype=np.uint32)
        np.testing.assert_array_equal(words, want)
    with pytest.raises(ValueError, match="min_names"):
        _native.known_ngrams(names, 3, "trim_lower", 0)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    st.lists(st.text(max_size=12), max_size=12),
    st.lists(st.text(max_size=12), max_size=6),
    st.integers(1, 8),
    st.integers(1, 3),
    st.sampled_from(["exact", "trim_lower", "romanize"]),
)
def test_any_names_give_the_references_set_and_rows(trained, asked, max_n, min_names, rule):
    words = _native.known_ngrams(trained, max_n, rule, min_names)
    letters = _native.apply_text_rule(trained, rule)
    want = reference.known_ngrams(letters, max_n, min_names)
    np.testing.assert_array_equal(words, np.array(want, dtype=np.uint32))
    rows, offsets = _native.ngram_rows(asked, max_n, 97, rule, words)
    ends = [*offsets[1:], len(rows)][: len(offsets)]
    for read, start, end in zip(_native.apply_text_rule(asked, rule), offsets, ends, strict=True):
        text = ("^" + read + "$").encode()
        hashes = [
            reference.fnv1a_64(text[a : a + n])
            for a in range(len(text))
            for n in range(1, max_n + 1)
            if a + n <= len(text)
        ]
        kept = [h % 97 for h in hashes if reference.known_contains(want, h)]
        assert rows[start:end].tolist() == kept


def test_rows_keep_the_known_ngrams_only():
    words = _native.known_ngrams(TRAINED_ON, 4, "trim_lower", 2)
    table = words.tolist()
    names = [*TRAINED_ON, "Popov", "Smithers", "Zzyzx", ""]
    rows, offsets = _native.ngram_rows(names, 4, 1 << 15, "trim_lower", words)
    ends = [*offsets[1:], len(rows)]
    for name, start, end in zip(names, offsets, ends, strict=True):
        text = ("^" + reference.trim_lower(name) + "$").encode()
        hashes = [
            reference.fnv1a_64(text[a : a + n])
            for a in range(len(text))
            for n in range(1, 5)
            if a + n <= len(text)
        ]
        kept = [h % (1 << 15) for h in hashes if reference.known_contains(table, h)]
        assert rows[start:end].tolist() == kept, name
    # "ov$" is shared by four training names; "zzy" by none.
    assert reference.known_contains(table, reference.fnv1a_64(b"ov$"))
    assert not reference.known_contains(table, reference.fnv1a_64(b"zzy"))
    with pytest.raises(ValueError, match="blocks"):
        _native.ngram_rows(names, 4, 64, "trim_lower", np.zeros((2, 3), np.uint32))


def known_model(tmp_path, min_names=2, seed=0):
    """A GRU with an n-gram branch (random table) that knows TRAINED_ON's shared n-grams."""
    words = _native.known_ngrams(TRAINED_ON, 4, "trim_lower", min_names)
    config = ModelConfig(
        cell="gru", hidden_size=16, input="embedding", embedding_dim=8,
        n_categories=len(CATEGORIES), text_rule="trim_lower", ngram_max=4, ngram_buckets=257,
        ngram_known_blocks=len(words),
    )  # fmt: skip
    torch.manual_seed(seed)
    module = build(config).eval()
    with torch.no_grad():
        module.ngram.weight.normal_(0, 1.0)
        module.ngram.known.copy_(torch.from_numpy(words.view(np.int32)))
    return model_file.save(tmp_path / "known.safetensors", module, CATEGORIES), module


def test_both_backends_read_the_known_ngrams_alike(tmp_path, hostile_names):
    path, module = known_model(tmp_path)
    everyday = [n for n in hostile_names if len(n) < 200]
    names = [*TRAINED_ON, *random_strings(3000, seed=12), *everyday]
    rust = namelang.load(path, backend="rust", precision="f32").log_probs(names)
    check_parity(rust, namelang.load(path, backend="torch").log_probs(names))
    spec, tensors = model_file.read(path)
    words = tensors["ngram.known"]
    assert spec.ngram_known_blocks == len(words) and words.dtype == np.uint32
    np.testing.assert_array_equal(known_ngrams(module), words)


def test_unknown_ngrams_read_no_row(tmp_path):
    path, module = known_model(tmp_path)
    spec, tensors = model_file.read(path)
    every = {k: v for k, v in tensors.items() if k != "ngram.known"}
    config = ModelConfig(**{**module.config.to_dict(), "ngram_known_blocks": 0})
    meta = {k: v for k, v in spec.metadata.items() if k not in ("ngram_known_blocks", "digest")}
    plain_path = tmp_path / "plain.safetensors"
    plain = model_file.write(plain_path, spec_of(config, CATEGORIES), every, meta)
    names = ["Zzyzx", "Qwvbk"]  # none of their n-grams longer than one letter is shared
    known, unknown_too = (namelang.load(p).log_probs(names) for p in (path, plain))
    assert not np.allclose(known, unknown_too, atol=1e-3)
    # Zeroing every row the known set never reads changes nothing for it.
    known_words = tensors["ngram.known"]
    rows, _ = _native.ngram_rows([*TRAINED_ON, *names], 4, 257, "trim_lower", known_words)
    all_rows, _ = _native.ngram_rows(names, 4, 257, "trim_lower")
    unread = sorted(set(all_rows.tolist()) - set(rows.tolist()))
    assert unread
    zeroed = dict(tensors)
    zeroed["ngram.weight"] = tensors["ngram.weight"].copy()
    zeroed["ngram.weight"][unread] = 0.0
    again = model_file.write(tmp_path / "zeroed.safetensors", spec, zeroed)
    np.testing.assert_array_equal(namelang.load(again).log_probs(names), known)


def test_model_files_stating_the_set_wrongly_are_refused(tmp_path):
    path, _ = known_model(tmp_path)
    spec, tensors = model_file.read(path)
    meta = {k: v for k, v in spec.metadata.items() if k != "digest"}  # hand-made files
    words = tensors["ngram.known"]
    cases = {
        "must be U32": (meta, {**tensors, "ngram.known": words.astype(np.float32)}),
        "expected": (meta, {**tensors, "ngram.known": np.concatenate([words, words])}),
        "missing": (meta, {k: v for k, v in tensors.items() if k != "ngram.known"}),
        "unexpected": ({k: v for k, v in meta.items() if k != "ngram_known_blocks"}, tensors),
        "ngram_known_blocks": ({**meta, "ngram_known_blocks": "0"}, tensors),
    }
    for message, (metadata, arrays) in cases.items():
        bad = tmp_path / "bad.safetensors"
        save_file(dict(arrays), str(bad), metadata=metadata)
        with pytest.raises(ValueError, match=message):
            model_file.read(bad)
        with pytest.raises(ValueError, match=message):
            _native.Model(str(bad))


RUSSIAN = "Ivanov Petrov Sidorov Popov Orlov Volkov Sokolov Lebedev Kozlov Novikov Morozov Pavlov"
ENGLISH = "Smith Johnson Williams Jones Taylor Wilson Davies Evans Thomas Roberts Walker Wright"
JAPANESE = "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida"


def test_training_stores_the_set_it_trained_with(tmp_path):
    from namelang.train import TrainConfig, train

    from .conftest import write_languages

    data = write_languages(
        tmp_path / "names",
        {
            "Russian": RUSSIAN.split(),
            "English": ENGLISH.split(),
            "Japanese": JAPANESE.split(),
        },
    )
    config = TrainConfig(
        data=str(data), epochs=2, hidden_size=8, embedding_dim=4, ngram_max=3,
        ngram_buckets=64, ngram_min_names=2, progress=False,
    )  # fmt: skip
    out = tmp_path / "m.safetensors"
    model, _, _ = train(config, out)
    spec, tensors = model_file.read(out)
    assert spec.ngram_known_blocks > 0
    np.testing.assert_array_equal(tensors["ngram.known"], known_ngrams(model))
    names = ["Ivanov", "Kuznetsov", "Smithson", "Yoshida", "Qq"]
    check_parity(
        namelang.load(out, precision="f32").log_probs(names),
        namelang.load(out, backend="torch").log_probs(names),
    )
    with pytest.raises(ValueError, match="ngram-min-names"):
        train(TrainConfig(data=str(data), ngram_max=3, ngram_min_names=-1, progress=False))
    with pytest.raises(ValueError, match="add --ngram-max"):
        train(TrainConfig(data=str(data), ngram_min_names=2, progress=False))
