"""Data the objective names in several roles: the forget set may be none of the others.

The retain and neighbour sets are what the model must keep, so a forget file among them contradicts
the objective; the holdout is read as data never trained on (membership inference, the stopping
rule), so the forget set as its own holdout makes every membership AUC chance by construction. Both
are UL209, whether the same path is named twice or another path holds the same bytes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from unlearnspec.compiler.ast import Preserve, Target
from unlearnspec.compiler.diagnostics import Label
from unlearnspec.records import sha256_path


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
            report("UL209", "error", p.span, f"`{p.raw}` is both forgotten and {role}",
                   labels=[Label(span=forget[p.resolved].span, message="named as forget data here")], help=[why])
            continue
        twin = next((f for f in target.forget if _same_content(f.resolved, p.resolved)), None)
        if twin is not None:  # a copy or a hard link: another path, the same records
            report("UL209", "error", p.span, f"`{p.raw}` holds the same data as the forget file `{twin.raw}`",
                   labels=[Label(span=twin.span, message="named as forget data here")],
                   help=[f"{why}; this file is a copy or a hard link of it"])


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
