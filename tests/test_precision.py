"""Reduced precision (`precision="bf16"` or `"int16"`): the answers it gives stay within
the stated bounds of float32's, on the data set's names and a million random ones; every
path takes the option; what cannot run is refused with the reason."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from namelang import _native
from namelang.batch import Scorer
from namelang.classifier import load, model_path
from namelang.score import score_file

BF16 = pytest.mark.skipif(not _native.bf16_available(), reason="no AVX512_BF16 on this CPU")
REDUCED = [
    pytest.param("bf16", marks=BF16),
    pytest.param(
        "int16",
        marks=pytest.mark.skipif(not _native.int16_available(), reason="no AVX2 on this CPU"),
    ),
]


def random_names(n: int, seed: int = 0) -> list[str]:
    """`n` random lower-case names of 2-12 letters."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    codes = letters[rng.integers(0, 26, size=(n, 12))]
    lengths = rng.integers(2, 13, size=n)
    return [row[:k].tobytes().decode() for row, k in zip(codes, lengths, strict=True)]


def within_bounds(f32: np.ndarray, bf16: np.ndarray) -> tuple[float, float]:
    """(share of names with the same top language, largest probability moved)."""
    p, q = np.exp(f32), np.exp(bf16)
    return float((p.argmax(1) == q.argmax(1)).mean()), float(np.abs(p - q).max())


@pytest.mark.parametrize("precision", REDUCED)
@pytest.mark.parametrize("which", ["data set", "random"])
def test_reduced_answers_stay_within_the_bounds(which, precision, dataset_names):
    names = dataset_names if which == "data set" else random_names(1_000_000)
    path = str(model_path("default"))
    f32 = _native.Model(path, precision="f32").log_probs(names)
    reduced = _native.Model(path, precision=precision).log_probs(names)
    agree, moved = within_bounds(f32, reduced)
    assert agree >= 0.999 and moved <= 0.005, (agree, moved)
    assert moved > 0  # the reduced kernel ran


@pytest.mark.skipif(_native.bf16_kernel() != "amx", reason="no AMX tiles on this CPU")
def test_auto_takes_bf16_where_the_tiles_fit_the_hidden_size(tmp_path):
    """Tiles are 32 values deep: a hidden size they do not divide would run bf16 on the
    row kernel, which pays for single names only, so auto stays f32 there."""
    from .test_backend_parity import make_model

    for cell, hidden, auto in (("gru", 64, "bf16"), ("lstm", 96, "bf16"), ("gru", 40, "f32")):
        path, _ = make_model(tmp_path, cell, hidden, embedding=8)
        assert _native.Model(str(path)).precision == auto, (cell, hidden)


@pytest.mark.skipif(_native.bf16_kernel() != "amx", reason="no AMX tiles on this CPU")
def test_the_row_kernel_stays_within_the_bounds_where_amx_would_run(dataset_names):
    """AMX takes bf16 products over where it runs; NAMELANG_AMX=0 turns it off, so the
    AVX512_BF16 row kernel is held to the same bounds in a process of its own."""
    code = (
        "import sys, numpy as np; from namelang import _native; "
        "from namelang.classifier import model_path; "
        "names = sys.stdin.read().split('\\n'); path = str(model_path('default')); "
        "f32 = _native.Model(path, precision='f32').log_probs(names); "
        "bf16 = _native.Model(path, precision='bf16').log_probs(names); "
        "p, q = np.exp(f32), np.exp(bf16); "
        "print(_native.bf16_kernel(), _native.Model(path).precision, "
        "(p.argmax(1) == q.argmax(1)).mean(), np.abs(p - q).max())"
    )
    env = {**os.environ, "NAMELANG_AMX": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code], input="\n".join(dataset_names),
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    kernel, auto, agree, moved = done.stdout.split()
    assert kernel == "avx512bf16" and auto == "f32"  # without tiles, auto is f32
    assert float(agree) >= 0.999 and 0 < float(moved) <= 0.005, (agree, moved)


def auto_here() -> str:
    """What `auto` runs on this CPU for the default model."""
    if _native.bf16_kernel() == "amx":
        return "bf16"
    return "int16" if _native.kernel_isa() == "avx2+fma" else "f32"


def test_precision_is_chosen_and_refused_with_reasons():
    # auto: bf16 where AMX tiles run it, int16 where AVX2 is the widest kernel, else
    # f32; the Elman cell stays exact in f32.
    assert load().precision == auto_here()
    assert load(precision="f32").precision == load("tutorial").precision == "f32"
    assert (_native.bf16_kernel() is None) == (not _native.bf16_available())
    with pytest.raises(ValueError, match="'int8' is not offered"):
        load(precision="int8")
    with pytest.raises(ValueError, match="must be 'auto', 'f32', 'bf16', 'int16' or 'int8'"):
        load(precision="half")
    for precision in ("bf16", "int16"):
        with pytest.raises(ValueError, match=f"{precision} runs the gru .* elman cell stays exact"):
            load("tutorial", precision=precision)
    with pytest.raises(ValueError, match="runs on the rust backend"):
        load(backend="torch", precision="bf16")
    if not _native.bf16_available():
        with pytest.raises(ValueError, match="AVX512_BF16"):
            load(precision="bf16")
    if not _native.int16_available():
        with pytest.raises(ValueError, match="AVX2"):
            load(precision="int16")


def test_int16_is_refused_by_the_portable_kernel():
    """NAMELANG_ISA=portable runs no x86 kernel, so int16 is refused and auto is f32."""
    code = (
        "from namelang.classifier import load; import pytest; "
        "assert load().precision == 'f32'; "
        "pytest.raises(ValueError, load, precision='int16')"
    )
    env = {**os.environ, "NAMELANG_ISA": "portable"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("reduced", REDUCED)
def test_every_path_takes_reduced_precision(tmp_path, reduced):
    clf = load(precision=reduced)
    assert clf.precision == reduced and reduced in repr(clf)
    assert load(prior="uniform", precision=reduced).precision == reduced  # a prior keeps it
    names = ["Hinton", "Zhou", "Schmidhuber", ""]
    top = clf.predict(names, k=1)
    assert [t[0][0] if t else None for t in top] == ["English", "Chinese", "German", None]
    src = tmp_path / "in.txt"
    # Enough names that some probability differs at the six decimals a file keeps.
    src.write_text("\n".join(names + random_names(300)) + "\n", encoding="utf-8")
    for precision in ("f32", reduced):
        score_file(src, tmp_path / f"{precision}.csv", precision=precision, progress=False)
    f32 = pd.read_csv(tmp_path / "f32.csv", keep_default_na=False)
    low = pd.read_csv(tmp_path / f"{reduced}.csv", keep_default_na=False)
    assert list(f32["language"]) == list(low["language"])
    assert not (f32["probability"] == low["probability"]).all()  # the reduced kernel ran
    for precision in ("f32", reduced):  # Parquet output goes through a Scorer
        out = tmp_path / f"{precision}.parquet"
        score_file(src, out, precision=precision, progress=False)
    f32 = pd.read_parquet(tmp_path / "f32.parquet")
    low = pd.read_parquet(tmp_path / f"{reduced}.parquet")
    assert list(f32["language"]) == list(low["language"])
    assert not (f32["probability"].fillna(0) == low["probability"].fillna(0)).all()
    scored = Scorer(precision=reduced).score_batch(pd.DataFrame({"name": names}))
    assert list(scored["language"].astype(object))[:3] == ["English", "Chinese", "German"]
    with pytest.raises(ValueError, match="has its precision"):
        score_file(src, tmp_path / "x.csv", model=clf, precision=reduced, progress=False)
