"""Parquet in and out of `score`, and polars DataFrames in `score_batch`."""

from __future__ import annotations

import csv
import io

import namelang
import pytest
from namelang.score import score_file

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write_input(path, rows_per_group: int = 2):
    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "name": ["Müller", None, "Zhou", "", "Nguyen"],
            "when": pa.array([1.5, 2.5, None, 4.0, 5.0], pa.float64()),
        }
    )
    pq.write_table(table, path, row_group_size=rows_per_group)
    return table


def test_parquet_to_parquet_keeps_types_and_adds_the_scored_columns(tmp_path):
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write_input(src)
    summary = score_file(src, out, column="name", k=2, batch_size=2, progress=False)
    got = pq.read_table(out)
    assert got.schema.field("id").type == pa.int64()
    assert got.schema.field("when").type == pa.float64()
    assert got.column_names == ["id", "name", "when", "language", "probability", "top", "error"]
    assert got.column("id").to_pylist() == [1, 2, 3, 4, 5]
    assert got.column("error").to_pylist() == [None, "null", None, "empty", None]
    want = namelang.load().predict(["Müller", "Zhou", "Nguyen"], k=1)
    scored = [v for v in got.column("language").to_pylist() if v is not None]
    assert scored == [w[0][0] for w in want]
    assert summary.rows == 5 and summary.flagged == 2


def test_parquet_to_csv_goes_through_the_row_formatter(tmp_path):
    src, out = tmp_path / "in.parquet", tmp_path / "out.csv"
    write_input(src)
    score_file(src, out, column="name", progress=False)
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["id", "name", "when", "ascii", "language", "probability", "error"]
    assert rows[1][:4] == ["1", "Müller", "1.5", "Muller"] and rows[2][-1] == "null"


def test_text_and_csv_inputs_write_parquet(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,name\n1,Zhou\n2,"never closed\n3,Müller\n', encoding="utf-8")
    out = tmp_path / "out.parquet"
    score_file(src, out, progress=False)
    got = pq.read_table(out).to_pylist()
    assert [r["error"] for r in got] == [None, "invalid_csv", None]
    assert got[1]["name"] == '2,"never closed' and got[1]["language"] is None
    assert got[0]["language"] == "Chinese"


def test_parquet_jobs_refuse_what_they_cannot_do(tmp_path):
    src = tmp_path / "in.parquet"
    write_input(src)
    with pytest.raises(ValueError, match="no column 'surname'"):
        score_file(src, tmp_path / "o.csv", column="surname", progress=False)
    with pytest.raises(ValueError, match="compresses itself"):
        score_file(src, tmp_path / "o.parquet.gz", column="name", progress=False)
    with pytest.raises(ValueError, match="rust backend"):
        score_file(src, tmp_path / "o.csv", column="name", backend="torch", progress=False)
    assert not list(tmp_path.glob("o.*"))


def test_score_batch_takes_and_returns_polars():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"id": [1, 2, 3], "name": ["Zhou", None, "Müller"]})
    out = namelang.score_batch(frame, k=2)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["id", "name", "language", "probability", "top", "error"]
    assert out["language"].to_list()[0] == "Chinese" and out["error"].to_list()[1] == "null"
    plain = namelang.score_batch(pa.table({"name": ["Zhou", None, "Müller"]}), k=2)
    assert out["probability"].to_list() == plain.column("probability").to_pylist()
