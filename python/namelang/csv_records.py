"""CSV/TSV records as RFC 4180 writes them: a quoted field may hold separators, doubled
quotes and line breaks, so one record may span several physical lines.

A record is bounded (`MAX_RECORD_BYTES`): a quote still open past the bound or at the
end of the input makes its first line one `invalid_csv` row, and the lines it spanned
are read again one record a line, so an unclosed quote costs one row, not the rest of
the file, and no line is read more than twice."""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator

# The delimiters `--delimiter` takes and sniffing chooses among.
DELIMITERS = (",", ";", "\t", "|")
MAX_RECORD_BYTES = 1 << 20

# A line as the reader hands it over: its bytes (ending included) and whether it was cut
# for being longer than the line bound.
Line = tuple[bytes, bool]


def sniff(header: str, default: str) -> str:
    """The delimiter found most often outside quotes in the header line (ties and
    nothing found: `default`)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    inside = False
    for c in header:
        if c == '"':
            inside = not inside
        elif not inside and c in counts:
            counts[c] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], d == default))
    return best if counts[best] > 0 else default


def quote_open(line: str, sep: str, inside: bool) -> bool:
    """Whether a quoted field is open at the end of `line`, having started it inside one
    (`inside`) or not. A quote opens a field only at its start; inside, `""` is a quote."""
    if '"' not in line:
        return inside
    at_start, i, n = not inside, 0, len(line)
    while i < n:
        c = line[i]
        if inside:
            if c == '"':
                if i + 1 < n and line[i + 1] == '"':
                    i += 1
                else:
                    inside = False
        elif c == '"' and at_start:
            inside = True
        at_start = c == sep or c in "\r\n"
        i += 1
    return inside


def records(lines: Iterator[Line], sep: str) -> Iterator[tuple[str, str | None]]:
    """(record text, problem) in input order: problem None for a record (one or more
    lines, endings kept), "too_long" for a cut line, "unclosed" for the first line of a
    record whose quote did not close within the bound."""
    pending: deque[Line] = deque()  # lines read again, one record a line
    source = iter(lines)
    while True:
        if pending:
            raw, too_long = pending.popleft()
            yield _decode(raw), "too_long" if too_long else None
            continue
        item = next(source, None)
        if item is None:
            return
        raw, too_long = item
        text = _decode(raw)
        if too_long or not quote_open(text, sep, False):
            yield text, "too_long" if too_long else None
            continue
        parts, spanned, size = [text], [], len(raw)
        while True:
            item = next(source, None)
            if item is None or item[1] or size + len(item[0]) > MAX_RECORD_BYTES:
                pending.extend(spanned + ([item] if item is not None else []))
                yield text, "unclosed"
                break
            spanned.append(item)
            parts.append(_decode(item[0]))
            size += len(item[0])
            if not quote_open(parts[-1], sep, True):
                yield "".join(parts), None
                break


def fields(record: str, sep: str) -> list[str] | None:
    """The fields of one record's text, or None when it is not one well-formed record."""
    if '"' not in record:
        return _strip_ending(record).split(sep)
    try:
        rows = list(csv.reader(io.StringIO(record, newline=""), delimiter=sep, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _strip_ending(line: str) -> str:
    if line.endswith("\n"):
        return line[:-2] if line.endswith("\r\n") else line[:-1]
    return line


def _decode(raw: bytes) -> str:
    # Bytes that are not UTF-8 become lone surrogates, found and shown later per field.
    return raw.decode("utf-8", "surrogateescape")
