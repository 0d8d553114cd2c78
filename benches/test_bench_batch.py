"""The batch API: an Arrow string column (buffers straight to Rust) against the same
names as a list of str (one Python object each)."""

from __future__ import annotations

import pytest
from namelang.batch import Scorer

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def scorer():
    return Scorer("tutorial")


@pytest.mark.benchmark(group="batch (tutorial model)")
def test_batch_arrow_table(benchmark, scorer, many_names):
    table = pa.table({"name": many_names})
    benchmark(scorer.score_batch, table)


@pytest.mark.benchmark(group="batch (tutorial model)")
def test_batch_pandas_frame(benchmark, scorer, many_names):
    frame = pd.DataFrame({"name": many_names})
    benchmark(scorer.score_batch, frame)


@pytest.mark.benchmark(group="batch (tutorial model)")
def test_batch_list_of_str(benchmark, scorer, many_names):
    benchmark(scorer.job.columns, many_names)
