"""Finding and reading a benchmark's split files in the layouts they are published in.

A split ``NAME`` is looked for, under the source folder (or one of its subset folders), as

- the hub's parquet shards ``NAME-00000-of-00002.parquet``, ``NAME-00001-of-00002.parquet``: every
  shard, in order; a missing shard is UL821. The shards are what a hub dataset card's ``configs:``
  names, so a loose ``NAME.json`` beside them (MUSE-News keeps its June JSON uploads beside the
  current shards) is ignored and the import summary says so;
- a file: ``NAME.jsonl``, ``NAME.json`` (a JSON array, or JSON lines as TOFU ships its ``.json``
  files) or ``NAME.parquet``;
- a folder ``NAME/``: a ``Dataset.save_to_disk`` folder, a ``DatasetDict`` one, a folder of shards
  (``train-00000-of-00001.parquet``, or ``0000.parquet``, ``0001.parquet``), or a folder holding one
  split's folder (the hub's parquet branch, ``refs/convert/parquet``: ``forget10/train/0000.parquet``).
  A folder that holds more than one split is UL821: which one the benchmark means is not guessed;
- a configuration folder of the `datasets` library's cache, ``NAME/VERSION/HASH/`` with ``dataset_info.json`` and
  Arrow files (:mod:`~unlearnspec.importers.cache`): its one split; or, when the folder a split is looked for
  under is such a configuration (MUSE's ``verbmem``), that configuration's split ``NAME``.

Two candidates of the second and third kinds (``NAME.json`` and ``NAME/``) are UL821 too. A hub cache
folder (``datasets--ORG--NAME/snapshots/COMMIT/``) is read at the snapshot ``refs/main`` names
(:func:`hub_snapshot`); MUSE's ``raw/NAME.txt`` is read by :func:`read_text` and :func:`paragraphs`. JSON is read
with the standard library; parquet needs ``pyarrow`` and ``save_to_disk`` folders need ``datasets``
(the ``datasets`` extra), both imported only when such a file is met. Every row remembers its file,
its place in that file and, where the file has lines, its line and column, so that a diagnostic points
at the row itself.
"""

from __future__ import annotations

import bisect
import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from unlearnspec.importers.cache import build_folder, build_splits, cache_split, read_arrow
from unlearnspec.importers.split import INSTALL_HELP, ImportFailure, Source
from unlearnspec.inputs import json_lines, load_json, read_regular
from unlearnspec.markdown import code_span
from unlearnspec.records import is_hf_dataset_dir

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")
#: the hub's shard names: ``NAME-00000-of-00001.parquet`` (an upload) ...
HUB_SHARD = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")
#: ... and ``0000.parquet`` (the parquet converter's branch, one folder per split)
CONVERTER_SHARD = re.compile(r"^(?P<index>\d{4,5})\.parquet$")


@dataclass
class Origin:
    """Where one row comes from: its file, its 0-based place in that file, and its line and column if any."""

    file: Path
    index: int
    line: int | None = None
    column: int | None = None


@dataclass
class Rows:
    """The rows of one split, each with its :class:`Origin`."""

    path: Path
    rows: list[dict[str, Any]]
    origins: list[Origin] = field(default_factory=list)

    def origin(self, i: int) -> Origin:
        return self.origins[i] if i < len(self.origins) else Origin(self.path, i)

    def line(self, i: int) -> int | None:
        return self.origin(i).line

    def name(self, i: int) -> str:
        """``row 12``; ``row 12 (row 2 of `x-00001-of-00002.parquet`)`` when the split spans several files."""
        o = self.origin(i)
        several = len({x.file for x in self.origins}) > 1
        return f"row {i + 1}" + (f" (row {o.index + 1} of {code_span(o.file.name)})" if several else "")

    def fail(self, i: int, code: str, message: str, help: Sequence[str] = ()) -> NoReturn:
        o = self.origin(i)
        raise ImportFailure(code, message, o.file, line=o.line, column=(o.column or 1) if o.line else None, help=help)


# -- locating a split ----------------------------------------------------------------------------------


