"""Rust forward pass against PyTorch on the same model file.

Tolerance: |rust - torch| <= 1e-4 * max(1, |log-prob|). Relative beyond 1 because the
tutorial cell is linear and its recurrence grows with length: float32 PyTorch itself
drifts from an exact recurrence on long names.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import namelang
import numpy as np
import pytest
import torch
from namelang import model_file
from namelang.classifier import model_path
from namelang.model import build
from namelang.spec import ModelConfig

from .test_text import random_strings

CATEGORIES = [f"lang{i}" for i in range(18)]


def check_parity(rust: np.ndarray, torch_out: np.ndarray, tol: float = 1e-4) -> None:
    assert rust.shape == torch_out.shape and rust.dtype == np.float32
    nan_rust, nan_torch = np.isnan(rust).all(1), np.isnan(torch_out).all(1)
    np.testing.assert_array_equal(nan_rust, nan_torch)
    r, t = rust[~nan_rust], torch_out[~nan_rust]
    bound = tol * np.maximum(1.0, np.abs(t))
    worst = np.argmax(np.abs(r - t) - bound, axis=None)
    assert (np.abs(r - t) <= bound).all(), f"worst {r.flat[worst]} vs {t.flat[worst]}"
    # Same top-1, ties aside (within the tolerance of the best).
    top = r.argmax(1)
    best = t.max(1)
    assert (t[np.arange(len(t)), top] >= best - 2 * tol * np.maximum(1, np.abs(best))).all()


def torch_log_probs(module, names: list[str]) -> np.ndarray:
    idx, lens = namelang.encode(names)
    with torch.no_grad():
        return module.log_probs(torch.from_numpy(idx), torch.from_numpy(lens)).numpy()


def make_model(
    tmp_path, cell, hidden, layers=1, embedding=0, seed=0, scale=1.0, bidirectional=False
):
    torch.manual_seed(seed)
    config = ModelConfig(
        cell=cell, hidden_size=hidden, num_layers=layers,
        input="embedding" if embedding else "one_hot", embedding_dim=embedding,
        n_categories=len(CATEGORIES), bidirectional=bidirectional,
    )  # fmt: skip
    module = build(config).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(scale)
        module.logit_adjustment.copy_(torch.randn(len(CATEGORIES)) * 0.1)
    name = f"{cell}{hidden}_{layers}_{embedding}{'_bi' if bidirectional else ''}.safetensors"
    path = model_file.save(tmp_path / name, module, CATEGORIES)
    return path, module


@pytest.fixture(scope="module")
def parity_names(hostile_names) -> list[str]:
    """Random strings, every length to 256, and the shared hostile names of up to 256
    letters: parity is stated for names of everyday length (RELIABILITY.md)."""
    lengths = [
        "".join("abcXYZ .,;'"[(i * 7 + j) % 11] for j in range(n)) for i, n in enumerate(range(257))
    ]
    everyday = [n for n in hostile_names if len(n) <= 256]
    return [*random_strings(20_000, seed=5), *lengths, *everyday]


MODELS = [
    ("elman", 16, 1, 0),
    ("elman", 128, 1, 0),
    ("elman", 200, 1, 0),
    ("gru", 16, 1, 0),
    ("gru", 128, 1, 64),
    ("gru", 96, 2, 0),
    ("lstm", 24, 1, 8),
    ("lstm", 128, 2, 32),
    ("gru", 256, 1, 0),
]


@pytest.mark.parametrize(("cell", "hidden", "layers", "embedding"), MODELS)
def test_random_models_match_torch(
    tmp_path, dataset_names, parity_names, cell, hidden, layers, embedding
):
    path, module = make_model(tmp_path, cell, hidden, layers, embedding, seed=hidden + layers)
    rust = namelang._native.Model(str(path), precision="f32")
    names = [*dataset_names[:: 1 if hidden == 128 else 7], *parity_names]
    expected = torch_log_probs(module, names)
    methods = ["recurrence", "auto", "collapsed"] if cell == "elman" else ["recurrence", "auto"]
    for method in methods:
        shared = rust.log_probs(names, method)
        check_parity(shared, expected)
        # Sharing prefixes changes which rows are computed, never a result's bits.
        np.testing.assert_array_equal(shared, rust.log_probs(names, method, share_prefixes=False))


def names_that_share_prefixes(dataset_names: list[str]) -> list[str]:
    """Duplicates, names that extend each other, long names that part only after the
    16 letters the sort key holds, and the data set's names, shuffled together."""
    rng = np.random.default_rng(11)
    long_stem = "Abcdefghijklmnopqrstu"
    made = [
        *dataset_names[:3000] * 3,
        *(long_stem + tail for tail in ["", "a", "b", "ab", "ba", "a", "b"]),
        *(long_stem[:n] for n in range(1, len(long_stem) + 1)),
        *("Mac" + n for n in dataset_names[:2000:7]),
        "", "Ab", "Ab", "Ab ", "A b", "ab",
    ]  # fmt: skip
    return [made[i] for i in rng.permutation(len(made))]


