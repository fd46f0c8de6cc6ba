"""A hostile review of the newest features: ledger marks (`ledger mark`, UL808/UL809) and the importers' newest sources.

Each test builds its input in tmp_path in the public layout (a ledger `unlearnspec run` records; a benchmark's files as
published) and attacks it as a careless or hostile user would: a ledger rewritten with every hash recomputed so that its
marks contradict each other, a mark on a ledger that cannot be written, forget items repeated in the retain or holdout
split, an output path that is a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.benchmarks import tofu_rows, write_json_lines, write_parquet
from test_importers_more import build_wmdp_corpora, build_wmdp_questions, passages
from test_ledger_marks import _mark, _path, _rewrite, _rows, _run

from unlearnspec.audit import hashchain
from unlearnspec.audit.ledger import verify_file
from unlearnspec.cli import main
from unlearnspec.compiler.check import check_paths


def _codes(path: Path) -> list[tuple[str, int]]:
    return [(p.code, p.line) for p in verify_file(path).problems]


# -- ledger marks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "then"), [("withdrawn", "adopted"), ("withdrawn", "trial"), ("adopted", "trial")])
def test_a_forged_mark_that_contradicts_an_earlier_one_is_found_by_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], first: str, then: str) -> None:
    """`ledger mark` refuses these transitions (UL809); a ledger rewritten by hand with them, every hash, the chain and
    the head recomputed, must not verify clean and show the later status as the request's."""
    run = _run(tmp_path, "try-1")
    assert _mark(tmp_path, run, first) == 0
    path = _path(tmp_path)
    request, mark = _rows(path)
    assert main(["ledger", "mark", str(tmp_path / "ledger"), "--run", str(run), f"--{then}", "--why", "x", "--by",
                 "y"]) == 2  # the tool itself refuses it
    capsys.readouterr()
    _rewrite(path, [dict(request), dict(mark), {**mark, "status": then, "why": "forged"}])
    assert _codes(path) == [("UL808", 3)]
    assert main(["ledger", "show", str(tmp_path / "ledger")]) == 0
    text = capsys.readouterr().out
    assert "chain BROKEN" in text and f"status: {first} (line 2" in text  # the forged mark decides nothing


def test_two_runs_adopted_for_one_request_in_a_rewritten_ledger_is_found(tmp_path: Path) -> None:
    one, two = _run(tmp_path, "try-1"), _run(tmp_path, "try-2", title="Second try")
    assert _mark(tmp_path, one, "adopted") == 0
    path = _path(tmp_path)
    r1, r2, m1 = _rows(path)
    forged = {**m1, "about": [{"seq": 2, "hash": r2["hash"], "request_id": r2["request_id"]}],
              "report_sha256": r2["report_sha256"], "run": str(two)}
    _rewrite(path, [dict(r1), dict(r2), dict(m1), forged])
    assert _codes(path) == [("UL808", 4)]
    # withdrawn first, then the other adopted: what `ledger mark` allows verifies clean
    withdrawn = {**m1, "status": "withdrawn"}
    _rewrite(path, [dict(r1), dict(r2), dict(m1), withdrawn, dict(forged)])
    assert _codes(path) == []


def test_a_mark_on_a_ledger_that_cannot_be_written_is_ul805_and_leaves_it_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only ledger folder (simulated: the tests may run as root, who writes anywhere) or a full disk."""
    run = _run(tmp_path, "try-1")
    path = _path(tmp_path)
    before = path.read_bytes()

    def refuse(target: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(hashchain, "atomic_write_bytes", refuse)
    assert _mark(tmp_path, run, "adopted") == 2
    err = capsys.readouterr().err
    assert "error[UL805]" in err and "= help:" in err and "Traceback" not in err
    assert path.read_bytes() == before and verify_file(path).ok


def test_a_mark_whose_lock_cannot_be_taken_is_ul805(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The folder's lock file is not a file (here a folder, as a careless copy may leave it): no traceback."""
    run = _run(tmp_path, "try-1")
    (tmp_path / "ledger" / ".lock").unlink()
    (tmp_path / "ledger" / ".lock").mkdir()
    assert _mark(tmp_path, run, "trial") == 2
    err = capsys.readouterr().err
    assert "error[UL805]" in err and "`.lock`" in err


