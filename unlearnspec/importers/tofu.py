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
                        imported.notes.append(f"{code_span(left.path.name)} was not read: {code_span(source.path.name)} "
                                              + why)
                return True
        if required:
            raise missing_split("TOFU", src, next(n for n in names if not n.endswith("_perturbed")), expected)
        return False

    # the perturbed file: the version TOFU's evaluation reads, with the columns the truth ratio needs
    take((f"{split}_perturbed", split, f"{split}_dataset"), f"tofu-{split}.jsonl", required=True)
    take((retain_split, f"{retain_split}_dataset"), f"tofu-{retain_split}.jsonl", required=True)
    has_holdout = take((holdout_split,), f"tofu-{holdout_split}.jsonl", required=False)
    neighbors = [f"tofu-{u.replace('_', '-')}.jsonl" for u in UTILITY_SPLITS
                 if take((f"{u}_perturbed", u), f"tofu-{u.replace('_', '-')}.jsonl", required=False)]
    imported.context = {"split": split, "model": model, "forget": f"tofu-{split}.jsonl",
                        "retain": f"tofu-{retain_split}.jsonl",
                        "holdout": f"tofu-{holdout_split}.jsonl" if has_holdout else None, "neighbors": neighbors,
                        "has_perturbed": any("perturbed" in r for r in files[f"tofu-{split}.jsonl"]),
                        "has_paraphrases": any("paraphrases" in r for r in files[f"tofu-{split}.jsonl"])}
    return imported
