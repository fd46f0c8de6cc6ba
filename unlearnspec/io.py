"""Atomic file writes: a reader never sees half a file, a crash never leaves one.

Write to a temporary file in the same folder, flush and fsync it, then ``os.replace`` it over the
target (atomic on POSIX within one file system). What the target is decides what is replaced: a
symbolic link is written through (the file it names is replaced, the link stays), and a FIFO or a
device (``-o /dev/stdout``) is written into as a shell redirection would, never replaced by a file; a
folder is refused. A new file gets the mode the process's umask gives (``0666 & ~umask``: 0644 under the usual
022), a replaced one keeps its own; the folder is fsynced after the rename, so the new name is on the disk too.

Folders (a saved model, an adapter, a built model in the cache) are written the same way: into a temporary
sibling, every file and folder fsynced, then renamed into place (:func:`replace_folder`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from unlearnspec.markdown import code_span


def umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``; elsewhere set and restored at once)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a new file gets, as ``open(..., "w")`` would give it: ``0666`` less the umask."""
    return 0o666 & ~umask()


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it, a new file) to the disk; a file system that cannot is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` and every folder entry to the disk."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def replace_folder(dest: Path, write: Callable[[Path], None]) -> None:
    """Make the folder ``dest`` with ``write(tmp)``: into ``DEST.partial`` beside it, every file and folder fsynced,
    then renamed into place and the parent fsynced. A kill leaves the old ``dest`` or the new one, never half of one
    (a ``DEST.partial`` left by a kill is removed by the next call); a ``dest`` already there is replaced."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    write(tmp)
    fsync_tree(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


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
        raise FileNotFoundError(errno.ENOENT, f"no folder {code_span(path.parent)}", str(path))
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
            os.chmod(tmp, new_file_mode())  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, make_parents: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents)
