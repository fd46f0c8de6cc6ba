"""WMDP (Li et al., arXiv:2403.03218): multiple-choice questions that proxy hazardous knowledge.

Published as ``cais/wmdp`` with configurations ``wmdp-bio``, ``wmdp-cyber`` and ``wmdp-chem``, each a
``test`` split (``wmdp-bio/test-00000-of-00001.parquet``) of rows with ``question``, ``choices`` (four
strings) and ``answer`` (the index of the correct choice). They are written as the project's
multiple-choice records, in the same convention.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearnspec.importers.base import Imported, text_field
from unlearnspec.importers.sources import ImportFailure, Rows, locate, locate_any, read_rows, require_columns

SUBSETS = ("bio", "cyber", "chem")


def _find(src: Path, subset: str) -> Path | None:
    return (locate(src, "test", under=f"wmdp-{subset}")
            or locate_any(src, (f"wmdp-{subset}", f"wmdp_{subset}", subset)))


def _mcq(rows: Rows, split: str) -> list[dict[str, Any]]:
    require_columns(rows, ("question", "choices", "answer"), "WMDP", split)
    out = []
    for i, row in enumerate(rows.rows):
        line = rows.line(i)
        column = 1 if line else None
        choices, answer = row.get("choices"), row.get("answer")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise ImportFailure("UL822", f"row {i + 1} of `{split}`: `choices` must be a list of at least two strings",
                                rows.path, line=line, column=column)
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise ImportFailure("UL822", f"row {i + 1} of `{split}`: `answer` must be the index of the correct choice "
                                f"(0 to {len(choices) - 1}), not `{answer}`", rows.path, line=line, column=column,
                                help=["WMDP's `answer` is an integer index into `choices`"])
        out.append({"question": text_field(rows, i, "question", split), "choices": list(choices), "answer": answer})
    return out


def import_wmdp(src: Path, *, subsets: tuple[str, ...] = SUBSETS, model: str = "builtin:tiny-bios",
                **_: Any) -> Imported:
    files: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, Path] = {}
    for subset in subsets:
        if subset not in SUBSETS:
            raise ImportFailure("UL821", f"`{subset}` is not a WMDP subset", src,
                                help=["WMDP's subsets are `bio`, `cyber` and `chem`"])
        path = _find(src, subset)
        if path is not None:
            files[f"wmdp-{subset}.jsonl"] = _mcq(read_rows(path), f"wmdp-{subset}")
            sources[f"wmdp-{subset}.jsonl"] = path
    if not files:
        raise ImportFailure("UL821", "no WMDP subset in the source folder", src,
                            help=["expected `wmdp-bio/test-*.parquet` (as in `cais/wmdp`) or `wmdp-bio.jsonl`, "
                                  "and the same for `cyber` and `chem`"])
    found = [s for s in subsets if f"wmdp-{s}.jsonl" in files]
    context = {"model": model, "subsets": found}
    return Imported("wmdp", files, "wmdp.unlearn", "wmdp.unlearn.j2", context, sources)
