"""`unlearnspec diff`: semantic changes between specs or plans, classified, with a CI exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from unlearnspec.catalog import vocab
from unlearnspec.cli import main
from unlearnspec.compiler.check import plan_file
from unlearnspec.compiler.semdiff import GUARANTEE_RANK, Change, diff_paths, diff_plans, threshold_direction
from unlearnspec.plan import MetricCheck, Threshold

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
JANE_TEXT = (SPECS / "erase-jane-doe.unlearn").read_text(encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(SPECS / "data", tmp_path / "data")
    (tmp_path / "old.unlearn").write_text(JANE_TEXT, encoding="utf-8")
    return tmp_path


def variant(folder: Path, *edits: tuple[str, str], name: str = "new.unlearn") -> Path:
    text = JANE_TEXT
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def changes(folder: Path, new: Path) -> list[Change]:
    a, _ = plan_file(folder / "old.unlearn", allow_infeasible=True)
    b, _ = plan_file(new, allow_infeasible=True)
    assert a is not None and b is not None
    return diff_plans(a, b)


def kinds(cs: list[Change], what: str) -> list[tuple[str, str]]:
    return [(c.kind, c.subject) for c in cs if c.what == what]


def test_loosened_threshold_is_reported_and_fails_ci(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = variant(folder, ("membership_auc <= 0.60", "membership_auc <= 0.70"))
    code = main(["diff", str(folder / "old.unlearn"), str(new)])
    out = capsys.readouterr().out
    assert code == 1
    assert "loosened" in out and "membership_auc@forget" in out and "<= 0.6 → <= 0.7" in out
    assert "1 loosened, 0 tightened, 0 changed" in out


def test_tightened_threshold_passes_ci(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = variant(folder, ("membership_auc <= 0.60", "membership_auc <= 0.55"),
                  ("forget_quality >= 0.05", "forget_quality >= 0.10"))
    code = main(["diff", str(folder / "old.unlearn"), str(new)])
    out = capsys.readouterr().out
    assert code == 0
    assert "tightened  threshold `membership_auc@forget`" in out
    assert "tightened  threshold `forget_quality@forget`" in out  # higher is better: raising it tightens
    assert "0 loosened" in out


def test_identical_specs_have_no_semantic_changes(folder: Path) -> None:
    text, errors, code = diff_paths(folder / "old.unlearn",
                                    variant(folder, ("# Right-to-erasure", "# A comment: erasure")))
    assert code == 0 and text.startswith("no semantic changes") and errors == ""


def test_scope_and_utility_tolerance(folder: Path) -> None:
    narrowed = changes(folder, variant(folder, ("prompts direct, paraphrased, adversarial", "prompts direct"),
                                       ("drop <= 2%", "drop <= 5%")))
    assert ("loosened", "paraphrased") in kinds(narrowed, "scope")
    assert ("loosened", "adversarial") in kinds(narrowed, "probe")
    assert ("loosened", "retain_utility_drop@retain") in kinds(narrowed, "utility tolerance")
    widened = changes(folder, variant(folder, ("outputs verbatim, facts", "outputs verbatim, facts, pii"),
                                      ("drop <= 2%", "drop <= 1%"), name="wide.unlearn"))
    assert ("tightened", "pii") in kinds(widened, "scope")
    assert ("tightened", "neighbor_utility_drop@neighbors") in kinds(widened, "utility tolerance")
    assert not [c for c in widened if c.kind == "loosened"]


def test_claims_added_removed_and_weakened(folder: Path) -> None:
    removed = changes(folder, variant(folder, ("    robust_to_finetuning steps 20\n", "")))
    assert ("changed", "robust_to_finetuning") in kinds(removed, "claim")  # dropping a claim is not loosening
    added = changes(folder, variant(folder, ("    not_generated\n", "    not_generated\n    robust_to_quantization\n"),
                                    name="added.unlearn"))
    assert ("tightened", "robust_to_quantization") in kinds(added, "claim")
    assert ("tightened", "int4") in kinds(added, "attack")
    # Open weights with no relearning budget: UL402 makes `robust_to_finetuning` unverifiable — weakened.
    weakened = changes(folder, variant(folder, ("release api", "release open_weights"),
                                       ("robust_to_finetuning steps 20", "robust_to_finetuning"), name="weak.unlearn"))
    statuses = [(c.kind, c.subject, c.new) for c in weakened if c.what == "claim status"]
    assert ("loosened", "robust_to_finetuning", "cannot_be_verified") in statuses
    smaller = changes(folder, variant(folder, ("steps 20", "steps 5"), name="small.unlearn"))
    assert ("loosened", "robust_to_finetuning") in kinds(smaller, "claim")
    assert ("loosened", "relearn") in kinds(smaller, "attack")


def test_goal_method_release_and_accepted_risks(folder: Path) -> None:
    cs = changes(folder, variant(folder, ("goal   removal", "goal   suppression via model"),
                                 ("method npo", "method refusal"), ("release api precision fp32", "release api precision bf16")))
    assert ("loosened", "goal") in kinds(cs, "goal")
    assert ("changed", "method") in kinds(cs, "method")
    assert ("changed", "precision") in kinds(cs, "release")
    # The accepted risk disappears from the old spec: accepting it in the new one loosens.
    no_accept = variant(folder, ('  accept UL405 "Forget set built from a full-corpus alias search, 2026-11-20."\n', ""),
                        name="old2.unlearn")
    a, _ = plan_file(no_accept)
    b, _ = plan_file(folder / "old.unlearn")
    assert a is not None and b is not None
    assert ("loosened", "UL405") in kinds(diff_plans(a, b), "accepted risk")
    assert ("tightened", "UL405") in kinds(diff_plans(b, a), "accepted risk")


def test_changed_data_is_changed_not_loosened(folder: Path) -> None:
    a, _ = plan_file(folder / "old.unlearn")
    forget = folder / "data" / "jane-doe.jsonl"
    forget.write_text(forget.read_text(encoding="utf-8") + '{"text": "Jane Doe also keeps bees."}\n', encoding="utf-8")
    b, _ = plan_file(folder / "old.unlearn")
    assert a is not None and b is not None
    cs = diff_plans(a, b)
    assert [(c.kind, c.what, c.subject) for c in cs] == [("changed", "data file", "data/jane-doe.jsonl")]


def test_plans_diff_like_specs_and_render_md_and_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = variant(folder, ("verbatim_rouge <= 0.20", "verbatim_rouge <= 0.30"))
    for src, dst in ((folder / "old.unlearn", folder / "old.json"), (new, folder / "new.json")):
        assert main(["plan", str(src), "-q", "-o", str(dst)]) == 0
    capsys.readouterr()
    code = main(["diff", str(folder / "old.json"), str(folder / "new.json"), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["format_version"] == "1" and doc["loosened"] is True
    assert {"objective": "erase-jane-doe", "kind": "loosened", "what": "threshold", "subject": "verbatim_rouge@forget",
            "old": "<= 0.2", "new": "<= 0.3"}.items() <= doc["changes"][0].items()
    code = main(["diff", str(folder / "old.json"), str(new), "--format", "md"])
    md = capsys.readouterr().out
    assert code == 1
    assert "| `erase-jane-doe` | **loosened** | threshold | &lt;= 0.2 | &lt;= 0.3 |" in md  # `<` as an entity
    assert "Something loosened" in md


def test_unreadable_input_exits_2(folder: Path) -> None:
    bad = folder / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    text, errors, code = diff_paths(bad, folder / "old.unlearn")
    assert code == 2 and "not an unlearnspec plan" in errors and text == ""
    text, errors, code = diff_paths(folder / "old.unlearn", folder / "missing.unlearn")
    assert code == 2 and "does not exist" in errors and text == ""


def _mc(metric: str, op: str | None, value: float = 0.0) -> MetricCheck:
    return MetricCheck(id=f"{metric}@forget", metric=metric, dataset="forget",
                       threshold=None if op is None else Threshold(op=op, value=value))  # type: ignore[arg-type]


@pytest.mark.parametrize(("metric", "old", "new", "expected"), [
    ("membership_auc", ("<=", 0.6), ("<=", 0.7), "loosened"),
    ("membership_auc", ("<=", 0.6), ("<=", 0.5), "tightened"),
    ("forget_quality", (">=", 0.05), (">=", 0.01), "loosened"),
    ("forget_quality", (">=", 0.05), (">=", 0.10), "tightened"),
    ("privleak", ("<=", 0.10), ("<=", 0.20), "loosened"),
    ("membership_auc", ("<=", 0.6), ("<", 0.6), "tightened"),
    ("membership_auc", ("<", 0.6), ("<=", 0.6), "loosened"),
    ("membership_auc", (None, 0.0), ("<=", 0.6), "tightened"),
    ("membership_auc", ("<=", 0.6), (None, 0.0), "loosened"),
    ("membership_auc", ("<=", 0.6), ("<=", 0.6), None),
])
def test_threshold_direction(metric: str, old: tuple[str | None, float], new: tuple[str | None, float],
                             expected: str | None) -> None:
    assert threshold_direction(metric, _mc(metric, *old), _mc(metric, *new)) == expected


def test_a_lower_confidence_level_loosens_every_check(folder: Path) -> None:
    lower = changes(folder, variant(folder, ("    forget_quality >= 0.05\n",
                                             "    forget_quality >= 0.05\n    confidence 80%\n")))
    assert [(c.kind, c.old, c.new) for c in lower if c.subject == "confidence"] == [("loosened", "95%", "80%")]
    higher = changes(folder, variant(folder, ("    forget_quality >= 0.05\n",
                                              "    forget_quality >= 0.05\n    confidence 99%\n"), name="hi.unlearn"))
    assert [(c.kind, c.new) for c in higher if c.subject == "confidence"] == [("tightened", "99%")]


def test_a_dropped_alias_loosens_the_search_for_the_target(folder: Path) -> None:
    cs = changes(folder, variant(folder, ('aliases "J. Doe", "Jane D."', 'aliases "J. Doe"')))
    assert kinds(cs, "target") == [("loosened", "Jane D.")]
    assert not [c for c in cs if c.subject == "target"]  # category, name and kind are unchanged


def test_a_renamed_single_objective_is_still_compared(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = variant(folder, ('objective "erase-jane-doe"', 'objective "erase-jane-doe-v2"'),
                  ("verbatim_rouge <= 0.20", "verbatim_rouge <= 0.90"))
    code = main(["diff", str(folder / "old.unlearn"), str(new)])
    out = capsys.readouterr().out
    assert code == 1, out  # the loosened threshold is not hidden by the rename
    assert "objective `erase-jane-doe` renamed `erase-jane-doe-v2`" in out
    assert "verbatim_rouge@forget" in out and "<= 0.2 → <= 0.9" in out


def test_in_a_file_of_several_objectives_a_rename_or_a_removal_cannot_hide_a_loosening(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With two objectives, renaming one and loosening its tolerance in the same edit used to read as one
    objective removed ("changed") and one added ("tightened"): exit 0. The renamed objective is matched by
    its target and compared. An objective removed outright stays "changed", like a claim removed: its
    claims are no longer made, which the diff shows, rather than made on weaker evidence."""
    shutil.copytree(SPECS / "data", tmp_path / "data")
    text = (SPECS / "sequential-requests.unlearn").read_text(encoding="utf-8")
    (tmp_path / "old.unlearn").write_text(text, encoding="utf-8")
    second = text.index('objective "erase-vesna-gantrell"')
    renamed = text[:second] + text[second:].replace('"erase-vesna-gantrell"', '"erase-vesna"', 1).replace(
        "utility drop <= 2%", "utility drop <= 90%", 1)
    (tmp_path / "renamed.unlearn").write_text(renamed, encoding="utf-8")
    code = main(["diff", str(tmp_path / "old.unlearn"), str(tmp_path / "renamed.unlearn")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "objective `erase-vesna-gantrell` renamed `erase-vesna`" in out and "<= 2 → <= 90" in out
    (tmp_path / "fewer.unlearn").write_text(text[:second].rstrip() + "\n", encoding="utf-8")
    code = main(["diff", str(tmp_path / "old.unlearn"), str(tmp_path / "fewer.unlearn")])
    out = capsys.readouterr().out
    assert code == 0 and "changed    objective `erase-vesna-gantrell` removed" in out, out


def _edited(name: str, *edits: tuple[str, str]) -> str:
    text = (SPECS / name).read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return text


def _diff_texts(tmp_path: Path, old: str, new: str) -> list[Change]:
    if not (tmp_path / "data").exists():
        shutil.copytree(SPECS / "data", tmp_path / "data")
    (tmp_path / "a.unlearn").write_text(old, encoding="utf-8")
    (tmp_path / "b.unlearn").write_text(new, encoding="utf-8")
    a, _ = plan_file(tmp_path / "a.unlearn", allow_infeasible=True)
    b, _ = plan_file(tmp_path / "b.unlearn", allow_infeasible=True)
    assert a is not None and b is not None
    return diff_plans(a, b)


def test_renaming_a_chains_first_objective_cannot_hide_a_loosened_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The budget sits on the chain's first objective; renamed with it (and the `after` that names it), the
    budget raised from 5% and 2 requests to 50% and 9 is compared with the old one, not lost."""
    old = _edited("erasure-chain.unlearn")
    new = _edited("erasure-chain.unlearn", ('"erase-barnaby-caldrow" {', '"erase-bc" {'),
                  ('after  "erase-barnaby-caldrow"', 'after  "erase-bc"'), ("drop <= 5%", "drop <= 50%"),
                  ("requests 2", "requests 9"))
    cs = _diff_texts(tmp_path, old, new)
    assert [(c.kind, c.subject, c.old, c.new) for c in cs if c.what == "budget"] == [
        ("loosened", "utility_drop", "5.0", "50.0"), ("loosened", "approximate_requests", "2", "9")]
    assert not [c for c in cs if c.what == "after"]  # `after` follows the rename: the chain is the same
    assert main(["diff", str(tmp_path / "a.unlearn"), str(tmp_path / "b.unlearn")]) == 1
    assert "2 loosened" in capsys.readouterr().out


def test_a_budget_whose_first_objective_is_gone_is_removed(tmp_path: Path) -> None:
    """Deleting the chain's first objective deletes its budget: both bounds removed, loosened."""
    text = _edited("erasure-chain.unlearn", ('  after  "erase-barnaby-caldrow"\n', ""))
    first, second = text.index('objective "erase-barnaby-caldrow"'), text.index('objective "erase-vesna-gantrell"')
    cs = _diff_texts(tmp_path, _edited("erasure-chain.unlearn"), text[:first] + text[second:])
    assert [(c.kind, c.subject, c.new) for c in cs if c.what == "budget"] == [
        ("loosened", "utility_drop", None), ("loosened", "approximate_requests", None)]


def test_renaming_every_objective_while_editing_a_target_cannot_hide_its_loosening(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two objectives renamed and an alias dropped in the same edit: matched on the target's category and name
    (the aliases differ now), each is compared with its old self and the dropped alias is a loosening."""
    old = _edited("sequential-requests.unlearn")
    new = _edited("sequential-requests.unlearn", ('objective "erase-barnaby-caldrow"', 'objective "req-1"'),
                  ('objective "erase-vesna-gantrell"', 'objective "req-2"'),
                  ('aliases "V. Gantrell", "Vesna G."', 'aliases "V. Gantrell"'))
    cs = _diff_texts(tmp_path, old, new)
    assert sorted((c.old, c.new) for c in cs if c.what == "objective") == [
        ("erase-barnaby-caldrow", "req-1"), ("erase-vesna-gantrell", "req-2")]
    assert [(c.objective, c.kind, c.subject) for c in cs if c.what == "target"] == [("req-2", "loosened", "Vesna G.")]
    assert main(["diff", str(tmp_path / "a.unlearn"), str(tmp_path / "b.unlearn")]) == 1
    capsys.readouterr()


def test_the_guarantee_ranks_exact_certified_empirical_none() -> None:
    """Every guarantee the language has (the catalog's vocabulary) is ranked, and none stated ranks last."""
    assert set(GUARANTEE_RANK) == {*vocab.GUARANTEES, None}
    order = sorted(GUARANTEE_RANK, key=lambda g: GUARANTEE_RANK[g])
    assert order == ["exact", "certified", "empirical", None]


@pytest.mark.parametrize(("old", "new", "kind"), [
    ("exact", "empirical", "loosened"), ("exact", "certified", "loosened"), ("certified", "empirical", "loosened"),
    ("empirical", None, "loosened"), ("exact", None, "loosened"),
    ("empirical", "exact", "tightened"), (None, "certified", "tightened"),
])
def test_a_weaker_guarantee_loosens(tmp_path: Path, old: str | None, new: str | None, kind: str) -> None:
    def spec(g: str | None) -> str:
        return _edited("account-closures.unlearn", ("  guarantee exact\n", f"  guarantee {g}\n" if g else ""))

    cs = _diff_texts(tmp_path, spec(old), spec(new))
    assert [(c.kind, c.old, c.new) for c in cs if c.what == "guarantee"] == [(kind, old, new)]
    assert main(["diff", str(tmp_path / "a.unlearn"), str(tmp_path / "b.unlearn")]) == (1 if kind == "loosened" else 0)


def test_title_basis_and_owner_edits_are_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _edited("erase-jane-doe.unlearn", ('basis  "GDPR Art. 17, request 2026-0113"', 'basis  "none"'),
                  ('owner  "privacy-office"', 'owner  "nobody"'), ("title  \"Right-to-erasure", "title  \"Erasure"))
    cs = _diff_texts(tmp_path, _edited("erase-jane-doe.unlearn"), new)
    assert sorted((c.kind, c.what, c.new) for c in cs) == [
        ("changed", "basis", "none"), ("changed", "owner", "nobody"),
        ("changed", "title", "Erasure request for Jane Doe")]
    assert main(["diff", str(tmp_path / "a.unlearn"), str(tmp_path / "b.unlearn")]) == 0
    assert "no semantic changes" not in capsys.readouterr().out


def test_the_text_diff_shows_a_specs_control_characters_inert(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    new = _edited("erase-jane-doe.unlearn", ('title  "Right-to-erasure', 'title  "\x1b[2J\x07All verified'))
    _diff_texts(tmp_path, _edited("erase-jane-doe.unlearn"), new)
    assert main(["diff", str(tmp_path / "a.unlearn"), str(tmp_path / "b.unlearn")]) == 0
    out = capsys.readouterr().out
    assert "All verified" in out and "\x1b" not in out and "\x07" not in out
    assert "\ufffd[2J\ufffdAll verified" in out  # one replacement character for each control character


def test_json_diff_of_an_unusable_spec_is_a_json_error_and_diagnostics_on_stderr(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = folder / "bad.unlearn"
    bad.write_text('unlearnspec 1\nobjective "x" {{\n', encoding="utf-8")
    code = main(["diff", str(bad), str(folder / "old.unlearn"), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    doc = json.loads(captured.out)  # stdout is JSON and only JSON
    assert doc["file"] == bad.as_posix() and [d["code"] for d in doc["diagnostics"]] == ["UL102"]
    assert (doc["diagnostics"][0]["line"], doc["diagnostics"][0]["column"]) == (2, 16)  # the second `{`
    assert "error[UL102]" in captured.err and "^" in captured.err
    # the error is the first error's message, as `explain --format json` gives it: no `error[UL102]: ` prefix
    assert doc["error"] == doc["diagnostics"][0]["message"] and not doc["error"].startswith("error")
    assert main(["explain", str(bad), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == doc["error"]
    code = main(["diff", str(bad), str(folder / "old.unlearn")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "error[UL102]" in captured.err


HOSTILE_OWNER = "owner`s <b>bold</b> | `y` [l](javascript:1) www.evil.com https://evil.com/x"


def test_the_markdown_diff_shows_every_value_as_written(folder: Path) -> None:
    """Review finding 5: `diff --format md` was built with f-strings and its values escaped as prose, so a
    user's backtick paired with another and was lost. The template sends each value through `md`/`mdcode`, and
    the message quotes them in code spans fenced to fit (checked with markdown-it: the cells read back the values)."""
    old_name, new_name = "erase-`jane`\n# forged", "erase-jane-doe"
    owner_line = next(ln for ln in JANE_TEXT.splitlines() if ln.strip().startswith("owner"))
    new = variant(folder, (owner_line, f'  owner  "{HOSTILE_OWNER}"'), ("objective \"erase-jane-doe\"",
                                                                       f'objective "{new_name}"'))
    (folder / "old.unlearn").write_text(JANE_TEXT.replace('objective "erase-jane-doe"',
                                                          'objective "erase-`jane`\\n# forged"'), encoding="utf-8")
    md, _, code = diff_paths(folder / "old.unlearn", new, "md")
    assert code == 0
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = parser.parse(md)
    assert not [c for t in tokens for c in t.children or [] if c.type in ("html_inline", "link_open", "image")]
    assert [t.type for t in tokens if t.type == "heading_open"] == ["heading_open"]  # the title only
    rows: list[list[Any]] = []
    in_table = False
    for t in tokens:
        in_table = (in_table or t.type == "table_open") and t.type != "table_close"
        if t.type == "tr_open":
            rows.append([])
        elif t.type == "inline" and in_table:
            rows[-1].append(t.children or [])
    assert {len(r) for r in rows} == {6}  # no pipe split a cell
    text = {"".join(c.content for c in cells if c.type in ("text", "code_inline")) for r in rows for cells in r}
    codes = [c.content for r in rows for cells in r for c in cells if c.type == "code_inline"]
    assert HOSTILE_OWNER in text  # the `new` cell: the owner as written
    assert old_name.replace("\n", " ") in codes and new_name in codes  # the rename, each name whole
    owner_detail = next(r[5] for r in rows if any(c.content == "owner" for c in r[2]))
    shown = "".join(c.content for c in owner_detail)
    assert HOSTILE_OWNER in shown  # its pipe makes it quoted text rather than a code span, every character kept


def test_the_text_diff_keeps_each_change_on_its_line(folder: Path) -> None:
    """Review finding 10: a name with a line break printed a second line that read like a change of its own."""
    (folder / "old.unlearn").write_text(JANE_TEXT.replace('objective "erase-jane-doe"',
                                                          'objective "x\\n  loosened   forged change"'),
                                        encoding="utf-8")
    text, _, _ = diff_paths(folder / "old.unlearn", variant(folder), "text")
    assert not [ln for ln in text.splitlines() if ln.lstrip().startswith("loosened")]
    assert "`x   loosened   forged change`" in text
