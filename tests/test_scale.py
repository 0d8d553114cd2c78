"""SCALE_OUT.md's Spark and Ray recipes, run as written on real engines (Spark local[2]
with the system's Java, Ray with two CPUs), each on 10,000+ rows with bad rows and other
columns, every row compared with in-process `score_batch`. In the default test command;
marked `scale` to run alone (`pytest -m scale`, after `pip install -e '.[scale]'`)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from namelang.batch import Scorer, score_batch

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.scale

BAD = [None, "", "   ", "1234", "王", "x" * 300, "Zhou\nZhou", "Ślusàrski"]


@pytest.fixture(scope="module")
def frame(dataset_names) -> pd.DataFrame:
    rng = random.Random(7)
    names = [rng.choice(dataset_names) for _ in range(10_000)] + BAD * 25
    rng.shuffle(names)
    return pd.DataFrame({"id": np.arange(len(names)), "name": names, "city": ["Oslo"] * len(names)})


def reference(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    out = score_batch(frame, k=k)
    out["language"] = out["language"].astype(object)
    return out


def same_rows(got: pd.DataFrame, want: pd.DataFrame, k: int) -> None:
    got = got.sort_values("id").reset_index(drop=True)
    assert got["id"].tolist() == want["id"].tolist()
    assert got["city"].tolist() == want["city"].tolist()
    assert got["name"].tolist() == want["name"].tolist()
    lang = [None if v is None or v != v else str(v) for v in got["language"]]
    assert lang == [None if v is None or v != v else v for v in want["language"]]
    np.testing.assert_allclose(
        got["probability"].astype(float), want["probability"].astype(float), atol=1e-6
    )
    errors = [[e if isinstance(e, str) else None for e in f["error"]] for f in (got, want)]
    assert errors[0] == errors[1]
    assert {"null", "empty", "no_letters", "too_long"} <= set(errors[1])
    if k > 1:
        for ours, theirs in zip(got["top"], want["top"], strict=True):
            pairs = [(p["language"], p["probability"]) for p in ours] if ours is not None else []
            assert [lang for lang, _ in pairs] == [lang for lang, _ in theirs]


def test_spark_map_in_pandas_keeps_every_column_and_row(frame):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        for k in (1, 2):
            scorer = Scorer("default", k=k, threads=1)
            df = spark.createDataFrame(frame).repartition(3)
            scored = df.mapInPandas(scorer.map_in_pandas, schema=scorer.spark_schema(df.schema))
            got = scored.toPandas()
            if k > 1:
                got["top"] = [
                    [r.asDict() if hasattr(r, "asDict") else r for r in row] for row in got["top"]
                ]
            same_rows(got, reference(frame, k), k)
    finally:
        spark.stop()


def test_ray_map_batches_with_arrow_native_top(frame):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    import pyarrow as pa

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        for k in (1, 2):
            scorer = Scorer("default", k=k, threads=1)
            ds = ray.data.from_arrow(pa.Table.from_pandas(frame, preserve_index=False))
            scored = ds.map_batches(scorer.score_batch, batch_format="pyarrow")
            table = pa.concat_tables(list(scored.iter_batches(batch_format="pyarrow")))
            if k > 1:
                # Arrow-native: a list of {language, probability}, not pickled tuples.
                assert pa.types.is_list(table.schema.field("top").type)
                assert pa.types.is_struct(table.schema.field("top").type.value_type)
            got = table.to_pandas()
            same_rows(got, reference(frame, k), k)
    finally:
        ray.shutdown()
