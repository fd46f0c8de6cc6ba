"""The resolve pass (UL2xx, and the header checks UL107/UL108): every problem a diagnostic at the right
line:col, with labels and help a policy author can act on; never an exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fixtures.frontend import MINIMAL_BODY, codes, line_col, only, resolve_text, spec_text, write_data

from unlearnspec.catalog import CODES
from unlearnspec.compiler import resolve_values as resolve_mod
from unlearnspec.compiler.parse import parse_bytes
from unlearnspec.compiler.resolve import resolve


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_data(tmp_path)
    return tmp_path


def check(folder: Path, body: str, *, header: bool = True):
    text = spec_text(body, header=header)
    return text, resolve_text(text, folder)


def at(d, text: str, needle: str, occurrence: int = 0) -> None:
    assert (d.span.line, d.span.column) == line_col(text, needle, occurrence), (d.code, d.message)


def test_minimal_spec_is_clean(folder: Path) -> None:
    _, diags = check(folder, MINIMAL_BODY)
    assert diags == []


def test_resolved_model_has_the_values(folder: Path) -> None:
    text = spec_text(MINIMAL_BODY + '  release open_weights precision int4\n  method npo {\n    adapter lora rank 16\n'
                     '    steps 30\n  }\n  preserve {\n    retain "data/retain.jsonl"\n    utility drop <= 2%\n  }\n')
    syntax, _ = parse_bytes(text.encode(), "t.unlearn")
    assert syntax is not None
    spec, diags = resolve(syntax, folder)
    assert diags == []
    [obj] = spec.objectives
    assert obj.release is not None and obj.release.precision is not None
    assert (obj.release.mode.value, obj.release.precision.value) == ("open_weights", "int4")
    assert obj.method is not None and obj.method.knobs.lora_rank is not None
    assert obj.method.knobs.lora_rank.value == 16 and obj.method.knobs.steps.value == 30  # type: ignore[union-attr]
    assert obj.target is not None
    [forget] = obj.target.forget
    assert forget.resolved == (folder / "data" / "jane-doe.jsonl").resolve().as_posix()
    assert (forget.records, forget.qa_records) == (4, 1)
    assert obj.preserve is not None and obj.preserve.utility[0].percent == 2


# ---------------------------------------------------------------------------------------------------
# duplicates


def test_duplicate_objective_has_a_label_at_the_first(folder: Path) -> None:
    text = "unlearnspec 1\n" + ('objective "same" {\n' + MINIMAL_BODY + "}\n") * 2
    d = only(resolve_text(text, folder), "UL201")
    at(d, text, '"same"', 1)
    [label] = d.labels
    assert (label.span.line, label.span.column) == line_col(text, '"same"', 0)
    assert label.message == "first defined here"
    assert "defined twice" in d.message


def test_duplicate_field_has_a_label_at_the_first(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY + "  goal suppression\n")
    d = only(diags, "UL202")
    at(d, text, "goal", 1)
    [label] = d.labels
    assert (label.span.line, label.span.column) == line_col(text, "goal", 0)
    assert d.severity == "error" and "given twice" in d.message
    assert d.help == ["keep one `goal`: it takes a single setting"]  # not "values go on one line": one goal


@pytest.mark.parametrize(("extra", "advice"), [
    ('  target person "Jane Doe" {\n    forget "data/jane-doe.jsonl"\n  }\n',
     "keep one `target` and move what the other holds into its block"),
    ('  method npo\n  method npo { steps 3 }\n', "keep one `method` and move what the other holds into its block"),
])
def test_a_duplicate_blocks_help_says_to_merge_not_to_list(folder: Path, extra: str, advice: str) -> None:
    _, diags = check(folder, MINIMAL_BODY + extra)
    assert only(diags, "UL202").help == [advice]


def test_a_duplicate_list_field_is_told_to_list_its_values(folder: Path) -> None:
    body = MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n',
                                '    forget "data/jane-doe.jsonl"\n    forget "data/retain.jsonl"\n')
    _, diags = check(folder, body)
    assert only(diags, "UL202").help == ['keep one; several values go on one line, separated by commas: '
                                         '`forget "a", "b"`']


def test_a_negated_word_is_not_offered_its_opposite(folder: Path) -> None:
    _, diags = check(folder, MINIMAL_BODY + "  scope {\n    prompts indirect\n  }\n")
    d = only(diags, "UL204")
    assert not any("did you mean `direct`" in h for h in d.help)


def test_duplicate_field_inside_a_block(folder: Path) -> None:
    body = MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n',
                                '    forget "data/jane-doe.jsonl"\n    kind observed\n    kind latent\n')
    text, diags = check(folder, body)
    d = only(diags, "UL202")
    at(d, text, "kind", 1)
    assert d.labels[0].span.line == line_col(text, "kind", 0)[0]


def test_duplicate_claim(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY + "  claims {\n    removed\n    not_generated\n    removed\n  }\n")
    d = only(diags, "UL202")
    at(d, text, "removed", 1)
    assert d.labels[0].message == "first made here"
    assert d.labels[0].span.line == line_col(text, "removed", 0)[0]


def test_duplicate_list_item_is_a_warning(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY + "  scope {\n    outputs verbatim, facts, verbatim\n  }\n")
    d = only(diags, "UL223")
    assert d.severity == "warning" == CODES["UL223"].severity
    at(d, text, "verbatim", 1)
    assert d.labels[0].span.column == line_col(text, "verbatim", 0)[1]


def test_accept_may_repeat(folder: Path) -> None:
    _, diags = check(folder, MINIMAL_BODY + '  accept UL107 "a"\n  accept UL109 "b"\n')
    assert "UL202" not in codes(diags)


# ---------------------------------------------------------------------------------------------------
# unknown fields and words, with did-you-mean


@pytest.mark.parametrize("body,code,word,suggestion", [
    (MINIMAL_BODY.replace("goal removal", "goal removel"), "UL204", "removel", "removal"),
    (MINIMAL_BODY + '  titel "x"\n', "UL203", "titel", "title"),
    (MINIMAL_BODY.replace("    forget", "    forgt"), "UL203", "forgt", "forget"),
    (MINIMAL_BODY.replace("target person", "target persn"), "UL204", "persn", "person"),
    (MINIMAL_BODY + "  method grad_dif\n", "UL204", "grad_dif", "grad_diff"),
    (MINIMAL_BODY + "  release api precision fp61\n", "UL204", "fp61", "fp16"),
    (MINIMAL_BODY + "  scope {\n    prompts paraphrase\n  }\n", "UL204", "paraphrase", "paraphrased"),
    (MINIMAL_BODY + "  claims {\n    remove\n  }\n", "UL204", "remove", "removed"),
    (MINIMAL_BODY + "  evidence {\n    membership_acu <= 0.5\n  }\n", "UL204", "membership_acu", "membership_auc"),
    (MINIMAL_BODY + "  method npo {\n    stesp 10\n  }\n", "UL203", "stesp", "steps"),
    (MINIMAL_BODY.replace("goal removal", "goal suppression via systme") + "  method filter\n",
     "UL204", "systme", "system"),
    (MINIMAL_BODY.replace('"builtin:tiny-bios"', '"builtin:tiny-bio"'), "UL204", "builtin:tiny-bio",
     "builtin:tiny-bios"),
])
def test_unknown_word_with_did_you_mean(folder: Path, body: str, code: str, word: str, suggestion: str) -> None:
    text, diags = check(folder, body)
    d = only(diags, code)
    assert f"`{word}`" in d.message and d.message.startswith("unknown ")
    assert f"did you mean `{suggestion}`?" in d.help
    assert any(h.startswith("expected one of:") or h.startswith("built-in models:") for h in d.help)
    at(d, text, word if code == "UL203" or "builtin" not in word else '"builtin:tiny-bio"')


def test_no_suggestion_for_a_word_far_from_all(folder: Path) -> None:
    _, diags = check(folder, MINIMAL_BODY.replace("goal removal", "goal obliterate"))
    d = only(diags, "UL204")
    assert not any("did you mean" in h for h in d.help)
    assert "`removal`" in d.help[-1] and "`suppression`" in d.help[-1]


# ---------------------------------------------------------------------------------------------------
# ranges


@pytest.mark.parametrize("extra,needle,fragment", [
    ("  preserve {\n    utility drop <= 120%\n  }\n", "120%", "between 0% and 100%"),
    ("  evidence {\n    membership_auc <= 1.5\n  }\n", "1.5", "an AUC between 0 and 1"),
    ("  evidence {\n    forget_quality >= 2\n  }\n", "2\n", "a p-value between 0 and 1"),
    ("  evidence {\n    verbatim_rouge <= -0.1\n  }\n", "-0.1", "between 0 and 1"),
    ("  evidence {\n    retain_utility_drop <= 101%\n  }\n", "101%", "between 0 and 100"),
    ("  method npo {\n    steps 0\n  }\n", "0\n", "between 1 and 1000000"),
    ("  claims {\n    robust_to_finetuning steps -1\n  }\n", "-1", "between 1 and 1000000"),
    ("  claims {\n    robust_to_finetuning steps 2.5\n  }\n", "2.5", "whole number"),
    ("  method npo {\n    learning_rate 0\n  }\n", "0\n", "greater than 0 and at most 1"),
    ("  method npo {\n    adapter lora rank 0\n  }\n", "0\n", "between 1 and 1024"),
    ("  seed -3\n", "-3", "between 0 and 4294967295"),  # seeds are 32-bit
])
def test_value_out_of_range(folder: Path, extra: str, needle: str, fragment: str) -> None:
    text, diags = check(folder, MINIMAL_BODY + extra)
    d = only(diags, "UL205")
    assert fragment in d.message, d.message
    assert f"`{needle.strip()}`" in d.message
    at(d, text, needle)


def test_bounds_are_inclusive(folder: Path) -> None:
    body = MINIMAL_BODY + ("  evidence {\n    membership_auc <= 1\n    forget_quality >= 0\n    verbatim_rouge <= 0\n  }\n"
                           "  preserve {\n    utility drop <= 100%\n  }\n  claims {\n    robust_to_finetuning steps 1\n  }\n")
    _, diags = check(folder, body)
    assert "UL205" not in codes(diags)


# ---------------------------------------------------------------------------------------------------
# missing fields


@pytest.mark.parametrize("missing", ["model", "target", "goal"])
def test_missing_required_field(folder: Path, missing: str) -> None:
    lines = MINIMAL_BODY.splitlines(keepends=True)
    if missing == "target":
        body = "".join(ln for ln in lines if not ln.startswith(("  target", "    forget", "  }")))
    else:
        body = "".join(ln for ln in lines if not ln.startswith(f"  {missing}"))
    text, diags = check(folder, body)
    d = only(diags, "UL206")
    assert d.message == f"objective `obj-0` has no `{missing}`"
    at(d, text, '"obj-0"')
    assert d.help and d.help[0].startswith("add `")


def test_removal_needs_forget_data(folder: Path) -> None:
    body = MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n', "    kind observed\n")
    text, diags = check(folder, body)
    d = only(diags, "UL206")
    assert "needs forget data" in d.message
    at(d, text, "target")


def test_suppression_target_needs_some_data(folder: Path) -> None:
    body = (MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n', "    kind concept\n")
            .replace("goal removal", "goal suppression via model") + "  method refusal\n")
    _, diags = check(folder, body)
    assert "names no data" in only(diags, "UL206").message
    body_with_test = body.replace("    kind concept\n", '    kind concept\n    test "data/neighbors.jsonl"\n')
    assert "UL206" not in codes(check(folder, body_with_test)[1])


# ---------------------------------------------------------------------------------------------------
# data files


def test_missing_data_file(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY.replace("jane-doe.jsonl", "jane.jsonl"))
    d = only(diags, "UL207")
    assert "`data/jane.jsonl` does not exist" in d.message
    at(d, text, '"data/jane.jsonl"')
    assert (d.span.end_column - d.span.column) == len('"data/jane.jsonl"')
    assert any("relative to the spec's folder" in h for h in d.help)


def test_paths_resolve_relative_to_the_spec_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specdir = tmp_path / "policies" / "team"
    write_data(specdir)
    monkeypatch.chdir(tmp_path)  # not the spec's folder: resolution must not depend on it
    _, diags = check(specdir, MINIMAL_BODY)
    assert diags == []
    _, diags = check(tmp_path, MINIMAL_BODY)
    assert codes(diags) == ["UL207"]


def test_data_file_under_a_file_does_not_exist(folder: Path) -> None:
    # a path through a regular file (ENOTDIR) is missing, as pathlib's exists() would say
    _, diags = check(folder, MINIMAL_BODY.replace("data/jane-doe.jsonl", "data/retain.jsonl/jane.jsonl"))
    assert "`data/retain.jsonl/jane.jsonl` does not exist" in only(diags, "UL207").message


def test_data_file_path_the_system_refuses(folder: Path) -> None:
    # any other stat() error is reported with the system's reason, not raised
    long_name = "x" * 300 + ".jsonl"
    _, diags = check(folder, MINIMAL_BODY.replace("jane-doe.jsonl", long_name))
    assert "cannot be opened: File name too long" in only(diags, "UL207").message


def test_directory_where_a_file_is_expected(folder: Path) -> None:
    (folder / "data" / "dir.jsonl").mkdir()
    _, diags = check(folder, MINIMAL_BODY.replace("jane-doe.jsonl", "dir.jsonl"))
    d = only(diags, "UL207")
    assert "is a folder, not a data file" in d.message


def test_save_to_disk_folder_is_accepted(folder: Path) -> None:
    ds = folder / "data" / "hf"
    ds.mkdir()
    (ds / "dataset_info.json").write_text("{}")
    (ds / "state.json").write_text("{}")
    _, diags = check(folder, MINIMAL_BODY.replace("data/jane-doe.jsonl", "data/hf"))
    assert diags == []


def test_unreadable_data_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_mod.os, "access", lambda path, mode: False)
    _, diags = check(folder, MINIMAL_BODY)
    assert "is not readable" in only(diags, "UL207").message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_data_file_by_permissions(folder: Path) -> None:
    path = folder / "data" / "jane-doe.jsonl"
    path.chmod(0)
    try:
        _, diags = check(folder, MINIMAL_BODY)
    finally:
        path.chmod(0o644)
    assert "not readable" in only(diags, "UL207").message


def test_data_file_that_cannot_be_opened(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, st: object = None) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(resolve_mod, "inspect_cached", refuse)
    _, diags = check(folder, MINIMAL_BODY)
    d = only(diags, "UL207")
    assert "cannot be opened: Permission denied" in d.message


def test_malformed_jsonl_line_names_file_line_and_column(folder: Path) -> None:
    bad = folder / "data" / "jane-doe.jsonl"
    bad.write_text('{"text": "fine"}\n\n{"text": "cut short\n{"text": "fine"}\n', encoding="utf-8")
    text, diags = check(folder, MINIMAL_BODY)
    d = only(diags, "UL208")
    assert d.message.startswith("data file `data/jane-doe.jsonl:3:10` cannot be read: malformed JSON")
    at(d, text, '"data/jane-doe.jsonl"')


@pytest.mark.parametrize("name,content,fragment,where", [
    ("a.jsonl", '{"text": "ok"}\n[1, 2]\n', "each line must be a JSON object", "a.jsonl:2:1"),
    ("a.jsonl", '{"text": "ok"}\n{"title": "no text"}\n', "neither `text` nor `question` + `answer`", "a.jsonl:2:1"),
    ("a.jsonl", '{"question": "q?", "answer": "a", "paraphrases": "not|a|list"}\n{"text": 3}\n',
     "field `text`", "a.jsonl:2:1"),
    ("a.jsonl", "", "holds no records", "a.jsonl:1:1"),
    ("a.csv", "title\nx\n", "CSV header must name", "a.csv:1:1"),
    ("a.txt", "text\n", "unsupported data file type `.txt`", "a.txt:1:1"),
])
def test_malformed_data_files(folder: Path, name: str, content: str, fragment: str, where: str) -> None:
    (folder / "data" / name).write_text(content, encoding="utf-8")
    _, diags = check(folder, MINIMAL_BODY.replace("jane-doe.jsonl", name))
    d = only(diags, "UL208")
    assert fragment in d.message, d.message
    assert f"data file `data/{where}` " in d.message
    assert d.help and d.help[0], d.help


def test_invalid_utf8_data_file(folder: Path) -> None:
    (folder / "data" / "bin.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    _, diags = check(folder, MINIMAL_BODY.replace("jane-doe.jsonl", "bin.jsonl"))
    d = only(diags, "UL208")
    assert "not valid UTF-8" in d.message and "`data/bin.jsonl:2:11`" in d.message


def test_csv_data_file_is_accepted(folder: Path) -> None:
    (folder / "data" / "qa.csv").write_text('question,answer\n"Where, exactly?",Porto\n', encoding="utf-8")
    _, diags = check(folder, MINIMAL_BODY.replace("jane-doe.jsonl", "qa.csv"))
    assert diags == []


def test_data_file_results_are_cached_until_the_file_changes(folder: Path) -> None:
    path = folder / "data" / "jane-doe.jsonl"
    assert check(folder, MINIMAL_BODY)[1] == []
    calls: list[Path] = []
    original = resolve_mod.inspect_data_file

    def counting(p: Path):  # type: ignore[no-untyped-def]
        calls.append(p)
        return original(p)

    resolve_mod.inspect_data_file = counting  # type: ignore[assignment]
    try:
        assert check(folder, MINIMAL_BODY)[1] == []
        assert calls == []  # same path, mtime and size: not read again
        path.write_text('{"text": "changed and longer than before"}\n' + json.dumps({"nope": 1}) + "\n")
        assert codes(check(folder, MINIMAL_BODY)[1]) == ["UL208"]
        assert len(calls) == 1
    finally:
        resolve_mod.inspect_data_file = original  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------------
# contradictions, shapes, thresholds


@pytest.mark.parametrize("goal,method,needle,fragment", [
    ("removal", "refusal", "refusal", "suppresses outputs; it does not remove anything"),
    ("removal", "filter", "filter", "suppresses outputs"),
    ("suppression via system", "npo", "npo", "`via system` suppression is served by an output filter"),
    ("suppression via model", "filter", "filter", "an output filter lives in the serving system"),
    ("removal via model", "npo", "via", "`via` applies to suppression, not removal"),
])
def test_contradictory_fields(folder: Path, goal: str, method: str, needle: str, fragment: str) -> None:
    text, diags = check(folder, MINIMAL_BODY.replace("goal removal", f"goal {goal}") + f"  method {method}\n")
    d = only(diags, "UL209")
    assert fragment in d.message
    at(d, text, needle, 0 if needle != "via" else 0)
    assert d.labels, "a contradiction points at both sides"


def test_same_file_forgotten_and_preserved(folder: Path) -> None:
    body = MINIMAL_BODY + '  preserve {\n    retain "data/retain.jsonl"\n    neighbors "data/../data/jane-doe.jsonl"\n  }\n'
    text, diags = check(folder, body)
    d = only(diags, "UL209")
    assert "is both forgotten and preserved" in d.message
    at(d, text, '"data/../data/jane-doe.jsonl"')
    assert d.labels[0].span.line == line_col(text, '"data/jane-doe.jsonl"')[0]


@pytest.mark.parametrize("extra,needle,fragment", [
    ("  title Jane\n", "Jane\n", "`title` expects one quoted string"),  # the values that do not fit, not the field
    ('  title "a", "b"\n', '"a", "b"', "`title` expects one quoted string"),
    ("  scope\n", "scope\n", "`scope` needs a block"),
    ("  scope verbatim {\n    outputs facts\n  }\n", "verbatim", "`scope` takes a block, not values"),
    ("  goal removal {\n  }\n", "{\n  }", "`goal` takes no block"),
    ("  claims removed\n", "claims removed", "`claims` takes a block"),
    ("  claims {\n    removed steps 3\n  }\n", "steps", "claim `removed` takes no values"),
    ("  claims {\n    compliant\n  }\n", "compliant", "`compliant` expects a quoted name"),
    ("  evidence {\n    membership_auc == 0.5\n  }\n", "==", "bounds, not equalities"),
    ("  evidence {\n    verbatim_rouge <= 20%\n  }\n", "20%", "is a ratio, not a percentage"),
    ("  evidence {\n    verbatim_rouge 0.2\n  }\n", "0.2", "a comparison and a number"),
    ("  preserve {\n    utility drop <= 2\n  }\n", "2\n", "a utility drop is a percentage"),
    ("  preserve {\n    utility less than 2%\n  }\n", "less", "cannot read utility tolerance"),
    ("  scope {\n    outputs verbatim facts\n  }\n", "facts", "expected `,` between output kinds"),
    ('  scope {\n    outputs "verbatim"\n  }\n', '"verbatim"', "an output kind is written without quotes"),
    ('  scope {\n    outputs "verbose"\n  }\n', '"verbose"', "expected an output kind"),
    ("  preserve {\n    retain retain_jsonl\n  }\n", "retain_jsonl", "expects quoted paths"),
    ("  accept UL107\n", "UL107\n", "a rule code and a quoted justification"),
    ("  release api fp32\n", "api fp32", "a release mode and optionally `precision P`"),
])
def test_wrong_shape(folder: Path, extra: str, needle: str, fragment: str) -> None:
    body = MINIMAL_BODY.replace("  goal removal\n", "") if extra.startswith("  goal") else MINIMAL_BODY
    text, diags = check(folder, body + extra)
    found = [d for d in diags if d.code == "UL210"]
    assert found, [(d.code, d.message) for d in diags]
    d = found[0]
    assert fragment in d.message, d.message
    at(d, text, needle)


@pytest.mark.parametrize("line,op_needle,good", [
    ("membership_auc >= 0.60", ">=", "membership_auc <= 0.60"),
    ("verbatim_rouge > 0.2", ">", "verbatim_rouge <= 0.2"),
    ("forget_quality <= 0.05", "<=", "forget_quality >= 0.05"),
    ("privleak >= 0.1", ">=", "privleak <= 0.1"),
])
def test_threshold_the_wrong_way(folder: Path, line: str, op_needle: str, good: str) -> None:
    text, diags = check(folder, MINIMAL_BODY + f"  evidence {{\n    {line}\n  }}\n")
    d = only(diags, "UL211")
    assert "the wrong way" in d.message
    assert any(f"write `{good}`" in h for h in d.help)
    assert d.span.line == line_col(text, line)[0]
    assert d.span.column == line_col(text, line)[1] + line.index(op_needle)


def test_utility_drop_bounded_from_below_is_wrong_way(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY + "  preserve {\n    utility drop >= 2%\n  }\n")
    d = only(diags, "UL211")
    at(d, text, ">=")


@pytest.mark.parametrize(("tolerances", "twice", "first", "second"), [
    ("retain drop <= 2%, retain drop <= 5%", "retain", "retain drop <= 2%", "retain drop <= 5%"),
    ("drop <= 2%, neighbors drop <= 5%", "neighbour", "drop <= 2%", "neighbors drop <= 5%"),
    ("neighbors drop <= 5%, drop <= 2%", "neighbour", "neighbors drop <= 5%", "drop <= 2%"),
    ("drop <= 2%, drop < 3%", "retain and neighbour", "drop <= 2%", "drop < 3%"),
])
def test_a_set_given_two_utility_tolerances_is_an_error_not_a_silent_choice(
        folder: Path, tolerances: str, twice: str, first: str, second: str) -> None:
    text, diags = check(folder, MINIMAL_BODY + f"  preserve {{\n    utility {tolerances}\n  }}\n")
    d = only(diags, "UL202")
    assert d.message == f"the {twice} utility tolerance is given twice"
    line, col = line_col(text, tolerances)
    assert (d.span.line, d.span.column) == (line, col + tolerances.index(second, len(first)))
    assert [(lab.message, lab.span.column) for lab in d.labels] == [("first given here", col + tolerances.index(first))]
    _, fine = check(folder, MINIMAL_BODY + "  preserve {\n    utility retain drop <= 2%, neighbors drop <= 5%\n  }\n")
    assert "UL202" not in codes(fine)


# ---------------------------------------------------------------------------------------------------
# accept


def test_accept_unknown_code(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY + '  accept UL10B "reviewed"\n')
    d = only(diags, "UL212")
    assert "unknown code `UL10B`" in d.message
    assert any(h.startswith("did you mean `UL10") for h in d.help)
    at(d, text, "UL10B")


def test_accept_far_from_any_code(folder: Path) -> None:
    _, diags = check(folder, MINIMAL_BODY + '  accept XYZ123 "reviewed"\n')
    d = only(diags, "UL212")
    assert not any("did you mean" in h for h in d.help)
    assert any("unlearnspec explain" in h for h in d.help)


@pytest.mark.parametrize("justification", ['""', '"   "'])
def test_accept_needs_a_justification(folder: Path, justification: str) -> None:
    text, diags = check(folder, MINIMAL_BODY + f"  accept UL107 {justification}\n")
    d = only(diags, "UL215")
    assert "needs a written justification" in d.message
    at(d, text, justification)


# ---------------------------------------------------------------------------------------------------
# header


def test_missing_header_is_a_warning(folder: Path) -> None:
    _, diags = check(folder, MINIMAL_BODY, header=False)
    d = only(diags, "UL107")
    assert d.severity == "warning" and (d.span.line, d.span.column) == (1, 1)


def test_unsupported_version(folder: Path) -> None:
    text = spec_text(MINIMAL_BODY).replace("unlearnspec 1", "unlearnspec 2")
    diags = resolve_text(text, folder)
    d = only(diags, "UL108")
    assert "`2`" in d.message and (d.span.line, d.span.column) == (1, 13)


def test_another_version_without_objectives_is_reported_as_that_version(tmp_path: Path) -> None:
    """`unlearnspec 2` alone: the version is the problem (UL108), not the missing objective (UL109), which only a
    reader of version 2 could judge."""
    from unlearnspec.compiler.check import compile

    for header, expected in (("unlearnspec 2\n", ["UL108"]), ("unlearnspec 1\n", ["UL109"])):
        path = tmp_path / "v.unlearn"
        path.write_text(header, encoding="utf-8")
        assert [d.code for d in compile(path).diagnostics] == expected


def test_an_empty_model_or_data_path_is_named_empty(folder: Path) -> None:
    """`forget ""` and `model ""` would name the spec's own folder; they are reported as empty paths."""
    diags = resolve_text(spec_text(MINIMAL_BODY.replace('"data/jane-doe.jsonl"', '""')), folder)
    assert only(diags, "UL207").message == "a data file path is empty"
    diags = resolve_text(spec_text(MINIMAL_BODY.replace('"builtin:tiny-bios"', '" "')), folder)
    assert only(diags, "UL207").message == "the model is empty"


