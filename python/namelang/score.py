"""Bulk offline scoring: name lists of any size to CSV, TSV or JSONL, one output row per
input row, in order, streamed in bounded memory, written atomically (a file output
appears only when complete).

Plain-text input on the Rust backend takes the native path (lines in, formatted rows out,
no Python object per row); every other combination takes the generic path below.

A gzip or zstd input is decompressed as it is read (found by its first bytes); an output
is compressed by its suffix (`.gz`, `.zst`) or by `compression`, and its format comes
from the name without that suffix."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from namelang import _native, parquet
from namelang.batch import Scorer
from namelang.classifier import Classifier, load
from namelang.compression import CHOICES as COMPRESSIONS
from namelang.compression import compressed, of_path, open_decompressed, without_suffix
from namelang.csv_records import DELIMITERS, fields, records, sniff
from namelang.output import open_output
from namelang.prior import PriorSpec
from namelang.text import FullName, set_num_threads
from namelang.transcode import open_decoded
from namelang.transcode import resolve as resolve_encoding

if TYPE_CHECKING:
    from namelang.classifier import Classifier

INPUT_FORMATS = ("text", "csv", "tsv", "jsonl", "parquet")
OUTPUT_FORMATS = ("csv", "tsv", "jsonl", "parquet")
CHUNK_BYTES = 1 << 20
# A line longer than this many bytes is flagged too_long without being held in memory;
# its output row shows the first SHOWN_CHARS characters of the name.
MAX_LINE_BYTES = 1 << 20
SHOWN_CHARS = 1000


@dataclass
class ScoreSummary:
    rows: int = 0
    scored: int = 0
    flagged: int = 0
    seconds: float = 0.0
    # What the reader chose for itself (a sniffed delimiter, an encoding), for the line.
    notes: list[str] = field(default_factory=list)

    def add(self, data: bytes, rows: int, scored: int, flagged: int, sink: BinaryIO) -> None:
        """Writes one batch's formatted rows and counts them."""
        sink.write(data)
        self.rows += rows
        self.scored += scored
        self.flagged += flagged

    @property
    def names_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"rows {self.rows}, scored {self.scored}, flagged {self.flagged}, "
            f"{self.seconds:.2f} s, {self.names_per_second:,.0f} names/s"
        ) + "".join(f"; {note}" for note in self.notes)


def _format_from_suffix(path: str | None, choices: tuple[str, ...], default: str) -> str:
    if path and path != "-":
        suffix = Path(path).suffix.lower().lstrip(".")
        suffix = {"ndjson": "jsonl", "txt": "text", "pq": "parquet"}.get(suffix, suffix)
        if suffix in choices:
            return suffix
    return default


def score_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    format: str | None = None,
    input_format: str | None = None,
    column: str | None = None,
    k: int = 1,
    model: str | os.PathLike[str] | Classifier = "default",
    backend: str = "auto",
    batch_size: int = 65_536,
    threads: int | None = None,
    max_length: int | None = None,
    progress: bool | None = None,
    coverage: float | None = None,
    min_probability: float = 0.0,
    explain: int = 0,
    prior: PriorSpec = None,
    precision: str = "auto",
    full_name: FullName = False,
    delimiter: str | None = None,
    encoding: str | None = None,
    compression: str | None = None,
) -> ScoreSummary:
    """Scores every row of `input` ("-" for stdin) into `output` (None or "-" for stdout).

    Input: one name a line, or CSV/TSV/JSONL whose name field is `column` (default
    "name"); other fields pass through. A row that cannot be scored keeps its place with
    `error` set: empty, no_letters, invalid_utf8, too_long (over `max_length` letters;
    None: 256), missing_column, invalid_json, invalid_csv, low_confidence (top probability
    under `min_probability`: no language given), model_error (the model gave NaN for it).
    With `coverage` (0.50-0.99), a `set` column holds the model's conformal prediction set
    for that level, best first. `model` may be a loaded Classifier (then `backend` is its
    own), to score many files with one load. With `explain` > 0, a `why` column holds up
    to that many parts of each name that raised its language (`Classifier.explain`):
    `text:weight` joined by `|` in CSV/TSV, a list of objects in JSONL; empty where no
    language is named. `prior`, `precision`: as `namelang.load`'s. `full_name` (True or
    "family-first"): full names, scored on their family names, the part `ascii` shows.
    `delimiter` (`,` `;` tab `|`): a CSV/TSV input's, sniffed from its header when None.
    `encoding`: the input's (UTF-8 when None; a UTF-16 BOM is recognised): bytes it cannot
    decode are `invalid_encoding`. `compression` ("gzip", "zstd", "none"): see the module."""
    input, output = str(input), None if output in (None, "-") else str(output)
    in_format, out_format, compression = _formats(
        input, output, input_format, format, compression, column, delimiter
    )
    job = _FileJob(
        classifier=_classifier(model, backend, prior, threads, precision),
        in_format=in_format,
        out_format=out_format,
        column=column or "name",
        batch_size=batch_size,
        delimiter=delimiter,
        encoding=encoding,
        options={"k": k, "max_length": max_length, "min_probability": min_probability},
        full_name=full_name,
        explain=explain,
        coverage=coverage,
    )
    job.check(input, compression)
    return job.write(input, output, compression, progress)


