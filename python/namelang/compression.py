"""Compressed inputs and outputs, streamed: gzip (the standard library) and zstd (the
`zstandard` package, in the `batch` extra).

An input is decompressed when its first bytes are a gzip or zstd frame (so `-` works
too); an output is compressed when its name ends in .gz or .zst, or when asked. The
compressed stream is finished before the output file is renamed into place, so a
complete-looking file is always a complete one."""

from __future__ import annotations

import contextlib
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from namelang.extras import require

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SUFFIXES = {".gz": "gzip", ".zst": "zstd"}
CHOICES = ("gzip", "zstd", "none")


def of_path(path: str | None) -> str | None:
    """The compression a file name asks for (by its last suffix), or None."""
    return SUFFIXES.get(Path(path).suffix.lower()) if path and path != "-" else None


def without_suffix(path: str | None) -> str | None:
    """The name without its compression suffix (`names.csv.gz` -> `names.csv`)."""
    if of_path(path) is None:
        return path
    return str(Path(path).with_suffix(""))


def open_decompressed(source: BinaryIO) -> tuple[BinaryIO, str | None]:
    """(the decompressed stream, "gzip"/"zstd"), or (source, None) for plain bytes."""
    head = source.peek(4)[:4] if hasattr(source, "peek") else b""
    if head.startswith(GZIP_MAGIC):
        return io.BufferedReader(gzip.GzipFile(fileobj=source, mode="rb")), "gzip"
    if head.startswith(ZSTD_MAGIC):
        require("zstandard", "reading a .zst input", extra="batch")
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        return io.BufferedReader(reader), "zstd"
    return source, None


@contextlib.contextmanager
def compressed(sink: BinaryIO, compression: str | None) -> Iterator[BinaryIO]:
    """`sink` wrapped in a compressor (finished on leaving), or `sink` itself."""
    if compression in (None, "none"):
        yield sink
        return
    if compression == "gzip":
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0) as out:
            yield out
        return
    if compression != "zstd":
        raise ValueError(f"compression must be one of {CHOICES}, got {compression!r}")
    require("zstandard", "writing a .zst output", extra="batch")
    import zstandard

    with zstandard.ZstdCompressor(level=3).stream_writer(sink, closefd=False) as out:
        yield out
