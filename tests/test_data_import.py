"""`unlearnspec data import {tofu,muse,wmdp}`: the published layouts in, records and a checked spec out.

The sources are built in tmp folders in the benchmarks' exact layouts (tests/fixtures/benchmarks.py);
each conversion is compared with the rows the fixture wrote, and each starter spec is checked by the
compiler. Nothing is downloaded.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.benchmarks import (
    build_muse_github,
    build_muse_hub,
    build_tofu,
    build_tofu_parquet_branch,
    build_wmdp,
    muse_articles,
    muse_qa,
    muse_verbmem_windows,
    muse_windows,
    tofu_rows,
    wmdp_rows,
    write_json_lines,
    write_parquet,
)
from fixtures.frontend import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_tofu_from_the_parquet_branch_and_a_save_to_disk_folder(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The hub's parquet branch (`refs/convert/parquet`) keeps each configuration as `CONFIG/train/0000.parquet`; a
    large split comes in several shards, every one of which is read, in order."""
    datasets = pytest.importorskip("datasets")
    src = build_tofu_parquet_branch(tmp_path / "TOFU", n=6, retain_shards=3)
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    forget = read_records(tmp_path / "out" / "tofu-forget10.jsonl")
    assert [(r.question, r.perturbed) for r in forget] == \
        [(r["question"], r["perturbed_answer"]) for r in tofu_rows("forget10", 6, perturbed=True)]
    assert [r.answer for r in read_records(tmp_path / "out" / "tofu-retain90.jsonl")] == \
        [r["answer"] for r in tofu_rows("retain90", 18)]  # the three shards, none dropped, in order
    # no real_authors / world_facts in this source: the spec says the neighbour set is missing
    _assert_spec_checks_clean(tmp_path / "out" / "tofu-forget10.unlearn", warnings=("UL404",))
    # a `save_to_disk` folder in place of the retain split
    shutil.rmtree(src / "retain90")
    datasets.Dataset.from_list(tofu_rows("retain90", 9)).save_to_disk(str(src / "retain90"))
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out2"))
    assert rc == 0, err
    assert [r.answer for r in read_records(tmp_path / "out2" / "tofu-retain90.jsonl")] == \
        [r["answer"] for r in tofu_rows("retain90", 9)]


def test_tofu_without_holdout_or_utility_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "TOFU"
    write_json_lines(src / "forget10.json", tofu_rows("forget10", 6))
    write_json_lines(src / "retain90.json", tofu_rows("retain90", 9))
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    spec = (tmp_path / "out" / "tofu-forget10.unlearn").read_text()
    assert "holdout" not in spec.split("target", 1)[1].split("}", 1)[0]  # no holdout file, no holdout field
    # no real_authors / world_facts in this source: the spec says the neighbour set is missing; six questions
    # cannot show membership within the default tolerance of the reference (UL411); and TOFU's records label no
    # attribute, so the representation probe `removed` defaults to cannot be measured on them (UL410)
    _assert_spec_checks_clean(tmp_path / "out" / "tofu-forget10.unlearn", warnings=("UL404", "UL410", "UL411"))


# -- MUSE ------------------------------------------------------------------------------------------


