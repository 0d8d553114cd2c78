"""`namelang bench`: the tutorial's code, PyTorch and Rust side by side on this machine.

Every forward backend is first checked against PyTorch CPU on a sample (a fast wrong
answer is not a result). Each figure is the median of several runs, with its spread;
ratios compare backends measured in the same run."""

from __future__ import annotations

import itertools
import json
import os
import platform
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

import namelang
from namelang import _native, model_file, reference
from namelang.classifier import load_module, model_path
from namelang.data import load_names
from namelang.score import score_file
from namelang.spec import ModelConfig

PARITY_TOLERANCE = 1e-4


@dataclass
class Row:
    task: str
    backend: str
    batch: int
    names_per_s: float
    spread: tuple[float, float]
    gflops: float | None = None
    peak_fraction: float | None = None
    vs_tutorial: float | None = None
    vs_torch: float | None = None


@dataclass
class Report:
    machine: dict
    ceilings: dict
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "machine": self.machine,
            "ceilings": self.ceilings,
            "rows": [asdict(r) for r in self.rows],
        }


WARM_UP_SECONDS = 0.2


def _time(
    fn: Callable[[], object], repeats: int, reset: Callable[[], object] | None = None
) -> list[float]:
    # Let other pools' spinning threads (OpenMP, OpenBLAS) go idle first, then warm up
    # for a while: after the pause, a run of a few milliseconds (500 single names)
    # measured the CPU waking up, at half its speed.
    # The warm-up does what the timed runs do (`reset` too), so it reaches the state a
    # long job runs in: a model builds its prefix states after 50,000 rows.
    time.sleep(0.3)
    warm_until = time.perf_counter() + WARM_UP_SECONDS
    while True:
        if reset is not None:
            reset()
        fn()
        if time.perf_counter() >= warm_until:
            break
    out = []
    for _ in range(repeats):
        if reset is not None:  # untimed: what the warm-up left must not help
            reset()
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _sized(fn: Callable[[list[str]], object], names: list[str], budget: float, repeats: int):
    """(n, seconds): times `fn` on the first n names, n chosen so one run takes about
    `budget` seconds (slow backends get fewer names, fast ones all of them)."""
    probe = names[:2000]
    start = time.perf_counter()
    fn(probe)
    per_name = (time.perf_counter() - start) / len(probe)
    n = max(len(probe), min(len(names), int(budget / max(per_name, 1e-9))))
    subset = names[:n]
    return n, _time(lambda: fn(subset), repeats)


def _rate(n: int, seconds: list[float]) -> tuple[float, tuple[float, float]]:
    rates = [n / s for s in seconds]
    return statistics.median(rates), (min(rates), max(rates))


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def machine_info(threads: int) -> dict:
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "kernel_isa": _native.kernel_isa(),
        "python": platform.python_version(),
        "namelang": namelang.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def ceilings(threads: int, quick: bool) -> dict:
    import torch

    # A ceiling is the best the machine gives: on a shared VM one try can catch a
    # thread descheduled, so the best of three is kept.
    peak1, isa = max(_native.fma_peak_gflops(1) for _ in range(3))
    peak_n, _ = max(_native.fma_peak_gflops(threads) for _ in range(3))
    time.sleep(0.3)
    a, b = np.random.rand(4096, 128).astype(np.float32), np.random.rand(128, 128).astype(np.float32)
    flops = 2 * 4096 * 128 * 128
    reps = 50 if quick else 200
    np_s = statistics.median(_time(lambda: [a @ b for _ in range(reps)], 3)) / reps
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    torch_s = statistics.median(_time(lambda: [ta @ tb for _ in range(reps)], 3)) / reps
    return {
        "fma_peak_gflops_1_thread": peak1,
        f"fma_peak_gflops_{threads}_threads": peak_n,
        "fma_peak_gflops": peak_n,
        "fma_isa": isa,
        "numpy_matmul_gflops": flops / np_s / 1e9,
        "torch_matmul_gflops": flops / torch_s / 1e9,
    }


