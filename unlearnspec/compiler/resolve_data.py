"""Data the objective names in several roles: the forget set may be none of the others; and the label
the representation probe predicts must be one the forget records carry.

The retain and neighbour sets are what the model must keep, so a forget file among them contradicts
the objective; the holdout is read as data never trained on (membership inference, the stopping
rule), so the forget set as its own holdout makes every membership AUC chance by construction. Both
are UL209, whether the same path is named twice or another path holds the same bytes.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from unlearnspec.compiler.ast import PathRef, Preserve, Target, Text
from unlearnspec.compiler.datafiles import records_of, texts_of
from unlearnspec.compiler.diagnostics import Label
from unlearnspec.compiler.suggest import did_you_mean, did_you_mean_fixes
from unlearnspec.markdown import code_span
from unlearnspec.records import sha256_path

#: A word the grammar reads unquoted (its NAME terminal).
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def attribute_labelled(attribute: object, forget: object, base_dir: Path, report: Callable[..., Any],
                       quoted: bool = False) -> None:
    """`attribute NAME` names a fact labelled in the forget records' `attributes`: the representation probe
    predicts it from them. A name no readable forget record carries (a typo) would leave the probe
    unmeasurable at run time; it is UL204 here, with the closest label the records do carry (its fix writes
    the label quoted when the spec quoted the name, or when the label is no bare word)."""
    if not isinstance(attribute, Text) or not isinstance(forget, list) or not forget:
        return
    labels: set[str] = set()
    for ref in forget:
        records = records_of(ref.resolved, base_dir) if isinstance(ref, PathRef) else []
        if not records:  # a folder, an unreadable or empty file: nothing to tell (reported elsewhere)
            return
        labels.update(k for r in records for k in r.attributes)
    if attribute.value in labels:
        return
    hint = did_you_mean(attribute.value, sorted(labels))
    shown = ", ".join(code_span(x) for x in sorted(labels)[:8]) or "none"
    report("UL204", "error", attribute.span,
           f"no forget record has the attribute {code_span(attribute.value)}" + (f"; did you mean {code_span(hint)}?" if hint else ""),
           help=[f"the forget records label {shown}; the probe predicts one of them",
                 "or add the label to every forget record's `attributes`"],
           fixes=did_you_mean_fixes(attribute.span, hint, quoted=quoted or not _BARE.fullmatch(hint or "")))


def disjoint_from_forget(target: Target, preserve: Preserve | None, report: Callable[..., Any]) -> None:
    """Report (through the resolver's ``report``) every retain, neighbour or holdout file that is a
    forget file, or holds the same data as one."""
    forget = {p.resolved: p for p in target.forget}
    others = [(p, "preserved", "the retain and neighbour sets must be disjoint from the forget set")
              for p in (preserve.retain + preserve.neighbors if preserve else [])]
    others += [(p, "held out", "the holdout must be data the model never trained on, disjoint from the "
                               "forget set: with the forget set as its own holdout every membership "
                               "AUC is chance by construction") for p in target.holdout]
    for p, role, why in others:
        if p.resolved in forget:
            report("UL209", "error", p.span, f"{code_span(p.raw)} is both forgotten and {role}",
                   labels=[Label(span=forget[p.resolved].span, message="named as forget data here")], help=[why])
            continue
        twin = next((f for f in target.forget if _same_content(f.resolved, p.resolved)), None)
        if twin is not None:  # a copy or a hard link: another path, the same records
            report("UL209", "error", p.span, f"{code_span(p.raw)} holds the same data as the forget file {code_span(twin.raw)}",
                   labels=[Label(span=twin.span, message="named as forget data here")],
                   help=[f"{why}; this file is a copy or a hard link of it"])


def forget_texts(refs: Sequence[PathRef], base_dir: Path) -> dict[str, tuple[int, PathRef]]:
    """Each training text of the forget files, with the record number and file that first give it."""
    out: dict[str, tuple[int, PathRef]] = {}
    for f in refs:
        for t, i in texts_of(f.resolved, base_dir).items():
            out.setdefault(t, (i, f))
    return out


def preserved_overlap(preserve: Preserve | None, forget: dict[str, tuple[int, PathRef]],
                      base_dir: Path) -> Iterator[tuple[PathRef, list[tuple[str, int]]]]:
    """Each retain or neighbour file that gives texts of ``forget``, with those texts and their record numbers."""
    for p in (preserve.retain + preserve.neighbors if preserve else []):
        shared = [(t, i) for t, i in texts_of(p.resolved, base_dir).items() if t in forget]
        if shared:
            yield p, shared


def shown(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= 60 else one[:57] + "..."


def records_disjoint(target: Target, preserve: Preserve | None, base_dir: Path, report: Callable[..., Any]) -> None:
    """Record by record, what :func:`disjoint_from_forget` checks file by file: no retain, neighbour or holdout
    record gives a text the model is trained on for a forget record (its document, or its question and answer),
    UL209; and a forget or holdout set that repeats a record is a warning, UL222, since every repeat is counted as
    one more item in the evidence's sample sizes and intervals."""
    forget = forget_texts(target.forget, base_dir)
    others = [(p, "preserved") for p in (preserve.retain + preserve.neighbors if preserve else [])]
    others += [(p, "held out") for p in target.holdout]
    named = {f.resolved for f in target.forget}
    for p, role in others:
        if p.resolved in named or any(_same_content(f.resolved, p.resolved) for f in target.forget):
            continue  # the whole file: disjoint_from_forget says so
        shared = [(t, i) for t, i in texts_of(p.resolved, base_dir).items() if t in forget]
        if not shared:
            continue
        text, line = shared[0]
        first, where = forget[text]
        report("UL209", "error", p.span,
               f"{len(shared)} text{'s' if len(shared) > 1 else ''} of {code_span(p.raw)} {'are' if len(shared) > 1 else 'is'} "
               f"also forget data, so {'they are' if len(shared) > 1 else 'it is'} both forgotten and {role}",
               labels=[Label(span=where.span, message=f"record {first} here gives the same text")],
               help=[f"record {line} of {code_span(p.raw)}: \"{shown(text)}\"",
                     "remove the forget records from it: " + ("the model must keep what is preserved, and cannot "
                                                              "keep and forget one text" if role == "preserved" else
                                                              "the holdout is data the model never trained on, so a "
                                                              "forget record in it is a member counted as a non-member")])
    for role, refs in (("forget", target.forget), ("holdout", target.holdout)):
        seen: dict[tuple[str, ...], int] = {}
        total = 0
        for ref in refs:
            for r in records_of(ref.resolved, base_dir):
                key = r.identity
                if key:
                    total += 1
                    seen[key] = seen.get(key, 0) + 1
        if refs and total > len(seen):
            repeated = next(k for k, n in seen.items() if n > 1)
            report("UL222", "warning", refs[0].span,
                   f"the {role} set holds {total} records but only {len(seen)} different ones",
                   help=[f"for example \"{shown(repeated[0])}\" is given {seen[repeated]} times",
                         "every repeat counts as one more item, so the evidence's sample sizes and intervals would "
                         "claim more than the data shows; keep one copy of each record"])


def _same_content(a: str, b: str) -> bool:
    """Whether two data paths hold the same bytes: a hard link (one inode), or a copy (same size and
    sha256). Files of different sizes are never read; unreadable ones compare unequal."""
    try:
        sa, sb = os.stat(a), os.stat(b)
        if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
            return True
        if stat.S_ISREG(sa.st_mode) != stat.S_ISREG(sb.st_mode) or (
                stat.S_ISREG(sa.st_mode) and sa.st_size != sb.st_size):
            return False
        return sha256_path(a) == sha256_path(b)
    except OSError:
        return False
