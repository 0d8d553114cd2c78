"""Inputs in other encodings, read as the UTF-8 byte stream every reader takes.

UTF-8 (with or without its BOM) passes through untouched. A UTF-16 BOM is recognised
without being asked; `encoding` names any other (cp1252, latin-1, ...; Python's codecs,
decoding incrementally, chunk by chunk). Bytes the encoding cannot decode come out as
bytes that are not UTF-8, so the line holding them becomes one `invalid_encoding` row,
as an undecodable UTF-8 line is an `invalid_utf8` row."""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO

UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
CHUNK = 1 << 20


def _mark(error: UnicodeDecodeError) -> tuple[str, int]:
    # One lone surrogate per undecodable stretch: re-encoded with surrogateescape it is a
    # byte that no UTF-8 reader accepts, which flags the line.
    return "\udc80", error.end


codecs.register_error("namelang.mark", _mark)


def resolve(encoding: str | None) -> str | None:
    """The codec's canonical name (None: UTF-8); a ValueError naming an unknown one."""
    if encoding is None:
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(
            f"unknown encoding {encoding!r}: use a Python codec name such as utf-8, "
            f"utf-16, cp1252 or latin-1"
        ) from None
    return None if name == "utf-8" else name


def open_decoded(source: BinaryIO, encoding: str | None) -> tuple[BinaryIO, str | None]:
    """(a UTF-8 stream of `source`, the encoding read from, None for UTF-8 as it is)."""
    encoding = resolve(encoding)
    peek = source.peek(4)[:4] if hasattr(source, "peek") else b""
    if encoding is None and peek.startswith(UTF16_BOMS):
        encoding = "utf-16"
    if encoding is None:
        return source, None
    return io.BufferedReader(_Transcoded(source, encoding), CHUNK), encoding


class _Transcoded(io.RawIOBase):
    """A raw stream of UTF-8 bytes decoded from `source` in `encoding`."""

    def __init__(self, source: BinaryIO, encoding: str):
        self._source = source
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="namelang.mark")
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._done:
            chunk = self._source.read(CHUNK)
            self._done = not chunk
            text = self._decoder.decode(chunk, final=self._done)
            self._pending = text.encode("utf-8", "surrogateescape")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
