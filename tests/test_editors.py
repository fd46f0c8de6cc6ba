"""Editor support: the TextMate grammar is generated from the vocabulary (and checked in up to date),
colours every spec as the compiler's own lexer reads it, and the VS Code extension is consistent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.frontend import ROOT, spec_files
from lark import Lark

from unlearnspec.catalog import vocab
from unlearnspec.lsp import textmate

VSCODE = ROOT / "editors" / "vscode"
GRAMMAR_FILE = ROOT / textmate.GRAMMAR_PATH
LARK_GRAMMAR = ROOT / "unlearnspec" / "grammar" / "unlearn.lark"


class TextMate:
    """A small TextMate tokenizer for single-line ``match`` rules: at each position the rule whose
    match starts first wins (ties go to the earlier rule), as in TextMate and VS Code."""

    def __init__(self, grammar: dict[str, object]) -> None:
        repo = grammar["repository"]
        assert isinstance(repo, dict)
        self.rules: list[tuple[re.Pattern[str], str | None, dict[int, str]]] = []
        for inc in grammar["patterns"]:  # type: ignore[attr-defined]
            rule = repo[inc["include"].lstrip("#")]
            assert set(rule) <= {"match", "name", "captures"}, rule  # single-line rules only
            caps = {int(k): v["name"] for k, v in rule.get("captures", {}).items()}
            self.rules.append((re.compile(rule["match"]), rule.get("name"), caps))

    def line(self, text: str) -> dict[int, list[str]]:
        """Scopes at every character column of one line."""
        scopes: dict[int, list[str]] = {i: [] for i in range(len(text))}
        pos = 0
        while pos < len(text):
            best: tuple[int, int, re.Match[str]] | None = None
            for i, (rx, _, _) in enumerate(self.rules):
                m = rx.search(text, pos)
                if m is not None and (best is None or (m.start(), i) < (best[0], best[1])):
                    best = (m.start(), i, m)
            if best is None:
                break
            _, i, m = best
            _, name, caps = self.rules[i]
            for c in range(m.start(), m.end()):
                if name:
                    scopes[c].append(name)
            for g, cname in caps.items():
                for c in range(m.start(g), m.end(g)):
                    scopes[c].append(cname)
            pos = m.end() if m.end() > pos else pos + 1
        return scopes


def test_grammar_is_generated_from_the_vocabulary() -> None:
    assert GRAMMAR_FILE.read_text(encoding="utf-8") == textmate.render(), \
        "run `python -m unlearnspec.lsp.textmate` to regenerate the grammar"
    assert textmate.main(["--check", str(GRAMMAR_FILE)]) == 0


# What the compiler's own lexer calls each token, and the scope the grammar must give it.
EXPECTED = {
    "STRING": "string.quoted.double.unlearnspec",
    "NUMBER": "constant.numeric.unlearnspec",
    "PERCENT": "constant.numeric.percentage.unlearnspec",
    "COMMENT": "comment.line.number-sign.unlearnspec",
    "VERSION_KW": "keyword.control.unlearnspec",
    "OBJECTIVE_KW": "keyword.control.unlearnspec",
    "OP": "keyword.operator.comparison.unlearnspec",
}


@pytest.mark.parametrize("spec", spec_files(), ids=lambda p: p.name)
def test_grammar_colours_every_spec_as_the_lexer_reads_it(spec: Path) -> None:
    tm = TextMate(json.loads(GRAMMAR_FILE.read_text(encoding="utf-8")))
    lexer = Lark(LARK_GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="basic")
    text = spec.read_text(encoding="utf-8")
    lines = text.split("\n")
    coloured = [tm.line(ln) for ln in lines]
    seen: dict[str, int] = {}
    first_on_line: set[int] = set()
    for tok in lexer.lex(text, dont_ignore=True):
        if tok.type in ("WS", "_NL") or tok.line is None or tok.column is None:
            continue
        line, col = tok.line - 1, tok.column - 1
        scopes = coloured[line]
        kind = tok.type
        is_first = line not in first_on_line
        first_on_line.add(line)
        if kind in EXPECTED:
            want = EXPECTED[kind]
        elif kind == "NAME" and tok.value in vocab.METRICS:
            want = "support.variable.metric.unlearnspec"
        elif kind == "NAME" and tok.value in vocab.CLAIMS:
            want = "support.constant.claim.unlearnspec"
        elif kind == "NAME" and is_first:  # a field name starts its line
            want = "keyword.other.field.unlearnspec"
        elif kind == "NAME" and re.fullmatch(r"UL[0-9]{3}", tok.value):
            want = "constant.other.rule-code.unlearnspec"
        else:
            continue
        for c in range(col, col + len(tok.value)):
            assert want in scopes[c], f"{spec.name}:{tok.line}:{c + 1} `{tok.value}` ({kind}) has {scopes[c]}"
        seen[want] = seen.get(want, 0) + 1
    # every spec has a header keyword, strings, comments and fields; no token was left unchecked
    for scope in ("keyword.control.unlearnspec", "string.quoted.double.unlearnspec",
                  "comment.line.number-sign.unlearnspec", "keyword.other.field.unlearnspec"):
        assert seen.get(scope, 0) > 0, f"{spec.name}: nothing scoped {scope}"


def test_grammar_covers_numbers_percentages_and_words() -> None:
    tm = TextMate(json.loads(GRAMMAR_FILE.read_text(encoding="utf-8")))
    line = "    utility   drop <= 2%  # x 1"
    scopes = tm.line(line)
    assert "constant.numeric.percentage.unlearnspec" in scopes[line.index("2%")]
    assert "keyword.operator.comparison.unlearnspec" in scopes[line.index("<=")]
    assert "constant.language.unlearnspec" in scopes[line.index("drop")]
    assert "comment.line.number-sign.unlearnspec" in scopes[line.index("1")]  # a digit inside a comment
    line = '  learning_rate 5e-4 "a # not a comment"'
    scopes = tm.line(line)
    assert "constant.numeric.unlearnspec" in scopes[line.index("5e-4") + 3]
    assert all("comment" not in s for c in range(line.index('"'), len(line)) for s in scopes[c])
    for word in (*vocab.METHODS, *vocab.GOALS, *vocab.RELEASES, *vocab.PROMPTS):
        assert any("constant.language" in s for s in tm.line(f"  method {word}")[9]), word


def test_grammar_colours_every_field_the_compiler_reads() -> None:
    """Every field name of every block, `evidence`'s settings (`confidence 95%`) among them, as the
    resolve pass's vocabulary lists them; metric and claim names keep their own scopes."""
    tm = TextMate(json.loads(GRAMMAR_FILE.read_text(encoding="utf-8")))
    fields = {*vocab.OBJECTIVE_FIELDS, *vocab.TARGET_FIELDS, *vocab.SCOPE_FIELDS, *vocab.PRESERVE_FIELDS,
              *vocab.BUDGET_FIELDS, *vocab.METHOD_FIELDS, *vocab.EVIDENCE_SETTINGS}
    for name in sorted(fields):
        scopes = tm.line(f"    {name} 1")
        assert all("keyword.other.field.unlearnspec" in scopes[c] for c in range(4, 4 + len(name))), name
    line = "    confidence 95%"
    scopes = tm.line(line)
    assert "constant.numeric.percentage.unlearnspec" in scopes[line.index("95%")]
    assert "keyword.other.field.unlearnspec" not in tm.line("    leak_rate <= 0.05")[4]


def test_vscode_extension_is_consistent() -> None:
    pkg = json.loads((VSCODE / "package.json").read_text())
    [lang] = pkg["contributes"]["languages"]
    [gram] = pkg["contributes"]["grammars"]
    assert lang["extensions"] == [".unlearn"] and gram["language"] == lang["id"]
    assert (VSCODE / gram["path"]).resolve() == GRAMMAR_FILE.resolve()
    assert gram["scopeName"] == json.loads(GRAMMAR_FILE.read_text())["scopeName"]
    config = json.loads((VSCODE / lang["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"
    assert (VSCODE / pkg["main"]).is_file()
    assert pkg["contributes"]["configuration"]["properties"]["unlearnspec.server.command"]["default"] == \
        ["unlearnspec", "lsp"]
    assert "vscode-languageclient" in pkg["dependencies"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_vscode_client_is_valid_javascript() -> None:
    r = subprocess.run(["node", "--check", str(VSCODE / "extension.js")], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
