"""`unlearnspec data import {tofu,muse,wmdp}`: the published layouts in, records and a checked spec out.

The sources are built in tmp folders in the benchmarks' exact layouts (tests/fixtures/benchmarks.py);
each conversion is compared with the rows the fixture wrote, and each starter spec is checked by the
compiler. Nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.benchmarks import (
    build_muse_github,
    build_muse_hub,
    build_tofu,
    build_wmdp,
    muse_docs,
    opening,
    tofu_rows,
    wmdp_rows,
    write_json_lines,
    write_parquet,
)
from fixtures.frontend import ROOT

from unlearnspec.cli import main
from unlearnspec.compiler.check import check_paths
from unlearnspec.records import DataFormatError, inspect_data_file, read_records


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["data", "import", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _assert_spec_checks_clean(spec: Path, *, warnings: tuple[str, ...] = ()) -> None:
    """No error, and no open warning but those named (the starter spec's to-dos for the user)."""
    [result] = check_paths([spec])
    blocking = [d.code for d in result.diagnostics
                if d.severity == "error" or (d.severity == "warning" and not d.accepted)]
    assert blocking == list(warnings), [f"{d.code}: {d.message}" for d in result.diagnostics]


# -- TOFU ------------------------------------------------------------------------------------------


def test_tofu_import_converts_each_split_and_writes_a_clean_spec(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu(tmp_path / "TOFU", n=24)
    rc, out, _ = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0
    forget = read_records(tmp_path / "out" / "tofu-forget10.jsonl")
    expected = tofu_rows("forget10", 24, perturbed=True)  # the perturbed file is preferred: it has more columns
    assert [(r.question, r.answer) for r in forget] == [(e["question"], e["answer"]) for e in expected]
    assert [r.perturbed for r in forget] == [e["perturbed_answer"] for e in expected]
    assert [r.paraphrases for r in forget] == [[e["paraphrased_question"]] for e in expected]
    raw = [json.loads(line) for line in (tmp_path / "out" / "tofu-forget10.jsonl").read_text().splitlines()]
    assert [r["paraphrased_answer"] for r in raw] == [e["paraphrased_answer"] for e in expected]
    # forget10 pairs with retain90 and holdout10; real_authors and world_facts are the neighbour sets
    assert len(read_records(tmp_path / "out" / "tofu-retain90.jsonl")) == 72
    assert len(read_records(tmp_path / "out" / "tofu-holdout10.jsonl")) == 24
    assert "tofu-real-authors.jsonl" in out and "tofu-world-facts.jsonl" in out
    spec = tmp_path / "out" / "tofu-forget10.unlearn"
    text = spec.read_text()
    assert 'holdout "tofu-holdout10.jsonl"' in text and "forget_quality" in text
    _assert_spec_checks_clean(spec)


def test_tofu_forget01_pairs_with_retain99_and_holdout01(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu(tmp_path / "TOFU", split="forget01", n=8)
    rc, _, _ = _import(capsys, "tofu", str(src), "--split", "forget01", "--out", str(tmp_path / "out"))
    assert rc == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "tofu-retain99.jsonl" in names and "tofu-holdout01.jsonl" in names and "tofu-forget01.unlearn" in names
    _assert_spec_checks_clean(tmp_path / "out" / "tofu-forget01.unlearn")


def test_tofu_from_hub_parquet_shards_and_a_save_to_disk_folder(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "TOFU"
    write_parquet(src / "forget10" / "train-00000-of-00001.parquet", tofu_rows("forget10", 6))
    datasets.Dataset.from_list(tofu_rows("retain90", 9)).save_to_disk(str(src / "retain90"))
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r.question for r in read_records(tmp_path / "out" / "tofu-forget10.jsonl")] == \
        [r["question"] for r in tofu_rows("forget10", 6)]
    assert [r.answer for r in read_records(tmp_path / "out" / "tofu-retain90.jsonl")] == \
        [r["answer"] for r in tofu_rows("retain90", 9)]
    spec = (tmp_path / "out" / "tofu-forget10.unlearn").read_text()
    assert "holdout" not in spec.split("target", 1)[1].split("}", 1)[0]  # no holdout file, no holdout field
    # no real_authors / world_facts in this source: the spec says the neighbour set is missing; and six
    # questions cannot show membership within the default tolerance of the reference (UL411)
    _assert_spec_checks_clean(tmp_path / "out" / "tofu-forget10.unlearn", warnings=("UL404", "UL411"))


# -- MUSE ------------------------------------------------------------------------------------------


def test_muse_news_hub_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_muse_hub(tmp_path / "MUSE-News", n=16)
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    out = tmp_path / "out"
    # raw/forget is the forget corpus; a VerbMem item is an article's opening, prompt and continuation joined
    assert [r.text for r in read_records(out / "muse-news-forget.jsonl")] == muse_docs("forget", 16)
    assert [r.text for r in read_records(out / "muse-news-verbmem.jsonl")] == [opening(t) for t in
                                                                               muse_docs("forget", 16)]
    knowmem = read_records(out / "muse-news-knowmem-forget.jsonl")
    assert all(r.is_qa for r in knowmem) and knowmem[3].question == "What did the council of Harbour Town 3 vote on?"
    assert [r.text for r in read_records(out / "muse-news-holdout.jsonl")] == muse_docs("holdout", 16)
    assert len(read_records(out / "muse-news-retain.jsonl")) == 32  # raw/retain2 preferred to privleak/retain
    spec = out / "muse-news.unlearn"
    assert "target records" in spec.read_text()
    _assert_spec_checks_clean(spec)


def test_muse_books_github_json_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_muse_github(tmp_path / "muse_bench" / "data" / "books", n=10)
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    out = tmp_path / "out"
    # no raw subset: privleak's forget documents (a JSON array of strings) are the forget corpus
    assert [r.text for r in read_records(out / "muse-books-forget.jsonl")] == muse_docs("forget", 10)
    assert [r.text for r in read_records(out / "muse-books-verbmem.jsonl")] == muse_docs("chapter", 10)
    assert "target work" in (out / "muse-books.unlearn").read_text()
    _assert_spec_checks_clean(out / "muse-books.unlearn")


def test_muse_corpus_must_be_named_when_the_folder_does_not_say(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = build_muse_github(tmp_path / "downloads", n=4)
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2
    assert "error[UL821]" in err and "--corpus news" in err
    rc, _, _ = _import(capsys, "muse", str(src), "--corpus", "news", "--out", str(tmp_path / "out"))
    assert rc == 0 and (tmp_path / "out" / "muse-news.unlearn").is_file()


def test_muse_corpus_is_a_whole_word_of_the_folder_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`notebooks` holds "books" and `newsletters` "news", but neither names a MUSE corpus: the nearest folder that
    does decides (here `MUSE-News` above them), never a substring."""
    for inner in ("notebooks", "newsletters"):
        src = build_muse_hub(tmp_path / "MUSE-News" / inner, n=4)
        rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / f"out-{inner}"))
        assert rc == 0, err
        assert (tmp_path / f"out-{inner}" / "muse-news.unlearn").is_file()


def test_a_line_separator_inside_a_json_string_stays_in_its_record(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """U+2028 and U+2029 may stand unescaped in a JSON string (RFC 8259); JSON Lines ends a line at `\\n` only.
    The source has them escaped, the import writes them as they are, and both read back as one record each."""
    rows = wmdp_rows("bio", 3)
    rows[1]["question"] = "First line\u2028second\u2029third\x85?"
    write_json_lines(tmp_path / "src" / "wmdp-bio.jsonl", rows)
    rc, _, err = _import(capsys, "wmdp", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    records = read_records(tmp_path / "out" / "wmdp-bio.jsonl")
    assert [r.question for r in records] == [r["question"] for r in rows]
    assert "\u2028" in (tmp_path / "out" / "wmdp-bio.jsonl").read_text(encoding="utf-8")  # written unescaped
    _assert_spec_checks_clean(tmp_path / "out" / "wmdp.unlearn", warnings=("UL404",))  # no UL208 at the separator


def test_a_model_folder_is_written_relative_to_the_starter_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`--model models/m` is typed relative to where the command runs; the spec reads paths from its own folder."""
    src = build_wmdp(tmp_path / "wmdp", n=4)
    (tmp_path / "models" / "m").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", "imported/wmdp", "--model", "models/m")
    assert rc == 0, err
    spec = (tmp_path / "imported" / "wmdp" / "wmdp.unlearn").read_text(encoding="utf-8")
    assert re.search(r'^  model +"\.\./\.\./models/m"$', spec, re.M), spec


# -- WMDP ------------------------------------------------------------------------------------------


def test_wmdp_mcq_records_keep_the_answer_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_wmdp(tmp_path / "wmdp", n=12)
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    for subset in ("bio", "cyber", "chem"):
        records = read_records(tmp_path / "out" / f"wmdp-{subset}.jsonl")
        source = wmdp_rows(subset, 12)
        assert all(r.is_mcq and r.is_qa for r in records)
        assert [r.answer_index for r in records] == [s["answer"] for s in source]
        assert [r.choices for r in records] == [s["choices"] for s in source]
        assert [r.answer for r in records] == [s["choices"][s["answer"]] for s in source]
    spec = tmp_path / "out" / "wmdp.unlearn"
    # WMDP has no utility set of its own: the starter spec leaves UL404 open for the user to answer
    _assert_spec_checks_clean(spec, warnings=("UL404",))
    assert main(["check", str(spec)]) == 0
    # the capability claim is decided by multiple-choice accuracy on the imported items
    assert main(["plan", str(spec), "-o", str(tmp_path / "plan.json")]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    checks = [c for o in plan["objectives"] for c in o["checks"] if c["metric"] == "mcq_accuracy"]
    assert [(c["dataset"], c["threshold"]) for c in checks] == [("test", {"op": "<=", "value": 0.35})]


def test_wmdp_subset_option_and_jsonl_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_json_lines(tmp_path / "src" / "wmdp-cyber.jsonl", wmdp_rows("cyber", 5))
    write_json_lines(tmp_path / "src" / "wmdp-bio.jsonl", wmdp_rows("bio", 5))
    rc, _, _ = _import(capsys, "wmdp", str(tmp_path / "src"), "--subsets", "cyber", "--out", str(tmp_path / "out"))
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["wmdp-cyber.jsonl", "wmdp.unlearn"]


def test_an_import_never_writes_over_its_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The converted file has the source's name when the output folder is the source folder: refused even with
    `--force` (it would lose the source's own columns); an empty `--out` is refused too."""
    src = tmp_path / "wm"
    write_json_lines(src / "wmdp-bio.jsonl", wmdp_rows("bio", 4))
    before = (src / "wmdp-bio.jsonl").read_bytes()
    rc, _, err = _import(capsys, "wmdp", str(src), "--subsets", "bio", "--out", str(src), "--force")
    assert rc == 2 and "error[UL824]: `wmdp-bio.jsonl` in the output folder is the source file" in err
    assert (src / "wmdp-bio.jsonl").read_bytes() == before and not (src / "wmdp.unlearn").exists()
    with pytest.raises(SystemExit) as ex:
        main(["data", "import", "wmdp", str(src), "--out", ""])
    assert ex.value.code == 2


def test_a_dataset_index_whose_splits_are_not_names_is_ul823(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "TOFU"
    (src / "forget10").mkdir(parents=True)
    (src / "forget10" / "dataset_dict.json").write_text('{"splits": 5}', encoding="utf-8")
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]" in err and "`splits` is not a list of names" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


# -- wrong layouts: a diagnostic with code, path and help, exit 2, nothing written ----------------


def test_wrong_column_names_the_file_and_suggests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu(tmp_path / "TOFU", n=4)
    for name in ("forget10.json", "forget10_perturbed.json"):
        write_json_lines(src / name, [{"question": "q?", "answers": "a."}])
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2
    assert "error[UL822]: split `forget10_perturbed` has no `answer` column" in err
    assert f"--> {src / 'forget10_perturbed.json'}:1:1" in err
    assert "help: did you mean `answers`?" in err
    assert not (tmp_path / "out").exists()


def test_wmdp_answer_out_of_range_points_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = wmdp_rows("bio", 3)
    rows[1]["answer"] = 7
    write_json_lines(tmp_path / "src" / "wmdp-bio.jsonl", rows)
    rc, _, err = _import(capsys, "wmdp", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert rc == 2
    assert "error[UL822]: row 2 of `wmdp-bio`: `answer` must be the index of the correct choice (0 to 3), not `7`" in err
    assert "wmdp-bio.jsonl:2:1" in err
    assert "2 | {" in err and "^" in err  # the source line, with a caret


def test_missing_split_malformed_json_and_existing_output(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu(tmp_path / "TOFU", n=4)
    (src / "retain90.json").unlink()
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]: no `retain90` split in the TOFU source folder" in err
    (src / "retain90.json").write_text('{"question": "q?", "answer": "a."}\n{"question": "q?" "answer"}\n')
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]: malformed JSON" in err and "retain90.json:2:" in err
    write_json_lines(src / "retain90.json", tofu_rows("retain90", 4))
    assert _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))[0] == 0
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL824]" in err and "--force" in err
    assert _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"), "--force")[0] == 0


def test_data_import_loads_no_framework(tmp_path: Path) -> None:
    src = build_tofu(tmp_path / "TOFU", n=4)
    code = ("import sys; from unlearnspec.cli import main; "
            f"rc = main(['data', 'import', 'tofu', {str(src)!r}, '--out', {str(tmp_path / 'out')!r}]); "
            "heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'pyarrow') if m in sys.modules); "
            "print(rc, heavy)")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.stdout.strip().splitlines()[-1] == "0 []", res.stderr


# -- multiple-choice records in the data format ---------------------------------------------------


def test_mcq_record_rules(tmp_path: Path) -> None:
    good = write_json_lines(tmp_path / "mcq.jsonl", wmdp_rows("bio", 4))
    info = inspect_data_file(good)
    assert (info.records, info.qa_records) == (4, 4)
    bad = write_json_lines(tmp_path / "bad.jsonl", [{"question": "q?", "choices": ["a", "b"], "answer": 2}])
    with pytest.raises(DataFormatError, match="`answer` 2 is not the index of one of the 2 choices"):
        inspect_data_file(bad)
    one = write_json_lines(tmp_path / "one.jsonl", [{"question": "q?", "choices": ["a"], "answer": 0}])
    with pytest.raises(DataFormatError, match="at least two strings"):
        inspect_data_file(one)


def test_builtin_export_writes_multiple_choice_views_of_trained_questions(tmp_path: Path) -> None:
    from unlearnspec.builtin import corpus

    paths = corpus.export(tmp_path)
    built = corpus.build_corpus()
    for split in ("hazard", "hazard_neighbors"):
        items = read_records(paths[f"{split}_mcq"])
        qa = [r for r in built.split(split) if r.is_qa]
        assert [(r.question, r.answer) for r in items] == [(q.question, q.answer) for q in qa]
        for item, source in zip(items, qa, strict=True):
            assert item.is_mcq and len(item.choices) == 4 and len(set(item.choices)) == 4
            assert item.choices[item.answer_index or 0] == source.answer
            assert set(source.perturbed) <= set(item.choices)  # the record's own wrong answers are choices
        assert sorted({r.answer_index for r in items}) == list(range(min(4, len(items))))
    # derived views only: the corpus's identity, and so the builtin model, does not depend on them
    assert "glimmerfen-mcq.jsonl" not in corpus.corpus_files(built)


def test_a_control_character_in_a_source_line_is_shown_inert_under_its_caret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The offending line is echoed to the terminal: an ESC or a BEL in it shows as U+FFFD (one column each, so the
    caret still falls under the character JSON stopped at), never as an escape sequence."""
    src = build_tofu(tmp_path / "TOFU", n=4)
    line = '{"question": "q?", "answer": "a\x1b[2J\x07."}'
    (src / "retain90.json").write_text('{"question": "q?", "answer": "a."}\n' + line + "\n")
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(line)
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "\x1b" not in err and "\x07" not in err
    [shown] = [ln for ln in err.splitlines() if ln.startswith("2 | ")]
    [caret] = [ln for ln in err.splitlines() if ln.strip().endswith("^")]
    column = caret.index("^") - caret.index("|") - 2 + 1
    assert column == reference.value.colno
    assert shown[len("2 | "):] == line.replace("\x1b", "\ufffd").replace("\x07", "\ufffd")
    assert shown[len("2 | ") + column - 1] == "\ufffd"


def test_a_model_name_no_spec_string_can_hold_is_refused_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu(tmp_path / "TOFU", n=4)
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"), "--model", "my\rmodel")
    assert rc == 2 and "U+000D" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
