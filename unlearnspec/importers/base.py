"""What every importer returns, row conversion helpers, and writing the output folder."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from pydantic import ValidationError

from unlearnspec.catalog import METRICS
from unlearnspec.compiler.syntax import quote
from unlearnspec.importers.cache import cache_root_help
from unlearnspec.importers.sources import ImportFailure, Rows, Source, did_you_mean
from unlearnspec.io import atomic_write_bytes
from unlearnspec.markdown import code_span
from unlearnspec.records import Record, sha256_path


@dataclass
class Imported:
    """The converted splits (output file name -> records) and the starter spec that uses them."""

    benchmark: str
    files: dict[str, list[dict[str, Any]]]
    spec_name: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)  # output file name -> the split it came from
    notes: list[str] = field(default_factory=list)  # for the import summary: files left out, choices made
    warnings: list[str] = field(default_factory=list)  # for the import summary: rows that convert but look wrong
    also_read: list[tuple[Source, str]] = field(default_factory=list)  # files read for no output file, and why
    merged: dict[str, list[tuple[Source, str]]] = field(default_factory=dict)  # output file -> files merged into it
    #: the role each output file has in the starter spec (``forget``, ``preserved``, ``held out``): :meth:`disjoint`
    roles: dict[str, str] = field(default_factory=dict)

    def read(self) -> list[Source]:
        """Every source the import read: each output file's own and merged ones, and those read for no output."""
        return [*self.sources.values(), *(s for extra in self.merged.values() for s, _ in extra),
                *(s for s, _ in self.also_read)]

    @property
    def manifest_name(self) -> str:
        """The provenance file beside the starter spec: ``tofu-forget10.import.json``."""
        return self.spec_name.removesuffix(".unlearn") + ".import.json"

    def take(self, out_name: str, source: Source, records: list[dict[str, Any]]) -> None:
        """Record a converted split, and note the loose files its shards were preferred to."""
        self.files[out_name] = records
        self.sources[out_name] = source
        self.note_ignored(source)

    def merge(self, out_name: str, source: Source, why: str) -> None:
        """Record a split whose columns were added to the rows of output file ``out_name`` (which has its own source):
        the manifest lists it among that file's sources, with ``why``."""
        self.merged.setdefault(out_name, []).append((source, why))
        self.note_ignored(source)

    def disjoint(self, roles: dict[str, str]) -> None:
        """Record each output file's role (``roles``: file -> ``forget``, ``preserved`` or ``held out``; files not
        written are skipped) and warn of every preserved or held-out file that holds a forget record: what the
        model is trained on for it (its text, or its question and answer), as the compiler compares them (UL209).
        FRAMEWORK.md §7: what is forgotten can be neither kept nor a non-member; the benchmark as published has
        no such record, so one is an edited or mixed-up split, said here and refused by the starter spec's check."""
        self.roles = {name: role for name, role in roles.items() if name in self.files}
        forget: dict[str, tuple[str, int]] = {}
        for name in (n for n, role in self.roles.items() if role == "forget"):
            for i, record in enumerate(self.files[name], start=1):
                for text in _training_texts(record):
                    forget.setdefault(text, (name, i))
        for name, role in self.roles.items():
            if role == "forget":
                continue
            found = ((i, next((t for t in _training_texts(record) if t in forget), None))
                     for i, record in enumerate(self.files[name], start=1))
            shared = [(i, text) for i, text in found if text is not None]
            if not shared:
                continue
            (i, text), n = shared[0], len(shared)
            where, k = forget[text]
            one = " ".join(text.split())
            self.warnings.append(
                f"{n} record{'s' if n > 1 else ''} of {code_span(name)} {'are' if n > 1 else 'is'} also "
                f"{'forget records' if n > 1 else 'a forget record'}, so {'they are' if n > 1 else 'it is'} both "
                f"forgotten and {role}: record {i} repeats record {k} of {code_span(where)} "
                f"(\"{one if len(one) <= 60 else one[:57] + '...'}\"); the source's splits share items, so "
                "`unlearnspec check` refuses the starter spec (UL209) until they are removed from one of them")

    def describe(self, out_name: str) -> str:
        """Where an output file came from, for the summary: its split, and ``+ NAME`` for each split merged in."""
        extra = "".join(f" + {s.path.name}" for s, _ in self.merged.get(out_name, []))
        return self.sources[out_name].describe() + extra

    def note_ignored(self, source: Source) -> None:
        for path in source.ignored:
            self.notes.append(f"ignored {code_span(path)}: the hub's shards {code_span(source.path.name)} are the split (the dataset "
                              "card's `configs:` name them; a loose file beside them is an older upload)")