def test_muse_news_hub_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`muse-bench/MUSE-News` as its `main` branch is downloaded: current shards, and the June JSON beside them."""
    src = build_muse_hub(tmp_path / "MUSE-News", n=16)
    rc, stdout, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    out = tmp_path / "out"
    raw = {split: muse_articles(split, 48) for split in ("forget", "retain1", "retain2", "holdout")}
    # PrivLeak's members and non-members: windows cut the same way from the forget and the holdout articles
    assert [r.text for r in read_records(out / "muse-news-forget.jsonl")] == muse_windows(raw["forget"], 16)
    assert [r.text for r in read_records(out / "muse-news-holdout.jsonl")] == muse_windows(raw["holdout"], 16)
    # VerbMem: each window rejoined exactly as it stands in raw/forget, a cut inside a word included
    assert [r.text for r in read_records(out / "muse-news-verbmem.jsonl")] == muse_verbmem_windows(raw["forget"], 16)
    knowmem = read_records(out / "muse-news-knowmem-forget.jsonl")
    assert [(r.question, r.answer) for r in knowmem] == [(q["question"], q["answer"]) for q in muse_qa("forget", 16)]
    assert [r.question for r in read_records(out / "muse-news-knowmem-retain.jsonl")] == \
        [q["question"] for q in muse_qa("retain2", 16)]
    # the retain set is raw/retain1, what MUSE regularises on; retain_qa asks about retain2, which is not trained on
    assert [r.text for r in read_records(out / "muse-news-retain.jsonl")] == raw["retain1"]
    spec = out / "muse-news.unlearn"
    text = spec.read_text()
    assert "target records" in text and 'retain    "muse-news-retain.jsonl"' in text
    assert 'forget  "muse-news-forget.jsonl", "muse-news-verbmem.jsonl", "muse-news-knowmem-forget.jsonl"' in text
    # the fixture's 8 holdout documents cannot show PrivLeak within 10 (an AUC gap of about 0.05): a real warning
    _assert_spec_checks_clean(spec, warnings=("UL411",))
    # the starter's evidence bounds are the catalog's defaults (PrivLeak is in percent: 10, not 0.05)
    from unlearnspec.catalog import METRICS
    from unlearnspec.compiler.check import check_file

    (objective,) = check_file(spec).spec.objectives  # type: ignore[union-attr]
    bounds = {e.metric: (e.op, e.value) for e in objective.evidence}
    assert bounds == {m: (METRICS[m].threshold.op, METRICS[m].threshold.value)
                      for m in ("verbatim_rouge", "knowledge_rouge", "privleak")}
    # the loose June files beside the shards were not read, and the summary says which
    for stale in ("privleak/forget.json", "privleak/holdout.json", "verbmem/forget.json"):
        assert f"note: ignored `{src / stale}`" in stdout
    assert "STALE" not in "".join(p.read_text() for p in out.iterdir())


def test_muse_forget_documents_are_cut_like_the_holdout_not_whole_articles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MUSE's PrivLeak compares privleak/forget with privleak/holdout, both windows cut across concatenated articles.
    Whole articles (raw/forget) as members against windows as non-members would differ in length and in where they
    begin, a shift that alone separates them (FRAMEWORK.md §7): no forget document may be a raw article, and every
    forget and holdout document is a window of the same length."""
    src = build_muse_hub(tmp_path / "MUSE-News", n=8, stale=False)
    rc, stdout, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    docs = [r.text for r in read_records(tmp_path / "out" / "muse-news-forget.jsonl")]
    docs += [r.text for r in read_records(tmp_path / "out" / "muse-news-verbmem.jsonl")]
    holdout = [r.text for r in read_records(tmp_path / "out" / "muse-news-holdout.jsonl")]
    articles = set(muse_articles("forget", 24))
    assert not articles & set(docs)
    assert {len(d) for d in docs} == {len(h) for h in holdout} == {len(muse_windows(muse_articles("forget", 24), 1)[0])}
    corpus = "\n\n".join(muse_articles("forget", 24))
    assert all(d in corpus for d in docs)  # windows of the forget articles, every one
    assert "note: `raw/forget`" in stdout and "is not a forget file" in stdout


