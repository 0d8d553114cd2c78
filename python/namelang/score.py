"""Bulk offline scoring: name lists of any size to CSV, TSV or JSONL, one output row per
input row, in order, streamed in bounded memory, written atomically.

Plain-text input on the Rust backend takes the native path (lines in, formatted rows out,
no Python object per row); every other combination takes the generic path below."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from namelang.classifier import Classifier

INPUT_FORMATS = ("text", "csv", "tsv", "jsonl")
OUTPUT_FORMATS = ("csv", "tsv", "jsonl")
CHUNK_BYTES = 1 << 20
DEFAULT_MAX_LENGTH = 256
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

    @property
    def names_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"rows {self.rows}, scored {self.scored}, flagged {self.flagged}, "
            f"{self.seconds:.2f} s, {self.names_per_second:,.0f} names/s"
        )


def _format_from_suffix(path: str | None, choices: tuple[str, ...], default: str) -> str:
    if path and path != "-":
        suffix = Path(path).suffix.lower().lstrip(".")
        suffix = {"ndjson": "jsonl", "txt": "text"}.get(suffix, suffix)
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
    max_length: int = DEFAULT_MAX_LENGTH,
    progress: bool | None = None,
    coverage: float | None = None,
    min_probability: float = 0.0,
) -> ScoreSummary:
    """Scores every row of `input` ("-" for stdin) into `output` (None or "-" for stdout).

    Input: one name a line, or CSV/TSV/JSONL whose name field is `column` (default
    "name"); other fields pass through. A row that cannot be scored keeps its place with
    `error` set: empty, no_letters, invalid_utf8, too_long (over `max_length` letters),
    missing_column, invalid_json, invalid_csv, low_confidence (top probability under
    `min_probability`: no language given). With `coverage` (0.50-0.99), a `set` column
    holds the languages (best first) of the model's conformal prediction set for that
    level. A file output appears only when complete. `model` may be a loaded Classifier
    (then `backend` is its own), to score many files with one load."""
    from namelang.classifier import Classifier, load
    from namelang.text import set_num_threads

    input, output = str(input), None if output in (None, "-") else str(output)
    out_format = format or _format_from_suffix(output, OUTPUT_FORMATS, "csv")
    in_format = input_format or _format_from_suffix(input, INPUT_FORMATS, "text")
    if out_format not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {out_format!r}")
    if in_format not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {INPUT_FORMATS}, got {in_format!r}")
    if in_format == "text" and column is not None:
        raise ValueError("--column needs a CSV, TSV or JSONL input (or --input-format)")
    if k < 1 or batch_size < 1 or max_length < 1:
        raise ValueError("k, batch size and max length must be at least 1")
    if not 0.0 <= min_probability <= 1.0:
        raise ValueError(f"min probability must be in [0, 1], got {min_probability}")
    if threads is not None:
        set_num_threads(threads)
    classifier = model if isinstance(model, Classifier) else load(model, backend=backend)
    answer = _Answer(
        None if coverage is None else classifier.conformal_threshold(coverage), min_probability
    )
    start = time.perf_counter()
    with _open_input(input) as source, _atomic_output(output) as sink:
        bar = _progress_bar(source, input, progress)
        if in_format == "text" and classifier.backend == "rust":
            summary = _score_text_native(
                classifier, source, sink, out_format, k, max_length, answer, bar
            )
        else:
            rows = _read_rows(source, in_format, column or "name", bar)
            summary = _score_rows(
                classifier, rows, sink, out_format, k, max_length, batch_size, in_format, answer
            )
        bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


@dataclass(frozen=True)
class _Answer:
    """What a row says beyond its top-k: a prediction set (its probability threshold),
    and the top probability under which it abstains."""

    set_threshold: float | None = None
    min_probability: float = 0.0


@contextlib.contextmanager
def _open_input(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as f:
        yield f


@contextlib.contextmanager
def _atomic_output(path: str | None) -> Iterator[BinaryIO]:
    """stdout, or a temporary file beside `path` renamed over it only on success."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".partial", dir=target.parent or "."
    )
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
        _default_permissions(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _default_permissions(path: str) -> None:
    from namelang.model_file import _default_permissions as apply

    apply(path)


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
    from tqdm.auto import tqdm

    total = os.path.getsize(path) if path != "-" else None
    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, leave=False)


def _strip_bom(chunk: bytes, first: bool) -> bytes:
    return chunk[3:] if first and chunk.startswith(b"\xef\xbb\xbf") else chunk