def _training_texts(record: dict[str, Any]) -> list[str]:
    """What the model is trained on for a converted record (:meth:`~unlearnspec.records.Record.identity`); none for a
    record the record reader would not take (the compiler reports it)."""
    try:
        return list(Record.model_validate(record).identity)
    except ValidationError:
        return []


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("unlearnspec.importers", "templates"),
                             autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["q"] = quote  # the one quoting function (compiler.syntax): a control character it cannot write
    env.filters["qlist"] = lambda names: ", ".join(quote(n) for n in names)  # raises UnquotableError
    env.globals["bound"] = default_bound
    return env


def default_bound(metric: str) -> str:
    """A metric's default evidence bound as a spec writes it (``<= 10``), from the catalog."""
    t = METRICS[metric].threshold
    return f"{t.op} {t.value:g}"


def render_spec(imported: Imported) -> str:
    return _env().get_template(imported.template).render(files=imported.files, **imported.context)


def write_import(imported: Imported, out: Path, *, force: bool = False) -> list[Path]:
    """Write every converted split as JSONL and the starter spec into ``out``.

    Files already in ``out`` are never replaced unless ``force``: an import does not overwrite data
    someone may have edited (UL824). Every file is rendered and encoded before the first is written, each
    is written atomically, and a failure part-way puts back what was there (a replaced file's old bytes; a
    new file removed; a folder the import created removed), so no partial import is ever left behind.
    """
    targets = [out / name for name in imported.files] + [out / imported.spec_name, out / imported.manifest_name]
    for target in targets:  # never over a file the import reads, `--force` or not
        for source in imported.read():
            for read in (source.path, *source.files):
                if target.exists() and read.exists() and os.path.samefile(target, read):
                    raise ImportFailure("UL824", f"{code_span(target.name)} in the output folder is the source file it would "
                                        "be converted from", target,
                                        help=["choose an output folder other than the source's"])
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ImportFailure("UL824", f"{code_span(existing[0].name)} already exists in the output folder", existing[0],
                            help=["choose another `--out DIR`, or pass `--force` to replace the imported files"])
    payload: list[tuple[Path, bytes]] = []
    for name, records in imported.files.items():
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        try:
            payload.append((out / name, text.encode("utf-8")))
        except UnicodeEncodeError as exc:  # the readers refuse lone surrogates; this is the last guard
            origin = imported.sources.get(name)
            raise ImportFailure("UL823", f"{code_span(name)} would hold a character UTF-8 cannot encode "
                                f"(U+{ord(exc.object[exc.start]):04X}, a lone surrogate)",
                                origin.path if origin else None,
                                help=["re-export the split from its source; nothing was written"]) from exc
    # before any file is written: a value the spec cannot quote leaves the folder as it was
    payload.append((out / imported.spec_name, render_spec(imported).encode("utf-8")))
    payload.append((out / imported.manifest_name, manifest(imported, payload)))
    _write_all(out, payload)
    return [p for p, _ in payload]