def _formats(input, output, input_format, format, compression, column, delimiter):
    """(input format, output format, output compression), from the names unless given."""
    out_format = format or _format_from_suffix(without_suffix(output), OUTPUT_FORMATS, "csv")
    in_format = input_format or _format_from_suffix(without_suffix(input), INPUT_FORMATS, "text")
    compression = compression or of_path(output)
    if compression not in (None, *COMPRESSIONS):
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if out_format not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {out_format!r}")
    if in_format not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {INPUT_FORMATS}, got {in_format!r}")
    if in_format == "text" and column is not None:
        raise ValueError("--column needs a CSV, TSV or JSONL input (or --input-format)")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {list(DELIMITERS)}, got {delimiter!r}")
    return in_format, out_format, compression


def _classifier(model, backend: str, prior: PriorSpec, threads: int | None, precision: str):

    if threads is not None:
        set_num_threads(threads)
    if isinstance(model, Classifier) and prior is not None:
        raise ValueError("a loaded Classifier has its prior: pass prior= to namelang.load")
    if isinstance(model, Classifier) and precision != "auto":
        raise ValueError("a loaded Classifier has its precision: pass it to namelang.load")
    if isinstance(model, Classifier):
        return model
    return load(model, backend=backend, prior=prior, precision=precision)


@dataclass
class _FileJob:
    """One file's scoring: how it is read and written, and the options of its native
    answer `Job` (`Classifier.job`), checked before the output is touched."""

    classifier: Classifier
    in_format: str
    out_format: str
    column: str
    batch_size: int
    delimiter: str | None
    encoding: str | None
    options: dict  # k, max_length, min_probability: Classifier.job's
    full_name: FullName
    explain: int
    coverage: float | None

    def answers(self, columns: list[str] | None = None, transcoded: bool = False):
        """The native job that answers and formats this file's rows."""
        return self.classifier.job(
            "csv" if self.out_format == "parquet" else self.out_format,
            coverage=self.coverage,
            columns=columns,
            explain=self.explain,
            full_name=self.full_name,
            transcoded=transcoded,
            **self.options,
        )

    def check(self, input: str, compression: str | None) -> None:
        clf = self.classifier
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        job = self.answers()  # every row option checked
        if clf.max_letters is not None and job.max_length > clf.max_letters:
            raise ValueError(
                f"--max-length {job.max_length} is past the {clf.backend} backend's "
                f"{clf.max_letters} letters; use the rust backend for longer names"
            )
        resolve_encoding(self.encoding)
        if "parquet" in (self.in_format, self.out_format):
            _check_parquet_job(
                clf, self.in_format, self.out_format, input, compression, self.explain
            )

    def write(
        self, input: str, output: str | None, compression: str | None, progress: bool | None
    ) -> ScoreSummary:
        """Scores `input` into `output` (None: stdout), timed."""
        start = time.perf_counter()
        with (
            _open_input(input) as raw,
            open_output(output) as file_sink,
            compressed(file_sink, compression) as sink,
        ):
            bar = _progress_bar(raw, input, progress)
            summary = self.run(raw, sink, bar)
            bar.close()
        summary.seconds = time.perf_counter() - start
        return summary

    def run(self, raw: BinaryIO, sink: BinaryIO, bar) -> ScoreSummary:
        """Reads `raw` (decompressed, decoded) and writes its rows to `sink`."""
        unpacked, packed = open_decompressed(raw)
        source, decoded_from = open_decoded(unpacked, self.encoding)
        transcoded = decoded_from is not None
        if "parquet" in (self.in_format, self.out_format):
            summary = _score_parquet(
                self, raw if self.in_format == "parquet" else source, sink, bar
            )
        elif self.in_format == "text" and self.classifier.backend == "rust":
            summary = _score_text_native(self.answers(None, transcoded), source, sink, bar)
        else:
            summary = ScoreSummary()
            columns, rows = _read_rows(
                source, self.in_format, self.out_format, self.column, bar, self.delimiter,
                summary,
            )  # fmt: skip
            if transcoded:
                rows = _undecodable_as("invalid_encoding", rows)
            job = self.answers(columns, transcoded)
            _score_rows(self.classifier, rows, sink, job, self.batch_size, summary)
        if transcoded:
            summary.notes.append(f"read as {decoded_from}")
        if packed:
            summary.notes.append(f"{packed} input")
        return summary


