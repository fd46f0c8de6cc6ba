"""Every diagnostic code and its page, by code: the one registry `explain`, the docs and `accept` read.

Codes are public API: specs name them in `accept`, CI configurations filter on them, scripts match on the
runtime's error codes. Never renumber one.
"""

from __future__ import annotations

from unlearnspec.catalog import codes_feasibility, codes_front
from unlearnspec.catalog.pages import CodePage

CODES: dict[str, CodePage] = {p.code: p for p in sorted((*codes_front.PAGES, *codes_feasibility.PAGES),
                                                        key=lambda p: p.code)}


def page(code: str) -> CodePage:
    return CODES[code]
