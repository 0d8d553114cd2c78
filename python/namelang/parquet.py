"""Parquet in and out of `score` (pyarrow, in the `batch` extra), streamed batch by batch.

A Parquet input is read by row groups (`batch_size` rows at most at a time); its name
column goes to Rust as Arrow strings, as `score_batch` hands them, and every other
column keeps its type. To CSV/TSV/JSONL each record's fields go through the one row
formatter; to Parquet the scored columns are added (`language`, `probability`, `top`
when k > 1, `error`), as `score_batch` adds them. A text, CSV or TSV input can be
written to Parquet too: its fields as strings, a row the reader flagged keeping its
code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from namelang.batch import score_with
from namelang.extras import require

if TYPE_CHECKING:
    from namelang.batch import Scorer

SUFFIXES = (".parquet", ".pq")


def arrow():
    require("pyarrow", "Parquet input and output", extra="batch")
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


class ArrowSink:
    """The file-like object pyarrow writes to: an output stream with what it asks of one."""

    def __init__(self, sink: BinaryIO):
        self._sink, self._written = sink, 0
        self.closed = False

    def write(self, data) -> int:
        self._sink.write(bytes(data))
        self._written += len(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def tell(self) -> int:
        return self._written

    def close(self) -> None:
        self.closed = True


def read_batches(source: BinaryIO, column: str, batch_size: int):
    """The Parquet input's schema and record batches; a missing column is an error."""
    pa, pq = arrow()
    reader = pq.ParquetFile(pa.PythonFile(source, mode="r"))
    names = reader.schema_arrow.names
    if column not in names:
        raise ValueError(f"the input has no column {column!r}; columns: {names}")
    return reader.schema_arrow, reader.iter_batches(batch_size=batch_size)


def rows_of_batches(batches, column: str) -> Iterator[tuple[list[str], str | None, str | None]]:
    """Rows for the text formatter: each record's fields as text, its name (None when
    null: `null`; not a string: `not_a_string`)."""
    for batch in batches:
        columns = [c.to_pylist() for c in batch.columns]
        at = batch.schema.names.index(column)
        for values in zip(*columns, strict=True):
            cells = ["" if v is None else str(v) for v in values]
            name = values[at]
            if name is None:
                yield cells, None, "null"
            elif not isinstance(name, str):
                yield cells, None, "not_a_string"
            else:
                yield cells, name, None


def write_scored(batches, scorer: Scorer, sink: BinaryIO, summary) -> None:
    """Parquet out: each (batch, the reader's errors, the name column as shown; None
    where the batch is the input's own) with the scored columns added, written as it is
    scored."""
    pa, pq = arrow()

    writer = None
    out = ArrowSink(sink)
    try:
        for batch, reader_errors, shown in batches:
            table = score_with(scorer, pa.Table.from_batches([batch]))
            if shown is not None:  # a flagged row keeps its text in the name column
                at = table.schema.get_field_index(scorer.column)
                table = table.set_column(at, scorer.column, pa.array(shown, pa.string()))
            if reader_errors is not None:  # what the text reader found wins over "null"
                merged = [
                    r or e
                    for r, e in zip(reader_errors, table.column("error").to_pylist(), strict=True)
                ]
                at = table.schema.get_field_index("error")
                table = table.set_column(at, "error", pa.array(merged, pa.string()))
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            errors = table.column("error").to_pylist()
            flagged = sum(e is not None for e in errors)
            summary.rows += len(errors)
            summary.flagged += flagged
            summary.scored += len(errors) - flagged
    finally:
        if writer is not None:
            writer.close()


def batches_of_rows(rows, columns: list[str] | None, column: str, size: int):
    """Record batches from the text readers' rows (fields as strings; a flagged row's name
    null, so it is not scored), with each row's reader error and shown name kept aside:
    (batch, errors, shown names)."""
    pa, _ = arrow()
    names = columns or ["name"]
    block: list = []

    def emit():
        cells = [r[0] if isinstance(r[0], list) else [r[0]] for r in block]
        data = {c: [row[i] if i < len(row) else None for row in cells] for i, c in enumerate(names)}
        at = names.index(column) if columns else 0
        shown = data[names[at]]
        data[names[at]] = [r[1] for r in block]  # None where the reader flagged the row
        return pa.RecordBatch.from_pydict(data), [r[2] for r in block], shown

    for row in rows:
        block.append(row)
        if len(block) >= size:
            yield emit()
            block = []
    if block:
        yield emit()