def _check_parquet_job(classifier, in_format, out_format, input, compression, explain) -> None:
    """What a job with Parquet on either side cannot do, refused before any output."""
    if classifier.backend != "rust":
        raise ValueError("Parquet input and output run on the rust backend")
    if in_format == "parquet" and input == "-":
        raise ValueError("a Parquet input must be a file (its index is at its end), not stdin")
    if out_format == "parquet" and compression not in (None, "none"):
        raise ValueError("a Parquet output compresses itself: drop --compression and .gz/.zst")
    if out_format == "parquet" and in_format == "jsonl":
        raise ValueError("JSONL input goes to CSV, TSV or JSONL output, not Parquet")
    if out_format == "parquet" and explain:
        raise ValueError("--explain writes a why column to CSV, TSV or JSONL, not Parquet")


def _score_parquet(job: _FileJob, source, sink, bar) -> ScoreSummary:
    """Jobs with Parquet on either side (`namelang.parquet`): scored in batches."""

    summary = ScoreSummary()
    clf = job.classifier
    options = job.options | {"full_name": job.full_name}
    scorer = Scorer(
        clf.path, column=job.column, prior=clf.prior, precision=clf.precision, **options
    )
    if job.in_format == "parquet":
        schema, batches = parquet.read_batches(source, job.column, job.batch_size)
        if job.out_format == "parquet":
            parquet.write_scored(((b, None, None) for b in batches), scorer, sink, summary)
        else:
            rows = parquet.rows_of_batches(batches, job.column)
            answers = job.answers(schema.names)
            _score_rows(clf, rows, sink, answers, job.batch_size, summary)
        return summary
    columns, rows = _read_rows(
        source, job.in_format, "csv", job.column, bar, job.delimiter, summary
    )
    batches = parquet.batches_of_rows(rows, columns, job.column, job.batch_size)
    parquet.write_scored(batches, scorer, sink, summary)
    return summary


@contextlib.contextmanager
def _open_input(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as f:
        yield f


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(source: BinaryIO, path: str, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return _NoBar()

    # Imported only when a bar is shown: tqdm.auto brings asyncio and ssl (about 30 ms).
    from tqdm.auto import tqdm

    total = os.path.getsize(path) if path != "-" else None
    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, leave=False)


def _strip_bom(chunk: bytes, first: bool) -> bytes:
    return chunk[3:] if first and chunk.startswith(b"\xef\xbb\xbf") else chunk


def _score_text_native(job, source, sink, bar) -> ScoreSummary:
    """Chunks of complete lines go to the native job on a worker thread (which releases
    the GIL), so reading the next chunk and writing the last one's rows overlap with
    scoring; at most two chunks are in flight, in input order."""
    sink.write(job.header())
    summary = ScoreSummary()

    def score(piece: tuple[bytes, bool]) -> tuple[bytes, int, int, int]:
        data, is_lines = piece
        if is_lines:
            return job.score_text(data)
        return job.format_rows([_shown(data)], [None], ["too_long"])

    from concurrent.futures import Future, ThreadPoolExecutor  # files only, not predict

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="namelang-score")
    pending: Future | None = None
    try:
        for piece in _native_pieces(source, bar):
            future = worker.submit(score, piece)
            if pending is not None:
                summary.add(*pending.result(), sink)
            pending = future
        if pending is not None:
            summary.add(*pending.result(), sink)
    finally:
        worker.shutdown(wait=True, cancel_futures=True)
    return summary


