"""MUSE (Shi et al., arXiv:2407.06460): unlearning news articles (MUSE-News) or books (MUSE-Books).

Published as ``muse-bench/MUSE-News`` and ``muse-bench/MUSE-Books``, one folder per subset with a
parquet file per split (``verbmem/forget-00000-of-00001.parquet``), and on GitHub as JSON
(``data/news/verbmem/forget.json``). The subsets used here:

- ``raw`` (optional): ``forget``, ``retain1``, ``retain2``, ``holdout`` documents (``text``);
- ``verbmem``: ``forget`` — a passage cut into ``prompt`` and its true continuation ``gt`` (VerbMem);
- ``knowmem``: ``forget_qa`` and ``retain_qa`` — ``question`` / ``answer`` pairs (KnowMem, utility);
- ``privleak``: ``forget``, ``retain``, ``holdout`` documents (``text``) for membership inference (PrivLeak).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from unlearnspec.importers.base import Imported, missing_split, text_field
from unlearnspec.importers.sources import ImportFailure, Rows, locate, read_rows, require_columns

CORPORA = {"news": "MUSE-News", "books": "MUSE-Books"}


def detect_corpus(src: Path) -> str | None:
    """``news`` or ``books`` from the folder's name (``MUSE-News``, ``data/books``), or None: a whole word of the
    nearest folder name that holds one (``notebooks`` or ``newsletters`` is neither)."""
    for part in reversed(src.resolve().parts):
        words = set(re.split(r"[^a-z0-9]+", part.lower()))
        hits = [c for c in CORPORA if c in words]
        if len(hits) == 1:
            return hits[0]
    return None


def _texts(rows: Rows, split: str) -> list[dict[str, Any]]:
    require_columns(rows, ("text",), "MUSE", split)
    return [{"text": text_field(rows, i, "text", split)} for i in range(len(rows.rows))]


def _qa(rows: Rows, split: str) -> list[dict[str, Any]]:
    require_columns(rows, ("question", "answer"), "MUSE", split)
    return [{"question": text_field(rows, i, "question", split), "answer": text_field(rows, i, "answer", split)}
            for i in range(len(rows.rows))]


def _verbmem(rows: Rows, split: str) -> list[dict[str, Any]]:
    """A VerbMem item is a passage: the prompt followed by its true continuation, as one document."""
    require_columns(rows, ("prompt", "gt"), "MUSE", split)
    out = []
    for i in range(len(rows.rows)):
        prompt, gt = text_field(rows, i, "prompt", split), text_field(rows, i, "gt", split)
        joint = "" if prompt[-1:].isspace() or gt[:1].isspace() else " "
        out.append({"text": prompt + joint + gt})
    return out


def import_muse(src: Path, *, corpus: str | None = None, model: str = "builtin:tiny-bios", **_: Any) -> Imported:
    corpus = corpus or detect_corpus(src)
    if corpus not in CORPORA:
        raise ImportFailure("UL821", "cannot tell whether the source is MUSE-News or MUSE-Books", src,
                            help=["pass `--corpus news` or `--corpus books`"])
    prefix = f"muse-{corpus}"
    files: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, Path] = {}

    def take(subset: str, split: str, out_name: str, convert: Any, required: bool) -> bool:
        path = locate(src, split, under=subset)
        if path is None:
            if required:
                raise missing_split("MUSE", src, f"{subset}/{split}", f"`{subset}/{split}` as in `muse-bench/{CORPORA[corpus]}`")
            return False
        files[out_name] = convert(read_rows(path), f"{subset}/{split}")
        sources[out_name] = path
        return True

    forget = f"{prefix}-forget.jsonl"
    if not take("raw", "forget", forget, _texts, required=False):
        take("privleak", "forget", forget, _texts, required=True)
    take("verbmem", "forget", f"{prefix}-verbmem.jsonl", _verbmem, required=True)
    take("knowmem", "forget_qa", f"{prefix}-knowmem-forget.jsonl", _qa, required=True)
    take("knowmem", "retain_qa", f"{prefix}-knowmem-retain.jsonl", _qa, required=True)
    take("privleak", "holdout", f"{prefix}-holdout.jsonl", _texts, required=True)
    retain = f"{prefix}-retain.jsonl"
    if not take("raw", "retain2", retain, _texts, required=False):
        take("privleak", "retain", retain, _texts, required=True)
    context = {"corpus": corpus, "title": CORPORA[corpus], "model": model, "prefix": prefix,
               "category": "work" if corpus == "books" else "records"}
    return Imported("muse", files, f"{prefix}.unlearn", "muse.unlearn.j2", context, sources)