def manifest(imported: Imported, payload: Sequence[tuple[Path, bytes]]) -> bytes:
    """The import's provenance as JSON: for each file written, its sha256 and record count and the source files it
    was converted from, each with its sha256 and size (a ``save_to_disk`` folder: the sha256 of its files,
    :func:`~unlearnspec.records.sha256_path`), a split merged into it with ``why``; the files read for no output of their own; those left out."""
    def described(source: Source) -> list[dict[str, Any]]:
        try:
            return [{"path": os.path.abspath(f), "sha256": sha256_path(f),
                     "bytes": None if f.is_dir() else f.stat().st_size} for f in source.files]
        except OSError as exc:  # read a moment ago; nothing is written yet
            where = Path(exc.filename) if exc.filename else source.path
            raise ImportFailure("UL823", f"cannot read the file again to record its sha256: {exc.strerror or exc}",
                                where, help=["nothing was written; check the file and run the import again"]) from exc

    written = {p.name: b for p, b in payload}
    files = {name: {"records": len(records), "sha256": hashlib.sha256(written[name]).hexdigest(),
                    "sources": [*(described(imported.sources[name]) if name in imported.sources else []),
                                *(dict(entry, why=why) for source, why in imported.merged.get(name, [])
                                  for entry in described(source))]}
             for name, records in imported.files.items()}
    read = imported.read()
    data = {"benchmark": imported.benchmark, "spec": imported.spec_name,
            "spec_sha256": hashlib.sha256(written[imported.spec_name]).hexdigest(), "files": files,
            "also_read": [dict(entry, why=why) for source, why in imported.also_read for entry in described(source)],
            "ignored": sorted({os.path.abspath(p) for s in read for p in s.ignored})}
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _write_all(out: Path, payload: Sequence[tuple[Path, bytes]]) -> None:
    """Write each file atomically; on any failure put back every file written so far and remove folders made."""
    created = [p for p in (out, *out.parents) if not p.exists()]  # the folders this import makes, deepest first
    before = {p: p.read_bytes() for p, _ in payload if p.is_file()}
    done: list[Path] = []
    try:
        for path, data in payload:
            atomic_write_bytes(path, data)
            done.append(path)
    except BaseException:
        for path in reversed(done):
            with contextlib.suppress(OSError):
                if path in before:
                    atomic_write_bytes(path, before[path])
                else:
                    path.unlink()
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def text_field(rows: Rows, i: int, column: str, split: str) -> str:
    """A required string cell; UL822 with the row's line when it is missing, empty or not a string."""
    value = rows.rows[i].get(column)
    if not isinstance(value, str) or not value.strip():
        rows.fail(i, "UL822", f"{rows.name(i)} of split {code_span(split)} has no text in {code_span(column)}",
                  [f"every row of {code_span(split)} needs a non-empty string {code_span(column)}"])
    return value


def str_list(rows: Rows, i: int, column: str, split: str, *, what: str = "") -> list[str]:
    """An optional list-of-strings cell (a single string counts as a list of one). An empty or blank string in
    it is UL822: it would be scored as text (an empty wrong answer, an empty paraphrase); ``what`` says why."""
    value = rows.rows[i].get(column)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if isinstance(items, str) or not isinstance(items, Sequence) or not all(isinstance(v, str) for v in items):
        rows.fail(i, "UL822", f"{rows.name(i)} of split {code_span(split)}: {code_span(column)} must be a list of strings",
                  [f"{code_span(column)} is a list of strings (or one string), as the benchmark publishes it"])
    for k, item in enumerate(items):
        if not item.strip():
            where = "" if isinstance(value, str) else f" (item {k + 1} of {len(items)})"
            rows.fail(i, "UL822", f"{rows.name(i)} of split {code_span(split)}: {code_span(column)} is empty{where}",
                      [f"every {code_span(column)} of {code_span(split)} is non-empty text{what}"])
    return list(items)


def missing_split(benchmark: str, src: Path, split: str, expected: str, *, under: str | None = None) -> ImportFailure:
    folder = src / under if under else src
    return ImportFailure("UL821", f"no {code_span(split)} split in the {benchmark} source folder", src,
                         help=[*did_you_mean(folder, split.rsplit("/", 1)[-1]), *cache_root_help(src),
                               f"expected {expected}", "a split may be a .jsonl, .json or .parquet file, the hub's "
                               "parquet shards, a `save_to_disk` folder, or a configuration in the `datasets` cache"])