def hub_snapshot(src: Path) -> tuple[Path, str | None]:
    """The folder a benchmark's files are in, and a note for the summary when ``src`` is a hub cache folder.

    ``huggingface_hub`` keeps a downloaded repository as ``datasets--ORG--NAME/`` holding ``blobs/``, ``refs/``
    (a branch -> the commit it was at when downloaded) and ``snapshots/COMMIT/``, the repository's files at that
    commit as links into ``blobs/`` (huggingface_hub's guide "Understand caching"). The files are those of the
    snapshot ``refs/main`` names, or of the only snapshot; several and no ``refs/main`` among them is UL821.
    """
    snapshots = src / "snapshots"
    if not (snapshots.is_dir() and ((src / "refs").is_dir() or (src / "blobs").is_dir())):
        return src, None
    revisions = sorted(p.name for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))
    refs: dict[str, str] = {}
    if (src / "refs").is_dir():
        for f in sorted((src / "refs").rglob("*")):
            try:
                refs[f.relative_to(src / "refs").as_posix()] = f.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):  # a folder (`refs/refs/...`), or not a ref file
                continue
    if not revisions:
        raise ImportFailure("UL821", "the hub cache folder holds no snapshot: none of the repository's files were "
                            "downloaded into it", snapshots, help=["download the dataset again, or give the folder "
                                                                   "its files are in"])
    if refs.get("main") in revisions:
        chosen, why = refs["main"], "`refs/main`"
    elif len(revisions) == 1:
        chosen, why = revisions[0], "the only snapshot"
    else:
        named = {rev: [ref for ref, at in refs.items() if at == rev] for rev in revisions}
        raise ImportFailure("UL821", f"the hub cache folder holds {len(revisions)} snapshots and no `refs/main` names "
                            "one of them", snapshots,
                            help=["give the snapshot to import as SRC: "
                                  + "; ".join(f"{code_span('snapshots/' + rev)}"
                                              + (f" ({', '.join(named[rev])})" if named[rev] else "")
                                              for rev in revisions)])
    return snapshots / chosen, f"read the hub cache's snapshot {code_span(chosen)} ({why}) of {code_span(src.name)}"


def locate(src: Path, name: str, *, under: str | None = None) -> Source | None:
    """The split ``name`` (in subfolder ``under``), or None when there is none; UL821 when it is ambiguous."""
    base = src / under if under else src
    if not base.is_dir():
        return None
    build = build_folder(base)
    if build is not None:  # a subset's configuration in the `datasets` cache: its splits are in the build
        return cache_split(build, name)
    shards = _shards(base, name)
    loose = [base / f"{name}{suffix}" for suffix in FILE_SUFFIXES if (base / f"{name}{suffix}").is_file()]
    folder = [base / name] if (base / name).is_dir() else []
    if shards:  # what the card's `configs:` names; a loose file beside them is an older upload
        return Source(shards[0], tuple(shards), tuple(loose + folder))
    candidates = loose + folder
    if not candidates:
        return None
    if len(candidates) > 1:
        raise ImportFailure("UL821", f"split {code_span(name)} is in more than one place: {_names(p.name for p in candidates)}",
                            base, help=["keep one of them (they may differ); the importer does not guess which "
                                        "is current"])
    found = candidates[0]
    return _resolve_dir(found) if found.is_dir() else Source(found, (found,))


def locate_any(src: Path, names: Iterable[str], *, under: str | None = None) -> Source | None:
    """The first of ``names`` (a split and its older names) that is present."""
    for name in names:
        found = locate(src, name, under=under)
        if found is not None:
            return found
    return None


def split_names(folder: Path) -> list[str]:
    """The names of the splits a folder offers (files without suffix or shard numbers, and folders)."""
    if not folder.is_dir():
        return []
    build = build_folder(folder)
    if build is not None:
        return sorted(build_splits(build))
    names: set[str] = set()
    for p in folder.iterdir():
        m = HUB_SHARD.match(p.name)
        if m:
            names.add(m.group("prefix"))
        elif p.is_dir() and not p.name.startswith("."):
            names.add(p.name)
        elif p.suffix in FILE_SUFFIXES:
            names.add(p.stem)
    return sorted(names)


def did_you_mean(folder: Path, name: str) -> list[str]:
    """`did you mean` help for a split that is not in ``folder``."""
    close = difflib.get_close_matches(name, split_names(folder), n=1, cutoff=0.75)
    return [f"did you mean {code_span(close[0])}?"] if close else []


def _shards(base: Path, prefix: str | None) -> list[Path]:
    """The hub shards of split ``prefix`` in ``base``, sorted and checked complete (UL821 when one is missing)."""
    found = sorted((p for p in base.iterdir() if p.is_file() and (m := HUB_SHARD.match(p.name))
                    and (prefix is None or m.group("prefix") == prefix)), key=lambda p: p.name)
    if not found:
        return []
    matches = [HUB_SHARD.match(p.name) for p in found]
    totals = {int(m.group("total")) for m in matches if m}
    indices = sorted(int(m.group("index")) for m in matches if m)
    if len(totals) != 1 or indices != list(range(next(iter(totals)))):
        total = max(totals)
        missing = sorted(set(range(total)) - set(indices))
        what = (f"shard {missing[0] + 1} of {total} is missing" if missing and len(totals) == 1
                else f"their names disagree on how many there are ({_names(p.name for p in found)})")
        raise ImportFailure("UL821", f"the split's parquet shards are incomplete: {what}", found[0],
                            help=["download every shard of the split (`NAME-0000i-of-0000N.parquet`, i from 0 to N-1) "
                                  "and no shard of an older upload; rows would otherwise be lost silently"])
    return found


