"""Property-based: mutated example specs never make the compiler raise, and `fmt` of anything that parses
is idempotent and keeps the tokens and comments. Derandomized, so CI runs the same 300 cases every time."""

from __future__ import annotations

import re

from fixtures.frontend import SPECS, spec_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

from unlearnspec.catalog import vocab
from unlearnspec.compiler.check import check_bytes
from unlearnspec.compiler.fmt import format_spec
from unlearnspec.compiler.parse import (
    _building_parser,
    _parse_fast,
    _parse_with,
    _spec_file,
    decode,
    parse_bytes,
)
from unlearnspec.compiler.render import render_github, render_human, render_json
from unlearnspec.compiler.syntax import Field, SpecFile

SOURCES = [p.read_bytes() for p in spec_files()]
TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|-?\d+(?:\.\d+)?%?|<=|>=|\s+|.', re.S)
WORDS = sorted({*vocab.OBJECTIVE_FIELDS, *vocab.TARGET_FIELDS, *vocab.CLAIMS, *vocab.METRICS, *vocab.METHODS,
                *vocab.GOALS, "objective", "unlearnspec", "via", "steps", "precision", "drop"})
INSERTS = [b"{", b"}", b'"', b",", b"#", b"%", b"<=", b"\n", b"\r\n", b"\t", b" ", b"\\", b"\x00", b"\xff",
           b"\xef\xbb\xbf", *[w.encode() for w in WORDS]]


@st.composite
def mutated_specs(draw: st.DrawFn) -> bytes:
    tokens = TOKEN.findall(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "delete", "duplicate", "insert", "insert", "truncate", "swap"]))
        i = draw(st.integers(0, len(tokens) - 1)) if tokens else 0
        if op == "delete" and tokens:
            del tokens[i:i + draw(st.integers(1, 3))]
        elif op == "duplicate" and tokens:
            tokens[i:i] = tokens[i:i + draw(st.integers(1, 4))]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(INSERTS)))
        elif op == "truncate":
            tokens = tokens[:i]
        elif op == "swap" and len(tokens) > 1:
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "flip" and tokens:
            data = bytearray(b"".join(tokens))
            if data:
                k = draw(st.integers(0, len(data) - 1))
                data[k] ^= 1 << draw(st.integers(0, 7))
            tokens = TOKEN.findall(bytes(data))
    return b"".join(tokens)


def _shape(syntax: SpecFile) -> list[object]:
    def fields(fs: tuple[Field, ...]) -> list[object]:
        return [(f.name, [[v.raw for v in g] for g in f.groups], fields(f.block.fields) if f.block else None)
                for f in fs]
    return [syntax.version.raw if syntax.version else None] + [(o.name, fields(o.block.fields))
                                                              for o in syntax.objectives]


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_specs())
def test_mutated_specs_never_raise(data: bytes) -> None:
    result = check_bytes(data, "fuzz.unlearn", SPECS)
    for d in result.diagnostics:
        assert d.span.line >= 1 and d.span.column >= 1
        assert re.fullmatch(r"UL\d{3}", d.code)
    if result.syntax is None:
        assert any(d.severity == "error" for d in result.diagnostics)
    render_human([result])
    render_json([result])
    render_github([result])

    syntax, diags = parse_bytes(data, "fuzz.unlearn")
    if syntax is None or any(d.severity == "error" for d in diags):
        return
    once = format_spec(syntax)
    again, again_diags = parse_bytes(once.encode("utf-8"), "fuzz.unlearn")
    assert again is not None and not [d for d in again_diags if d.code != "UL109"], once
    assert format_spec(again) == once
    assert _shape(again) == _shape(syntax)
    for comment in syntax.comments:
        assert comment.text in once


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_specs())
def test_fast_lexer_and_lark_lexer_agree_on_mutated_specs(data: bytes) -> None:
    """Whatever the fast parser accepts, Lark's contextual lexer reads into the same tree; whatever
    Lark accepts, the fast parser accepts too (so a valid spec is never parsed twice)."""
    text, _ = decode(data, "fuzz.unlearn")
    if text is None:
        return
    fast = _parse_fast(text, "fuzz.unlearn")
    try:
        slow = _parse_with(_building_parser(), text, "fuzz.unlearn")
    except UnexpectedInput:
        assert fast is None
        return
    assert fast is not None
    assert _spec_file(text, "f", *fast) == _spec_file(text, "f", *slow)