def _score_text_native(
    classifier, source, sink, out_format, k, max_length, answer: _Answer, bar
) -> ScoreSummary:
    """Chunks of complete lines go to the native scorer on a worker thread (which releases
    the GIL), so reading the next chunk and writing the last one's rows overlap with
    scoring; at most two chunks are in flight, in input order."""
    from namelang import _native

    model = classifier._impl.model
    sets = answer.set_threshold is not None
    sink.write(_native.score_header(out_format, k, sets).encode())
    summary = ScoreSummary()

    def score(data: bytes) -> tuple[bytes, int, int, int]:
        return _native.score_chunk(
            model, data, out_format, k, max_length, answer.set_threshold, answer.min_probability
        )

    def write(result: tuple[bytes, int, int, int]) -> None:
        rows, n, scored, flagged = result
        sink.write(rows)
        summary.rows += n
        summary.scored += scored
        summary.flagged += flagged

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="namelang-score")
    pending: Future | None = None
    try:
        for data, is_lines in _native_pieces(source, bar, out_format, k, sets):
            if is_lines:
                future = worker.submit(score, data)
            else:
                future = Future()
                future.set_result((data, 1, 0, 1))
            if pending is not None:
                write(pending.result())
            pending = future
        if pending is not None:
            write(pending.result())
    finally:
        worker.shutdown(wait=True, cancel_futures=True)
    return summary


def _native_pieces(
    source: BinaryIO, bar, out_format: str, k: int, sets: bool
) -> Iterator[tuple[bytes, bool]]:
    """The input cut for the native scorer: (complete lines, True), or (the finished
    row of a line over MAX_LINE_BYTES, False), in input order."""
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
            yield _flagged_row(carry, out_format, k, sets), False
            carry, skipping = b"", True
    if carry:
        yield carry, True


def _flagged_row(line: bytes, out_format: str, k: int, sets: bool) -> bytes:
    """The output row of a line too long to hold, as the native path writes rows."""
    name = line[: SHOWN_CHARS * 4].decode("utf-8", "replace")[:SHOWN_CHARS]
    if out_format == "jsonl":
        record: dict = {"name": name, "ascii": "", "language": None, "probability": None}
        record.update(top=[], **({"set": []} if sets else {}), error="too_long")
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t" if out_format == "tsv" else ",", lineterminator="\n")
    writer.writerow([name, "", *[""] * (2 * k), *([""] if sets else []), "too_long"])
    return text.getvalue().encode()


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


# The generic path: rows as (passthrough fields, name or None, error or None).
Row = tuple[object, str | None, str | None]


def _decode_line(raw: bytes) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), "invalid_utf8"


def _read_rows(source: BinaryIO, in_format: str, column: str, bar) -> Iterator[Row]:
    if in_format == "text":
        for line, too_long in _text_lines(source, bar):
            if too_long:
                name = _shown(line)
                yield name, name, "too_long"
                continue
            name, error = _decode_line(line)
            yield name, name, error
    elif in_format == "jsonl":
        for raw, too_long in _text_lines(source, bar):
            if too_long:
                yield {"line": _shown(raw)}, None, "too_long"
                continue
            text, error = _decode_line(raw)
            try:
                record = json.loads(text) if error is None else None
            except json.JSONDecodeError:
                record, error = None, "invalid_json"
            if error is None and not isinstance(record, dict):
                record, error = None, "invalid_json"
            if record is None:
                yield {"line": text}, None, error
            elif not isinstance(record.get(column), str):
                yield record, None, "missing_column"
            else:
                yield record, record[column], None
    else:
        yield from _csv_rows(source, in_format, column, bar)


def _csv_rows(source: BinaryIO, in_format: str, column: str, bar) -> Iterator[Row]:
    """CSV/TSV records, read line by line so that no line over MAX_LINE_BYTES is held:
    such a line is cut, and its record flagged too_long; a record the csv module
    refuses (a quoted field that never closes, over the field limit) is flagged
    invalid_csv, and reading goes on with the next line."""
    cut: list[bool] = []  # a line of the record being read was cut

    def lines() -> Iterator[str]:
        for raw, too_long in _physical_lines(source, bar):
            if too_long:
                cut.append(True)
            yield raw.decode("utf-8", "surrogateescape")

    limit = csv.field_size_limit()
    csv.field_size_limit(2 * MAX_LINE_BYTES)
    try:
        reader = csv.reader(lines(), delimiter="\t" if in_format == "tsv" else ",")
        header = next(reader, None)
        if header is None:
            return
        header = [_repair(f)[0] for f in header]
        if column not in header:
            raise ValueError(f"the input has no column {column!r}; columns: {header}")
        at = header.index(column)
        yield header, None, "header"
        while True:
            cut.clear()
            try:
                raw_fields = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield [], None, "too_long" if cut else "invalid_csv"
                continue
            repaired = [_repair(f) for f in raw_fields]
            fields = [f[:SHOWN_CHARS] if cut else f for f, _ in repaired]
            if cut:
                yield fields, None, "too_long"
            elif at >= len(fields):
                yield fields, None, "missing_column"
            else:
                yield fields, fields[at], "invalid_utf8" if repaired[at][1] else None
    finally:
        csv.field_size_limit(limit)


