"""WMDP (Li et al., arXiv:2403.03218): multiple-choice questions that proxy hazardous knowledge.

Published as ``cais/wmdp`` with configurations ``wmdp-bio``, ``wmdp-cyber`` and ``wmdp-chem``, each a
``test`` split (``wmdp-bio/test-00000-of-00001.parquet``) of rows with ``question``, ``choices`` (four
strings) and ``answer`` (the index of the correct choice). They are written as the project's
multiple-choice records, in the same convention.

``cais/wmdp-corpora`` is the text unlearning methods train on (RMU, the paper's method): configurations
``cyber-forget-corpus``, ``cyber-retain-corpus`` and ``bio-retain-corpus``, each a ``train`` split of one column
``text`` (``cyber-forget-corpus/train-00000-of-00001.parquet``; the card's ``configs:``). The bio forget corpus is
not public: it is given on request (a form linked from the card), and read where it was obtained
(``bio-forget-corpus.jsonl``, whose rows also have ``title``, ``abstract`` and ``doi``). Given with ``corpora``, the
corpora of each imported subset become documents (``text`` records): the forget corpora the target's ``forget`` set,
the retain corpora the ``retain`` set, and the questions stay the ``test`` set that decides the claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearnspec.importers.base import Imported, text_field
from unlearnspec.importers.cache import cache_root_help
from unlearnspec.importers.sources import (
    ImportFailure,
    Rows,
    Source,
    did_you_mean,
    hub_snapshot,
    locate,
    locate_any,
    read_rows,
    require_columns,
)
from unlearnspec.markdown import code_span

SUBSETS = ("bio", "cyber", "chem")
EXPECTED = ("expected `wmdp-bio/test-*.parquet` (as in `cais/wmdp`) or `wmdp-bio.jsonl`, and the same for "
            "`cyber` and `chem`")
#: subset -> its corpora in `cais/wmdp-corpora`: (forget, retain). WMDP publishes none for chem.
CORPORA = {"bio": ("bio-forget-corpus", "bio-retain-corpus"), "cyber": ("cyber-forget-corpus", "cyber-retain-corpus")}
ON_REQUEST = "bio-forget-corpus"
CORPORA_EXPECTED = ("expected `cyber-forget-corpus/train-*.parquet` (as in `cais/wmdp-corpora`) or "
                    "`cyber-forget-corpus.jsonl`, and the same for `cyber-retain-corpus`, `bio-retain-corpus` and, "
                    "where it was obtained on request, `bio-forget-corpus`")


def _find(src: Path, subset: str) -> Source | None:
    return (locate(src, "test", under=f"wmdp-{subset}")
            or locate_any(src, (f"wmdp-{subset}", f"wmdp_{subset}", subset)))


def _mcq(rows: Rows, split: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The split's multiple-choice records, and a warning for each row whose choices repeat a text."""
    require_columns(rows, ("question", "choices", "answer"), "WMDP", split)
    out = []
    repeats: list[str] = []
    for i, row in enumerate(rows.rows):
        choices, answer = row.get("choices"), row.get("answer")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            rows.fail(i, "UL822", f"{rows.name(i)} of {code_span(split)}: `choices` must be a list of at least two strings")
        for k, choice in enumerate(choices):
            if not choice.strip():  # an empty continuation scores log-likelihood 0, the highest: it always wins `acc`
                rows.fail(i, "UL822", f"{rows.name(i)} of {code_span(split)}: choice {k} is empty",
                          ["every choice is scored as the continuation of the question; an empty one has "
                           "log-likelihood 0, beats every real choice, and has no length to normalise by"])
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            rows.fail(i, "UL822", f"{rows.name(i)} of {code_span(split)}: `answer` must be the index of the correct choice "
                      f"(0 to {len(choices) - 1}), not {code_span(answer)}", ["WMDP's `answer` is an integer index into `choices`"])
        same = [k for k, c in enumerate(choices) if [x.strip() for x in choices].count(c.strip()) > 1]
        if same:
            line = rows.line(i)
            repeats.append(f"{rows.name(i)}{f' (line {line})' if line else ''}: choices {', '.join(map(str, same))} "
                           "are the same text" + (" and one is the correct choice: `acc` cannot tell them apart"
                                                  if answer in same else ""))
        out.append({"question": text_field(rows, i, "question", split), "choices": list(choices), "answer": answer})
    warnings = []
    if repeats:
        warnings.append(f"{code_span(split)}: {len(repeats)} question{'s' if len(repeats) > 1 else ''} repeat a choice "
                        f"({rows.origin(0).file.name}): " + "; ".join(repeats[:5])
                        + (f"; and {len(repeats) - 5} more" if len(repeats) > 5 else ""))
    return out, warnings


