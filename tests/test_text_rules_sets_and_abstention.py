"""Answers users can trust: case and surrounding spaces ignored (both backends), the
hashed n-gram branch against its reference, the folded temperature, split-conformal
prediction sets and abstention, the same on every scoring path."""

from __future__ import annotations

import csv
import io
import itertools
import json

import namelang
import numpy as np
import pytest
import torch
from namelang import _native, calibration, model_file, reference
from namelang.cli import main
from namelang.model import build, ngram_input
from namelang.score import score_file
from namelang.spec import ModelConfig
from namelang.train import fold_temperature
from torch.nn import functional as F

from .test_backend_parity import check_parity
from .test_text import random_strings

CATEGORIES = [f"lang{i}" for i in range(6)]
VARIANTS = ["Smith", "SMITH", "smith", "  Smith  ", "\tsMiTh ", " SMITH\u00a0"]


def hybrid_model(tmp_path, text_rule="trim_lower", buckets=97, seed=0):
    torch.manual_seed(seed)
    config = ModelConfig(
        cell="gru", hidden_size=16, input="embedding", embedding_dim=8,
        n_categories=len(CATEGORIES), text_rule=text_rule, ngram_max=4, ngram_buckets=buckets,
    )  # fmt: skip
    module = build(config).eval()
    with torch.no_grad():
        module.ngram.weight.normal_(0, 1.0)
        module.logit_adjustment.normal_(0, 0.1)
    path = model_file.save(tmp_path / f"hybrid_{text_rule}.safetensors", module, CATEGORIES)
    return path, module


def with_conformal(path, tmp_path, thresholds: dict[str, float]):
    """The same model file with a conformal table in its metadata."""
    spec, tensors = model_file.read(path)
    meta = dict(spec.metadata)
    meta["conformal"] = json.dumps({"thresholds": thresholds})
    return model_file.write(tmp_path / "with_sets.safetensors", spec, tensors, meta)


def test_text_rule_matches_its_reference():
    names = random_strings(2000, seed=5) + VARIANTS + ["", "   ", "Ж Ж", " . "]
    assert _native.apply_text_rule(names, "trim_lower") == [reference.trim_lower(n) for n in names]
    assert _native.apply_text_rule(names, "exact") == [reference.unicodeToAscii(n) for n in names]
    indices, lengths = namelang.encode(names, "trim_lower")
    for row, n, name in zip(indices, lengths, names, strict=True):
        want = reference.trim_lower(name)
        assert "".join(namelang.ALPHABET[i] for i in row[:n]) == want
    with pytest.raises(ValueError, match="text_rule"):
        namelang.encode(["a"], "upper")


def test_ngram_rows_match_their_reference():
    names = [*random_strings(500, seed=6), "x" * 400, "", "Smith"]
    for max_n, buckets in [(1, 7), (3, 1000), (5, 1 << 15)]:
        rows, offsets = _native.ngram_rows(names, max_n, buckets, "trim_lower")
        ends = [*offsets[1:], len(rows)]
        for name, start, end in zip(names, offsets, ends, strict=True):
            want = reference.ngram_rows(reference.trim_lower(name), max_n, buckets)
            assert rows[start:end].tolist() == want, name
    with pytest.raises(ValueError, match="max_n"):
        _native.ngram_rows(["a"], 9, 10)


def test_case_and_spaces_change_nothing_on_either_backend(tmp_path):
    path, _ = hybrid_model(tmp_path)
    for backend in ("rust", "torch"):
        rows = namelang.load(path, backend=backend).log_probs(VARIANTS)
        for row in rows[1:]:
            np.testing.assert_allclose(row, rows[0], rtol=0, atol=1e-6)
    # An exact-rule model (the tutorial's behaviour) still tells them apart.
    exact, _ = hybrid_model(tmp_path, text_rule="exact")
    rows = namelang.load(exact).log_probs(["Smith", "SMITH"])
    assert np.abs(rows[0] - rows[1]).max() > 1e-3


def test_hybrid_model_parity_on_real_and_hostile_names(tmp_path, dataset_names):
    path, module = hybrid_model(tmp_path, buckets=1 << 12)
    names = dataset_names[::7] + random_strings(500, seed=7) + VARIANTS + ["", "a" * 300]
    rust = namelang.load(path, backend="rust", precision="f32").log_probs(names)
    torch_out = namelang.load(path, backend="torch").log_probs(names)
    check_parity(rust, torch_out)
    # The torch backend's flat n-gram input and training's padded one agree.
    config = module.config
    idx, lens = namelang.encode(names[:50], config.text_rule)
    x, n = torch.from_numpy(idx), torch.from_numpy(lens)
    with torch.no_grad():
        flat = module.log_probs(x, n, ngram_input(names[:50], config))
        padded = module.log_probs(x, n, ngram_input(names[:50], config, padded=True))
    np.testing.assert_allclose(flat.numpy(), padded.numpy(), rtol=0, atol=1e-5)