def _resolve_dir(path: Path) -> Source:
    """The files of the one split a folder holds; UL821 when it holds none or several."""
    if is_hf_dataset_dir(path):
        return Source(path, (path,))
    build = build_folder(path)
    if build is not None:  # a configuration of the `datasets` cache: its one split
        found = cache_split(build, None)
        assert found is not None  # the build's only split is there, or cache_split raised
        return found
    if (path / "dataset_dict.json").is_file():
        try:
            splits = load_json((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        except (ValueError, AttributeError, OSError) as exc:
            raise ImportFailure("UL823", f"`dataset_dict.json` is not a dataset index: {_first_line(exc)}", path) from exc
        if not isinstance(splits, list) or not all(isinstance(x, str) for x in splits):
            raise ImportFailure("UL823", "`dataset_dict.json` is not a dataset index: `splits` is not a list of names",
                                path, help=["`save_to_disk` writes `{\"splits\": [\"train\", ...]}`"])
        if len(splits) != 1:
            _several(path, splits)
        return _resolve_dir(path / splits[0])
    groups: dict[str, list[Path]] = {}  # a label for each split the folder holds -> its files
    for p in sorted(path.iterdir(), key=lambda p: p.name):
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix == ".parquet":
            m = HUB_SHARD.match(p.name)
            label = f"{m.group('prefix')}-*.parquet" if m else ("NNNN.parquet" if CONVERTER_SHARD.match(p.name)
                                                                else p.name)
            groups.setdefault(label, []).append(p)
        elif p.is_file() and p.suffix in (".json", ".jsonl"):
            groups.setdefault(p.name, []).append(p)
        elif p.is_dir() and _holds_split(p):
            groups.setdefault(f"{p.name}/", []).append(p)
    if not groups:
        raise ImportFailure("UL821", "the folder holds no split this importer can read", path,
                            help=["a split is a .jsonl, .json or .parquet file, parquet shards, or a "
                                  "`Dataset.save_to_disk` folder"])
    if len(groups) > 1:
        _several(path, [label.replace("NNNN.parquet", "0000.parquet, ...") for label in groups])
    [(label, files)] = groups.items()
    if files[0].is_dir():
        return _resolve_dir(files[0])
    if label.endswith("-*.parquet"):
        files = _shards(path, label.removesuffix("-*.parquet"))
    elif label == "NNNN.parquet":
        numbers = [int(m.group("index")) for p in files if (m := CONVERTER_SHARD.match(p.name))]
        if numbers != list(range(len(files))):
            raise ImportFailure("UL821", "the split's parquet shards are incomplete: their numbers are "
                                f"{_names(p.name for p in files)}", path,
                                help=["download every shard (`0000.parquet`, `0001.parquet`, ...)"])
    return Source(files[0], tuple(files))


def _holds_split(folder: Path) -> bool:
    return is_hf_dataset_dir(folder) or (folder / "dataset_dict.json").is_file() or any(
        p.suffix in FILE_SUFFIXES for p in folder.iterdir() if p.is_file())


def _several(path: Path, splits: Sequence[str]) -> NoReturn:
    raise ImportFailure("UL821", f"the folder holds more than one split: {_names(splits)}", path,
                        help=["a benchmark split is one of them and the importer does not guess which; leave only "
                              "the split the benchmark publishes (TOFU's configurations have `train`, WMDP's `test`)"])


# -- reading a split -----------------------------------------------------------------------------------


def read_rows(source: Source) -> Rows:
    """Every row of a split, from its file, its shards in order, its `save_to_disk` folder or its Arrow files."""
    rows: list[dict[str, Any]] = []
    origins: list[Origin] = []
    for k, file in enumerate(source.files):
        if file.is_dir():
            got, where = _read_saved(file)
        elif file.suffix == ".arrow":  # the `datasets` cache
            got = read_arrow(file)
            where = [Origin(file, i) for i in range(len(got))]
        elif file.suffix == ".parquet":
            got, where = _read_parquet(file)
        elif file.suffix == ".txt":  # MUSE's raw text: one row a paragraph
            text_rows = paragraphs(read_text(file), file)
            got, where = text_rows.rows, text_rows.origins
        else:
            got, where = _read_json(file)
        if source.counts is not None and len(got) != source.counts[k]:
            raise ImportFailure("UL821", f"the file holds {len(got)} rows and the build's `dataset_info.json` counts "
                                f"{source.counts[k]}: it is not the file `datasets` built", file,
                                help=["load the dataset again with `datasets` (it rebuilds the cache); rows would "
                                      "otherwise be lost or added silently"])
        rows += got
        origins += where
    return Rows(source.path, rows, origins)


def read_text(path: Path) -> str:
    """A plain-text split file (MUSE's ``raw/SPLIT.txt``) as one string, line ends as ``\\n``; UL823 when it is
    not UTF-8 or cannot be read."""
    try:
        text = read_regular(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ImportFailure("UL823", f"the file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x})", path,
                            line=line, column=exc.start - (exc.object.rfind(b"\n", 0, exc.start) + 1) + 1,
                            help=["MUSE's loader writes its `raw` files as UTF-8; re-export the file"]) from exc
    except OSError as exc:
        raise ImportFailure("UL823", f"cannot read the file: {exc.strerror or exc}", path) from exc
    return text.replace("\r\n", "\n")


_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")


def paragraphs(text: str, path: Path) -> Rows:
    """The paragraphs of ``text`` (separated by blank lines) as rows of ``text``, each at its first line; nothing
    else is changed (an indent stays; the spaces ending a paragraph do not)."""
    rows: list[dict[str, Any]] = []
    origins: list[Origin] = []
    start, line = 0, 1  # the line counted as we go: linear in the text, a book included
    for m in [*_BLANK_LINES.finditer(text), None]:
        chunk = text[start:m.start() if m else len(text)].rstrip()
        if chunk.strip():
            rows.append({"text": chunk})
            origins.append(Origin(path, len(origins), line, 1))
        if m:
            line += text.count("\n", start, m.end())
            start = m.end()
    return Rows(path, rows, origins)


def _read_saved(path: Path) -> tuple[list[dict[str, Any]], list[Origin]]:
    try:
        from datasets import load_from_disk  # only for save_to_disk folders
    except ImportError as exc:
        raise ImportFailure("UL823", "reading a `save_to_disk` folder needs `datasets`, which is not installed",
                            path, help=[INSTALL_HELP]) from exc
    try:
        rows = [dict(r) for r in load_from_disk(str(path))]
    except Exception as exc:  # noqa: BLE001 - any library failure is a bad source, with its detail
        raise ImportFailure("UL823", f"cannot read the `save_to_disk` folder: {_first_line(exc)}", path) from exc
    return rows, [Origin(path, k) for k in range(len(rows))]


def _read_parquet(path: Path) -> tuple[list[dict[str, Any]], list[Origin]]:
    try:
        import pyarrow.parquet as pq  # only for parquet files (installed with `datasets`)
    except ImportError as exc:
        raise ImportFailure("UL823", "reading parquet needs `pyarrow`, which is not installed", path,
                            help=[INSTALL_HELP, "or convert the split to JSON lines first"]) from exc
    try:
        rows = list(pq.read_table(path).to_pylist())
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise ImportFailure("UL823", f"cannot read the parquet file: {_first_line(exc)}", path) from exc
    return [_as_row(r, path, k, None, None) for k, r in enumerate(rows)], [Origin(path, k) for k in range(len(rows))]


def _read_json(path: Path) -> tuple[list[dict[str, Any]], list[Origin]]:
    try:
        text = read_regular(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailure("UL823", "the file is not UTF-8 text", path) from exc
    except OSError as exc:
        raise ImportFailure("UL823", f"cannot read the file: {exc.strerror or exc}", path) from exc
    rows: list[dict[str, Any]] = []
    origins: list[Origin] = []
    if text.lstrip().startswith("["):  # one JSON array of rows
        try:
            data = load_json(text)
        except json.JSONDecodeError as exc:
            raise ImportFailure("UL823", f"malformed JSON: {exc.msg.lower()}", path, line=exc.lineno,
                                column=exc.colno) from exc
        place = _Lines(text)
        _check_surrogates(text, path, place)
        for k, (value, start) in enumerate(zip(data, _element_starts(text), strict=True)):
            line, column = place.at(start)
            rows.append(_as_row(value, path, k, line, column))
            origins.append(Origin(path, k, line, column))
        return rows, origins
    for lineno, raw in enumerate(json_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            value = load_json(raw)
        except json.JSONDecodeError as exc:
            raise ImportFailure("UL823", f"malformed JSON: {exc.msg.lower()}", path, line=lineno, column=exc.colno,
                                help=["a .json split is a JSON array, or one JSON object a line (JSON lines)"]) from exc
        if "\\" in raw:
            _check_surrogates(raw, path, None, lineno)
        rows.append(_as_row(value, path, len(rows), lineno, 1))
        origins.append(Origin(path, len(origins), lineno, 1))
    return rows, origins


def _as_row(value: Any, path: Path, index: int, line: int | None, column: int | None) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):  # MUSE's privleak files on GitHub are JSON arrays of strings: each is a document
        return {"text": value}
    what = "null" if value is None else type(value).__name__
    raise ImportFailure("UL822", f"row {index + 1} is {what}, not an object of columns", path, line=line,
                        column=column if line else None,
                        help=["a split's rows are JSON objects (`{\"question\": ..., \"answer\": ...}`), or strings "
                              "for a split of documents"])


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]|[^\s\[\]{},"]+', re.S)


def _element_starts(text: str) -> list[int]:
    """The offset of each element of the (valid) top-level JSON array ``text``."""
    starts: list[int] = []
    depth = 0
    expect = False
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if expect and depth == 1 and tok not in ("]", "}", ","):
            starts.append(m.start())
            expect = False
        if tok in ("[", "{"):
            depth += 1
            expect = depth == 1
        elif tok in ("]", "}"):
            depth -= 1
        elif tok == "," and depth == 1:
            expect = True
    return starts


class _Lines:
    """Offset -> (line, column), 1-based, with lines as :func:`~unlearnspec.inputs.json_lines` counts them."""

    def __init__(self, text: str) -> None:
        sep = "\n" if "\n" in text or "\r" not in text else "\r"
        self.breaks = [m.start() for m in re.finditer(re.escape(sep), text)]

    def at(self, offset: int) -> tuple[int, int]:
        k = bisect.bisect_left(self.breaks, offset)
        return k + 1, offset - (self.breaks[k - 1] + 1 if k else 0) + 1


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.S)


def lone_surrogate_at(text: str) -> int | None:
    """The offset of the first ``\\uXXXX`` escape in a JSON text that leaves a lone UTF-16 surrogate (a high half
    not followed by its low half, or a low half alone), or None. JSON parsers accept such escapes and give a
    string no UTF-8 file can hold."""
    pending: int | None = None
    pending_end = -1
    for m in _ESCAPE.finditer(text):
        code = int(m.group(1), 16) if m.group(1) else None
        if pending is not None:
            if code is not None and 0xDC00 <= code <= 0xDFFF and m.start() == pending_end:
                pending = None
                continue
            return pending
        if code is not None and 0xD800 <= code <= 0xDBFF:
            pending, pending_end = m.start(), m.end()
        elif code is not None and 0xDC00 <= code <= 0xDFFF:
            return m.start()
    return pending


def _check_surrogates(text: str, path: Path, place: _Lines | None, lineno: int | None = None) -> None:
    offset = lone_surrogate_at(text)
    if offset is None:
        return
    line, column = place.at(offset) if place else (lineno, offset + 1)
    raise ImportFailure("UL823", f"a lone surrogate escape {code_span(text[offset:offset + 6])}: half of a UTF-16 pair, which "
                        "is no character and cannot be written as UTF-8", path, line=line, column=column,
                        help=["a character beyond U+FFFF is escaped as a pair (`\\ud83d\\ude00`); re-export the file "
                              "from its source, or remove the broken escape"])


def require_columns(rows: Rows, required: Sequence[str], benchmark: str, split: str) -> None:
    """UL822 unless the split's first row has every required column."""
    if not rows.rows:
        raise ImportFailure("UL822", f"split {code_span(split)} holds no rows", rows.path,
                            help=[f"{benchmark}'s {code_span(split)} split is never empty; is this the right file?"])
    present = list(rows.rows[0])
    for col in required:
        if col not in rows.rows[0]:
            hint = difflib.get_close_matches(col, present, n=1)
            helps = [f"{benchmark}'s {code_span(split)} rows have the columns {_names(required)}"]
            if hint:
                helps.insert(0, f"did you mean {code_span(hint[0])}?")
            rows.fail(0, "UL822", f"split {code_span(split)} has no {code_span(col)} column (it has {_names(present)})", helps)


def _names(names: Iterable[str]) -> str:
    return ", ".join(code_span(n) for n in names) or "none"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].lower() if text else type(exc).__name__