# -- importers: forget items that are also retain or holdout items ------------------------------------------------


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["data", "import", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _check_errors(spec: Path) -> list[str]:
    [result] = check_paths([spec])
    return [d.code for d in result.diagnostics if d.severity == "error"]


def test_tofu_forget_questions_in_the_retain_or_holdout_split_are_reported_at_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """FRAMEWORK.md §7: what is forgotten cannot also be kept or held out. The import says so, naming the split and
    the question, instead of writing the sets silently (the starter spec's `check` refuses them: UL209)."""
    forget, retain, holdout = tofu_rows("forget10", 6), tofu_rows("retain90", 12), tofu_rows("holdout10", 4)
    retain[5], retain[9], holdout[2] = dict(forget[1]), dict(forget[4]), dict(forget[0])
    src = tmp_path / "TOFU"
    for name, rows in (("forget10", forget), ("retain90", retain), ("holdout10", holdout)):
        write_json_lines(src / f"{name}.json", rows)
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, out
    assert "2 records of `tofu-retain90.jsonl` are also forget records" in warnings[0]
    assert "record 6" in warnings[0] and forget[1]["question"][:30] in warnings[0]
    assert "1 record of `tofu-holdout10.jsonl` is also a forget record" in warnings[1]
    assert _check_errors(tmp_path / "out" / "tofu-forget10.unlearn").count("UL209") == 2  # the same finding


def test_an_answer_changed_question_is_not_a_shared_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same question with another answer is another record (the compiler compares what is trained on)."""
    forget, retain = tofu_rows("forget10", 4), tofu_rows("retain90", 8)
    retain[2] = {"question": forget[0]["question"], "answer": "Another answer entirely."}
    src = tmp_path / "TOFU"
    write_json_lines(src / "forget10.json", forget)
    write_json_lines(src / "retain90.json", retain)
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0 and "warning:" not in out, out + err
    assert "UL209" not in _check_errors(tmp_path / "out" / "tofu-forget10.unlearn")


def test_wmdp_forget_corpus_passages_in_the_retain_corpus_are_reported(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    questions, corpora = build_wmdp_questions(tmp_path / "wmdp"), build_wmdp_corpora(tmp_path / "wmdp-corpora")
    leaked = passages("cyber-retain", 7)
    leaked[3] = passages("cyber-forget", 5)[2]
    write_parquet(corpora / "cyber-retain-corpus" / "train-00000-of-00001.parquet", leaked)
    rc, out, err = _import(capsys, "wmdp", str(questions), "--corpora", str(corpora), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert "warning: 1 record of `wmdp-cyber-retain-corpus.jsonl` is also a forget record" in out
    assert "record 4" in out


# -- importers: the output path ------------------------------------------------------------------------------------


def test_an_output_path_that_is_a_file_is_ul824_and_the_file_is_kept(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "TOFU"
    write_json_lines(src / "forget10.json", tofu_rows("forget10", 3))
    write_json_lines(src / "retain90.json", tofu_rows("retain90", 3))
    before = (src / "forget10.json").read_bytes()
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(src / "forget10.json"))  # the input itself
    assert rc == 2 and "error[UL824]" in err and "= help:" in err, err
    assert (src / "forget10.json").read_bytes() == before


def test_two_cache_configurations_of_one_split_are_named_apart_in_the_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """In the `datasets` cache both configurations' files are `tofu-train.arrow`: the note must say which was read."""
    from test_importers_more import datasets_cache

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = datasets_cache(tmp_path / "datasets", "locuslab/TOFU", {
        "forget10": {"train": [tofu_rows("forget10", 3)]},
        "forget10_perturbed": {"train": [tofu_rows("forget10", 3, perturbed=True)]},
        "retain90": {"train": [tofu_rows("retain90", 3)]}})
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    [note] = [line for line in out.splitlines() if "was not read" in line]
    assert note.startswith("note: `forget10/") and "`forget10_perturbed/" in note, note
    assert json.loads((tmp_path / "out" / "tofu-forget10.jsonl").read_text().splitlines()[0])["perturbed"]


# -- importers: a `datasets` cache build whose `dataset_info.json` was edited or damaged ------------------------------


@pytest.mark.parametrize(("key", "value"), [("shard_lengths", ["2", "2"]), ("shard_lengths", 4),
                                            ("shard_lengths", [1, 1]), ("num_examples", True),
                                            ("dataset_name", "../../wmdp"), ("dataset_name", 7)])
def test_a_build_record_that_is_not_as_datasets_writes_it_is_ul823(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, key: str,
        value: object) -> None:
    """Shard lengths that are not row counts adding up to the split's (a traceback before), or a dataset name with a
    path in it (the arrow files would be looked up outside the build folder)."""
    from fixtures.benchmarks import wmdp_rows
    from test_importers_more import COMMIT, datasets_cache

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rows = wmdp_rows("bio", 4)
    src = datasets_cache(tmp_path / "datasets", "cais/wmdp", {"wmdp-bio": {"test": [rows[:2], rows[2:]]}})
    info_path = src / "wmdp-bio" / "0.0.0" / COMMIT / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    assert info["splits"]["test"]["shard_lengths"] == [2, 2]  # as `datasets` wrote it: the import reads it
    assert _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "ok"))[0] == 0
    info["splits"]["test"][key] = value
    info_path.write_text(json.dumps(info), encoding="utf-8")
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]" in err and "dataset_info.json" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