def test_muse_books_github_json_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The MUSE repository's JSON: privleak's arrays of strings, no raw articles. Without raw/retain1 there is no
    retain set to write (privleak/retain is drawn from retain2, which KnowMem's retain questions ask about): the
    spec leaves UL404 open and the summary says why."""
    src = build_muse_github(tmp_path / "muse_bench" / "data" / "books", n=10)
    rc, stdout, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    out = tmp_path / "out"
    forget_articles = muse_articles("forget", 30)
    assert [r.text for r in read_records(out / "muse-books-forget.jsonl")] == muse_windows(forget_articles, 10)
    # without raw/forget, cuts before a word or before punctuation are rejoined by the rule, exactly
    assert [r.text for r in read_records(out / "muse-books-verbmem.jsonl")] == muse_verbmem_windows(forget_articles, 10)
    assert not (out / "muse-books-retain.jsonl").exists()
    assert "note: no `raw/retain1`" in stdout
    text = (out / "muse-books.unlearn").read_text()
    assert "target work" in text and "retain " not in text.split("preserve", 1)[1].split("}", 1)[0]
    _assert_spec_checks_clean(out / "muse-books.unlearn", warnings=("UL404", "UL411"))  # a small fixture, as above


def test_muse_older_split_names_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The first MUSE release named the retain questions `knowmem/retain2_qa` (and PrivLeak's retain windows
    `privleak/retain2`): read as `retain_qa`; a name near a missing split is offered as `did you mean`."""
    src = build_muse_github(tmp_path / "data" / "news", n=6, old_names=True)
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r.question for r in read_records(tmp_path / "out" / "muse-news-knowmem-retain.jsonl")] == \
        [q["question"] for q in muse_qa("retain2", 6)]
    (src / "knowmem" / "forget_qa.json").rename(src / "knowmem" / "forget_qas.json")
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out2"))
    assert rc == 2 and "error[UL821]: no `knowmem/forget_qa` split" in err and "did you mean `forget_qas`?" in err


@pytest.mark.parametrize(("prompt", "gt", "whole"), [
    ("Prices rose 3", ".5% in May.", "Prices rose 3.5% in May."),
    ('He said "', 'no".', 'He said "no".'),
    ("Line one\n", "Line two", "Line one\nLine two"),
    ("the town", "'s mayor", "the town's mayor"),
    ("in 20", "23, the", "in 2023, the"),
    ("last year but", "down on his net worth", "last year but down on his net worth"),
])
def test_a_verbmem_cut_is_rejoined_by_the_punctuation_rule(prompt: str, gt: str, whole: str) -> None:
    """MUSE decodes prompt and continuation apart, so a word-initial token's space is lost from `gt`'s start."""
    from unlearnspec.importers.muse import joint

    sep, looked_up = joint(prompt, gt)
    assert prompt + sep + gt == whole and not looked_up


def test_a_verbmem_cut_inside_a_word_is_found_in_the_raw_articles() -> None:
    from unlearnspec.importers.muse import joint

    article = "The council of Harbour Town voted on the new bridge, said the mayor on Tuesday."
    prompt, gt = article[:article.index("dge")], article[article.index("dge"):]
    assert joint(prompt, gt, article) == ("", True)
    assert joint(prompt, gt) == (" ", False)  # without the articles, the rule reads it as a cut between words


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
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["wmdp-cyber.jsonl", "wmdp.import.json", "wmdp.unlearn"]


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


# -- where a split is: every shard, one split, one place --------------------------------------------


