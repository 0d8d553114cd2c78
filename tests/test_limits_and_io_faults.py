"""Hostile input and faults: each case ends in a defined row, a ValueError/TypeError, or
a `namelang: error: ...` line with exit status 2; never an abort, unbounded memory, a
device replaced by a file, or a lost row (RELIABILITY.md lists them)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import namelang
import numpy as np
import pytest
from namelang import _native, model_file
from namelang.classifier import model_path
from namelang.cli import main
from namelang.score import score_file


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "namelang.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def peak_growth_mb(fn) -> float:
    """How far this process's peak RSS grew while `fn` ran (0 if under an earlier peak)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


# 1. Padded arrays are refused before they are allocated.
def test_padded_arrays_past_the_limit_are_refused_before_allocating():
    long = "a" * 10**6
    for call, names in [
        (namelang.encode, [long] + ["b"] * 10**5),
        (namelang.one_hot, [long] + ["b"] * 1000),
    ]:
        with pytest.raises(ValueError, match="log_probs or score_file"):
            call(names)
    assert namelang.encode([long])[0].shape == (1, 10**6)  # alone it fits


# 2. The torch backend batches by length: one long name is not padded into every row.
def test_torch_backend_memory_follows_the_letters():
    clf = namelang.load("default", backend="torch")
    clf.log_probs(["Zhou"])
    names = ["a" * 20_000] + ["Zhou"] * 4095 + ["Hinton", ""]
    growth = peak_growth_mb(lambda: clf.log_probs(names))
    assert growth < 400  # padded to the long name, 4,096 rows would be 21 GB
    out = clf.log_probs(names)
    rust = namelang.load("default", backend="rust", precision="f32").log_probs(names)
    assert np.abs(out[1:-1] - rust[1:-1]).max() < 1e-4 and np.isnan(out[-1]).all()
    with pytest.raises(ValueError, match="backend='rust'"):
        clf.log_probs(["a" * (clf.max_letters + 1)])


# 4. k is capped at the languages everywhere; far past any size it is still no error.
def test_huge_k_is_capped_on_both_backends():
    for backend in ("rust", "torch"):
        clf = namelang.load("default", backend=backend)
        assert len(clf.predict(["Zhou"], k=2**64)[0]) == len(clf.categories)
    with pytest.raises(ValueError, match="at least 1"):
        namelang.load().predict(["Zhou"], k=0)


# 5. Thread counts past 4 per core are refused (or, from the environment, capped).
def test_thread_counts_are_capped():
    limit = _native.max_threads()
    before = namelang.get_num_threads()
    for n in (limit + 1, 100_000, 2**70):
        with pytest.raises(ValueError, match="at most"):
            namelang.set_num_threads(n)
    assert namelang.get_num_threads() == before
    with pytest.raises(ValueError):
        score_file(__file__, None, threads=5000)
    probe = (
        "import warnings, namelang; warnings.simplefilter('error');"
        "print(namelang.get_num_threads())"
    )
    env = {**os.environ, "NAMELANG_NUM_THREADS": "99999"}
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", probe.replace("'error'", "'always'")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert int(done.stdout) == limit and "NAMELANG_NUM_THREADS=99999" in done.stderr


