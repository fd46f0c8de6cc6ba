"""A diagnostic code's page: what `unlearnspec explain CODE` prints and docs/rules/ is generated from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]
Category = Literal["syntax", "resolve", "feasibility", "runtime"]


@dataclass(frozen=True)
class CodePage:
    code: str
    name: str  # kebab-case short name, e.g. "unterminated-string"
    severity: Severity
    category: Category
    summary: str  # what it checks, one sentence
    why: str  # why it matters
    example: str = ""  # a spec fragment that triggers it
    instead: str = ""  # what to write instead
    references: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", tuple(self.references))


#: The paper the whole catalogue of feasibility rules restates (FRAMEWORK.md); cited on their pages.
PAPER = ("A. F. Cooper, C. A. Choquette-Choo, M. Bogen, et al., \"Machine Unlearning Doesn't Do What You "
         "Think: Lessons for Generative AI Policy, Research, and Practice\", arXiv:2412.06966 (2024)")


def paper(where: str) -> str:
    """A reference to a part of the position paper, e.g. ``paper("Section 4, mismatch M2")``."""
    return f"{PAPER}, {where}"
