"""Name lists as exports arrive: other encodings and compressed files, streamed, through
the one row pipeline, on both backends."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import sys

import pytest
from namelang.score import score_file

NAMES = ["Müller", "García", "Zhou", "Nguyễn"]


def rows_of(path, opener=open) -> list[list[str]]:
    with opener(path, "rb") as f:
        text = f.read().decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("backend", ["rust", "torch"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "cp1252", "latin-1"])
def test_other_encodings_are_read(tmp_path, backend, encoding):
    names = NAMES[:3]  # what cp1252 and latin-1 can write
    bom = "\ufeff" if encoding == "utf-16-le" else ""
    src = tmp_path / "in.txt"
    src.write_bytes((bom + "\n".join(names) + "\n").encode(encoding))
    given = None if encoding.startswith("utf-16") else encoding  # a BOM says utf-16 itself
    out = tmp_path / "out.csv"
    summary = score_file(src, out, backend=backend, encoding=given, progress=False)
    rows = rows_of(out)[1:]
    assert [r[0] for r in rows] == names and [r[1] for r in rows] == ["Muller", "Garcia", "Zhou"]
    assert summary.notes[-1].startswith("read as ")


@pytest.mark.parametrize("backend", ["rust", "torch"])
def test_bytes_the_encoding_cannot_decode_are_one_invalid_encoding_row(tmp_path, backend):
    src = tmp_path / "in.csv"
    src.write_bytes(b"id;name\n1;M\xfcller\n2;Gar\x81c\xeda\n3;Zhou\n")  # 0x81: not cp1252
    out = tmp_path / "out.csv"
    score_file(src, out, backend=backend, encoding="cp1252", progress=False)
    rows = rows_of(out)[1:]
    assert [r[-1] for r in rows] == ["", "invalid_encoding", ""]
    assert rows[0][1] == "Müller" and rows[2][1] == "Zhou"
    text = tmp_path / "in.txt"
    text.write_bytes(b"M\xfcller\nGar\x81c\xeda\n")
    score_file(text, out, backend=backend, encoding="cp1252", progress=False)
    assert [r[-1] for r in rows_of(out)[1:]] == ["", "invalid_encoding"]


def test_unknown_encodings_are_refused_before_any_output(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Zhou\n")
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        score_file(src, tmp_path / "out.csv", encoding="klingon", progress=False)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("backend", ["rust", "torch"])
@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_inputs_and_outputs_stream_through(tmp_path, backend, suffix):
    import zstandard

    pack = {".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress}[suffix]
    unpack = {".gz": gzip.open, ".zst": lambda p, m: zstandard.open(p, m)}[suffix]
    plain = "id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(NAMES * 500))
    src = tmp_path / f"in.csv{suffix}"
    src.write_bytes(pack(plain.encode()))
    out = tmp_path / f"out.jsonl{suffix}"  # the format comes from the name before .gz
    summary = score_file(src, out, backend=backend, progress=False)
    with unpack(out, "rb") as f:
        lines = f.read().decode().splitlines()
    assert len(lines) == summary.rows == 2000 and lines[0].startswith('{"id":"0","name":"Müller"')
    assert f"{'gzip' if suffix == '.gz' else 'zstd'} input" in summary.line()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_stdin_and_stdout_take_compression_by_content_and_flag(tmp_path):
    packed = gzip.compress("Zhou\nMüller\n".encode())
    done = subprocess.run(
        [sys.executable, "-m", "namelang.cli", "score", "-", "--compression", "gzip", "-q"],
        input=packed, capture_output=True, check=True,
    )  # fmt: skip
    text = gzip.decompress(done.stdout).decode()
    assert text.splitlines()[1].startswith("Zhou,Zhou,Chinese")