# -- importers: TOFU's `retain_perturbed` without what it adds ------------------------------------------------------


@pytest.mark.parametrize("blank", [{"perturbed_answer": None}, {"perturbed_answer": []},
                                   {"paraphrased_answer": None}, "drop"])
def test_retain_perturbed_rows_without_their_perturbed_columns_are_ul822(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], blank: object) -> None:
    """A `retain_perturbed` row is merged for its wrong answers and paraphrased answer; one without them added nothing,
    yet the summary said its questions gained them and the manifest listed the file as merged."""
    from test_importers_more import build_tofu_with_retain_perturbed

    src, _, perturbed = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    rows = ([{**r, **blank} if k == 2 else r for k, r in enumerate(perturbed)] if isinstance(blank, dict)
            else [{"question": r["question"], "answer": r["answer"]} for r in perturbed])
    write_json_lines(src / "retain_perturbed.json", rows)
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]" in err and "retain_perturbed" in err, out + err
    assert ("retain_perturbed.json:1:1" if blank == "drop" else "retain_perturbed.json:3:1") in err
    assert not (tmp_path / "out").exists()


def test_concurrent_adoptions_of_one_request_leave_one_adopted_run(tmp_path: Path) -> None:
    """Four `ledger mark --adopted` processes at once, each for another run of the same request: the folder's lock
    makes one of them win; the others are refused (UL809) and the chain stays intact."""
    import subprocess
    import sys

    runs = [_run(tmp_path, f"try-{i}", title=f"Try {i}") for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "unlearnspec", "ledger", "mark", str(tmp_path / "ledger"),
                               "--run", str(r), "--adopted", "--why", "released", "--by", "ops"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in runs]
    results = [(p.wait(), p.communicate()[1]) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2, 2, 2]
    assert all("error[UL809]" in err and "already adopted" in err for rc, err in results if rc == 2)
    checked = verify_file(_path(tmp_path))
    assert checked.ok and [m.status for m in checked.marks] == ["adopted"]


def test_muse_holdout_windows_that_are_forget_windows_are_reported(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """PrivLeak's non-members must be windows of articles never trained on: a forget window among them (a holdout
    file mixed up with the forget one) is a member counted as a non-member."""
    import pyarrow.parquet as pq
    from fixtures.benchmarks import build_muse_hub

    src = build_muse_hub(tmp_path / "MUSE-News", n=8, stale=False)
    shard = "-00000-of-00001.parquet"
    forget = pq.read_table(src / "privleak" / f"forget{shard}").to_pylist()
    holdout = pq.read_table(src / "privleak" / f"holdout{shard}").to_pylist()
    holdout[5:7] = forget[2:4]
    write_parquet(src / "privleak" / f"holdout{shard}", holdout)
    rc, out, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert ("warning: 2 records of `muse-news-holdout.jsonl` are also forget records, so they are both forgotten and "
            "held out: record 6 repeats record 3 of `muse-news-forget.jsonl`") in out, out
    assert "UL209" in _check_errors(tmp_path / "out" / "muse-news.unlearn")
