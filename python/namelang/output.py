"""Where scored rows go: a file that appears only when complete, or a stream.

A regular file (or a new path) is written to a temporary `.NAME.PID.XXXX.partial` beside
it and renamed over it on success, so a reader never sees half a file; a symlink's
target is replaced, never the link. Anything else (stdout, a character device such as
/dev/null, a FIFO) is streamed to directly, since it cannot be replaced. A run killed
with SIGKILL leaves its partial file; the next run to the same destination removes
partials whose process is gone. OS errors name the path the user gave."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BUFFER = 1 << 20


def default_permissions(path: str) -> None:
    """mkstemp makes files private (0600); give them what open() would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def named(error: OSError, path: str) -> OSError:
    """The same error, naming the user's path (not a hidden temporary file)."""
    return type(error)(error.errno, error.strerror or str(error), path)


def check_destination(path: str | None) -> None:
    """Refuses, before any work, a destination that cannot be written: a directory, or
    a path whose folder does not exist."""
    if path is None:
        return
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder to write into", path)


class Sink:
    """A binary stream whose OS errors name the user's path."""

    def __init__(self, stream: BinaryIO, path: str):
        self._stream, self.path = stream, path

    def write(self, data: bytes) -> int:
        with _named_errors(self.path):
            return self._stream.write(data)

    def flush(self) -> None:
        with _named_errors(self.path):
            self._stream.flush()


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[Sink]:
    """stdout (None), a stream (device, FIFO), or an atomically replaced file."""
    if path is None:
        yield Sink(sys.stdout.buffer, "<stdout>")
        sys.stdout.buffer.flush()
        return
    check_destination(path)
    target = Path(os.path.realpath(path))  # a symlink's target, not the link
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with _named_errors(path):
            stream = open(target, "wb", buffering=BUFFER)  # noqa: SIM115 (closed below)
        try:
            yield Sink(stream, path)
        finally:
            with _named_errors(path):
                stream.close()
        return
    with _named_errors(path):
        remove_stale_partials(target)
        import tempfile  # written files only: predict never loads it

        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent
        )
    try:
        stream = os.fdopen(fd, "wb", buffering=BUFFER)
        try:
            yield Sink(stream, path)
        finally:
            with _named_errors(path):
                stream.close()
        with _named_errors(path):
            default_permissions(tmp)
            os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _named_errors(path: str) -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        if e.filename == path:
            raise
        raise named(e, path) from None


def remove_stale_partials(target: Path) -> list[Path]:
    """Removes `.NAME.PID.*.partial` files beside `target` whose process is gone."""
    removed = []
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        pid = partial.name[len(target.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                partial.unlink()
                removed.append(partial)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