# ---------------------------------------------------------------------------------------------------
# objective attribution


def test_findings_name_their_objective(folder: Path) -> None:
    text = spec_text(MINIMAL_BODY, MINIMAL_BODY.replace("goal removal", "goal removel"))
    diags = resolve_text(text, folder)
    assert [(d.code, d.objective) for d in diags] == [("UL204", "obj-1")]


def test_two_fields_on_one_line_are_told_to_split(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY.replace("  goal removal\n", "  goal removal\n  method rmu { learning_rate 1e-3 steps 120 }\n"))
    [d] = [d for d in diags if d.code == "UL210"]
    assert d.message == "`learning_rate` expects one number"
    assert d.help[0] == "each field goes on its own line: start a new line before `steps`"
    at(d, text, "1e-3 steps")
    # a stray non-field word gets only the usual example
    _, diags = check(folder, MINIMAL_BODY.replace("  goal removal\n", "  goal removal\n  method rmu {\n    learning_rate 1e-3 fast\n  }\n"))
    [d] = [d for d in diags if d.code == "UL210"]
    assert not any("own line" in h for h in d.help)


def test_the_forget_set_cannot_be_its_own_holdout(folder: Path) -> None:
    # membership inference compares the forget set with the holdout: the same records on both sides make
    # every AUC chance by construction, and the membership check would pass whatever the model holds
    body = MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n',
                                '    forget "data/jane-doe.jsonl"\n    holdout "data/./jane-doe.jsonl"\n')
    text, diags = check(folder, body)
    d = only(diags, "UL209")
    assert "is both forgotten and held out" in d.message and "chance by construction" in d.help[0]
    at(d, text, '"data/./jane-doe.jsonl"')
    assert d.labels[0].span.line == line_col(text, '"data/jane-doe.jsonl"')[0]


