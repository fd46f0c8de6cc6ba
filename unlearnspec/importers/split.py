"""The two types every importer module shares: a failure with its diagnostic, and where a split was found.

They live apart from :mod:`~unlearnspec.importers.sources` so that the layouts it reads through other modules
(:mod:`~unlearnspec.importers.cache`, the `datasets` library's cache) can use them without importing it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_HELP = "install it with `pip install 'unlearnspec[datasets]'` (the `datasets` extra brings `pyarrow`)"


class ImportFailure(Exception):
    """A source that is not in the benchmark's layout: a diagnostic code, the path, and help lines."""

    def __init__(self, code: str, message: str, path: Path | None = None, *, line: int | None = None,
                 column: int | None = None, help: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.help = list(help)


@dataclass(frozen=True)
class Source:
    """Where one split is: the files read, in order, and the files beside them that were not read."""

    path: Path  # the file, the first shard, or the `save_to_disk` folder: what the summary names
    files: tuple[Path, ...]  # every file read (the shards of a split, sorted), or the `save_to_disk` folder
    ignored: tuple[Path, ...] = ()  # loose files beside the hub's shards, left out in their favour
    #: the rows each file must hold, where the source says (the `datasets` cache's `dataset_info.json`)
    counts: tuple[int, ...] | None = None

    def describe(self) -> str:
        more = len(self.files) - 1
        return f"{self.path}" + (f" (+{more} more shard{'s' if more > 1 else ''})" if more > 0 else "")