def _native_pieces(source: BinaryIO, bar) -> Iterator[tuple[bytes, bool]]:
    """The input cut for the native scorer: (complete lines, True), or (the start of a
    line over MAX_LINE_BYTES, False), in input order."""
    carry, first, skipping = b"", True, False
    while True:
        block = source.read(CHUNK_BYTES)
        bar.update(len(block))
        if not block:
            break
        data = _strip_bom(carry + block, first)
        first = False
        if skipping:  # inside a line already flagged: drop it up to its newline
            end = data.find(b"\n")
            if end < 0:
                carry = b""
                continue
            data, skipping = data[end + 1 :], False
        cut = data.rfind(b"\n") + 1
        carry, data = data[cut:], data[:cut]
        if data:
            yield data, True
        if len(carry) > MAX_LINE_BYTES:
            yield carry, False
            carry, skipping = b"", True
    if carry:
        yield carry, True


def _physical_lines(source: BinaryIO, bar) -> Iterator[tuple[bytes, bool]]:
    """(line with its ending, too long) for each line; a line over MAX_LINE_BYTES
    yields its first bytes only and the rest is skipped, never held whole."""
    first = True
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        bar.update(len(raw))
        raw, first = _strip_bom(raw, first), False
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                bar.update(len(rest))
            bar.update(len(rest))
            yield raw, True
            continue
        yield raw, False


def _text_lines(source: BinaryIO, bar) -> Iterator[tuple[bytes, bool]]:
    """(line without its ending, too long) for each line, as `_physical_lines`."""
    for raw, too_long in _physical_lines(source, bar):
        if too_long:
            yield raw, True
            continue
        line = raw[:-1] if raw.endswith(b"\n") else raw
        yield (line[:-1] if line.endswith(b"\r") else line), False


def _shown(line: bytes) -> str:
    """The start of a line too long to hold, as its output row shows it."""
    return line[: SHOWN_CHARS * 4].decode("utf-8", "replace")[:SHOWN_CHARS]


# Rows as the native formatter takes them: (lead, name or None, error code or None). The
# lead is the name (text), the record's fields (CSV/TSV), or for JSONL the record's JSON
# text without its closing brace (JSONL out) or the name (CSV/TSV out).
Row = tuple[str | list[str], str | None, str | None]
# Keys the output adds to a JSONL record (one list, the formatter's); the record's own
# keys of those names are replaced.
ADDED_KEYS = frozenset(_native.ADDED_KEYS)


def _undecodable_as(code: str, rows: Iterator[Row]) -> Iterator[Row]:
    """The rows with `invalid_utf8` renamed: after transcoding, bad bytes are the input
    encoding's."""
    for lead, name, error in rows:
        yield lead, name, code if error == "invalid_utf8" else error


def _decode_line(raw: bytes) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), "invalid_utf8"


def _read_rows(
    source: BinaryIO,
    in_format: str,
    out_format: str,
    column: str,
    bar,
    delimiter: str | None,
    summary: ScoreSummary,
) -> tuple[list[str] | None, Iterator[Row]]:
    """The input's columns (None: a name list or JSONL) and its rows."""
    if in_format == "text":
        return None, _name_rows(source, bar)
    if in_format == "jsonl":
        return None, _jsonl_rows(source, out_format, column, bar)
    return _csv_rows(source, in_format, column, bar, delimiter, summary)


