"""MUSE (Shi et al., arXiv:2407.06460): unlearning news articles (MUSE-News) or books (MUSE-Books).

Published as ``muse-bench/MUSE-News`` and ``muse-bench/MUSE-Books``, one folder per subset with a
parquet file per split (``verbmem/forget-00000-of-00001.parquet``), and as JSON files in the layout of
the MUSE repository's ``data/news/`` (``verbmem/forget.json``). The subsets used here:

- ``privleak``: ``forget`` and ``holdout`` — windows of about 2,048 tokens cut across the concatenated
  forget and holdout articles. PrivLeak compares the two, so ``privleak/forget`` is the forget set's
  documents: members and non-members are cut the same way (FRAMEWORK.md §7: a length or format shift
  alone separates them). ``raw/forget``, the whole articles, is not a forget file (docs/data.md#muse);
- ``verbmem``: ``forget`` — a window of the forget articles cut into ``prompt`` and its true
  continuation ``gt`` (VerbMem), rejoined into one document;
- ``knowmem``: ``forget_qa`` and ``retain_qa`` — ``question`` / ``answer`` pairs (KnowMem, utility);
  ``retain_qa`` asks about ``raw/retain2``, MUSE's evaluation retain set;
- ``raw``: ``retain1``, the set MUSE regularises unlearning on (the retain set here), and ``forget``,
  read only to rejoin VerbMem's prompts with their continuations exactly.

Older names are accepted for ``knowmem/retain_qa`` (``retain2_qa``, as in the GitHub data and the hub's
first uploads) and ``knowmem/forget_qa`` (``forget-qa``), and for the corpora: the repository's first release
kept them as ``data/bbc`` (News) and ``data/hp`` (Books).

The repository's loader also writes each ``raw`` split as text, the articles joined by a blank line
(``raw/forget.txt``, ``raw/retain1.txt``: the files its ``unlearn.py`` trains on). ``raw/forget.txt`` is that
joined text exactly, all the VerbMem look-up needs; ``raw/retain1.txt`` cannot be cut back into articles (a
blank line also separates an article's paragraphs), so its paragraphs are the retain documents. Beside a
``raw/SPLIT.json`` or shards of the same articles the ``.txt`` is left out; beside different ones it is UL821.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unlearnspec.importers.base import Imported, missing_split, text_field
from unlearnspec.importers.sources import (
    ImportFailure,
    Rows,
    Source,
    hub_snapshot,
    locate_any,
    read_rows,
    read_text,
    require_columns,
)
from unlearnspec.markdown import code_span

CORPORA = {"news": "MUSE-News", "books": "MUSE-Books"}
#: a word of a folder's name -> the corpus it names: the hub's and the repository's names, and the first
#: release's `data/bbc` and `data/hp` (BBC news articles; the Harry Potter books)
CORPUS_WORDS = {"news": "news", "bbc": "news", "books": "books", "hp": "books"}
#: (subset, split) -> the names it was published under, current first
NAMES = {("privleak", "forget"): ("forget",), ("privleak", "holdout"): ("holdout",),
         ("verbmem", "forget"): ("forget",), ("knowmem", "forget_qa"): ("forget_qa", "forget-qa"),
         ("knowmem", "retain_qa"): ("retain_qa", "retain2_qa", "retain2-qa"),
         ("raw", "retain1"): ("retain1",), ("raw", "forget"): ("forget",)}
#: characters of context either side of a VerbMem cut looked up in the raw forget articles
CONTEXT = 40
_NO_SPACE_AFTER = "([{“‘"
_NO_SPACE_BEFORE = ".,;:!?)]}%”’…"
_CLITIC = re.compile(r"['’](?:s|t|re|ve|ll|d|m)\b")


def detect_corpus(src: Path) -> str | None:
    """``news`` or ``books`` from the folder's name (``MUSE-News``, ``data/books``, ``data/bbc``), or None: a whole
    word of the nearest folder name that holds one (``notebooks`` or ``newsletters`` is neither)."""
    for part in reversed(src.resolve().parts):
        words = set(re.split(r"[^a-z0-9]+", part.lower()))
        hits = {CORPUS_WORDS[w] for w in words & CORPUS_WORDS.keys()}
        if len(hits) == 1:
            return hits.pop()
    return None


def _texts(rows: Rows, split: str) -> list[dict[str, Any]]:
    require_columns(rows, ("text",), "MUSE", split)
    return [{"text": text_field(rows, i, "text", split)} for i in range(len(rows.rows))]


def _qa(rows: Rows, split: str) -> list[dict[str, Any]]:
    require_columns(rows, ("question", "answer"), "MUSE", split)
    return [{"question": text_field(rows, i, "question", split), "answer": text_field(rows, i, "answer", split)}
            for i in range(len(rows.rows))]


def joint(prompt: str, gt: str, corpus: str | None = None) -> tuple[str, bool]:
    """What stood between a VerbMem prompt and its continuation: ``""`` or ``" "``, and whether the raw articles
    decided it.

    MUSE cut each passage at a token and decoded the two halves apart; the tokenizer's decode drops the
    space a word-initial token carries, so ``gt`` never shows whether a space preceded it. When the forget
    articles are at hand, the text around the cut is looked up in them. Otherwise: no space after whitespace or an
    opening bracket or quote (a straight ``"`` after a space opens), before whitespace, closing punctuation, a
    closing quote (a ``"`` before a space or punctuation) or a clitic (``'s``), or between two digits (a number cut
    between its digits); a space elsewhere — a cut inside a word is then read as between words."""
    if corpus:
        tail, head = prompt[-CONTEXT:], gt[:CONTEXT]
        found = [j for j in ("", " ") if tail + j + head in corpus]
        if len(found) == 1:
            return found[0], True
    opening_quote = prompt[-1:] == '"' and (len(prompt) == 1 or prompt[-2].isspace() or prompt[-2] in _NO_SPACE_AFTER)
    closing_quote = gt[:1] == '"' and (len(gt) == 1 or not gt[1].isalnum())
    if (prompt[-1:].isspace() or gt[:1].isspace() or prompt[-1:] in _NO_SPACE_AFTER or opening_quote
            or gt[:1] in _NO_SPACE_BEFORE or closing_quote or _CLITIC.match(gt)
            or (prompt[-1:].isdigit() and gt[:1].isdigit())):
        return "", False
    return " ", False


def _verbmem(rows: Rows, split: str, corpus: str | None) -> tuple[list[dict[str, Any]], int]:
    """A VerbMem item is a window of the forget articles: its prompt and true continuation, rejoined as one
    document; also how many joins the raw articles decided."""
    require_columns(rows, ("prompt", "gt"), "MUSE", split)
    out = []
    decided = 0
    for i in range(len(rows.rows)):
        prompt, gt = text_field(rows, i, "prompt", split), text_field(rows, i, "gt", split)
        sep, known = joint(prompt, gt, corpus)
        decided += known
        out.append({"text": prompt + sep + gt})
    return out, decided


def import_muse(src: Path, *, corpus: str | None = None, model: str = "builtin:tiny-bios", **_: Any) -> Imported:
    corpus = corpus or detect_corpus(src)
    if corpus not in CORPORA:
        raise ImportFailure("UL821", "cannot tell whether the source is MUSE-News or MUSE-Books", src,
                            help=["pass `--corpus news` or `--corpus books`"])
    prefix = f"muse-{corpus}"
    imported = Imported("muse", {}, f"{prefix}.unlearn", "muse.unlearn.j2")
    src, snapshot = hub_snapshot(src)
    if snapshot:
        imported.notes.append(snapshot)

    def find(subset: str, split: str) -> Source | None:
        found = locate_any(src, NAMES[subset, split], under=subset)
        return _raw_text(imported, src, split, found) if subset == "raw" else found

    def need(subset: str, split: str) -> Source:
        found = find(subset, split)
        if found is None:
            raise missing_split("MUSE", src, f"{subset}/{split}",
                                f"`{subset}/{split}` as in `muse-bench/{CORPORA[corpus]}`", under=subset)
        return found

    def take(subset: str, split: str, out_name: str, convert: Callable[[Rows, str], list[dict[str, Any]]],
             required: bool = True) -> bool:
        source = need(subset, split) if required else find(subset, split)
        if source is None:
            return False
        imported.take(out_name, source, convert(read_rows(source), f"{subset}/{split}"))
        return True

    # the forget documents are PrivLeak's members: windows cut as the holdout's non-members are
    take("privleak", "forget", f"{prefix}-forget.jsonl", _texts)
    raw_forget = find("raw", "forget")
    articles = None
    if raw_forget is not None:
        imported.note_ignored(raw_forget)
        articles = _joined(raw_forget, "raw/forget")
        imported.also_read.append((raw_forget, "to rejoin VerbMem's prompts with their continuations"))
        imported.notes.append(f"`raw/forget` ({raw_forget.describe()}), the whole articles, is not a forget file: "
                              "membership and PrivLeak compare the forget documents with `privleak/holdout`'s windows, "
                              "so the forget documents are MUSE's windows of those articles (`privleak/forget`, "
                              "`verbmem/forget`); it was read to rejoin VerbMem's prompts with their continuations")
    verbmem = need("verbmem", "forget")
    records, decided = _verbmem(read_rows(verbmem), "verbmem/forget", articles)
    imported.take(f"{prefix}-verbmem.jsonl", verbmem, records)
    rule = len(records) - decided
    if rule:
        imported.notes.append(f"VerbMem: {rule} of {len(records)} prompts were rejoined with their continuations by "
                              "the punctuation rule" + ("" if articles else " (no `raw/forget` to look them up in)")
                              + "; a prompt cut inside a word is read as cut between words")
    take("knowmem", "forget_qa", f"{prefix}-knowmem-forget.jsonl", _qa)
    take("knowmem", "retain_qa", f"{prefix}-knowmem-retain.jsonl", _qa)
    take("privleak", "holdout", f"{prefix}-holdout.jsonl", _texts)
    has_retain = take("raw", "retain1", f"{prefix}-retain.jsonl", _texts, required=False)
    retain_source = imported.sources.get(f"{prefix}-retain.jsonl")
    if retain_source is not None and retain_source.path.suffix == ".txt":
        imported.notes.append(f"{code_span('raw/' + retain_source.path.name)} holds MUSE's articles joined by blank lines, "
                              "which also separate their paragraphs: its "
                              f"{len(imported.files[f'{prefix}-retain.jsonl'])} paragraphs are the retain documents "
                              "(MUSE's own recipe cuts the file into 2,048-token windows)")
    if not has_retain:
        imported.notes.append("no `raw/retain1`: the starter spec has no retain set. MUSE regularises unlearning on "
                              "`raw/retain1`; `raw/retain2` (and `privleak/retain`, windows of it) is what `knowmem/retain_qa` "
                              "asks about, and training on it would inflate the utility measured there")
    imported.context = {"corpus": corpus, "title": CORPORA[corpus], "model": model, "prefix": prefix,
                        "category": "work" if corpus == "books" else "records", "has_retain": has_retain}
    imported.disjoint({**{f"{prefix}-{k}.jsonl": "forget" for k in ("forget", "verbmem", "knowmem-forget")},
                       f"{prefix}-holdout.jsonl": "held out", f"{prefix}-retain.jsonl": "preserved",
                       f"{prefix}-knowmem-retain.jsonl": "preserved"})
    return imported


def _joined(source: Source, split: str) -> str:
    """A ``raw`` split as one text, its articles joined by a blank line: a ``.txt`` file as it stands."""
    if source.path.suffix == ".txt":
        return read_text(source.path)
    return "\n\n".join(r["text"] for r in _texts(read_rows(source), split))


def _raw_text(imported: Imported, src: Path, split: str, found: Source | None) -> Source | None:
    """``raw/SPLIT``: ``found`` (a JSON file, shards, ...) or else the loader's ``raw/SPLIT.txt``. Both present: the
    ``.txt`` must be ``found``'s articles joined by blank lines (it is then left out, since the articles are whole
    there), or the two differ and the importer does not guess which is current (UL821)."""
    txt = src / "raw" / f"{split}.txt"
    if not txt.is_file():
        return found
    text_source = Source(txt, (txt,))
    if found is None:
        return text_source
    if read_text(txt).rstrip() != _joined(found, f"raw/{split}").replace("\r\n", "\n").rstrip():
        raise ImportFailure("UL821", f"split `raw/{split}` is in two places that differ: {code_span(found.path.name)} and "
                            f"{code_span(txt.name)}", txt.parent,
                            help=[f"{code_span(txt.name)} is MUSE's articles joined by blank lines; keep the one "
                                  "that is current (the importer does not guess which)"])
    imported.also_read.append((text_source, f"compared with {found.path.name}: the same articles"))
    imported.notes.append(f"{code_span('raw/' + txt.name)} was left out: it is {code_span(found.path.name)}'s articles "
                          "joined by blank lines, and the articles are whole there")
    return found