@pytest.mark.parametrize(
    ("cell", "hidden", "layers", "embedding", "bidirectional"),
    [
        ("elman", 64, 1, 0, False),
        ("gru", 48, 2, 16, False),
        ("lstm", 40, 2, 0, False),
        ("gru", 32, 1, 8, True),
        ("lstm", 24, 1, 0, True),
    ],
)
def test_shared_prefixes_give_the_same_bits(
    tmp_path, dataset_names, cell, hidden, layers, embedding, bidirectional
):
    path, module = make_model(
        tmp_path, cell, hidden, layers, embedding, seed=2, bidirectional=bidirectional
    )
    rust = namelang._native.Model(str(path), precision="f32")
    names = names_that_share_prefixes(dataset_names)
    shared = rust.log_probs(names, "recurrence")
    np.testing.assert_array_equal(shared, rust.log_probs(names, "recurrence", share_prefixes=False))
    check_parity(shared, torch_log_probs(module, names))
    # Alone or among others, a name gets the same row.
    for i in range(0, len(names), 997):
        np.testing.assert_array_equal(rust.log_probs([names[i]], "recurrence")[0], shared[i])


@pytest.mark.parametrize("precision", ["f32", "int16"])
def test_rows_after_the_prefix_table_is_built_keep_their_bits(dataset_names, precision):
    """Past 50,000 rows a model builds the states after every prefix of up to three
    letters and starts rows from them: the bundled model's answers keep their bits."""
    if precision == "int16" and not namelang._native.int16_available():
        pytest.skip("no AVX2 on this CPU")
    path = str(model_path("default"))
    names = names_that_share_prefixes(dataset_names) + dataset_names * 3
    before = namelang._native.Model(path, precision=precision)
    few = len(names) // 2  # fewer rows than the table waits for
    want = before.log_probs(names[:few])
    model = namelang._native.Model(path, precision=precision)
    first = model.log_probs(names)  # the table is built part way through
    again = model.log_probs(names)  # every chunk starts from it
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(again[:few], want)
    # The plain recurrence (no prefixes shared, the table unread) agrees to the bit.
    np.testing.assert_array_equal(again, model.log_probs(names, share_prefixes=False))
    assert len(names) > 60_000


def test_threads_that_meet_the_prefix_table_being_built_keep_their_bits(dataset_names):
    """Sixteen threads share one model while it builds its prefix states: each call's
    answers are those of a model that has none, and none fails. The thread that builds
    runs other calls' chunks while it waits for the pool; when it held its working
    buffers borrowed across the build, those calls panicked ("already borrowed") in 19
    trials of 20 of this shape."""
    path = str(model_path("default"))
    names = dataset_names[:4000]
    want = namelang._native.Model(path).log_probs(names)  # 4,000 rows: no table
    for _ in range(5):  # a fresh model each time, so each builds its table among calls
        model = namelang._native.Model(path)
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda _, m=model: m.log_probs(names), range(32)))
        for got in results:
            np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not namelang._native.int16_available(), reason="no AVX2 on this CPU")
@pytest.mark.parametrize(
    ("cell", "layers", "bidirectional"), [("gru", 2, False), ("lstm", 1, True)]
)
def test_int16_gives_a_name_the_same_bits_wherever_it_sits(
    tmp_path, dataset_names, cell, layers, bidirectional
):
    """int16 sums are exact integers, so sharing prefixes or a call's other rows change
    nothing; the answers stay near torch's float32 ones."""
    path, module = make_model(tmp_path, cell, 48, layers, 8, seed=3, bidirectional=bidirectional)
    rust = namelang._native.Model(str(path), precision="int16")
    names = names_that_share_prefixes(dataset_names)
    shared = rust.log_probs(names, "recurrence")
    np.testing.assert_array_equal(shared, rust.log_probs(names, "recurrence", share_prefixes=False))
    for i in range(0, len(names), 997):
        np.testing.assert_array_equal(rust.log_probs([names[i]], "recurrence")[0], shared[i])
    expected = torch_log_probs(module, names)
    np.testing.assert_array_equal(np.isnan(shared), np.isnan(expected))  # empty names
    moved = np.nanmax(np.abs(np.exp(shared) - np.exp(expected)))
    assert 0 < moved < 0.005, moved


@pytest.mark.parametrize(("cell", "hidden", "embedding"), [("gru", 64, 16), ("lstm", 40, 0)])
def test_bidirectional_models_match_torch(
    tmp_path, dataset_names, parity_names, cell, hidden, embedding
):
    path, module = make_model(tmp_path, cell, hidden, 1, embedding, seed=7, bidirectional=True)
    assert model_file.read(path)[0].bidirectional
    rust = namelang._native.Model(str(path), precision="f32")
    names = [*dataset_names[::5], *parity_names]
    expected = torch_log_probs(module, names)
    check_parity(rust.log_probs(names, "auto"), expected)
    # The reverse direction matters: the same file with it zeroed gives other results.
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("_reverse"):
                p.zero_()
    assert np.abs(torch_log_probs(module, names[:500]) - expected[:500]).max() > 1e-3