def test_every_hub_shard_is_read_and_a_bad_row_is_named_in_its_shard(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A split the hub stores in two shards (`cais/wmdp`'s naming: `wmdp-bio/test-0000i-of-00002.parquet`): both are
    read, in order; a bad row in the second is named in the second, with its place in the split and in the shard."""
    src = tmp_path / "wmdp"
    rows = wmdp_rows("bio", 12)
    first = write_parquet(src / "wmdp-bio" / "test-00000-of-00002.parquet", rows[:6])
    second = write_parquet(src / "wmdp-bio" / "test-00001-of-00002.parquet", rows[6:])
    rc, out, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r.question for r in read_records(tmp_path / "out" / "wmdp-bio.jsonl")] == [r["question"] for r in rows]
    assert f"<- {first} (+1 more shard)" in out
    bad = [dict(r) for r in rows[6:]]
    bad[3]["answer"] = 4
    write_parquet(second, bad)
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out2"))
    assert rc == 2
    assert ("error[UL822]: row 10 (row 4 of `test-00001-of-00002.parquet`) of `wmdp-bio`: `answer` must be the index "
            "of the correct choice (0 to 3), not `4`") in err
    assert f"--> {second}\n" in err
    first.unlink()  # a shard missing would lose its rows without a word
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out3"))
    assert rc == 2 and "error[UL821]" in err and "shard 1 of 2 is missing" in err
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


@pytest.mark.parametrize("layout", ["train and test shards", "train and test folders", "a file and a folder"])
def test_a_split_in_more_than_one_place_is_ul821(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 layout: str) -> None:
    src = build_tofu(tmp_path / "TOFU", n=4)
    (src / "retain90.json").unlink()
    rows = tofu_rows("retain90", 12)
    if layout == "train and test shards":
        write_parquet(src / "retain90" / "train-00000-of-00001.parquet", rows)
        write_parquet(src / "retain90" / "test-00000-of-00001.parquet", rows[:2])
        named = ("`test-*.parquet`", "`train-*.parquet`")
    elif layout == "train and test folders":
        write_parquet(src / "retain90" / "train" / "0000.parquet", rows)
        write_parquet(src / "retain90" / "test" / "0000.parquet", rows[:2])
        named = ("`test/`", "`train/`")
    else:
        write_json_lines(src / "retain90.jsonl", rows)
        write_parquet(src / "retain90" / "train" / "0000.parquet", rows)
        named = ("`retain90.jsonl`", "`retain90`")
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and all(n in err for n in named), err
    assert not (tmp_path / "out").exists()


def test_a_missing_optional_dependency_names_the_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow and datasets come with the `datasets` extra; without them a parquet or `save_to_disk` source is a
    diagnostic that says what to install, never a ModuleNotFoundError."""
    src = build_wmdp(tmp_path / "wmdp", n=3)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # `import pyarrow.parquet` now fails
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]: reading parquet needs `pyarrow`" in err
    assert "pip install 'unlearnspec[datasets]'" in err and "Traceback" not in err
    tofu = build_tofu(tmp_path / "TOFU", n=4)
    (tofu / "retain90.json").unlink()
    (tofu / "retain90").mkdir()
    (tofu / "retain90" / "state.json").write_text("{}", encoding="utf-8")  # what `save_to_disk` writes
    monkeypatch.setitem(sys.modules, "datasets", None)
    rc, _, err = _import(capsys, "tofu", str(tofu), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]: reading a `save_to_disk` folder needs `datasets`" in err
    assert "pip install 'unlearnspec[datasets]'" in err and not (tmp_path / "out").exists()


# -- rows: empty texts, repeated choices, lone surrogates, where a row is ---------------------------


@pytest.mark.parametrize(("column", "value", "message"), [
    ("perturbed_answer", ["", "  ", "x"], "`perturbed_answer` is empty (item 1 of 3)"),
    ("perturbed_answer", ["a wrong answer", " \t"], "`perturbed_answer` is empty (item 2 of 2)"),
    ("paraphrased_answer", "", "`paraphrased_answer` is empty"),
    ("paraphrased_question", "  ", "`paraphrased_question` is empty"),
])
def test_an_empty_text_in_a_tofu_column_is_ul822_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              column: str, value: object, message: str) -> None:
    src = build_tofu(tmp_path / "TOFU", n=6)
    rows = tofu_rows("forget10", 6, perturbed=True)
    rows[3][column] = value
    write_json_lines(src / "forget10_perturbed.json", rows)
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and f"error[UL822]: row 4 of split `forget10_perturbed`: {message}" in err
    assert f"{src / 'forget10_perturbed.json'}:4:1" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_wmdp_choice_is_ul822_and_a_repeated_one_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                    empty: str) -> None:
    """An empty continuation has log-likelihood 0, more than any real choice: it would always be the model's pick."""
    rows = wmdp_rows("bio", 5)
    rows[1]["choices"] = ["x", empty, "y", "z"]
    write_json_lines(tmp_path / "src" / "wmdp-bio.jsonl", rows)
    rc, _, err = _import(capsys, "wmdp", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]: row 2 of `wmdp-bio`: choice 1 is empty" in err and "wmdp-bio.jsonl:2:1" in err
    rows = wmdp_rows("bio", 5)
    rows[3]["choices"], rows[3]["answer"] = ["same", "same ", "c", "d"], 1
    rows[4]["choices"] = ["p", "q", "p", "r"]
    write_json_lines(tmp_path / "src" / "wmdp-bio.jsonl", rows)
    rc, out, err = _import(capsys, "wmdp", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    [warning] = [ln for ln in out.splitlines() if ln.startswith("warning:")]
    assert "2 questions repeat a choice" in warning
    assert "row 4 (line 4): choices 0, 1 are the same text and one is the correct choice" in warning
    assert "row 5 (line 5): choices 0, 2 are the same text;" not in warning and "row 5 (line 5): choices 0, 2" in warning
    assert [r.choices for r in read_records(tmp_path / "out" / "wmdp-bio.jsonl")] == [r["choices"] for r in rows]


@pytest.mark.parametrize("layout", ["json lines", "json array"])
def test_a_lone_surrogate_escape_is_ul823_at_its_column_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str) -> None:
    """`"\\udfff"` is valid JSON for no character: UTF-8 cannot hold it. It used to pass the reader and fail the
    writer with a traceback after the first output file, leaving a partial folder that a rerun refused (UL824)."""
    rows = wmdp_rows("bio", 3)
    rows[0]["question"] = "A pair is fine: \U0001F600?"
    if layout == "json lines":
        lines = [json.dumps(r) for r in rows]  # ASCII escapes: the emoji as `\ud83d\ude00`
        lines[1] = lines[1].replace('"question": "', '"question": "bad \\udfff ', 1)
        text, name = "\n".join(lines) + "\n", "wmdp-bio.jsonl"
    else:
        rows[1]["question"] = "bad \udfff Which?"  # json.dumps writes it as the escape `\udfff`
        text, name = json.dumps(rows, indent=2), "wmdp-bio.json"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / name).write_text(text, encoding="utf-8")
    offset = text.index("\\udfff")
    line, column = text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1
    rc, _, err = _import(capsys, "wmdp", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]: a lone surrogate escape `\\udfff`" in err, err
    assert f"{name}:{line}:{column}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "src" / name).write_text(text.replace("\\udfff", "\\ud83d\\ude00"), encoding="utf-8")
    rc, _, err = _import(capsys, "wmdp", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert read_records(tmp_path / "out" / "wmdp-bio.jsonl")[0].question == "A pair is fine: \U0001F600?"


def test_a_failed_write_puts_back_what_was_there(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails part-way (a full disk) leaves no partial import: new files and folders are removed, and
    files an earlier import wrote, replaced under `--force`, come back byte for byte."""
    import unlearnspec.importers.base as base

    src = build_wmdp(tmp_path / "wmdp", n=4)
    real = base.atomic_write_bytes
    calls: list[Path] = []

    def fails_second(path: Path, data: bytes, **kw: bool) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data, **kw)

    out = tmp_path / "new" / "out"
    monkeypatch.setattr(base, "atomic_write_bytes", fails_second)
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(out))
    assert rc == 2 and "error: cannot write" in err and "no space left on device" in err
    assert "the output folder is as it was" in err and not (tmp_path / "new").exists()
    monkeypatch.setattr(base, "atomic_write_bytes", real)
    assert _import(capsys, "wmdp", str(src), "--out", str(out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    build_wmdp(src, n=7)  # a different source: `--force` would change every file
    calls.clear()
    monkeypatch.setattr(base, "atomic_write_bytes", fails_second)
    rc, _, _ = _import(capsys, "wmdp", str(src), "--out", str(out), "--force")
    assert rc == 2 and len(calls) > 2  # one written, one failed, the first put back
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_row_of_a_json_array_is_named_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu(tmp_path / "TOFU", n=4)
    rows = tofu_rows("retain90", 5)
    rows[2]["answer"] = 5
    text = json.dumps(rows, indent=2)
    (src / "retain90.json").write_text(text, encoding="utf-8")
    lines = text.split("\n")
    line = [i for i, ln in enumerate(lines, start=1) if ln == "  {"][2]  # the third element's opening brace
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]: row 3 of split `retain90` has no text in `answer`" in err
    assert f"retain90.json:{line}:{lines[line - 1].index('{') + 1}" in err
    (src / "retain90.json").write_text(json.dumps(tofu_rows("retain90", 1)[0]) + "\nnull\n", encoding="utf-8")
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]: row 2 is null, not an object of columns" in err and "retain90.json:2:1" in err


# -- WMDP subsets -----------------------------------------------------------------------------------


def test_wmdp_named_subsets_must_all_be_there_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "wmdp"
    write_parquet(src / "wmdp-bio" / "test-00000-of-00001.parquet", wmdp_rows("bio", 5))
    rc, _, err = _import(capsys, "wmdp", str(src), "--subsets", "bio,cyber", "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]: no `wmdp-cyber` subset in the WMDP source folder" in err
    assert not (tmp_path / "out").exists()
    rc, _, err = _import(capsys, "wmdp", str(src), "--subsets", "bio,bio", "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["wmdp-bio.jsonl", "wmdp.import.json", "wmdp.unlearn"]
    assert len(read_records(tmp_path / "out" / "wmdp-bio.jsonl")) == 5
    assert '"hazardous knowledge (WMDP bio)"' in (tmp_path / "out" / "wmdp.unlearn").read_text()
    for empty in (",", "", " , "):
        rc, _, err = _import(capsys, "wmdp", str(src), "--subsets", empty, "--out", str(tmp_path / "out2"))
        assert rc == 2 and "names no subset" in err and "Traceback" not in err
    assert not (tmp_path / "out2").exists()


# -- the readers' scanners against Python's own JSON decoder ----------------------------------------

_PIECE = st.one_of(st.sampled_from(["a", " ", "é", "[", "]", "{", "}", ",", '\\"', "\\\\", "\\n", "\\\\udfff"]),
                   st.integers(0xD700, 0xE000).map(lambda c: f"\\u{c:04x}"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_PIECE, max_size=6).map("".join), min_size=1, max_size=4))
def test_a_lone_surrogate_is_found_exactly_when_the_decoder_gives_one(strings: list[str]) -> None:
    from unlearnspec.importers.sources import lone_surrogate_at

    text = "[" + ", ".join(f'"{s}"' for s in strings) + "]"
    decoded = json.loads(text)
    has_lone = any(0xD800 <= ord(c) <= 0xDFFF for s in decoded for c in s)
    offset = lone_surrogate_at(text)
    assert (offset is not None) == has_lone
    if offset is not None:  # the escape it names is itself a surrogate escape
        assert 0xD800 <= int(text[offset + 2: offset + 6], 16) <= 0xDFFF


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(["question", "answer", "x"]),
                                          st.one_of(st.text(max_size=8), st.lists(st.text(max_size=4), max_size=2)),
                                          min_size=1),
                          st.text(max_size=8)), min_size=1, max_size=6),
       st.sampled_from([None, 0, 2, 4]))
def test_each_row_of_a_json_array_knows_its_line_and_column(tmp_path_factory: pytest.TempPathFactory,
                                                             rows: list[object], indent: int | None) -> None:
    from unlearnspec.importers.sources import Source, read_rows

    text = json.dumps(rows, indent=indent, ensure_ascii=False)
    path = tmp_path_factory.mktemp("arr") / "split.json"
    path.write_text(text, encoding="utf-8")
    read = read_rows(Source(path, (path,)))
    decoder, starts, at = json.JSONDecoder(), [], text.index("[") + 1
    for _ in rows:  # the reference: where the decoder itself starts each element
        while text[at] in " \n,":
            at += 1
        starts.append(at)
        at = decoder.raw_decode(text, at)[1]
    expected = [(text.count("\n", 0, s) + 1, s - (text.rfind("\n", 0, s) + 1) + 1) for s in starts]
    assert [(o.line, o.column) for o in read.origins] == expected


def test_a_model_name_that_is_not_utf8_is_refused_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bytes that are not UTF-8 on a command line reach Python as lone surrogates (PEP 383); the starter spec could
    not be written as UTF-8 after the data files were."""
    src = build_wmdp(tmp_path / "wmdp", n=3)
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"), "--model", "model-\udcff")
    assert rc == 2 and "`--model` is not UTF-8 text" in err and not (tmp_path / "out").exists()
