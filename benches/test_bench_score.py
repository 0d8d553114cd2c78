"""End-to-end scoring of a generated file, per backend."""

from __future__ import annotations

import pytest
from namelang.score import score_file

from .conftest import run


@pytest.fixture(scope="module")
def name_file(tmp_path_factory, many_names):
    path = tmp_path_factory.mktemp("score") / "names.txt"
    path.write_text("\n".join(many_names) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("model", ["tutorial", "default"])
@pytest.mark.parametrize("backend", ["torch", "rust"])
@pytest.mark.benchmark(group="score")
def test_score_file(benchmark, name_file, tmp_path, model, backend):
    benchmark.group = f"score file ({model})"
    out = tmp_path / "out.csv"
    slow = model == "default" or backend == "torch"
    run(
        benchmark,
        score_file,
        name_file,
        out,
        model=model,
        backend=backend,
        progress=False,
        slow=slow,
    )