def test_collapsed_matches_recurrence_on_a_growing_cell(tmp_path, parity_names):
    # Weights scaled so the recurrence grows with length, like a trained tutorial cell.
    path, module = make_model(tmp_path, "elman", 128, scale=1.6, seed=3)
    rust = namelang._native.Model(str(path), precision="f32")
    collapsed = rust.log_probs(parity_names, "collapsed")
    recurrence = rust.log_probs(parity_names, "recurrence")
    check_parity(collapsed, recurrence)
    check_parity(recurrence, torch_log_probs(module, parity_names))


def test_collapsed_needs_a_linear_cell(tmp_path):
    path, _ = make_model(tmp_path, "gru", 16)
    with pytest.raises(ValueError, match="linear cell"):
        namelang._native.Model(str(path)).log_probs(["abc"], "collapsed")
    with pytest.raises(ValueError, match="method"):
        namelang._native.Model(str(path)).log_probs(["abc"], "fast")


@pytest.mark.parametrize("model", ["tutorial", "default"])
def test_bundled_models_match_across_backends(model, dataset_names, parity_names):
    rust = namelang.load(model, backend="rust", precision="f32")
    ref = namelang.load(model, backend="torch")
    names = [*dataset_names, *parity_names]
    check_parity(rust.log_probs(names), ref.log_probs(names))
    assert rust.categories == ref.categories


@pytest.mark.parametrize("isa", ["portable", "avx2"])
def test_narrower_kernels_agree(tmp_path, isa, dataset_names):
    # The kernel is chosen once per process: run a child with NAMELANG_ISA set.
    import os
    import subprocess
    import sys

    names = dataset_names[::11]
    models = []
    for cell in ("elman", "gru", "lstm"):
        path, module = make_model(tmp_path, cell, 40, seed=9)
        models.append((path, torch_log_probs(module, names)))
    # The default also reads n-grams, asking its known set (vector or scalar lookups).
    default = namelang.load("default", backend="torch").log_probs(names)
    for path, expected in [*models, (Path(model_path("default")), default)]:
        out = tmp_path / f"{path.stem}.npy"
        code = (
            "import numpy as np, sys, namelang; names = sys.stdin.read().split('\\n');"
            f"model = namelang._native.Model({str(path)!r}, precision='f32');"
            f"np.save({str(out)!r}, model.log_probs(names, 'recurrence'));"
            "print(namelang._native.kernel_isa())"
        )
        env = {**os.environ, "NAMELANG_ISA": isa}
        done = subprocess.run(
            [sys.executable, "-c", code], input="\n".join(names),
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        # The kernel named: the one asked for, or portable on a CPU without AVX2.
        wanted = "portable" if "portable" in (isa, namelang._native.kernel_isa()) else "avx2+fma"
        assert done.stdout.strip() == wanted
        check_parity(np.load(out), expected)


def test_classifier_api(dataset_names):
    for backend in ("rust", "torch"):
        clf = namelang.load("default", backend=backend)
        assert clf.backend == backend and len(clf.categories) == 18
        top = clf.predict(["Hinton", "", "Zhou"], k=3)
        assert len(top) == 3 and top[1] == []
        assert len(top[0]) == 3 and top[0][0][1] >= top[0][1][1] >= top[0][2][1]
        assert top[2][0][0] == "Chinese"
        assert 0.99 < sum(p for _, p in clf.predict(["Hinton"], k=18)[0]) < 1.01
    assert namelang.load("default").backend == "rust"


def test_classifier_shared_by_threads(dataset_names):
    from concurrent.futures import ThreadPoolExecutor

    clf = namelang.load("tutorial", backend="rust")
    names = dataset_names * 2
    alone = clf.log_probs(names)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: clf.log_probs(names), range(8)))
    for r in results:
        np.testing.assert_array_equal(r, alone)


@pytest.mark.parametrize(("cell", "layers"), [("gru", 1), ("lstm", 2)])
def test_merged_ensembles_match_torch(tmp_path, dataset_names, cell, layers):
    """A merged ensemble's recurrent weights are block-diagonal: the kernels skip each
    panel's zero rows and still give torch's answers (int16 stays near them)."""
    from namelang.train import merge_ensemble

    members = [make_model(tmp_path, cell, 32, layers, 8, seed=s)[1] for s in range(3)]
    merged = merge_ensemble(members)
    path = str(model_file.save(tmp_path / "merged.safetensors", merged, CATEGORIES))
    names = dataset_names[::5]
    expected = torch_log_probs(merged, names)
    rust = namelang._native.Model(path, precision="f32")
    check_parity(rust.log_probs(names, "recurrence"), expected)
    one = [names[i] for i in range(0, len(names), 101)]
    np.testing.assert_array_equal(
        np.concatenate([rust.log_probs([n], "recurrence") for n in one]),
        rust.log_probs(names, "recurrence")[::101],
    )  # alone or among others, the same bits
    if namelang._native.int16_available():
        low = namelang._native.Model(path, precision="int16").log_probs(names, "recurrence")
        assert 0 < np.nanmax(np.abs(np.exp(low) - np.exp(expected))) < 0.005