def import_wmdp(src: Path, *, subsets: tuple[str, ...] | None = None, corpora: Path | None = None,
                model: str = "builtin:tiny-bios", **_: Any) -> Imported:
    """``subsets`` None: every subset the folder has. Named ones must all be there (UL821); repeats count once.
    ``corpora``: a `cais/wmdp-corpora` folder, whose corpora for the imported subsets become the forget and retain
    sets."""
    named = subsets is not None
    wanted = list(dict.fromkeys(subsets)) if subsets is not None else list(SUBSETS)
    if not wanted:
        raise ImportFailure("UL821", "`--subsets` names no WMDP subset", src,
                            help=["name one or more of `bio`, `cyber` and `chem`, or leave `--subsets` out for all"])
    imported = Imported("wmdp", {}, "wmdp.unlearn", "wmdp.unlearn.j2")
    src, snapshot = hub_snapshot(src)
    if snapshot:
        imported.notes.append(snapshot)
    for subset in wanted:
        if subset not in SUBSETS:
            raise ImportFailure("UL821", f"{code_span(subset)} is not a WMDP subset", src,
                                help=["WMDP's subsets are `bio`, `cyber` and `chem`"])
        source = _find(src, subset)
        if source is None:
            if named:
                raise ImportFailure("UL821", f"no `wmdp-{subset}` subset in the WMDP source folder, and `--subsets` "
                                    "names it", src, help=[EXPECTED, "leave it out of `--subsets` to import the others"])
            continue
        records, warnings = _mcq(read_rows(source), f"wmdp-{subset}")
        imported.take(f"wmdp-{subset}.jsonl", source, records)
        imported.warnings += warnings
    if not imported.files:
        # `cais/wmdp-corpora`'s configurations: `cyber-forget-corpus.jsonl`, or `cyber-forget-corpus/train-*.parquet`
        found = sorted({p.name for p in src.glob("*corpus*")} | {p.name for p in src.glob("*/*corpus*")})[:3]
        raise ImportFailure("UL821", "no WMDP subset in the source folder", src, help=[EXPECTED, *(
            [f"{', '.join(code_span(c) for c in found)}: these are `cais/wmdp-corpora`, the text unlearning methods "
             "train on, not the questions; give them beside the questions (`cais/wmdp`): "
             f"`unlearnspec data import wmdp QUESTIONS --corpora {src} --out DIR`"]
            if found else cache_root_help(src))])
    questions = list(imported.files)
    imported_subsets = [s for s in wanted if f"wmdp-{s}.jsonl" in imported.files]
    forget, retain = _corpora(imported, corpora, imported_subsets) if corpora is not None else ([], [])
    imported.context = {"model": model, "subsets": imported_subsets, "questions": questions, "forget": forget,
                        "retain": retain}
    imported.disjoint({**dict.fromkeys(forget, "forget"), **dict.fromkeys(retain, "preserved")})
    return imported


def _passages(rows: Rows, split: str) -> tuple[list[dict[str, Any]], int]:
    """A corpus's passages as documents, and how many blank ones were left out (no text to train on; RMU's own
    loader drops every passage of 50 characters or fewer)."""
    require_columns(rows, ("text",), "WMDP", split)
    out: list[dict[str, Any]] = []
    blank = 0
    for i, row in enumerate(rows.rows):
        text = row.get("text")
        if not isinstance(text, str):
            rows.fail(i, "UL822", f"{rows.name(i)} of {code_span(split)}: `text` must be a string, not "
                      f"{'null' if text is None else type(text).__name__}", ["the corpora's rows are passages of text"])
        if text.strip():
            out.append({"text": text})
        else:
            blank += 1
    return out, blank


def _corpora(imported: Imported, folder: Path, subsets: list[str]) -> tuple[list[str], list[str]]:
    """Import the forget and retain corpora of ``subsets`` from ``folder``; their output files, forget and retain."""
    if not any(s in CORPORA for s in subsets):
        raise ImportFailure("UL821", f"no corpora for {', '.join(code_span(s) for s in subsets)}: `cais/wmdp-corpora` "
                            "has corpora for `bio` and `cyber` only", folder,
                            help=["import `bio` or `cyber` questions with `--corpora`, or leave `--corpora` out"])
    folder, snapshot = hub_snapshot(folder)
    if snapshot:
        imported.notes.append(snapshot)
    sets: tuple[list[str], list[str]] = ([], [])
    missing: list[str] = []
    for subset in subsets:
        if subset not in CORPORA:
            imported.notes.append(f"`{subset}` has no corpus in `cais/wmdp-corpora`: its questions are a test set only")
            continue
        for name, into in zip(CORPORA[subset], sets, strict=True):
            source = locate(folder, name)
            if source is None:
                missing.append(name)
                continue
            records, blank = _passages(read_rows(source), name)
            imported.take(f"wmdp-{name}.jsonl", source, records)
            into.append(f"wmdp-{name}.jsonl")
            if blank:
                imported.notes.append(f"{code_span(name)}: {blank} blank passage{'s were' if blank > 1 else ' was'} left "
                                      "out (no text to train on)")
    if not any(sets):
        raise ImportFailure("UL821", "no WMDP corpus in the `--corpora` folder", folder,
                            help=[*did_you_mean(folder, missing[0]), *cache_root_help(folder), CORPORA_EXPECTED])
    for name in missing:
        imported.notes.append(
            f"no {code_span(name)} in the `--corpora` folder: "
            + ("WMDP's bio forget corpus is not public, it is given on request (the form linked from "
               "`cais/wmdp-corpora`'s card); add it as `bio-forget-corpus.jsonl` to make it the bio forget set"
               if name == ON_REQUEST else "the starter spec has no such set"))
    return sets
