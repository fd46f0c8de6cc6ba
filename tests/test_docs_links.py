"""Every relative link and anchor in README.md and docs/*.md resolves, and every repository path the docs name in
backticks exists.

Links are found by markdown-it (an independent CommonMark parser), so links inside code are not links; anchors
are computed the way GitHub renders heading ids (lower case, punctuation dropped, spaces to hyphens, `-1`, `-2`
for repeats), from the headings markdown-it finds, so a `#` comment inside a fenced shell block is no heading.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: top-level folders whose files the docs name in backticks (`bench/bench_demo.py`, `specs/erase-jane-doe.unlearn`)
TOP = ("docs/", "bench/", "specs/", "scripts/", "tests/", "unlearnspec/", "editors/")
#: names that stand for any file in prose (`docs/rules/CODE.md`, `specs/x.unlearn`)
PLACEHOLDER = {"CODE", "ULnnn", "x"}
_MD = MarkdownIt("commonmark", {"html": True}).enable("table")


def _tokens(path: Path) -> list[Token]:
    return _MD.parse(path.read_text(encoding="utf-8"))


def _walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for tok in tokens:
        out.append(tok)
        if tok.children:
            out.extend(_walk(tok.children))
    return out


def slug(text: str) -> str:
    """GitHub's heading id: lower case; keep letters, digits, `_`, `-` and spaces; spaces become `-`."""
    kept = "".join(ch for ch in text.strip().lower() if ch.isalnum() or ch in "_- ")
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    tokens = _tokens(path)
    seen: dict[str, int] = {}
    ids: set[str] = set()
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open":
            continue
        inline = tokens[i + 1]
        text = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    # explicit anchors: <a id="..."> / <a name="...">
    for m in re.finditer(r"<a\s+(?:id|name)=\"([^\"]+)\"", path.read_text(encoding="utf-8")):
        ids.add(m.group(1))
    return frozenset(ids)


def links(path: Path) -> list[str]:
    return [str(t.attrs["href"]) for t in _walk(_tokens(path)) if t.type == "link_open"]


def code_paths(path: Path) -> list[str]:
    """Repository paths in inline code: `docs/running.md`, `bench/bench_demo.py` (no placeholders or globs)."""
    out = []
    for tok in _walk(_tokens(path)):
        if tok.type != "code_inline":
            continue
        for word in tok.content.split():
            word = word.rstrip(".,;:)")
            if word.startswith(TOP) and not re.search(r"[<>*…{}$]|\.\.\.", word):
                word = word.split("#", 1)[0]
                if not PLACEHOLDER & {Path(part).stem for part in word.split("::")[0].split("/")}:
                    out.append(word)
    return out


def exists(ref: str) -> bool:
    """A path, or a pytest node id `tests/test_x.py::test_name` whose test function is defined there."""
    file, _, test = ref.partition("::")
    if not (ROOT / file).exists():
        return False
    return not test or re.search(rf"^def {re.escape(test)}\(", (ROOT / file).read_text(encoding="utf-8"), re.M) is not None


def test_the_pages_have_links_to_check() -> None:
    # the checker finds what is there: docs/README.md's index links every page
    assert {"language.md", "running.md", "rules/"} <= set(links(ROOT / "docs" / "README.md"))
    assert "writing-claims-you-can-defend" in anchors(ROOT / "docs" / "language.md")


def test_slug_follows_github() -> None:
    assert slug("`after` and `budget`: chains of requests") == "after-and-budget-chains-of-requests"
    assert slug("Intervals and the burden of proof") == "intervals-and-the-burden-of-proof"
    assert slug("Forget quality (TOFU's KS test)") == "forget-quality-tofus-ks-test"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for href in links(page):
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith("mailto:"):
            continue
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not target.exists():
            broken.append(f"{href}: no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
            continue
        if parts.fragment:
            if target.suffix != ".md" or not target.is_file():
                broken.append(f"{href}: an anchor into something that is not a Markdown page")
            elif unquote(parts.fragment) not in anchors(target):
                broken.append(f"{href}: no heading with id #{parts.fragment} in {target.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_repository_paths_named_in_code_exist(page: Path) -> None:
    missing = sorted({p for p in code_paths(page) if not exists(p)})
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"
