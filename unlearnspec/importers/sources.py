"""Finding and reading a benchmark's split files in the layouts they are published in.

A split is looked for, under the source folder, as a file (``NAME.jsonl``, ``NAME.json`` — a JSON
array or JSON lines, as TOFU ships its ``.json`` files — or ``NAME.parquet``), as Hugging Face
shards (``NAME-00000-of-00001.parquet``, the layout of a hub dataset's ``CONFIG/`` folder), or as a
folder (a ``Dataset.save_to_disk`` folder, a ``DatasetDict`` one with a single or ``train``/``test``
split, or a folder of shards). JSON is read with the standard library; parquet needs ``pyarrow`` and
``save_to_disk`` folders need ``datasets``, both imported only when such a file is met.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnspec.inputs import json_lines, load_json
from unlearnspec.records import is_hf_dataset_dir

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")


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


@dataclass
class Rows:
    """The rows of one split file, with the 1-based line of each row where the file has lines."""

    path: Path
    rows: list[dict[str, Any]]
    lines: list[int | None] = field(default_factory=list)

    def line(self, i: int) -> int | None:
        return self.lines[i] if i < len(self.lines) else None


def locate(src: Path, name: str, *, under: str | None = None) -> Path | None:
    """The file or folder holding split ``name`` (in subfolder ``under``), or None when there is none."""
    base = src / under if under else src
    if not base.is_dir():
        return None
    for suffix in FILE_SUFFIXES:
        if (base / f"{name}{suffix}").is_file():
            return base / f"{name}{suffix}"
    shards = sorted(base.glob(f"{name}-*.parquet"))
    if shards:
        return shards[0]
    if (base / name).is_dir():
        return base / name
    return None


def locate_any(src: Path, names: Iterable[str], *, under: str | None = None) -> Path | None:
    for name in names:
        found = locate(src, name, under=under)
        if found is not None:
            return found
    return None


def read_rows(path: Path) -> Rows:
    """Every row of a split, from a file, from its shards, or from a folder."""
    if path.is_dir():
        return _read_dir(path)
    if path.suffix == ".parquet":
        prefix = path.name.split("-0")[0] if "-0" in path.name else None
        shards = sorted(path.parent.glob(f"{prefix}-*.parquet")) if prefix else [path]
        rows: list[dict[str, Any]] = []
        for shard in shards:
            rows += _read_parquet(shard)
        return Rows(path, rows)
    return _read_json(path)


def _read_dir(path: Path) -> Rows:
    if is_hf_dataset_dir(path):
        from datasets import load_from_disk  # only for save_to_disk folders

        try:
            ds = load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001 - any library failure is a bad source, with its detail
            raise ImportFailure("UL823", f"cannot read the `save_to_disk` folder: {_first_line(exc)}", path) from exc
        return Rows(path, [dict(r) for r in ds])
    if (path / "dataset_dict.json").is_file():
        try:
            splits = load_json((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        except (ValueError, AttributeError) as exc:
            raise ImportFailure("UL823", f"`dataset_dict.json` is not a dataset index: {_first_line(exc)}", path) from exc
        if not isinstance(splits, list) or not all(isinstance(x, str) for x in splits):
            raise ImportFailure("UL823", "`dataset_dict.json` is not a dataset index: `splits` is not a list of names",
                                path, help=["`save_to_disk` writes `{\"splits\": [\"train\", ...]}`"])
        pick = splits[0] if len(splits) == 1 else next((s for s in ("train", "test") if s in splits), None)
        if pick is None:
            raise ImportFailure("UL821", f"the `DatasetDict` folder has splits {_names(splits)} and none is this split",
                                path, help=["give the folder of the one split (`save_to_disk` writes one per split)"])
        return _read_dir(path / pick)
    shards = sorted(path.glob("*.parquet"))
    if shards:
        return read_rows(shards[0])
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
    if len(files) == 1:
        return _read_json(files[0])
    raise ImportFailure("UL821", "the folder holds no split this importer can read", path,
                        help=["a split is a .jsonl, .json or .parquet file, parquet shards, or a "
                              "`Dataset.save_to_disk` folder"])


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq  # only for parquet files (installed with `datasets`)

    try:
        return list(pq.read_table(path).to_pylist())
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise ImportFailure("UL823", f"cannot read the parquet file: {_first_line(exc)}", path) from exc


def _read_json(path: Path) -> Rows:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailure("UL823", "the file is not UTF-8 text", path) from exc
    stripped = text.lstrip()
    if stripped.startswith("["):  # one JSON array of rows
        try:
            data = load_json(text)
        except json.JSONDecodeError as exc:
            raise ImportFailure("UL823", f"malformed JSON: {exc.msg.lower()}", path, line=exc.lineno,
                                column=exc.colno) from exc
        return Rows(path, [_as_row(r) for r in data])
    rows: list[dict[str, Any]] = []
    lines: list[int | None] = []
    for lineno, raw in enumerate(json_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            rows.append(_as_row(load_json(raw)))
        except json.JSONDecodeError as exc:
            raise ImportFailure("UL823", f"malformed JSON: {exc.msg.lower()}", path, line=lineno, column=exc.colno,
                                help=["a .json split is a JSON array, or one JSON object a line (JSON lines)"]) from exc
        lines.append(lineno)
    return Rows(path, rows, lines)


def _as_row(value: Any) -> dict[str, Any]:
    # MUSE's privleak files on GitHub are JSON arrays of strings: each string is a document
    return value if isinstance(value, dict) else {"text": value}


def require_columns(rows: Rows, required: Sequence[str], benchmark: str, split: str) -> None:
    """UL822 unless the split's first row has every required column."""
    if not rows.rows:
        raise ImportFailure("UL822", f"split `{split}` holds no rows", rows.path,
                            help=[f"{benchmark}'s `{split}` split is never empty; is this the right file?"])
    present = list(rows.rows[0])
    for col in required:
        if col not in rows.rows[0]:
            hint = difflib.get_close_matches(col, present, n=1)
            helps = [f"{benchmark}'s `{split}` rows have the columns {_names(required)}"]
            if hint:
                helps.insert(0, f"did you mean `{hint[0]}`?")
            raise ImportFailure("UL822", f"split `{split}` has no `{col}` column (it has {_names(present)})",
                                rows.path, line=rows.line(0), column=1 if rows.line(0) else None, help=helps)


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "none"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].lower() if text else type(exc).__name__
