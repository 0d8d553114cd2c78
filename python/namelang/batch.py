"""Batch scoring of columnar data: pandas DataFrames, pyarrow Tables, RecordBatches and
string arrays, with prediction columns added and one row out per row in, in order.

A `Scorer` carries the model's bytes, not a path, so it pickles to worker processes of
Dask, Spark or Ray and loads the model once per process, on first use."""

from __future__ import annotations

import os
from typing import Any

from namelang import _native
from namelang.classifier import model_path
from namelang.prior import PriorSpec, logit_shift
from namelang.text import FullName, set_num_threads


class Scorer:
    """Scores batches with one model on the Rust backend.

    `threads` sets the native threads of each process that uses this Scorer; with several
    worker processes on one machine, set it to cores / workers so they do not
    oversubscribe the cores."""

    def __init__(
        self,
        model: str | os.PathLike[str] = "default",
        *,
        column: str = "name",
        k: int = 1,
        max_length: int | None = None,
        threads: int | None = None,
        min_probability: float = 0.0,
        prior: PriorSpec = None,
        full_name: FullName = False,
        precision: str = "auto",
    ):
        self.column, self.threads, self.precision = column, threads, precision
        self._options = {
            "k": k,
            "max_length": max_length,
            "min_probability": min_probability,
            "full_name": full_name,
        }
        self._bytes = model_path(model).read_bytes()
        self._prior = prior
        self._shift: list[float] | None = None
        self._job: Any = None
        self._pid: int | None = None
        self.job  # noqa: B018 (the model, prior and options checked here, on the driver)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_job"], state["_pid"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def job(self) -> _native.Job:
        """The native answer job for this process's model, loaded once per process
        (again after a fork)."""
        if self._job is None or self._pid != os.getpid():
            if self.threads is not None:
                set_num_threads(self.threads)
            load = _native.Model.from_bytes
            model = load(self._bytes, logit_shift=self._shift, precision=self.precision)
            if self._prior not in (None, "data") and self._shift is None:
                spec = model.spec
                self._shift = logit_shift(self._prior, spec.categories, spec.metadata)
                if self._shift is not None:
                    model = model.with_logit_shift(self._shift)
            self._job = _native.Job(model, **self._options)
            self._categories = model.categories
            self._pid = os.getpid()
        return self._job

    @property
    def k(self) -> int:
        """k after the cap at the number of languages."""
        return self.job.k

    @property
    def categories(self) -> list[str]:
        self.job  # noqa: B018 (loads the model in this process)
        return self._categories

    def score_batch(self, data):
        """`data` with the prediction columns added (see `score_batch`)."""
        return score_with(self, data)

    def meta(self, frame):
        """An empty frame shaped like `score_batch`'s output, for dask's `meta=`."""
        return score_with(self, frame.iloc[:0])

    def spark_schema(self, schema):
        """The Spark schema of the scored rows: the input's `schema` (a StructType) with
        `language`, `probability`, (`top` when k > 1) and `error` added, for
        `mapInPandas(scorer.map_in_pandas, schema=scorer.spark_schema(df.schema))`."""
        from pyspark.sql import types as T

        added = [
            T.StructField("language", T.StringType()),
            T.StructField("probability", T.FloatType()),
        ]
        if self.k > 1:
            pair = T.StructType(
                [
                    T.StructField("language", T.StringType()),
                    T.StructField("probability", T.FloatType()),
                ]
            )
            added.append(T.StructField("top", T.ArrayType(pair)))
        added.append(T.StructField("error", T.StringType()))
        names = {f.name for f in added}
        return T.StructType([f for f in schema.fields if f.name not in names] + added)

    def map_in_pandas(self, batches):
        """Spark's `mapInPandas` function: each pandas batch scored, with `language` as
        plain strings (Spark's Arrow conversion takes no pandas categories)."""
        for batch in batches:
            out = self.score_batch(batch)
            out["language"] = out["language"].astype(object)
            yield out


