"""TOFU (Maini et al., arXiv:2401.06121): question-answer pairs about 200 fictitious authors.

Published as ``locuslab/TOFU``: one file per configuration (``forget01.json`` … JSON lines with
``question`` and ``answer``; the ``*_perturbed`` ones add ``paraphrased_answer`` and the list
``perturbed_answer``, which TOFU's truth ratio compares). ``forgetNN`` pairs with ``retain(100-NN)``
(the rest of the authors, trained on by the reference model) and ``holdoutNN`` (authors of the same
kind never trained on); ``real_authors`` and ``world_facts`` measure model utility, and TOFU's evaluation
reads them from ``real_authors_perturbed`` and ``world_facts_perturbed`` (the same questions with
``perturbed_answer``; ``config/eval_everything.yaml`` in the TOFU repository, which ships only those two in
``data/``). The hub's parquet branch (``refs/convert/parquet``) holds the same configurations as
``forget10/train/0000.parquet``; the hub's first upload named the files ``forget10_dataset.json``,
``retain90_dataset.json`` (its card at commit ``3375dc8``).

``retain_perturbed`` is the retain split's perturbed version: 400 questions of the retain authors (in every
``retainNN``) with ``paraphrased_answer`` and ``perturbed_answer``, the retain truth ratio TOFU's evaluation puts into
model utility (first of ``eval_everything.yaml``'s ``split_list``). It covers a part of the retain split, so it cannot
stand for it as ``forgetNN_perturbed`` stands for ``forgetNN``: its columns are added to the retain rows that ask the
same question (by question text) and give the same answer; its rows about questions the retain split does not hold
are left out, so the retain set stays the retain split (docs/data.md#tofu).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearnspec.importers.base import Imported, missing_split, str_list, text_field
from unlearnspec.importers.sources import (
    ImportFailure,
    Rows,
    hub_snapshot,
    locate,
    read_rows,
    require_columns,
)
from unlearnspec.markdown import code_span

#: why an empty string in each list column is refused (UL822)
WHY_EMPTY = {"perturbed_answer": ": an empty wrong answer would be compared in the truth ratio",
             "paraphrased_answer": ": it is the truth ratio's denominator",
             "paraphrased_question": ": a `paraphrased` probe would ask it"}

#: forget split -> (its retain split, its holdout split)
SPLITS = {"forget01": ("retain99", "holdout01"), "forget05": ("retain95", "holdout05"),
          "forget10": ("retain90", "holdout10")}
UTILITY_SPLITS = ("real_authors", "world_facts")
#: the columns of the retain split's perturbed version that are added to its rows
PERTURBED_FIELDS = ("perturbed", "paraphrased_answer", "paraphrases")


def _qa_records(rows: Rows, split: str) -> list[dict[str, Any]]:
    require_columns(rows, ("question", "answer"), "TOFU", split)
    out = []
    for i in range(len(rows.rows)):
        rec: dict[str, Any] = {"question": text_field(rows, i, "question", split),
                               "answer": text_field(rows, i, "answer", split)}
        paraphrases = str_list(rows, i, "paraphrased_question", split, what=WHY_EMPTY["paraphrased_question"])
        if paraphrases:
            rec["paraphrases"] = paraphrases
        perturbed = str_list(rows, i, "perturbed_answer", split, what=WHY_EMPTY["perturbed_answer"])
        if perturbed:
            rec["perturbed"] = perturbed
        paraphrased_answer = str_list(rows, i, "paraphrased_answer", split, what=WHY_EMPTY["paraphrased_answer"])
        if paraphrased_answer:  # kept for TOFU's truth ratio; records ignore fields they do not use
            rec["paraphrased_answer"] = paraphrased_answer[0]
        out.append(rec)
    return out


def import_tofu(src: Path, *, split: str = "forget10", model: str = "builtin:tiny-bios", **_: Any) -> Imported:
    if split not in SPLITS:
        raise ImportFailure("UL821", f"{code_span(split)} is not a TOFU forget split", src,
                            help=["TOFU's forget splits are " + ", ".join(code_span(s) for s in SPLITS)])
    retain_split, holdout_split = SPLITS[split]
    expected = f"`{split}.json` (or `{split}_perturbed.json`) and `{retain_split}.json`, as in `locuslab/TOFU`"
    imported = Imported("tofu", {}, f"tofu-{split}.unlearn", "tofu.unlearn.j2")
    files = imported.files
    src, snapshot = hub_snapshot(src)
    if snapshot:
        imported.notes.append(snapshot)

    def take(names: tuple[str, ...], out_name: str, required: bool) -> bool:
        """The first of ``names`` present (the perturbed file, the plain one, the first upload's name)."""
        for k, name in enumerate(names):
            source = locate(src, name)
            if source is not None:
                imported.take(out_name, source, _qa_records(read_rows(source), name))
                for other in names[k + 1:]:
                    left = locate(src, other)
                    if left is not None:
                        why = ("is the version TOFU's evaluation reads, with the columns its truth ratio needs"
                               if name.endswith("_perturbed") else "is the current upload of the same split")
                        unread, read = _names(left.path, source.path, src)
                        imported.notes.append(f"{code_span(unread)} was not read: {code_span(read)} " + why)
                return True
        if required:
            raise missing_split("TOFU", src, next(n for n in names if not n.endswith("_perturbed")), expected)
        return False

    # the perturbed file: the version TOFU's evaluation reads, with the columns the truth ratio needs
    take((f"{split}_perturbed", split, f"{split}_dataset"), f"tofu-{split}.jsonl", required=True)
    take((retain_split, f"{retain_split}_dataset"), f"tofu-{retain_split}.jsonl", required=True)
    _merge_retain_perturbed(imported, src, retain_split)
    has_holdout = take((holdout_split,), f"tofu-{holdout_split}.jsonl", required=False)
    neighbors = [f"tofu-{u.replace('_', '-')}.jsonl" for u in UTILITY_SPLITS
                 if take((f"{u}_perturbed", u), f"tofu-{u.replace('_', '-')}.jsonl", required=False)]
    imported.context = {"split": split, "model": model, "forget": f"tofu-{split}.jsonl",
                        "retain": f"tofu-{retain_split}.jsonl",
                        "holdout": f"tofu-{holdout_split}.jsonl" if has_holdout else None, "neighbors": neighbors,
                        "has_perturbed": any("perturbed" in r for r in files[f"tofu-{split}.jsonl"]),
                        "has_paraphrases": any("paraphrases" in r for r in files[f"tofu-{split}.jsonl"])}
    imported.disjoint({f"tofu-{split}.jsonl": "forget", f"tofu-{retain_split}.jsonl": "preserved",
                       f"tofu-{holdout_split}.jsonl": "held out", **dict.fromkeys(neighbors, "preserved")})
    return imported


def _names(a: Path, b: Path, src: Path) -> tuple[str, str]:
    """Two source files named for a note: by their names, or, where those are the same (every configuration's file
    in the `datasets` cache is ``tofu-train.arrow``), by their paths in the source folder."""
    if a.name != b.name:
        return a.name, b.name
    try:
        return a.relative_to(src).as_posix(), b.relative_to(src).as_posix()
    except ValueError:
        return str(a), str(b)


def _merge_retain_perturbed(imported: Imported, src: Path, retain_split: str) -> None:
    """Add ``retain_perturbed``'s wrong answers and paraphrased answer to the retain rows that ask its questions.

    A row is matched by its question text and must give the same answer (wrong answers written for another answer
    would be compared with the wrong one: a warning, not merged); a row about a question the retain split does not
    hold is left out, so no question enters the retain set through this file. A question asked twice with different
    columns is UL822: the importer does not guess which row is current.
    """
    source = locate(src, "retain_perturbed")
    if source is None:
        return
    rows = read_rows(source)
    require_columns(rows, ("question", "answer", "paraphrased_answer", "perturbed_answer"), "TOFU", "retain_perturbed")
    perturbed = _qa_records(rows, "retain_perturbed")
    for i, rec in enumerate(perturbed):  # its rows are what it adds: one without them would be merged as nothing
        for column, key in (("perturbed_answer", "perturbed"), ("paraphrased_answer", "paraphrased_answer")):
            if key not in rec:
                rows.fail(i, "UL822", f"{rows.name(i)} of split `retain_perturbed` has no {code_span(column)}",
                          [f"the retain split's perturbed version gives every question its {code_span(column)} "
                           "(TOFU's retain truth ratio reads it); without it the row adds nothing to the retain set"])
    first: dict[str, int] = {}
    for i, rec in enumerate(perturbed):
        k = first.setdefault(rec["question"], i)
        if perturbed[k] != rec:
            rows.fail(i, "UL822", f"{rows.name(i)} of split `retain_perturbed` asks the question of {rows.name(k)} again, "
                      "with other answers", ["keep one row a question; the importer does not guess which is current"])
    out_name = f"tofu-{retain_split}.jsonl"
    retain = imported.files[out_name]
    held = {r["question"] for r in retain}
    merged: set[str] = set()
    other_answer: list[int] = []
    for rec in retain:
        at = first.get(rec["question"])
        if at is None:
            continue
        if perturbed[at]["answer"] != rec["answer"]:
            other_answer.append(at)
            continue
        rec.update({key: perturbed[at][key] for key in PERTURBED_FIELDS if key in perturbed[at]})
        merged.add(rec["question"])
    name, split = code_span(source.path.name), code_span(retain_split)
    for k in dict.fromkeys(other_answer):
        line = rows.line(k)
        imported.warnings.append(f"{name} {rows.name(k)}{f' (line {line})' if line else ''} gives another answer than "
                                 f"{split} to the same question: its wrong answers were not added to that retain row")
    outside = sum(q not in held for q in first)
    if not merged:
        imported.also_read.append((source, f"compared with {retain_split}: no question and answer in common"))
        imported.warnings.append(f"{name} shares no question and answer with {split}: nothing of it was imported "
                                 "(is it from another version of TOFU?)")
        return
    imported.merge(out_name, source, f"the wrong answers and paraphrased answer of {len(merged)} {retain_split} questions")
    imported.notes.append(f"{name} is {split}'s perturbed version for part of its questions: {len(merged)} of the "
                          f"{len(held)} {split} questions gain its `perturbed` and `paraphrased_answer` (the retain "
                          "truth ratio TOFU's evaluation reads); the rest keep question and answer only"
                          + (f". {outside} of its {len(first)} rows ask questions {split} does not hold and were left "
                             "out: the retain set is the retain split" if outside else ""))
