"""Atomic file writes: a reader never sees half a file, a crash never leaves one.

Write to a temporary file in the same folder, flush and fsync it, then ``os.replace`` it over the
target (atomic on POSIX within one file system). What the target is decides what is replaced: a
symbolic link is written through (the file it names is replaced, the link stays), and a FIFO or a
device (``-o /dev/stdout``) is written into as a shell redirection would, never replaced by a file; a
folder is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path


def _write_into(path: Path, data: bytes, mode: int) -> None:
    """Write into a FIFO or a device in place. A FIFO nobody reads would block the writer for ever, so
    it is opened without blocking (no reader: ``ENXIO``) and written with blocking restored."""
    flags = os.O_WRONLY | (os.O_NONBLOCK if stat.S_ISFIFO(mode) else 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "no process is reading from this FIFO", str(path)) from err
        raise
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, make_parents: bool = True) -> None:
    """Replace the file at ``path`` with ``data`` atomically (see the module docstring for links, FIFOs,
    devices and folders). ``make_parents``: create missing folders on the way (a run directory's own
    files); without it a missing folder is ``FileNotFoundError`` (a path a user typed)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # of what a link names
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    if mode is not None and not stat.S_ISREG(mode):
        _write_into(path, data, mode)
        return
    if path.is_symlink():  # replace the file the link names, next to it, and keep the link
        path = Path(os.path.realpath(path))
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"no folder `{path.parent}`", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, *, make_parents: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents)