def forward_flops(
    cell: str,
    hidden: int,
    layers: int,
    classes: int,
    lengths: np.ndarray,
    directions: int = 1,
    density: float = 1.0,
) -> float:
    """Multiply-adds (x2) a forward pass needs: h_0 = 0 makes the first step a lookup.
    `density`: the share of the recurrent weights that are not zero (a merged ensemble
    of K members: 1/K), whose products the kernels skip."""
    lengths = lengths[lengths > 0]
    if cell == "elman":
        return float(
            ((lengths - 1) * 2 * hidden * hidden).sum() + len(lengths) * 2 * hidden * classes
        )
    gates = 3 if cell == "gru" else 4
    per_step = 2 * hidden * gates * hidden * density
    above = (layers - 1) * 2 * per_step  # input and recurrent products of upper layers
    return float(
        directions * ((lengths - 1) * per_step + lengths * above).sum()
        + len(lengths) * 2 * directions * hidden * classes
    )


def _check(name: str, got: np.ndarray, want: np.ndarray) -> None:
    ok = np.isnan(got) == np.isnan(want)
    diff = np.abs(np.nan_to_num(got) - np.nan_to_num(want))
    bound = PARITY_TOLERANCE * np.maximum(1.0, np.abs(np.nan_to_num(want)))
    if not (ok.all() and (diff <= bound).all()):
        raise RuntimeError(
            f"{name} disagrees with PyTorch CPU (max |diff| {diff.max():.3g}); refusing to time it"
        )


@dataclass
class _Bench:
    """One bench run: its inputs, sizes and the report its sections add rows to."""

    quick: bool
    threads: int
    report: Report
    big: list[str]  # the data set's names, copied and shuffled
    small: list[str]  # a prefix of `big`, for the slow per-name baselines
    distinct: list[str]  # each distinct name once
    repeats: int
    budget: float  # seconds one timed run of a forward pass aims at

    def add(self, task, backend, batch, n, seconds, flops_per_name=None) -> None:
        rate, spread = _rate(n, seconds)
        row = Row(task, backend, batch, rate, spread)
        if flops_per_name:
            row.gflops = rate * flops_per_name / 1e9
            row.peak_fraction = row.gflops / self.report.ceilings["fma_peak_gflops"]
        self.report.rows.append(row)
        _say(f"{task:<18} {backend:<32} {rate:>14,.0f} names/s")


def run(quick: bool = False, threads: int | None = None, data: str | None = None) -> Report:
    import torch

    threads = threads or namelang.get_num_threads()
    namelang.set_num_threads(threads)
    torch.set_num_threads(threads)
    names_all = [n for ns in load_names(data).values() for n in ns]
    big = names_all * (5 if quick else 50)  # copies of the 20,074 names
    # Shuffled once (seed 0): any prefix has the data set's mix of lengths and languages.
    random.Random(0).shuffle(big)
    _say(f"ceilings (FMA loop, matmul), {threads} threads")
    bench = _Bench(
        quick=quick,
        threads=threads,
        report=Report(machine_info(threads), ceilings(threads, quick)),
        big=big,
        small=big[: 1000 if quick else 4000],
        # Sharing prefixes is timed on what names share, not on duplicates.
        distinct=distinct_names(names_all),
        repeats=3 if quick else 7,
        budget=0.3 if quick else 1.0,
    )
    _text_pipeline(bench)
    with tempfile.TemporaryDirectory() as scratch:
        models = [
            ("tutorial", namelang.classifier.model_path("tutorial")),
            ("default", namelang.classifier.model_path("default")),
            ("gru 128 emb 64", _random_model(scratch, "gru")),
            ("lstm 128 emb 64", _random_model(scratch, "lstm")),
        ]
        for label, path in models[:2] if quick else models:
            _forward(bench, label, path)
    for model in ("tutorial", "default"):
        _latency(bench, model)
    _score_files(bench)
    _score_command(bench)
    _training(bench, data)
    _ratios(bench.report)
    return bench.report


