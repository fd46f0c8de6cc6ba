"""The records of a spec's data files, as the compiler's rules and the lowering count them.

One read per file and version in a process: the power rules, the lowering and the cost estimate all
ask for the same files, and a policy repository checked in one process (``check specs/``, the language
server) names the same data files from many specs. A file is read again when its size, modification
time or inode changes. No plan models here: the ``analyse`` pass loads this module.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from pathlib import Path

from unlearnspec.builtin.corpus import Corpus, build_corpus
from unlearnspec.records import DataFormatError, Record, read_records

BUILTIN_HOLDOUT = "builtin:holdout"  # the built-in corpus's holdout people (never trained on)

_CACHE_FILES = 256
_cache: OrderedDict[tuple[str, int, int, int], tuple[Record, ...]] = OrderedDict()


@functools.lru_cache(maxsize=1)
def builtin_corpus() -> Corpus:
    return build_corpus()


def _read(p: Path) -> tuple[Record, ...]:
    st = os.stat(p)
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit
    records = tuple(read_records(p))
    _cache[key] = records
    if len(_cache) > _CACHE_FILES:
        _cache.popitem(last=False)
    return records


def records_of(path: str, base: Path) -> list[Record]:
    """The records of ``path`` (relative to ``base``, or the built-in holdout); [] for a folder or a file
    that cannot be read as records (the resolve pass reports those)."""
    if path == BUILTIN_HOLDOUT:
        return list(builtin_corpus().holdout)
    p = base / path
    if p.is_dir():
        return []
    try:
        return list(_read(p))
    except (OSError, DataFormatError):
        return []
