"""The records of a spec's data files, as the compiler's rules and the lowering count them.

One read per file and version in a process: the power rules, the lowering and the cost estimate all
ask for the same files, and a policy repository checked in one process (``check specs/``, the language
server) names the same data files from many specs. A file is read again when its size, modification
time or inode changes. What the rules derive from a file's records — its training texts, the holdout's
calibration/evaluation split — is kept with the same version, so a folder of specs sharing one holdout
splits it once. No plan models here: the ``analyse`` pass loads this module.
"""

from __future__ import annotations

import functools
import os
import stat
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from unlearnspec.builtin.corpus import Corpus, build_corpus
from unlearnspec.records import DataFormatError, Record, read_records, split_holdout

BUILTIN_HOLDOUT = "builtin:holdout"  # the built-in corpus's holdout people (never trained on)

#: A file version: device, inode, modification time and size (the built-in holdout is its own version).
Version = tuple[object, ...]
_T = TypeVar("_T")

_CACHE_FILES = 256
_cache: OrderedDict[Version, tuple[Record, ...]] = OrderedDict()
_derived: OrderedDict[tuple[object, ...], object] = OrderedDict()
_BUILTIN_VERSION: Version = ("builtin", "holdout")


@functools.lru_cache(maxsize=1)
def builtin_corpus() -> Corpus:
    return build_corpus()


def _version(path: str, base: Path) -> Version | None:
    """The version of a readable regular file (one ``stat``), or None for a folder or a missing file."""
    if path == BUILTIN_HOLDOUT:
        return _BUILTIN_VERSION
    try:
        st = os.stat(base / path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _bounded_put(cache: OrderedDict, key: object, value: object) -> None:  # type: ignore[type-arg]
    cache[key] = value
    if len(cache) > _CACHE_FILES * 4:
        cache.popitem(last=False)


def _records(path: str, base: Path, version: Version) -> tuple[Record, ...]:
    if version == _BUILTIN_VERSION:
        return tuple(builtin_corpus().holdout)
    hit = _cache.get(version)
    if hit is not None:
        _cache.move_to_end(version)
        return hit
    try:
        records = tuple(read_records(base / path))
    except (OSError, DataFormatError):
        return ()  # not kept: a file made readable keeps its version
    _cache[version] = records
    if len(_cache) > _CACHE_FILES:
        _cache.popitem(last=False)
    return records


def records_of(path: str, base: Path) -> list[Record]:
    """The records of ``path`` (relative to ``base``, or the built-in holdout); [] for a folder or a file
    that cannot be read as records (the resolve pass reports those)."""
    version = _version(path, base)
    return [] if version is None else list(_records(path, base, version))


def _derive(kind: str, paths: Sequence[str], base: Path, extra: object,
            make: Callable[[list[Record]], _T]) -> _T:
    """``make`` of the records of ``paths``, kept for as long as every file keeps its version."""
    versions = tuple(_version(p, base) for p in paths)
    key = (kind, versions, extra)
    hit = _derived.get(key)
    if hit is None:
        records = [r for p, v in zip(paths, versions, strict=True) if v is not None for r in _records(p, base, v)]
        hit = make(records)
        _bounded_put(_derived, key, hit)
    return hit  # type: ignore[return-value]


def _first_texts(records: list[Record]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, r in enumerate(records, start=1):
        for t in r.identity:
            out.setdefault(t, i)
    return out


def texts_of(path: str, base: Path) -> dict[str, int]:
    """The training texts of a data file's records, each with the 1-based number of the first record giving
    it (the caller must not change the mapping: it is shared)."""
    return _derive("texts", (path,), base, None, _first_texts)


def holdout_split(paths: Sequence[str], base: Path, seed: int) -> tuple[list[int], list[int]]:
    """:func:`~unlearnspec.records.split_holdout` of the records of ``paths`` read in order: (calibration,
    evaluation) indices into them (fresh lists, the caller's own)."""
    calibration, evaluation = _derive("split", tuple(paths), base, seed, lambda rs: split_holdout(rs, seed=seed))
    return list(calibration), list(evaluation)