def _cut_weights(path: Path) -> None:
    """A real safetensors file (written by the library), then cut to half its size: an interrupted copy."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((16, 16), dtype=np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda d: ((d / "config.json").write_text("{not json", encoding="utf-8"),
                (d / "model.safetensors").write_bytes(b"x")), "`config.json` of model folder `./models/m` is not a JSON object"),
    (lambda d: ((d / "config.json").write_text("[1, 2]", encoding="utf-8"),
                (d / "model.safetensors").write_bytes(b"x")), "is not a JSON object"),
    (lambda d: ((d / "config.json").write_text("{}", encoding="utf-8"), (d / "model.safetensors").mkdir()),
     "has no safetensors weights"),  # a folder of that name is no weights file
    (lambda d: ((d / "config.json").write_text("{}", encoding="utf-8"), _cut_weights(d / "model.safetensors")),
     "`model.safetensors` in model folder `./models/m` is cut short"),
])
def test_a_model_folder_that_cannot_load_is_refused_before_planning(folder: Path, make: object, fragment: str) -> None:
    model = folder / "models" / "m"
    model.mkdir(parents=True)
    make(model)  # type: ignore[operator]
    text, diags = check(folder, MINIMAL_BODY.replace('"builtin:tiny-bios"', '"./models/m"'))
    d = only(diags, "UL207")
    assert fragment in d.message, d.message


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize(("role", "block", "fragment"), [
    ("neighbors", '  preserve {\n    neighbors "data/mixed.jsonl"\n  }\n', "both forgotten and preserved"),
    ("holdout", "", "both forgotten and held out"),
])
def test_a_forget_record_inside_another_file_is_found(folder: Path, role: str, block: str, fragment: str) -> None:
    """Not the same file, but one of its records: the forget set's question, copied into another role's file among
    records of its own. The count is of the texts the two files share (here one of the forget file's four)."""
    forget = [json.loads(x) for x in (folder / "data" / "jane-doe.jsonl").read_text(encoding="utf-8").splitlines()]
    _jsonl(folder / "data" / "mixed.jsonl", [{"text": f"someone else {i}"} for i in range(4)] + [forget[3]])
    body = MINIMAL_BODY + block
    if role == "holdout":
        body = body.replace('    forget "data/jane-doe.jsonl"\n',
                            '    forget "data/jane-doe.jsonl"\n    holdout "data/mixed.jsonl"\n')
    text, diags = check(folder, body)
    d = only(diags, "UL209")
    assert d.message.startswith("1 text of `data/mixed.jsonl` is also forget data") and fragment in d.message
    at(d, text, '"data/mixed.jsonl"')
    assert d.labels[0].message == "record 4 here gives the same text"
    assert d.help[0].startswith("record 5 of `data/mixed.jsonl`: \"Question: Where does jane-doe live?")


def test_a_repeated_forget_record_is_a_warning_with_the_counts(folder: Path) -> None:
    rows = [{"text": f"jane record {i}"} for i in range(3)]
    _jsonl(folder / "data" / "twice.jsonl", rows + rows[:2])
    text, diags = check(folder, MINIMAL_BODY.replace("data/jane-doe.jsonl", "data/twice.jsonl"))
    d = only(diags, "UL222")
    assert d.severity == "warning" and d.message == "the forget set holds 5 records but only 3 different ones"
    assert 'for example "jane record 0" is given 2 times' in d.help[0]
    at(d, text, '"data/twice.jsonl"')
    _, clean = check(folder, MINIMAL_BODY)
    assert "UL222" not in codes(clean) and "UL209" not in codes(clean)


@pytest.mark.parametrize("alias", ['""', '"   "'])
def test_an_empty_alias_is_refused(folder: Path, alias: str) -> None:
    body = MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n',
                                f'    forget "data/jane-doe.jsonl"\n    aliases {alias}, "J. Doe"\n')
    text, diags = check(folder, body)
    d = only(diags, "UL205")
    assert d.message == "an alias cannot be empty" and "found in every text" in d.help[0]
    at(d, text, alias)