def test_a_folded_temperature_divides_the_logits_on_both_backends(tmp_path):
    _path, module = hybrid_model(tmp_path, buckets=256)
    names = ["Hinton", "Zhou", "  NGUYEN ", "Schmidhuber", "O'Neal"]
    config = module.config
    idx, lens = namelang.encode(names, config.text_rule)
    with torch.no_grad():
        logits = module.logits(
            torch.from_numpy(idx), torch.from_numpy(lens), ngram_input(names, config)
        )
    temperature = 2.5
    fold_temperature(module, temperature)
    folded = model_file.save(tmp_path / "folded.safetensors", module, CATEGORIES)
    want = F.log_softmax(logits / temperature, dim=1).numpy()
    for backend in ("rust", "torch"):
        got = namelang.load(folded, backend=backend, precision="f32").log_probs(names)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


def test_fit_temperature_recovers_the_one_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 5))
    true_t = 2.0
    probs = np.exp(logits / true_t)
    probs /= probs.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    assert abs(calibration.fit_temperature(logits, labels) - true_t) < 0.1
    # Labels drawn from the probabilities themselves: a small calibration error.
    assert calibration.expected_calibration_error(probs, labels) < 0.02
    # Overconfident probabilities (temperature 1 on logits meant for 2): a large one.
    sharp = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert calibration.expected_calibration_error(sharp, labels) > 0.05


def test_conformal_sets_cover_as_stated_on_exchangeable_rows():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, size=(8000, 6))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(6, p=p) for p in probs])
    table = calibration.conformal_thresholds(probs[:4000], labels[:4000])
    cuts = [table[f"{level:.2f}"] for level in calibration.LEVELS]
    assert all(a >= b for a, b in itertools.pairwise(cuts))  # nested sets
    for level in (0.8, 0.9, 0.95):
        cut = table[f"{level:.2f}"]
        covered, _ = calibration.coverage_report(probs[4000:], labels[4000:], cut)
        assert abs(covered - level) < 0.02, (level, covered)


def test_prediction_sets_are_nested_and_the_same_on_both_backends(tmp_path):
    path, _ = hybrid_model(tmp_path)
    thresholds = {f"{level:.2f}": 0.6 - 0.012 * i for i, level in enumerate(calibration.LEVELS)}
    path = with_conformal(path, tmp_path, thresholds)
    names = ["Hinton", "Zhou", "SMITH", "", "Ивanov", "Müller"]
    rust, torch_clf = namelang.load(path, precision="f32"), namelang.load(path, backend="torch")
    previous = None
    for level in (0.5, 0.8, 0.9, 0.95, 0.99):
        sets = rust.predict_sets(names, level)
        assert [[c for c, _ in s] for s in sets] == [
            [c for c, _ in s] for s in torch_clf.predict_sets(names, level)
        ]
        assert sets[3] == [] and all(len(s) >= 1 for i, s in enumerate(sets) if i != 3)
        if previous is not None:
            for small, large in zip(previous, sets, strict=True):
                assert {c for c, _ in small} <= {c for c, _ in large}
        previous = sets
    with pytest.raises(ValueError, match="coverage"):
        rust.predict_sets(names, 0.905)
    with pytest.raises(ValueError, match="conformal"):
        namelang.load(hybrid_model(tmp_path)[0]).predict_sets(names, 0.9)


def _score_csv(path, model, backend, **options):
    out = path.parent / f"out_{backend}_{path.suffix[1:]}.csv"
    score_file(path, out, model=model, backend=backend, k=2, progress=False, **options)
    return list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))


