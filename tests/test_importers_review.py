"""The benchmark importers against layouts the benchmarks really publish (a review of `data import`).

Each fixture is built in its published layout (tests/fixtures/importers_review, which cites where each is
documented); each conversion is compared with the rows or articles the fixture wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.benchmarks import muse_verbmem_windows, tofu_rows, wmdp_rows, write_json_lines
from fixtures.importers_review import (
    build_muse_github_raw,
    build_tofu_eval_files,
    build_tofu_first_upload,
    hub_cache_repo,
    json_lines_bytes,
    tofu_utility_rows,
)

from unlearnspec.cli import main
from unlearnspec.compiler.check import check_paths
from unlearnspec.records import read_records


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["data", "import", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _errors(spec: Path) -> list[str]:
    [result] = check_paths([spec])
    return [f"{d.code}: {d.message}" for d in result.diagnostics if d.severity == "error"]


# -- TOFU --------------------------------------------------------------------------------------------


def test_tofu_utility_splits_are_read_from_the_perturbed_files_the_evaluation_uses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TOFU's evaluation reads `real_authors_perturbed` and `world_facts_perturbed`; a folder with only those
    (the TOFU repository's data/) still has its neighbour sets, with their wrong answers kept."""
    src = build_tofu_eval_files(tmp_path / "TOFU")
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    for name in ("real_authors", "world_facts"):
        records = read_records(tmp_path / "out" / f"tofu-{name.replace('_', '-')}.jsonl")
        expected = tofu_utility_rows(name, 6, perturbed=True)
        assert [(r.question, r.answer, r.perturbed) for r in records] == \
            [(e["question"], e["answer"], e["perturbed_answer"]) for e in expected]
    spec = (tmp_path / "out" / "tofu-forget10.unlearn").read_text()
    assert '"tofu-real-authors.jsonl", "tofu-world-facts.jsonl"' in spec
    assert not _errors(tmp_path / "out" / "tofu-forget10.unlearn")


def test_tofu_perturbed_utility_file_is_preferred_to_the_plain_one_and_the_summary_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_tofu_eval_files(tmp_path / "TOFU", plain_utility=True)
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    records = read_records(tmp_path / "out" / "tofu-real-authors.jsonl")
    assert [r.perturbed for r in records] == [e["perturbed_answer"] for e in tofu_utility_rows("real_authors", 6,
                                                                                                perturbed=True)]
    assert re.search(r"note: `real_authors\.json` was not read: `real_authors_perturbed\.json`", out), out


def test_tofu_first_upload_names_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """locuslab/TOFU's first upload named its files `forget10_dataset.json`, `retain90_dataset.json`."""
    src = build_tofu_first_upload(tmp_path / "TOFU")
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r.question for r in read_records(tmp_path / "out" / "tofu-forget10.jsonl")] == \
        [r["question"] for r in tofu_rows("forget10", 8)]
    assert [r.question for r in read_records(tmp_path / "out" / "tofu-retain90.jsonl")] == \
        [r["question"] for r in tofu_rows("retain90", 24)]


# -- the Hugging Face hub cache ------------------------------------------------------------------------


def _tofu_revision(tag: str, n: int) -> dict[str, bytes]:
    forget = [dict(r, question=f"{tag}: {r['question']}") for r in tofu_rows("forget10", n, perturbed=True)]
    return {"forget10_perturbed.json": json_lines_bytes(forget),
            "retain90.json": json_lines_bytes(tofu_rows("retain90", 3 * n))}


