"""Did-you-mean suggestions by edit distance against a closed vocabulary."""

from __future__ import annotations

from collections.abc import Iterable

from unlearnspec.compiler.diagnostics import Fix, Span
from unlearnspec.compiler.syntax import quote, unquotable
from unlearnspec.markdown import code_span


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


#: Prefixes that turn a word into its opposite: a candidate they were put in front of is never suggested.
NEGATIONS = ("in", "un", "non", "non_", "non-", "not_", "not", "dis", "no_")


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate within a distance that scales with the word's length, if any."""
    best: tuple[int, str] | None = None
    limit = max(1, min(3, len(word) // 3))
    low = word.lower()
    for cand in candidates:
        if any(low == neg + cand for neg in NEGATIONS):  # `indirect` is not a typo of `direct`
            continue
        d = edit_distance(word, cand)
        if cand.startswith(word.lower()) and len(word) >= 4:
            d = min(d, 1)
        if d <= limit and (best is None or (d, cand) < best):
            best = (d, cand)
    return best[1] if best else None


def did_you_mean_fixes(span: Span, word: str | None, quoted: bool = False) -> list[Fix]:
    """The preferred fix of a misspelt word, if there is a ``word`` to suggest: it written where ``span`` is, as a
    quoted string when the value there is one (an `after` value, a model name), so the fix keeps the spec's
    syntax. None for a word no spec string can hold (a data file's label with a control character)."""
    if word is None or (quoted and unquotable(word) is not None):
        return []
    return [Fix.replace(span, quote(word) if quoted else word, f"replace with {code_span(word)}", preferred=True)]
