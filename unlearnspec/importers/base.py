"""What every importer returns, row conversion helpers, and writing the output folder."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from unlearnspec.compiler.syntax import quote
from unlearnspec.importers.sources import ImportFailure, Rows
from unlearnspec.io import atomic_write_text


@dataclass
class Imported:
    """The converted splits (output file name -> records) and the starter spec that uses them."""

    benchmark: str
    files: dict[str, list[dict[str, Any]]]
    spec_name: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # output file name -> the split it came from


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("unlearnspec.importers", "templates"),
                             autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["q"] = quote  # the one quoting function (compiler.syntax): a control character it cannot write
    env.filters["qlist"] = lambda names: ", ".join(quote(n) for n in names)  # raises UnquotableError
    return env


def render_spec(imported: Imported) -> str:
    return _env().get_template(imported.template).render(files=imported.files, sources=imported.sources,
                                                         **imported.context)


def write_import(imported: Imported, out: Path, *, force: bool = False) -> list[Path]:
    """Write every converted split as JSONL and the starter spec into ``out``; each file atomically.

    Files already in ``out`` are never replaced unless ``force``: an import does not overwrite data
    someone may have edited (UL824).
    """
    targets = [out / name for name in imported.files] + [out / imported.spec_name]
    for target in targets:  # never over a file the import reads, `--force` or not
        for source in imported.sources.values():
            if target.exists() and source.exists() and os.path.samefile(target, source):
                raise ImportFailure("UL824", f"`{target.name}` in the output folder is the source file it would be "
                                    "converted from", target, help=["choose an output folder other than the source's"])
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ImportFailure("UL824", f"`{existing[0].name}` already exists in the output folder", existing[0],
                            help=["choose another `--out DIR`, or pass `--force` to replace the imported files"])
    spec = render_spec(imported)  # before any file is written: a value it cannot quote leaves the folder as it was
    written: list[Path] = []
    for name, records in imported.files.items():
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        atomic_write_text(out / name, text)
        written.append(out / name)
    atomic_write_text(out / imported.spec_name, spec)
    written.append(out / imported.spec_name)
    return written


def text_field(rows: Rows, i: int, column: str, split: str) -> str:
    """A required string cell; UL822 with the row's line when it is missing or not a string."""
    value = rows.rows[i].get(column)
    if not isinstance(value, str) or not value.strip():
        raise ImportFailure("UL822", f"row {i + 1} of split `{split}` has no text in `{column}`", rows.path,
                            line=rows.line(i), column=1 if rows.line(i) else None,
                            help=[f"every row of `{split}` needs a non-empty string `{column}`"])
    return value


def str_list(rows: Rows, i: int, column: str, split: str) -> list[str]:
    """An optional list-of-strings cell (a single string counts as a list of one)."""
    value = rows.rows[i].get(column)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ImportFailure("UL822", f"row {i + 1} of split `{split}`: `{column}` must be a list of strings", rows.path,
                        line=rows.line(i), column=1 if rows.line(i) else None)


def missing_split(benchmark: str, src: Path, split: str, expected: str) -> ImportFailure:
    return ImportFailure("UL821", f"no `{split}` split in the {benchmark} source folder", src,
                         help=[f"expected {expected}",
                               "a split may be a .jsonl, .json or .parquet file, the hub's parquet shards, "
                               "or a `save_to_disk` folder"])
