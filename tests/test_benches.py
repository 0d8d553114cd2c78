"""A smoke run of every benchmark suite and of `namelang bench`'s machinery on tiny inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_suites_run_on_tiny_inputs():
    env = {**os.environ, "NAMELANG_BENCH_SCALE": "smoke"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "benches"),
         "--benchmark-disable"],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout


def test_parity_check_refuses_a_wrong_backend():
    from namelang.bench import _check

    good = np.array([[-0.1, -2.0], [np.nan, np.nan]], dtype=np.float32)
    _check("same", good.copy(), good)
    bad = good.copy()
    bad[0, 0] += 0.01
    with pytest.raises(RuntimeError, match="refusing"):
        _check("off", bad, good)


def test_flop_count_of_the_tutorial_cell():
    from namelang.bench import forward_flops

    # Two names of 3 and 1 letters: 2 + 0 recurrent products, 2 output products.
    assert forward_flops("elman", 4, 1, 2, np.array([3, 1, 0])) == 2 * 2 * 16 + 2 * 2 * 4 * 2
    # A GRU: 3 gates; a merged pair (half the recurrent weights zero) counts half of them.
    dense = forward_flops("gru", 4, 1, 2, np.array([3]))
    assert dense == 2 * 2 * 4 * 3 * 4 + 2 * 4 * 2
    assert forward_flops("gru", 4, 1, 2, np.array([3]), density=0.5) == dense - 2 * 4 * 3 * 4


def test_fma_peak_is_measured():
    from namelang import _native

    gflops, isa = _native.fma_peak_gflops(1)
    assert gflops > 0.5 and isa in {"avx512", "avx2+fma", "portable"}


def test_distinct_random_names_are_distinct_and_the_same_each_time():
    from namelang.bench import random_distinct_names

    names = random_distinct_names(2000, seed=3)
    assert len(set(names)) == 2000 and all(2 <= len(n) <= 12 and n.islower() for n in names)
    assert names == random_distinct_names(2000, seed=3) != random_distinct_names(2000, seed=4)


def test_the_command_row_times_a_child_and_its_memory(tmp_path):
    from namelang.bench import command_run

    src, out = tmp_path / "in.txt", tmp_path / "out.csv"
    src.write_text("Hinton\nZhou\n", encoding="utf-8")
    seconds, peak = command_run(["score", str(src), "-o", str(out), "-q"])
    assert seconds > 0 and out.read_text(encoding="utf-8").count("\n") == 3
    if sys.platform == "linux":  # the child's own peak: Python and the model, not pytest's
        assert 10 < peak < 100, peak
    with pytest.raises(RuntimeError, match="exited with 2"):
        command_run(["score", str(tmp_path / "missing.txt"), "-q"])