def _text_pipeline(bench: _Bench) -> None:
    """to_ascii and encode: the tutorial's per-name functions, numpy, Rust."""

    big, small, repeats = bench.big, bench.small, bench.repeats
    _say("to_ascii")
    secs = _time(lambda: [reference.unicodeToAscii(n) for n in small], repeats)
    bench.add("to_ascii", "tutorial unicodeToAscii", 1, len(small), secs)
    secs = _time(lambda: namelang.to_ascii_batch(big), repeats)
    bench.add("to_ascii", "rust to_ascii_batch", len(big), len(big), secs)
    ascii_big = namelang.to_ascii_batch(big)
    table = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(namelang.ALPHABET):
        table[ord(c)] = i

    def numpy_encode(names):
        width = max(map(len, names))
        buf = np.frombuffer("".join(n.ljust(width, "\0") for n in names).encode("ascii"), np.uint8)
        return table[buf.reshape(len(names), width)]

    _say("encode")
    secs = _time(
        lambda: [reference.lineToTensor(reference.unicodeToAscii(n)) for n in small], repeats
    )
    bench.add("encode", "tutorial lineToTensor", 1, len(small), secs)
    secs = _time(lambda: numpy_encode(ascii_big), repeats)
    bench.add("encode", "numpy lookup (ASCII input)", len(ascii_big), len(ascii_big), secs)
    bench.add(
        "encode", "rust encode", len(big), len(big), _time(lambda: namelang.encode(big), repeats)
    )