def test_an_empty_target_name_is_refused(folder: Path) -> None:
    text, diags = check(folder, MINIMAL_BODY.replace('target person "Jane Doe"', 'target person " "'))
    d = only(diags, "UL205")
    assert d.message == "the target's name cannot be empty"
    at(d, text, '" "')


@pytest.mark.parametrize(("extra", "code", "help_"), [
    ("  evidence {\n    confidence 0.95\n  }\n", "UL210", "write `confidence 95%`"),
    ("  evidence {\n    membership_auc <= 60\n  }\n", "UL205", "did you mean `0.6`? (membership_auc is not a percentage)"),
    ("  preserve {\n    utility drop <= 0.02\n  }\n", "UL210",
     "write `2%` for a drop of 2 percent (`0.02%` would be 0.02 of one percent)"),
    ("  preserve {\n    utility drop <= 3\n  }\n", "UL210", "write `3%`"),
])
def test_a_number_in_the_wrong_unit_gets_the_fix_the_author_meant(folder: Path, extra: str, code: str,
                                                                   help_: str) -> None:
    _, diags = check(folder, MINIMAL_BODY + extra)
    assert only(diags, code).help == [help_]


def test_an_attribute_no_forget_record_carries_is_an_error_with_the_closest_label(folder: Path) -> None:
    """`attribute` names a label in the forget records' `attributes` (the representation probe predicts
    it); a misspelt one used to leave the probe unmeasurable until run time, with `check` silent."""
    rows = [{"question": f"q{i}?", "answer": "Porto", "attributes": {"birth_city": "Porto", "employer": "X"}}
            for i in range(3)]
    (folder / "data" / "jane-doe.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    body = MINIMAL_BODY.replace('    forget "data/jane-doe.jsonl"\n',
                                '    forget "data/jane-doe.jsonl"\n    attribute birth_cty\n')
    text, diags = check(folder, body)
    d = only(diags, "UL204")
    assert "`birth_cty`" in d.message and "did you mean `birth_city`?" in d.message
    at(d, text, "birth_cty")
    assert any("`birth_city`, `employer`" in h for h in d.help)
    _, fine = check(folder, body.replace("birth_cty", "employer"))
    assert fine == []


def test_a_malformed_bound_is_shown_written_with_the_catalogs_default(folder: Path) -> None:
    """UL210's help for an evidence line used to read `write it as `membership_auc ...``: it now shows the
    metric's default bound from the catalog, which is itself a valid line."""
    from unlearnspec.catalog import METRICS

    for metric in ("membership_auc", "retain_utility_drop"):
        text, diags = check(folder, MINIMAL_BODY + f"  evidence {{\n    {metric} 0.6\n  }}\n")
        d = only(diags, "UL210")
        t = METRICS[metric].threshold
        shown = f"{metric} {t.op} {t.value:g}{'%' if METRICS[metric].unit == 'percent' else ''}"
        assert f"write it as `{shown}`" in d.help
        _, fine = check(folder, MINIMAL_BODY + f"  evidence {{\n    {shown}\n  }}\n")
        assert fine == []