def test_a_hub_cache_folder_is_read_at_the_snapshot_refs_main_names(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    repo = hub_cache_repo(tmp_path / "hub" / "datasets--locuslab--TOFU",
                          {"a" * 40: _tofu_revision("old", 4), "b" * 40: _tofu_revision("new", 6)}, main="b" * 40)
    rc, out, err = _import(capsys, "tofu", str(repo), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    questions = [r.question for r in read_records(tmp_path / "out" / "tofu-forget10.jsonl")]
    assert questions == [f"new: {r['question']}" for r in tofu_rows("forget10", 6)]
    assert f"snapshot `{'b' * 40}` (`refs/main`)" in out


def test_a_hub_cache_folder_with_several_snapshots_and_no_ref_is_ul821(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo = hub_cache_repo(tmp_path / "datasets--locuslab--TOFU",
                          {"a" * 40: _tofu_revision("old", 4), "b" * 40: _tofu_revision("new", 6)}, main=None)
    rc, out, err = _import(capsys, "tofu", str(repo), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "2 snapshots" in err
    assert f"snapshots/{'a' * 40}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    # the snapshot named directly is read as any folder
    rc, _, err = _import(capsys, "tofu", str(repo / "snapshots" / ("a" * 40)), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert len(read_records(tmp_path / "out" / "tofu-forget10.jsonl")) == 4


def test_a_muse_hub_cache_folder_keeps_its_corpus_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, raw = build_muse_github_raw(tmp_path / "build", n=4, txt=())
    files = {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    repo = hub_cache_repo(tmp_path / "datasets--muse-bench--MUSE-News", {"c" * 40: files}, main="c" * 40)
    rc, _, err = _import(capsys, "muse", str(repo), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert (tmp_path / "out" / "muse-news.unlearn").is_file()


# -- MUSE ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "corpus"), [("bbc", "news"), ("hp", "books")])
def test_muse_first_release_corpus_folders_name_the_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           folder: str, corpus: str) -> None:
    """The MUSE repository's first release kept News as `data/bbc` and Books as `data/hp`."""
    src, _ = build_muse_github_raw(tmp_path / "muse_bench" / "data" / folder, n=4, txt=())
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert (tmp_path / "out" / f"muse-{corpus}.unlearn").is_file()


def test_muse_raw_txt_files_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`raw/forget.txt` and `raw/retain1.txt`: the articles joined by a blank line. The forget text rejoins every
    VerbMem cut exactly (inside a word too); retain1's paragraphs are the retain documents, none lost or added."""
    src, raw = build_muse_github_raw(tmp_path / "data" / "news", n=6)
    rc, out, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r.text for r in read_records(tmp_path / "out" / "muse-news-verbmem.jsonl")] == \
        muse_verbmem_windows(raw["forget"], 6)
    retain = [r.text for r in read_records(tmp_path / "out" / "muse-news-retain.jsonl")]
    assert retain == [p for a in raw["retain1"] for p in a.split("\n\n")]
    assert "paragraphs" in out and "raw/retain1.txt" in out
    spec = tmp_path / "out" / "muse-news.unlearn"
    assert 'retain    "muse-news-retain.jsonl"' in spec.read_text()
    assert not _errors(spec)


def test_muse_raw_txt_beside_the_same_articles_as_json_reads_the_json(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src, raw = build_muse_github_raw(tmp_path / "data" / "news", n=6, json_too=("retain1",))
    rc, out, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r.text for r in read_records(tmp_path / "out" / "muse-news-retain.jsonl")] == raw["retain1"]
    assert "note: `raw/retain1.txt` was left out" in out


def test_muse_raw_txt_that_differs_from_its_json_is_ul821(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, raw = build_muse_github_raw(tmp_path / "data" / "news", n=6, json_too=("retain1",))
    (src / "raw" / "retain1.txt").write_text("\n\n".join(raw["retain1"][:-1]), encoding="utf-8")
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "retain1.json" in err and "retain1.txt" in err
    assert not (tmp_path / "out").exists()


def test_muse_raw_txt_not_utf8_is_ul823(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = build_muse_github_raw(tmp_path / "data" / "news", n=4)
    (src / "raw" / "retain1.txt").write_bytes("caf\u00e9 article".encode("latin-1"))
    rc, _, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]" in err and "retain1.txt" in err and "Traceback" not in err


# -- provenance ----------------------------------------------------------------------------------------


def test_the_import_records_the_sha256_of_every_file_it_read_and_wrote(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = build_muse_github_raw(tmp_path / "data" / "news", n=4)
    rc, out, err = _import(capsys, "muse", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    manifest = json.loads((tmp_path / "out" / "muse-news.import.json").read_text(encoding="utf-8"))
    assert manifest["benchmark"] == "muse"
    read = {Path(s["path"]).resolve(): s["sha256"] for f in manifest["files"].values() for s in f["sources"]}
    read |= {Path(s["path"]).resolve(): s["sha256"] for s in manifest["also_read"]}
    # every source file the import used, hashed as it is on disk; raw/forget.txt read for the VerbMem joins only
    used = ("privleak/forget.json", "privleak/holdout.json", "verbmem/forget.json", "knowmem/forget_qa.json",
            "knowmem/retain_qa.json", "raw/retain1.txt", "raw/forget.txt")
    assert read == {(src / u).resolve(): hashlib.sha256((src / u).read_bytes()).hexdigest() for u in used}
    assert [s["why"] for s in manifest["also_read"]] == ["to rejoin VerbMem's prompts with their continuations"]
    for name, entry in manifest["files"].items():
        data = (tmp_path / "out" / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["records"] == len(data.splitlines())
    assert "muse-news.import.json" in out


def test_wmdp_import_manifest_names_each_subset_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "wmdp"
    write_json_lines(src / "wmdp-bio.jsonl", wmdp_rows("bio", 5))
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    manifest = json.loads((tmp_path / "out" / "wmdp.import.json").read_text(encoding="utf-8"))
    [source] = manifest["files"]["wmdp-bio.jsonl"]["sources"]
    assert Path(source["path"]).resolve() == (src / "wmdp-bio.jsonl").resolve()
    assert source["sha256"] == hashlib.sha256((src / "wmdp-bio.jsonl").read_bytes()).hexdigest()


# -- diagnostics -----------------------------------------------------------------------------------------


def test_a_source_folder_that_cannot_be_listed_is_a_diagnostic_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable folder (no permission: simulated, since the tests may run as root) stops the import with the
    folder and the reason, exit 2, and nothing written."""
    src = build_tofu_first_upload(tmp_path / "locked")
    listing = Path.iterdir

    def refuse(self: Path) -> Iterator[Path]:
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error: cannot read" in err and str(src) in err and "permission denied" in err.lower()
    assert not (tmp_path / "out").exists()


def test_a_source_file_that_cannot_be_hashed_is_ul823_not_a_write_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The provenance hashes are taken before anything is written; a source that fails then is named as the source."""
    import unlearnspec.importers.base as base

    src = build_tofu_first_upload(tmp_path / "TOFU")

    def fail(path: Path) -> str:
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(base, "sha256_path", fail)
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]" in err and "forget10_dataset.json" in err and "cannot write" not in err
    assert not (tmp_path / "out").exists()


def test_wmdp_corpora_given_for_the_questions_say_what_they_are(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`cais/wmdp-corpora` ships `bio-retain-corpus.jsonl`, `cyber-forget-corpus.jsonl`, ...: training text, no
    questions. Pointed at it, the import says so instead of only listing the layout it expected."""
    src = tmp_path / "wmdp-corpora"
    write_json_lines(src / "cyber-forget-corpus.jsonl", [{"text": f"passage {i}"} for i in range(3)])
    write_json_lines(src / "bio-retain-corpus.jsonl", [{"text": f"passage {i}"} for i in range(3)])
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]: no WMDP subset" in err
    assert "`bio-retain-corpus.jsonl`, `cyber-forget-corpus.jsonl`: these are `cais/wmdp-corpora`" in err
