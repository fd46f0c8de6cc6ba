"""Reading files a user names, safely: only regular files, with a size cap, JSON with a depth limit.

Shared by the compiler (specs, data files, plans) and the runtime (data files, plans); it imports
nothing heavy. Two ways a hostile or mistaken input used to end in a hang or a traceback:

- a FIFO, a terminal or a device named as a spec or data file: opening a FIFO blocks until a writer
  comes, reading ``/dev/zero`` never ends. :func:`read_regular` opens without blocking and refuses
  anything that is not a regular file before reading a byte (:class:`NotRegularFileError`);
- JSON nested thousands of levels deep: :func:`json.loads` recurses once per level and raises
  :class:`RecursionError`. :func:`load_json` refuses nesting deeper than :data:`MAX_JSON_DEPTH` as a
  :class:`json.JSONDecodeError` with the position of the first bracket too deep, so every caller's
  existing "malformed JSON" diagnostic reports it with a line and column.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

#: The deepest nesting of arrays and objects a data file or a plan may have: a record is two levels
#: deep and a plan about ten; Python's parser would recurse until it fails at about a thousand.
MAX_JSON_DEPTH = 64

_SPECIAL = re.compile(r'[\[\]{}"\\]')


class NotRegularFileError(OSError):
    """A path that exists but is not a regular file (a FIFO, a socket, a device)."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.EINVAL, f"{what}, not a regular file", os.fspath(path))
        self.what = what


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (`a named pipe`)."""
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """The regular file ``path`` opened for binary reading; anything else refused before a byte is read.

    The file is opened with ``O_NONBLOCK`` (a FIFO then opens at once instead of waiting for a writer)
    and checked with ``fstat`` on the open descriptor, so a file swapped for a FIFO between a check and
    the read is still refused. Raises :class:`NotRegularFileError`, :class:`IsADirectoryError`, or the
    :class:`OSError` of opening."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(os.fspath(path), flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, file_kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`), at most ``limit + 1`` of
    them when ``limit`` is given (so that the caller can tell "too large" from "exactly the limit")."""
    with open_regular(path) as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


def spec_path(value: str, base: str | os.PathLike[str]) -> Path:
    """A path a spec names, as every layer reads it: ``~`` is the user's home, an absolute path stays as it is,
    anything else is relative to the spec's folder ``base``."""
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else Path(base) / p


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text: split at ``\n`` alone, a ``\r`` before it dropped, as JSON Lines defines
    them. :meth:`str.splitlines` also splits at U+2028, U+2029, U+0085 and the other characters a JSON string
    may hold unescaped, which would cut a record in two."""
    if "\n" not in text and "\r" in text:  # a file from a system that ends lines with a lone CR
        text = text.replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def check_json_depth(text: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`json.JSONDecodeError` at the first ``[`` or ``{`` nested deeper than ``max_depth``
    (brackets inside strings do not count). Cheap for ordinary JSON: a text with no more brackets than
    the limit cannot be too deep and is not scanned."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    in_string = False
    escaped_at = -1  # the position a backslash inside a string escapes
    for m in _SPECIAL.finditer(text):  # one pass, linear in the text whatever its quotes and backslashes
        pos, c = m.start(), m.group()
        if pos == escaped_at:
            continue
        if in_string:
            if c == "\\":
                escaped_at = pos + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > max_depth:
                raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", text, pos)
        elif c in "]}":
            depth = max(depth - 1, 0)


def _not_json(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON number")


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """:func:`json.loads` with a nesting limit, and strict: too deep, ``NaN`` or ``Infinity`` (which
    Python accepts and JSON does not), or an integer too long for Python to convert (over 4,300
    digits) is a :class:`json.JSONDecodeError` like any other malformed JSON, never a
    :class:`RecursionError` or a :class:`ValueError`."""
    check_json_depth(text, max_depth)
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as err:
        message = str(err).split(";")[0] if isinstance(err, ValueError) else "nested too deeply"
        raise json.JSONDecodeError(message[:1].lower() + message[1:], text, _offender(text)) from err


_STRING_OR_OFFENDER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN|-?[0-9]{4301,})')


def _offender(text: str) -> int:
    """Where the first value JSON does not allow (``NaN``, ``Infinity``, an integer Python will not convert) is,
    outside strings; 0 when none is found."""
    for m in _STRING_OR_OFFENDER.finditer(text):
        if m.group(1):
            return m.start(1)
    return 0


def read_json_file(path: str | os.PathLike[str]) -> Any:
    """A regular file read as UTF-8 JSON with the depth limit (plans, configuration files)."""
    return load_json(read_regular(Path(path)).decode("utf-8"))


def first_problem(err: Any, whole: str) -> tuple[str, str]:
    """Where and what the first problem of a pydantic ``ValidationError`` on user input is: the dotted location
    (``whole`` when it is the top level) and pydantic's message, lower-cased, without its closing link to its
    documentation. A message our own validators raise loses pydantic's ``Value error, `` prefix."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    msg = str(first["msg"])
    if first.get("type") == "value_error":
        msg = msg.removeprefix("Value error, ")
    return where, msg[:1].lower() + msg[1:]


MAX_SAFETENSORS_HEADER = 100_000_000
"""The largest header a safetensors file may declare (the format's own limit): a damaged length is never read."""


def safetensors_whole(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a safetensors file whose header parses and whose size covers every tensor it declares:
    not cut short by an interrupted copy, download or save. Reads the header only (a regular file's)."""
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            n = int.from_bytes(fh.read(8), "little")
            if n <= 0 or 8 + n > size or n > MAX_SAFETENSORS_HEADER:
                return False
            header = load_json(fh.read(n).decode("utf-8"))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        return 8 + n + max(ends, default=0) <= size
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False