def _repair(field: str) -> tuple[str, bool]:
    """Lone surrogates stand for bytes that were not UTF-8: show them as U+FFFD."""
    try:
        field.encode("utf-8")
        return field, False
    except UnicodeEncodeError:
        return field.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True


def _score_rows(
    classifier, rows, sink, out_format, k, max_length, batch_size, in_format, answer: _Answer
):
    import numpy as np

    from namelang.calibration import prediction_set
    from namelang.text import apply_text_rule, to_ascii_batch

    sets = answer.set_threshold is not None
    rule = classifier.spec.text_rule

    summary = ScoreSummary()
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, delimiter="\t" if out_format == "tsv" else ",", lineterminator="\n")
    k = min(k, len(classifier.categories))
    added = ["ascii"]
    for i in range(1, k + 1):
        suffix = "" if i == 1 else f"_{i}"
        added += [f"language{suffix}", f"probability{suffix}"]
    added += ["set", "error"] if sets else ["error"]
    if in_format in ("text", "jsonl") and out_format != "jsonl":
        writer.writerow(["name", *added])

    def flush(batch: list[Row]) -> None:
        names = [name if (error is None and name) else "" for _, name, error in batch]
        asciis = to_ascii_batch(names)
        read = asciis if rule == "exact" else apply_text_rule(names, rule)
        errors: list[str | None] = []
        for (_, name, error), letters in zip(batch, read, strict=True):
            if error is None and (name is None or not name.strip()):
                error = "empty"
            elif error is None and not letters:
                error = "no_letters"
            elif error is None and len(letters) > max_length:
                error = "too_long"
            errors.append(error)
        scores = classifier.log_probs(
            [n if e is None else "" for n, e in zip(names, errors, strict=True)]
        )
        top = np.argsort(-np.nan_to_num(scores, nan=0.0), axis=1, kind="stable")[:, :k]
        for i, (fields, name, _) in enumerate(batch):
            error = errors[i]
            best, chosen = [], []
            if error is None:
                best = [
                    (classifier.categories[c], float(np.exp(np.float64(scores[i, c]))))
                    for c in top[i]
                ]
                if sets:
                    probs = np.exp(scores[i])
                    kept = prediction_set(probs, np.float32(answer.set_threshold))
                    chosen = [classifier.categories[c] for c in kept]
                # Compared in float32, as the native path does.
                if best[0][1] < float(np.float32(answer.min_probability)):
                    error, best = "low_confidence", []
            ascii_name = asciis[i] if errors[i] in (None, "too_long") else ""
            summary.rows += 1
            summary.scored += error is None
            summary.flagged += error is not None
            if out_format == "jsonl":
                if isinstance(fields, dict):
                    record = dict(fields)
                elif isinstance(fields, list) and header_row:
                    record = dict(zip(header_row, fields, strict=False))
                else:
                    record = {}
                record.setdefault("name", name)
                record.update(
                    ascii=ascii_name,
                    language=best[0][0] if best else None,
                    probability=round(best[0][1], 6) if best else None,
                    top=[[lang, round(p, 6)] for lang, p in best],
                    **({"set": chosen} if sets else {}),
                    error=error,
                )
                text.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                cells = fields if isinstance(fields, list) else [name]
                if isinstance(fields, list) and len(fields) < len(header_row):
                    # A short record (or none): pad so the added columns stay aligned.
                    cells = [*fields, *[""] * (len(header_row) - len(fields))]
                flat: list[object] = []
                for j in range(k):
                    flat += [best[j][0], f"{best[j][1]:.6f}"] if j < len(best) else ["", ""]
                extra = ["|".join(chosen)] if sets else []
                writer.writerow([*cells, ascii_name, *flat, *extra, error or ""])

    header_row: list[str] = []
    batch: list[Row] = []
    for row in rows:
        if row[2] == "header":
            header_row = list(row[0])  # type: ignore[arg-type]
            if out_format != "jsonl":
                writer.writerow([*header_row, *added])
            continue
        batch.append(row)
        if len(batch) >= batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    text.flush()
    text.detach()
    return summary