def _name_rows(source: BinaryIO, bar) -> Iterator[Row]:
    """The rows of a name list, its lines split as the native scorer splits them."""
    for data, is_lines in _native_pieces(source, bar):
        if not is_lines:
            yield _shown(data), None, "too_long"
            continue
        leads, names = _native.text_lines(data)
        for lead, name in zip(leads, names, strict=True):
            yield lead, name, None


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _jsonl_rows(source: BinaryIO, out_format: str, column: str, bar) -> Iterator[Row]:
    """One row per line: a blank line is `empty`; a line that is not one JSON object
    (or holds NaN, a lone surrogate, nesting or a number Python refuses) is
    `invalid_json` and shown as {"line": ...}; a record without `column` is
    `missing_column`, one whose `column` is not a string is `not_a_string`."""
    jsonl = out_format == "jsonl"

    def lead(record: dict, name: str | None) -> str:
        if not jsonl:
            return name if isinstance(name, str) else ""
        kept = {k: v for k, v in record.items() if k not in ADDED_KEYS}
        return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))[:-1]

    for raw, too_long in _text_lines(source, bar):
        text, error = (_shown(raw), "too_long") if too_long else _decode_line(raw)
        record = None
        if error is None and not text.strip():
            error = "empty"
        elif error is None:
            try:
                record = json.loads(text, parse_constant=_no_constants)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                body = lead(record, record.get(column))
                body.encode("utf-8")  # a lone surrogate from a \ud800 escape fails here
            except (ValueError, RecursionError):
                record, error = None, "invalid_json"
        if record is None:
            yield lead({"line": text}, ""), None, error
        elif column not in record:
            yield body, None, "missing_column"
        elif not isinstance(record[column], str):
            yield body, None, "not_a_string"
        else:
            yield body, record[column], None


def _csv_rows(
    source: BinaryIO, in_format: str, column: str, bar, delimiter: str | None, summary
) -> tuple[list[str] | None, Iterator[Row]]:
    """CSV/TSV records as RFC 4180 writes them (`namelang.csv_records`: a quoted field may
    hold separators, doubled quotes and line breaks). A record whose quote does not close
    within 1 MiB or before the end is `invalid_csv`, its first line shown in the name
    column; one with more fields than the header is `invalid_csv` too; a line over
    MAX_LINE_BYTES is cut, and its record is `too_long`. The delimiter is `delimiter`, or
    sniffed from the header line (noted in the summary)."""
    lines = _physical_lines(source, bar)
    first = next(lines, None)
    if first is None:
        return None, iter(())
    head = first[0].decode("utf-8", "surrogateescape")
    if delimiter is None:
        delimiter = sniff(head, "\t" if in_format == "tsv" else ",")
        summary.notes.append(f"delimiter {delimiter!r} (from the header)")
    header = [_repair(f)[0] for f in fields(head, delimiter) or []]
    if column not in header:
        raise ValueError(
            f"the input has no column {column!r}; columns: {header} "
            f"(delimiter {delimiter!r}; --delimiter chooses another)"
        )
    at = header.index(column)

    def rows() -> Iterator[Row]:
        for text, problem in records(lines, delimiter):
            cells_of = None if problem == "unclosed" else fields(text, delimiter)
            if problem or cells_of is None or len(cells_of) > len(header):
                shown = _repair(text.rstrip("\r\n"))[0][:SHOWN_CHARS]
                if problem == "too_long" and cells_of is not None:
                    cells = [_repair(f)[0][:SHOWN_CHARS] for f in cells_of]
                else:
                    cells = [""] * len(header)
                    cells[at] = shown
                yield cells, None, "too_long" if problem == "too_long" else "invalid_csv"
                continue
            repaired = [_repair(f) for f in cells_of]
            cells = [f for f, _ in repaired]
            if at >= len(cells):
                yield cells, None, "missing_column"
            elif repaired[at][1]:
                yield cells, None, "invalid_utf8"
            else:
                yield cells, cells[at], None

    return header, rows()


def _repair(field: str) -> tuple[str, bool]:
    """Lone surrogates stand for bytes that were not UTF-8: show them as U+FFFD."""
    try:
        field.encode("utf-8")
        return field, False
    except UnicodeEncodeError:
        return field.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True


def _score_rows(
    classifier, rows: Iterator[Row], sink, job, batch_size: int, summary: ScoreSummary
) -> ScoreSummary:
    """The generic path: batches of rows answered by the native `job` (scored by it on
    the rust backend, given the classifier's log-probabilities on torch), in input order."""
    sink.write(job.header())
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            summary.add(*_answer_rows(classifier, batch, job), sink)
            batch = []
    if batch:
        summary.add(*_answer_rows(classifier, batch, job), sink)
    return summary


def _answer_rows(classifier, batch: list[Row], job) -> tuple[bytes, int, int, int]:
    leads, names, errors = (list(x) for x in zip(*batch, strict=True))
    return classifier.format_rows(job, leads, names, errors)
