"""Forward passes per bundled model: the tutorial's evaluate(), PyTorch batched
(length-sorted, active rows only; nn.GRU/LSTM packed), Rust recurrence (each row on its
own) and collapsed; and on distinct names, the Rust recurrence with shared prefixes."""

from __future__ import annotations

import namelang
import pytest
import torch
from namelang import reference
from namelang.classifier import load_module, model_path

from .conftest import run


@pytest.fixture(scope="module")
def tutorial_module():
    return load_module(model_path("tutorial"))[1]


@pytest.mark.benchmark(group="forward tutorial (few names)")
def test_tutorial_evaluate(benchmark, few_names, tutorial_module):
    lines = [reference.lineToTensor(namelang.to_ascii(n)) for n in few_names]
    lines = [line for line in lines if len(line)]

    def run():
        with torch.no_grad():
            return [reference.evaluate(tutorial_module, line) for line in lines]

    benchmark(run)


@pytest.mark.benchmark(group="forward tutorial (few names)")
def test_tutorial_rust_few(benchmark, few_names):
    benchmark(
        namelang._native.Model(str(model_path("tutorial"))).log_probs, few_names, "recurrence"
    )


@pytest.mark.parametrize("model", ["tutorial", "default"])
@pytest.mark.benchmark(group="forward")
def test_forward_torch_cpu(benchmark, many_names, model):
    benchmark.group = f"forward {model}"
    run(
        benchmark,
        namelang.load(model, backend="torch").log_probs,
        many_names,
        slow=model == "default",
    )


@pytest.mark.parametrize("model", ["tutorial", "default"])
@pytest.mark.benchmark(group="forward")
def test_forward_rust_recurrence(benchmark, many_names, model):
    benchmark.group = f"forward {model}"
    rust = namelang._native.Model(str(model_path(model)), share_prefixes=False)
    run(benchmark, rust.log_probs, many_names, "recurrence", slow=model == "default")


PRECISIONS = ["f32"] + [
    p
    for p, here in (
        ("bf16", namelang._native.bf16_available()),
        ("int16", namelang._native.int16_available()),
    )
    if here
]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.benchmark(group="forward default, precision")
def test_forward_rust_precision(benchmark, many_names, precision):
    """The default's recurrence in each precision this CPU runs, against f32."""
    rust = namelang._native.Model(
        str(model_path("default")), share_prefixes=False, precision=precision
    )
    run(benchmark, rust.log_probs, many_names, "recurrence", slow=True)


@pytest.mark.parametrize("backend", ["torch", "rust per row", "rust shared prefixes"])
@pytest.mark.benchmark(group="forward default (distinct names)")
def test_forward_default_distinct(benchmark, distinct_names, backend):
    if backend == "torch":
        fn, args = namelang.load("default", backend="torch").log_probs, ()
    else:
        model = namelang._native.Model(str(model_path("default")))
        fn, args = model.log_probs, ("recurrence", backend == "rust shared prefixes")
    run(benchmark, fn, distinct_names, *args, slow=True)


@pytest.mark.benchmark(group="forward tutorial")
def test_forward_rust_collapsed(benchmark, many_names):
    benchmark(
        namelang._native.Model(str(model_path("tutorial"))).log_probs, many_names, "collapsed"
    )


@pytest.mark.benchmark(group="latency (one name)")
def test_latency_tutorial_evaluate(benchmark, tutorial_module):
    line = reference.lineToTensor("Hinton")
    with torch.no_grad():
        benchmark(reference.evaluate, tutorial_module, line)


@pytest.mark.parametrize("backend", ["torch", "rust"])
@pytest.mark.benchmark(group="latency (one name)")
def test_latency_predict(benchmark, backend):
    benchmark(namelang.load("tutorial", backend=backend).predict, ["Hinton"])
