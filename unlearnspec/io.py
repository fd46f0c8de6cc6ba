"""Atomic file writes: a reader never sees half a file, a crash never leaves one.

Write to a temporary file in the same folder, flush and fsync it, then ``os.replace`` it over the
target (atomic on POSIX within one file system). What the target is decides what is replaced: a
symbolic link is written through (the file it names is replaced, the link stays), and a FIFO or a
device (``-o /dev/stdout``) is written into as a shell redirection would, never replaced by a file; a
folder is refused. A new file gets the mode the process's umask gives (``0666 & ~umask``: 0644 under the usual
022), a replaced one keeps its own; the folder is fsynced after the rename, so the new name is on the disk too.

Folders (a saved model, an adapter, a built model in the cache) are written the same way: into a temporary
sibling, every file and folder fsynced, then renamed into place (:func:`replace_folder`).

A file of a folder the program owns (a run folder) is written with ``within=FOLDER``: there the name is the
program's, so whatever was planted at it (a link, a FIFO) is replaced by the file and never written through, and a
folder on the way that leads out of ``FOLDER`` through a link is refused (``ELOOP``): a link planted in a run folder
can never make the run write into a model or data folder. A folder missing on the way is made and its parent
fsynced, so the new file's path, not only its name, is on the disk. What a write cut short leaves beside its name
(:func:`leftover`) is removed by the program's next pass over the folder.
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


#: what :func:`atomic_write_bytes` and :func:`replace_folder` leave beside a name while they write: a temporary
#: file ``.NAME.XXXX.tmp``, a folder ``NAME.partial`` being written, a folder ``NAME.old`` being replaced
PARTIAL, ASIDE = ".partial", ".old"


def leftover(name: str) -> bool:
    """Whether ``name`` is what a write of this module leaves when it is cut short (a kill, a full disk)."""
    return (name.startswith(".") and name.endswith(".tmp")) or name.endswith((PARTIAL, ASIDE))


def make_folders(folder: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of each folder it makes: a file written below is found after a crash."""
    folder = Path(folder)
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for made in reversed(missing):
        try:
            os.mkdir(made)
        except FileExistsError:
            if not made.is_dir():
                raise
            continue
        fsync_dir(made.parent)


def confined(path: Path, within: Path) -> Path:
    """``path`` (absolute) after checking that its folder, links followed, lies inside ``within``; ``ELOOP`` when a
    link on the way leads out of it."""
    path = Path(os.path.abspath(path))
    home = os.path.realpath(within)
    if not Path(os.path.realpath(path.parent)).is_relative_to(home):
        raise OSError(errno.ELOOP, f"a symbolic link on the way leads out of {within}", str(path))
    return path


def _remove(path: Path) -> None:
    """Remove whatever is at ``path``: a link itself (never what it names), a file, or a folder tree."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path)


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


def replace_folder(dest: Path, write: Callable[[Path], None], *, within: Path | None = None) -> None:
    """Make the folder ``dest`` with ``write(tmp)``: into ``DEST.partial`` beside it, every file and folder fsynced,
    then renamed into place and the parent fsynced. A ``dest`` already there is first renamed aside (``DEST.old``)
    and removed once the new one has its name, so a kill leaves the old ``dest``, the new one or none, never half of
    one; what a kill left (``DEST.partial``, ``DEST.old``) is removed by the next call, and what a failed ``write``
    (a full disk) made is removed at once. A link at any of the three names is removed, never followed. ``within``:
    the folder ``dest`` must stay inside (:func:`confined`)."""
    dest = Path(dest) if within is None else confined(dest, within)
    tmp, aside = dest.with_name(dest.name + PARTIAL), dest.with_name(dest.name + ASIDE)
    for stale in (tmp, aside):
        if stale.exists() or stale.is_symlink():
            _remove(stale)
    make_folders(dest.parent)
    try:
        write(tmp)
        fsync_tree(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            _remove(tmp)
        raise
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()
    elif dest.exists():
        os.replace(dest, aside)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
    if aside.exists():
        shutil.rmtree(aside)


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


def atomic_write_bytes(path: Path, data: bytes, *, make_parents: bool = True, within: Path | None = None) -> None:
    """Replace the file at ``path`` with ``data`` atomically (see the module docstring for links, FIFOs,
    devices and folders). ``make_parents``: create missing folders on the way (a run directory's own
    files); without it a missing folder is ``FileNotFoundError`` (a path a user typed). ``within``: the folder
    the program owns that ``path`` belongs to; a link or FIFO at ``path`` is then replaced, never written
    through, and a path leading out of it is refused (``ELOOP``)."""
    path = Path(path)
    if within is not None:
        path = confined(path, within)
    try:
        mode = (os.lstat if within is not None else os.stat)(path).st_mode  # of what a link names, unless within
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
    if mode is not None and not stat.S_ISREG(mode) and within is None:
        _write_into(path, data, mode)
        return
    if path.is_symlink() and within is None:  # replace the file the link names, next to it, and keep the link
        path = Path(os.path.realpath(path))
    if make_parents:
        make_folders(path.parent)
        if within is not None:
            path = confined(path, within)  # a folder on the way may have been replaced by a link meanwhile
    elif not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"no folder {code_span(path.parent)}", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.is_file() and not path.is_symlink():
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


def atomic_write_text(path: Path, text: str, *, make_parents: bool = True, within: Path | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents, within=within)