def _forward(bench: _Bench, label: str, path) -> None:
    """One model's forward pass: the tutorial's loop (Elman), PyTorch CPU (and CUDA),
    and Rust, each checked against PyTorch first; then on distinct names, with and
    without shared prefixes."""
    import torch

    big, distinct, budget, repeats = bench.big, bench.distinct, bench.budget, bench.repeats
    spec, module = load_module(path)
    directions = 2 if spec.bidirectional else 1
    sizes = (spec.cell, spec.hidden_size, spec.num_layers, spec.n_categories)
    recurrent = getattr(getattr(module, "rnn", None), "weight_hh_l0", None)
    density = 1.0 if recurrent is None else float((recurrent != 0).float().mean())
    flops = forward_flops(*sizes, namelang.encode(big)[1], directions, density) / len(big)
    distinct_flops = forward_flops(*sizes, namelang.encode(distinct)[1], directions, density) / len(
        distinct
    )
    kind = spec.cell + (f" + {spec.ngram_max}-grams" if spec.ngram_buckets else "")
    task = f"forward {label} ({kind})"
    _say(task)
    # The kernel alone: every row runs its own recurrence (no shared prefixes).
    # f32 rows first, the reference; bf16 rows name the kernel that ran them.
    rust = _native.Model(str(path), share_prefixes=False, precision="f32")
    torch_clf = namelang.load(path, backend="torch")
    sample = big[:: max(1, len(big) // 20000)]
    want = torch_clf.log_probs(sample)
    methods = ["recurrence", "collapsed"] if spec.cell == "elman" else ["recurrence"]
    for method in methods:
        _check(f"rust {method}", rust.log_probs(sample, method), want)
    _check("rust shared prefixes", rust.log_probs(sample, "recurrence", True), want)
    if spec.cell == "elman":
        _tutorial_loop(bench, task, module, flops)
    n, secs = _sized(torch_clf.log_probs, big, budget, repeats)
    bench.add(task, "torch cpu batched", 4096, n, secs, flops)
    if torch.cuda.is_available():
        cuda_clf = namelang.load(path, backend="torch", device="cuda")
        _check("torch cuda", cuda_clf.log_probs(sample), want)
        n, secs = _sized(cuda_clf.log_probs, big, budget, repeats)
        bench.add(task, "torch cuda batched", 4096, n, secs, flops)
    for method in methods:
        n, secs = _sized(lambda names, m=method: rust.log_probs(names, m), big, budget, repeats)
        # The collapsed path does no products: GFLOP/s would not mean anything there.
        bench.add(task, f"rust {method}", n, n, secs, flops if method == "recurrence" else None)
    for precision, kernel in _reduced_precisions(spec.cell):
        # Reduced products: counted as the same FLOPs, against the same f32 peak.
        reduced = _native.Model(str(path), share_prefixes=False, precision=precision)
        n, secs = _sized(lambda names, m=reduced: m.log_probs(names), big, budget, repeats)
        bench.add(task, f"rust recurrence, {precision} ({kernel})", n, n, secs, flops)
    # Rows whose names start alike share their state: on distinct names, against
    # PyTorch on the same names. Its GFLOP/s would count work it skips: not given.
    dtask = f"{task}, distinct"
    _say(dtask)
    n, secs = _sized(torch_clf.log_probs, distinct, budget, repeats)
    bench.add(dtask, "torch cpu batched", 4096, n, secs, distinct_flops)
    for share in (False, True):
        n, secs = _sized(
            lambda names, s=share: rust.log_probs(names, "recurrence", s),
            distinct, budget, repeats,
        )  # fmt: skip
        backend = "rust recurrence, shared prefixes" if share else "rust recurrence"
        bench.add(dtask, backend, n, n, secs, None if share else distinct_flops)


def _tutorial_loop(bench: _Bench, task: str, module, flops: float) -> None:
    """The tutorial's own evaluate(), one name at a time."""
    import torch

    names = bench.small[:2000] if bench.quick else bench.small[:10000]
    lines = [reference.lineToTensor(namelang.to_ascii(n)) for n in names if namelang.to_ascii(n)]
    with torch.no_grad():
        secs = _time(
            lambda: [reference.evaluate(module, line) for line in lines],
            max(1, bench.repeats // 2),
        )
    bench.add(task, "tutorial evaluate()", 1, len(lines), secs, flops)


def _latency(bench: _Bench, model: str) -> None:
    """One name at a time, as an interactive caller asks: the rows name the model."""
    import torch

    task = f"latency 1 name ({model})"
    _say(task)
    one = ["Hinton"]
    rust_clf = namelang.load(model, backend="rust", precision="f32")
    torch_clf = namelang.load(model, backend="torch")
    reps = 500 if bench.quick else 20000

    def many(fn, n=reps):
        return lambda: [fn() for _ in range(n)]

    if model == "tutorial":
        _, module = load_module(model_path(model))
        line = reference.lineToTensor("Hinton")
        with torch.no_grad():
            secs = _time(many(lambda: reference.evaluate(module, line)), bench.repeats)
        bench.add(task, "tutorial evaluate()", 1, reps, secs)
    secs = _time(many(lambda: torch_clf.predict(one), reps // 10), bench.repeats)
    bench.add(task, "torch cpu predict", 1, reps // 10, secs)
    # A new name each call, the answers kept by earlier calls forgotten before each run:
    # what a caller with names it has not asked before waits.
    fresh = iter(())

    def next_name() -> list[str]:
        return [next(fresh)]

    def start_fresh() -> None:
        nonlocal fresh
        rust_clf.clear_answers()
        fresh = itertools.cycle(bench.distinct)  # a timed run asks fewer than all

    start_fresh()
    secs = _time(many(lambda: rust_clf.predict(next_name())), bench.repeats, start_fresh)
    bench.add(task, "rust predict", 1, reps, secs)
    secs = _time(many(lambda: rust_clf.predict(one)), bench.repeats)
    bench.add(task, "rust predict, one name again", 1, reps, secs)
    start_fresh()
    secs = _time(many(lambda: rust_clf.log_probs(next_name())), bench.repeats, start_fresh)
    bench.add(task, "rust log_probs", 1, reps, secs)
    for precision, kernel in _reduced_precisions(rust_clf.spec.cell):
        rust_clf = namelang.load(model, backend="rust", precision=precision)
        start_fresh()
        secs = _time(many(lambda c=rust_clf: c.predict(next_name())), bench.repeats, start_fresh)
        bench.add(task, f"rust predict, {precision} ({kernel})", 1, reps, secs)


def _reduced_precisions(cell: str) -> list[tuple[str, str]]:
    """(precision, the kernel that runs it) for each reduced precision this CPU offers
    a model of this cell (the Elman cell stays exact in f32)."""
    if cell == "elman":
        return []
    found = [("bf16", _native.bf16_kernel())] if _native.bf16_available() else []
    return found + ([("int16", "avx2 vpmaddwd")] if _native.int16_available() else [])


def _score_files(bench: _Bench) -> None:
    """End-to-end `score_file` on a generated name list, per model and backend."""

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "names.txt")
        n_file = 20_000 if bench.quick else 200_000
        with open(src, "w", encoding="utf-8") as f:
            f.write("\n".join(bench.big[:n_file]) + "\n")
        # Real lists repeat a few names a lot: weights 1/rank over the distinct names.
        zipf = os.path.join(tmp, "zipf.txt")
        distinct = sorted(set(bench.big))
        random.Random(1).shuffle(distinct)
        weights = [1.0 / (r + 1) for r in range(len(distinct))]
        rows = random.Random(0).choices(distinct, weights=weights, k=n_file * 5)
        with open(zipf, "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
        for label, model, path, n in (
            ("tutorial", "tutorial", src, n_file),
            ("default", "default", src, n_file),
            ("default, Zipf-shaped list", "default", zipf, 5 * n_file),
        ):
            task = f"score file ({label})"
            _say(task)
            for backend, share in (("torch", True), ("rust", True), ("rust", False)):
                out = os.path.join(tmp, f"out-{backend}.csv")
                # Loaded once, as forward-only timings load it once: scoring time only.
                # Three runs at least, even --quick: one run of a fraction of a second
                # read 30% low beside seven (BENCHMARKS.md).
                loaded = namelang.load(model, backend=backend, share_prefixes=share)
                secs = _time(
                    lambda c=loaded, o=out, p=path: score_file(p, o, model=c, progress=False),
                    max(3, bench.repeats // 2),
                    reset=loaded.clear_answers,  # each run starts with no answers kept
                )
                how = backend if backend == "torch" else f"rust, {loaded.precision}"
                how += "" if share else ", no shared prefixes"
                bench.add(task, how, n, n, secs)


def _score_command(bench: _Bench) -> None:
    """The whole `namelang score` command on distinct random names, start-up included:
    what a user waits for, where no name repeats and few share more than their first
    letters (no kept answers, little shared work), with the child's peak RSS."""
    n = 100_000 if bench.quick else 1_000_000
    task = "score command (default, distinct)"  # n random names of 2-12 letters
    _say(task)
    precision = namelang.load("default").precision
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "names.txt"), os.path.join(tmp, "out.csv")
        with open(src, "w", encoding="utf-8") as f:
            f.write("\n".join(random_distinct_names(n)) + "\n")
        runs = [command_run(["score", src, "-o", out, "-q"]) for _ in range(bench.repeats // 2 + 1)]
    peak = max((mb for _, mb in runs if mb is not None), default=None)
    how = f"rust, {precision}" + (f", peak RSS {peak:.0f} MB" if peak else "")
    bench.add(task, how, n, n, [seconds for seconds, _ in runs])


def random_distinct_names(n: int, seed: int = 0) -> list[str]:
    """`n` distinct lower-case names of 2-12 letters at random (seeded), in random order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        seen.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 12))))
    out = sorted(seen)  # a set's order changes between processes; this does not
    rng.shuffle(out)
    return out


def command_run(args: list[str]) -> tuple[float, float | None]:
    """(seconds, peak RSS in MB) of `namelang ARGS` run in a child process, start-up
    included; a failing command raises. The child reads its own peak (Linux's VmHWM,
    None elsewhere): the OS's count for a child also holds the pages it was forked with,
    the parent's size (105 MB for a two-name file under pytest, where the child read 27)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = os.path.join(tmp, "peak")
        code = (
            "import sys\nfrom namelang.cli import main\nrc = main()\n"
            "try:\n    status = open('/proc/self/status').read().split('\\n')\n"
            "except OSError:\n    status = []\n"
            "kb = [line.split()[1] for line in status if line.startswith('VmHWM:')]\n"
            f"open({peak_file!r}, 'w').write(kb[0] if kb else '')\nsys.exit(rc)"
        )
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, *args])
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"namelang {' '.join(args)} exited with {done.returncode}")
        with open(peak_file, encoding="ascii") as f:
            kb = f.read().strip()
    return seconds, int(kb) / 1024 if kb else None


def _training(bench: _Bench, data: str | None) -> None:
    """One training epoch on the CPU (and CUDA when present); --quick: a quarter of one."""
    import torch

    from namelang.train import TrainConfig, train

    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        _say(f"training epoch ({device})")
        config = TrainConfig(
            data=data,
            epochs=1,
            device=device,
            progress=False,
            logit_adjust=False,
            calibrate=False,
            time_budget=8.0 if bench.quick else None,
        )
        _, history, _ = train(config)
        rows = history["train_rows"]
        bench.add(
            "train 1 epoch gru", f"torch {device}", config.batch_size, rows, [history["seconds"]]
        )


def distinct_names(names: list[str]) -> list[str]:
    """Each normalised name once (the first spelling of it; 17,422 for the data set),
    shuffled with seed 0: no row repeats another."""

    out = list({namelang.to_ascii(n): n for n in names}.values())
    random.Random(0).shuffle(out)
    return out


def _random_model(folder: str, cell: str):
    """A model of the size PyTorch's nn.GRU/nn.LSTM anchors use (hidden 128, embedding 64),
    random weights (seed 0): speed does not depend on training."""
    import torch

    from namelang.model import build

    torch.manual_seed(0)
    config = ModelConfig(cell=cell, hidden_size=128, input="embedding", embedding_dim=64)
    return model_file.save(
        os.path.join(folder, f"{cell}.safetensors"), build(config), [f"c{i}" for i in range(18)]
    )


def _ratios(report: Report) -> None:
    by_task: dict[str, list[Row]] = {}
    for row in report.rows:
        by_task.setdefault(row.task, []).append(row)
    for rows in by_task.values():
        tutorial = next((r for r in rows if r.backend.startswith("tutorial")), None)
        torch_row = next(
            (r for r in rows if r.backend.startswith("torch cpu") or r.backend == "torch"), None
        )
        for r in rows:
            if tutorial:
                r.vs_tutorial = r.names_per_s / tutorial.names_per_s
            if torch_row:
                r.vs_torch = r.names_per_s / torch_row.names_per_s


def format_table(report: Report) -> str:
    m, c = report.machine, report.ceilings
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, "
        f"kernel {m['kernel_isa']}, torch {m['torch']}, numpy {m['numpy']}",
        f"ceilings: FMA peak {c['fma_peak_gflops_1_thread']:.0f} GFLOP/s (1 thread), "
        f"{c['fma_peak_gflops']:.0f} ({m['threads']} threads, {c['fma_isa']}); "
        f"matmul 4096x128x128: numpy {c['numpy_matmul_gflops']:.0f}, "
        f"torch {c['torch_matmul_gflops']:.0f} GFLOP/s",
        "",
        f"{'task':<42}{'backend':<34}{'batch':>7}{'names/s':>14}{'spread':>22}"
        f"{'x tutorial':>11}{'x torch':>9}{'GFLOP/s':>9}{'of peak':>8}",
    ]

    def fmt(v, spec):
        return format(v, spec) if v is not None else ""

    for r in report.rows:
        lines.append(
            f"{r.task:<42}{r.backend:<34}{r.batch:>7}{r.names_per_s:>14,.0f}"
            f"{f'{r.spread[0]:,.0f}-{r.spread[1]:,.0f}':>22}"
            f"{fmt(r.vs_tutorial, '>11.1f'):>11}{fmt(r.vs_torch, '>9.2f'):>9}"
            f"{fmt(r.gflops, '>9.1f'):>9}{fmt(r.peak_fraction, '>8.0%'):>8}"
        )
    return "\n".join(lines)


def plot(report: Report, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.task} | {r.backend}" for r in report.rows]
    values = [r.names_per_s for r in report.rows]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.5))
    colors = [
        "tab:gray"
        if "tutorial" in r.backend
        else "tab:orange"
        if r.backend.startswith("torch")
        else "tab:blue"
        for r in report.rows
    ]
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("names/s (log scale): gray tutorial code, orange PyTorch, blue Rust")
    ax.set_title(f"namelang bench, {report.machine['cpu']}, {report.machine['threads']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(
    quick: bool,
    threads: int | None,
    json_path: str | None,
    plot_path: str | None,
    data: str | None = None,
) -> int:
    report = run(quick=quick, threads=threads, data=data)
    print(format_table(report))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report.to_json(), f, indent=1)
    if plot_path:
        plot(report, plot_path)
    return 0