def score_batch(
    data,
    column: str = "name",
    k: int = 1,
    model: str | os.PathLike[str] = "default",
    backend: str = "auto",
    max_length: int | None = None,
    min_probability: float = 0.0,
    prior: PriorSpec = None,
    full_name: FullName = False,
    precision: str = "auto",
):
    """Adds `language`, `probability`, `error` (and `top` when k > 1: a list of
    [language, probability] pairs, best first) to a pandas DataFrame, a pyarrow Table or
    RecordBatch (whose name column is `column`), or a pyarrow string array (then a Table
    with `name` and the new columns comes back). Rows that cannot be scored keep their
    place: `language` null, `error` one of empty, no_letters, too_long (over
    `max_length` letters; None: 256, `_native.DEFAULT_MAX_LENGTH`), null,
    model_error (the model gave NaN for it), and low_confidence where the top
    probability is under `min_probability`. `prior`: as `namelang.load`'s. `full_name`
    (True or "family-first"): the names are full names, scored on their family names
    (`namelang.text.surnames`).
    `precision`: as `namelang.load`'s."""
    if backend not in ("auto", "rust"):
        raise ValueError("score_batch runs on the Rust backend; use backend='auto' or 'rust'")
    scorer = Scorer(
        model,
        column=column,
        k=k,
        max_length=max_length,
        min_probability=min_probability,
        prior=prior,
        full_name=full_name,
        precision=precision,
    )
    return score_with(scorer, data)


def _columns_from_arrow(scorer: Scorer, array):
    """(top, probability, error) from an Arrow string array's buffers."""
    import numpy as np
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_string(array.type):
        array = array.cast(pa.large_string())
    elif not pa.types.is_large_string(array.type):
        raise TypeError(f"the name column must hold strings, not {array.type}")
    _, offsets_buf, data_buf = array.buffers()
    n = len(array)
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1, offset=array.offset * 8)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    valid = array.is_valid().to_numpy(zero_copy_only=False) if array.null_count else None
    return scorer.job.columns_utf8(offsets, data, valid)


def score_with(scorer: Scorer, data):
    """`data` (pandas, pyarrow or polars) with the scorer's columns added."""

    kind = type(data).__module__.split(".")[0]
    if kind == "polars":
        import polars as pl

        if not isinstance(data, pl.DataFrame):
            raise TypeError(f"score_batch takes a polars DataFrame, not {type(data).__name__}")
        # Arrow export without a copy of the strings (large_string, as the scorer reads).
        table = data.to_arrow(compat_level=pl.CompatLevel.oldest())
        return pl.from_arrow(score_with(scorer, table))
    if kind == "pandas":
        series = data[scorer.column]
        names = [v if isinstance(v, str) else None for v in series.tolist()]  # else: null
        return _to_pandas(scorer, data, *scorer.job.columns(names))
    if kind == "pyarrow":
        import pyarrow as pa

        if isinstance(data, (pa.Array, pa.ChunkedArray)):
            table = pa.table({"name": data})
            column = "name"
        else:
            table, column = data, scorer.column
        if column not in table.column_names:
            raise ValueError(f"no column {column!r}; columns: {table.column_names}")
        return _to_arrow(scorer, table, *_columns_from_arrow(scorer, table.column(column)))
    raise TypeError(
        f"score_batch takes a pandas or polars DataFrame or a pyarrow Table, RecordBatch or "
        f"string array, not {type(data).__name__}"
    )


def _error_names(error):
    import numpy as np

    return np.array([None, *_native.ERROR_CODES], dtype=object)[error]


def _to_pandas(scorer, frame, top, prob, error):
    import pandas as pd

    categories = scorer.categories
    out = frame.copy()
    out["language"] = pd.Categorical.from_codes(top[:, 0], categories=categories)
    out["probability"] = prob[:, 0]
    if scorer.k > 1:
        out["top"] = [
            [(categories[c], float(p)) for c, p in zip(row_c, row_p, strict=True) if c >= 0]
            for row_c, row_p in zip(top, prob, strict=True)
        ]
    out["error"] = _error_names(error)
    return out


def _to_arrow(scorer, table, top, prob, error):
    import numpy as np
    import pyarrow as pa

    categories = pa.array(scorer.categories, pa.string())
    missing = top[:, 0] < 0
    language = pa.DictionaryArray.from_arrays(
        pa.array(np.where(missing, 0, top[:, 0]), pa.int32(), mask=missing), categories
    )
    probability = pa.array(prob[:, 0], pa.float32(), mask=missing)
    columns = {"language": language, "probability": probability}
    if scorer.k > 1:
        # Each row's list holds its languages only: none for a row that was not scored.
        valid = top >= 0
        offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
        pairs = pa.StructArray.from_arrays(
            [
                pa.DictionaryArray.from_arrays(pa.array(top[valid], pa.int32()), categories),
                pa.array(prob[valid], pa.float32()),
            ],
            names=["language", "probability"],
        )
        columns["top"] = pa.ListArray.from_arrays(pa.array(offsets), pairs)
    columns["error"] = pa.array(_error_names(error), pa.string())
    for name, values in columns.items():
        table = table.append_column(name, values)
    return table
