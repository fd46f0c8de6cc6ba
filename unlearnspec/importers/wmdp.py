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
from unlearnspec.importers.sources import (
    ImportFailure,
    Rows,
    Source,
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


def import_wmdp(src: Path, *, subsets: tuple[str, ...] | None = None, model: str = "builtin:tiny-bios",
                **_: Any) -> Imported:
    """``subsets`` None: every subset the folder has. Named ones must all be there (UL821); repeats count once."""
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
        corpora = sorted({p.name for p in src.glob("*corpus*")} | {p.name for p in src.glob("*/*corpus*")})[:3]
        raise ImportFailure("UL821", "no WMDP subset in the source folder", src, help=[EXPECTED, *(
            [f"{', '.join(code_span(c) for c in corpora)}: these are `cais/wmdp-corpora`, the text unlearning methods "
             "train on, not the questions; import `cais/wmdp` and give the corpora to the spec as data"]
            if corpora else [])])
    imported.context = {"model": model, "subsets": [s for s in wanted if f"wmdp-{s}.jsonl" in imported.files]}
    return imported