def test_sets_and_abstention_agree_on_every_scoring_path(tmp_path):
    path, _ = hybrid_model(tmp_path)
    thresholds = {f"{level:.2f}": 0.25 for level in calibration.LEVELS}
    model = with_conformal(path, tmp_path, thresholds)
    names = ["Hinton", "Zhou", "SMITH", "", "王", "  Smith ", "Nguyen", "Ivanova", "O'Neal"]
    text = tmp_path / "names.txt"
    text.write_text("\n".join(names) + "\n", encoding="utf-8")
    table = tmp_path / "names.csv"
    table.write_text("name\n" + "\n".join(f'"{n}"' for n in names) + "\n", encoding="utf-8")
    clf = namelang.load(model)
    top = [p[0][1] if p else None for p in clf.predict(names, k=1)]
    ranked = sorted({p for p in top if p is not None})
    middle = len(ranked) // 2
    cut = (ranked[middle - 1] + ranked[middle]) / 2  # between rows: no float ties
    assert ranked[middle - 1] < ranked[middle]
    options = {"coverage": 0.9, "min_probability": cut}
    native = _score_csv(text, model, "rust", **options)
    assert native[0][-2:] == ["set", "error"]
    others = [
        _score_csv(text, model, "torch", **options),
        _score_csv(table, model, "rust", **options),
    ]
    for other in others:
        assert len(other) == len(native)
        for a, b in zip(native[1:], other[1:], strict=True):
            assert a[-2:] == b[-2:] and a[2] == b[2]
    sets = clf.predict_sets(names, 0.9)
    for row, p, chosen in zip(native[1:], top, sets, strict=True):
        assert row[-1] == ("low_confidence" if p is not None and p < cut else row[-1])
        if p is not None and p < cut:
            assert row[2] == "" and row[3] == ""
        assert row[-2] == "|".join(c for c, _ in chosen)
    assert any(r[-1] == "low_confidence" for r in native[1:])
    assert any(r[-1] == "" for r in native[1:])


def test_predict_says_why_it_gives_no_answer(tmp_path, capsys):
    path, _ = hybrid_model(tmp_path)
    model = with_conformal(path, tmp_path, {f"{lv:.2f}": 0.2 for lv in calibration.LEVELS})
    assert main(["predict", "Иванов", "Hinton", "--model", str(model), "--json",
                 "--coverage", "0.9", "--min-probability", "0.99"]) == 0  # fmt: skip
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["error"] == "no_letters" and first["script"] == "Cyrillic"
    assert second["error"] == "low_confidence" and second["set"]
    assert main(["predict", "Иванов", "--model", str(model)]) == 0
    assert "Cyrillic" in capsys.readouterr().out


def test_model_files_with_a_bad_text_rule_or_ngram_branch_are_refused(tmp_path):
    path, _ = hybrid_model(tmp_path)
    spec, tensors = model_file.read(path)
    cases = {
        "text_rule": ({"text_rule": "upper"}, tensors),
        "ngram_max": ({"ngram_max": "0"}, tensors),
        "ngram": ({}, {k: v for k, v in tensors.items() if k != "ngram.weight"}),
    }
    for key, (changes, arrays) in cases.items():
        from safetensors.numpy import save_file

        bad = tmp_path / f"bad_{key}.safetensors"
        meta = {k: v for k, v in spec.metadata.items() if k != "digest"}  # hand-made
        save_file(arrays, str(bad), metadata={**meta, **changes})
        with pytest.raises(ValueError, match=key):
            model_file.read(bad)
        with pytest.raises(ValueError, match=key):
            _native.Model(str(bad))


def test_score_batch_abstains_below_the_minimum_as_bulk_scoring_does(tmp_path):
    pd = pytest.importorskip("pandas")
    path, _ = hybrid_model(tmp_path)
    names = ["Hinton", "Zhou", "SMITH", "", "王", "Nguyen", "Ivanova", "O'Neal"]
    top = [p[0][1] if p else None for p in namelang.load(path).predict(names, k=1)]
    ranked = sorted({p for p in top if p is not None})
    cut = (ranked[1] + ranked[2]) / 2
    frame = namelang.score_batch(pd.DataFrame({"name": names}), model=path, min_probability=cut)
    for p, error, language in zip(top, frame["error"], frame["language"], strict=True):
        if p is not None and p < cut:
            assert error == "low_confidence" and pd.isna(language)
        elif p is not None:
            assert pd.isna(error) and not pd.isna(language)
    assert (frame["error"] == "low_confidence").sum() == 2


def test_feminine_forms_of_russian_training_names_only():
    from namelang.data import Split
    from namelang.train import feminine_forms

    split = Split(
        categories=["Czech", "Russian"],
        train=[("Ivanov", 1), ("Lebedev", 1), ("Pushkin", 1), ("Tolstoy", 1), ("Novak", 0),
               ("Dostoevsky", 1), ("Petrov", 0), ("Zhou", 1)],
        valid=[("Sidorov", 1)],
        test=[],
        seed=0,
    )  # fmt: skip
    assert feminine_forms(split) == [
        ("Ivanova", 1), ("Lebedeva", 1), ("Pushkina", 1), ("Tolstaya", 1), ("Dostoevskaya", 1)
    ]  # fmt: skip