# 6. Devices and FIFOs are streamed to, symlinks' targets replaced, never the node.
def test_outputs_that_cannot_be_replaced_are_streamed_to(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\nHinton\n", encoding="utf-8")
    assert score_file(src, "/dev/null", progress=False).rows == 2
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    done = run_cli("score", str(src), "-o", "/dev/full", "-q")
    assert done.returncode == 2 and "/dev/full: No space left on device" in done.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    score_file(src, fifo, progress=False)
    assert reader.communicate(timeout=30)[0].decode().count("\n") == 3
    assert not fifo.is_file() and fifo.exists()
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old\n")
    link.symlink_to(real)
    score_file(src, link, progress=False)
    assert link.is_symlink() and real.read_text().startswith("name,ascii")


# 7. Partials left by a killed run are removed by the next run to that destination.
def test_stale_partials_of_dead_runs_are_removed(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\n", encoding="utf-8")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.csv.{dead.pid}.x1y2.partial"
    live = tmp_path / f".out.csv.{os.getpid()}.a1b2.partial"
    for p in (stale, live):
        p.write_text("name,ascii\nZhou,Zhou\n")
    score_file(src, tmp_path / "out.csv", progress=False)
    assert not stale.exists() and live.exists()


# 8. A reader that goes away ends the run quietly.
def test_a_closed_pipe_ends_the_run_quietly(tmp_path):
    src = tmp_path / "big.txt"
    src.write_text("".join(f"Name{i}\n" for i in range(300_000)), encoding="utf-8")
    done = subprocess.run(
        f"{sys.executable} -m namelang.cli score {src} -q | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == "name,ascii,language,probability,error\n"
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr


def test_sigterm_on_stdout_does_not_claim_nothing_was_written(tmp_path):
    src = tmp_path / "big.txt"
    src.write_text("".join(f"Name{i}\n" for i in range(3_000_000)), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "namelang.cli", "score", str(src), "-q", "--backend", "torch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(b"name,")
    proc.stdout.read(1 << 16)  # rows are flowing
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 130
    assert "no output was written" not in err and "stdout holds the rows" in err


# 10. JSONL records that Python's json refuses, or that are not what they seem.
def test_jsonl_edge_cases_each_get_their_row(tmp_path):
    lines = [
        '{"name": "Zhou"}',
        '{"name": "\\ud800"}',
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + ', "name": "Tanaka"}',
        '{"name": "Smith", "n": ' + "9" * 5000 + "}",
        '{"name": "Hinton", "x": NaN}',
        "",
        '{"name": 12}',
        '{"name": null}',
        '{"name": ["Zhou"]}',
        '{"name": {"first": "Zhou"}}',
        '{"id": 3}',
        '{"name": "Müller", "ascii": "keep?"}',
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for backend in ("rust", "torch"):
        out = tmp_path / f"out-{backend}.jsonl"
        summary = score_file(src, out, model=namelang.load(backend=backend), progress=False)
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert summary.rows == len(rows) == len(lines)
        errors = [r["error"] for r in rows]
        assert errors == [
            None,
            "invalid_json",
            "invalid_json",
            "invalid_json",
            "invalid_json",
            "empty",
            "not_a_string",
            "not_a_string",
            "not_a_string",
            "not_a_string",
            "missing_column",
            None,
        ], backend
        assert rows[-1]["ascii"] == "Muller"  # the added column replaces the record's


# 11. Huge finite logits: both backends give the same, stable probabilities.
def test_log_softmax_is_stable_for_huge_finite_logits(tmp_path):
    spec, tensors = model_file.read(model_path("tutorial"))
    tensors["i2o.bias"] = np.full_like(tensors["i2o.bias"], 3e38)
    tensors["i2o.bias"][0] = -3e38
    path = model_file.write(tmp_path / "huge.safetensors", spec, tensors)
    for backend in ("rust", "torch"):
        probs = np.exp(namelang.load(path, backend=backend).log_probs(["Hinton", "Zhou"]))
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5), backend
        assert np.allclose(probs[:, 1:], 1 / 17, atol=1e-5) and (probs[:, 0] < 1e-6).all()


# 13. OS errors are one line naming the user's path, with exit status 2.
def test_os_errors_are_clean_cli_errors(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\n", encoding="utf-8")
    cases = [
        (["score", str(tmp_path)], f"{tmp_path}: Is a directory"),
        (["score", str(src), "-o", str(tmp_path)], f"{tmp_path}: is a directory"),
        (["score", str(src), "-o", str(tmp_path / "no" / "x.csv")], "no such folder"),
        (["score", str(src), "--model", str(tmp_path)], "not a regular file"),
        (["predict", "Zhou", "--model", "/dev/zero"], "not a regular file"),
        (["score", str(src), "--max-length", str(10**20)], "max length must be in"),
        (["score", str(src), "-k", "0"], "k must be at least 1"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("namelang: error: ") and message in err, (argv, err)
        assert ".partial" not in err


def test_score_batch_refuses_bad_lengths():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"name": ["Zhou"]})
    for bad in (-1, 0):
        with pytest.raises(ValueError, match="max length"):
            namelang.score_batch(frame, max_length=bad)


def test_ulimit_file_size_is_a_clean_error(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"Name{i}\n" for i in range(50_000)), encoding="utf-8")
    out = tmp_path / "out.csv"
    done = subprocess.run(
        f"ulimit -f 64; {sys.executable} -m namelang.cli score {src} -o {out} -q",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and f"{out}: File too large" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".*.partial"))


def test_train_refuses_what_would_train_nothing(tmp_path, tiny_dataset, capsys):
    base = ["train", "--data", str(tiny_dataset), "--hidden-size", "8"]
    for extra, message in [
        (["--epochs", "0", "-o", str(tmp_path / "m.safetensors")], "--epochs must be at least 1"),
        (["-o", str(tmp_path / "no" / "dir" / "m.safetensors")], "no folder"),
        (["--time-budget", "0", "-o", str(tmp_path / "m.safetensors")], "--time-budget"),
    ]:
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_time_budget_stops_within_an_epoch(tiny_dataset):
    pytest.importorskip("torch")
    from namelang.train import TrainConfig, train

    config = TrainConfig(
        data=str(tiny_dataset), epochs=1000, batch_size=2, hidden_size=16, time_budget=2.0,
        progress=False, calibrate=False, logit_adjust=False,
    )  # fmt: skip
    start = time.perf_counter()
    _, history, _ = train(config)
    assert time.perf_counter() - start < 15
    assert history["x"][-1] < 1000


def test_a_long_name_runs_in_windows_with_the_same_answer(monkeypatch):
    from namelang.model import RecurrentClassifier

    clf = namelang.load("default", backend="torch")
    names = ["Schmidhuber" * 100]
    whole = clf.log_probs(names)
    monkeypatch.setattr(RecurrentClassifier, "WINDOW", 64)  # 1,100 letters: 18 windows
    np.testing.assert_allclose(clf.log_probs(names), whole, atol=1e-5)


def test_torch_backend_refuses_a_max_length_past_its_limit(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\n", encoding="utf-8")
    with pytest.raises(ValueError, match="rust backend"):
        score_file(src, None, backend="torch", max_length=10**7, progress=False)
