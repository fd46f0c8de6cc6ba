"""Benchmark importers: TOFU, MUSE and WMDP from their published layouts to the project's JSONL.

``unlearnspec data import {tofu,muse,wmdp} SRC --out DIR`` reads local files only (nothing is
downloaded; SRC may be a hub cache folder, read at its ``refs/main`` snapshot, or a dataset's folder in the
`datasets` library's cache), converts each split into
records (see docs/data.md) and writes a starter spec beside them that `unlearnspec check` accepts, and
``SPEC.import.json``: the sha256 of every file read and written. The package imports no framework: parquet files and
the `datasets` cache's Arrow files need ``pyarrow`` and ``save_to_disk`` folders need ``datasets``, imported only when
such a source is met.
"""

from __future__ import annotations

from collections.abc import Callable

from unlearnspec.importers.base import Imported, write_import
from unlearnspec.importers.muse import import_muse
from unlearnspec.importers.sources import ImportFailure
from unlearnspec.importers.tofu import import_tofu
from unlearnspec.importers.wmdp import import_wmdp

#: benchmark name -> importer; the `data import` verb offers exactly these
IMPORTERS: dict[str, Callable[..., Imported]] = {"tofu": import_tofu, "muse": import_muse, "wmdp": import_wmdp}

__all__ = ["IMPORTERS", "ImportFailure", "Imported", "import_muse", "import_tofu", "import_wmdp", "write_import"]
