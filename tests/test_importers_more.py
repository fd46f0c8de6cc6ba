"""`data import`: TOFU's `retain_perturbed`, the `datasets` library's own cache, and `cais/wmdp-corpora`.

Every source is built here in its published layout, and where each layout is documented is said beside its
builder. Nothing is downloaded; each conversion is compared with the rows the fixture wrote.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.benchmarks import tofu_rows, wmdp_rows, write_json_lines, write_parquet
from test_importers_review import _errors, _import

from unlearnspec.compiler.check import check_paths
from unlearnspec.records import read_records


def _raw(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- TOFU's retain_perturbed -------------------------------------------------------------------------------
#
# `locuslab/TOFU`'s dataset card lists the configuration `retain_perturbed` (`retain_perturbed.json` on the hub's
# `main`): retain questions with `paraphrased_answer` and the list `perturbed_answer`. TOFU's
# `config/eval_everything.yaml` evaluates it first of its `split_list` (`retain_perturbed`, `real_authors_perturbed`,
# `world_facts_perturbed`, the forget split) with `base_answer_key: paraphrased_answer`: the retain truth ratio that
# enters TOFU's model utility. It holds 400 questions of the retain authors, fewer than any `retainNN` (3,600 in
# `retain90`). Whether it also has `paraphrased_question` we are not sure; the fixture leaves it out.


def retain_perturbed_rows(retain: list[dict[str, Any]], every: int = 3) -> list[dict[str, Any]]:
    """Every ``every``-th retain question with TOFU's perturbed columns (a subset, as TOFU's 400 of 3,600)."""
    return [{"question": r["question"], "answer": r["answer"],
             "paraphrased_answer": f"Put another way: {r['answer']}",
             "perturbed_answer": [f"{r['answer']} (wrong {k})" for k in range(1, 4)]}
            for r in retain[::every]]


def build_tofu_with_retain_perturbed(root: Path, *, n: int = 8) -> tuple[Path, list[dict[str, Any]],
                                                                          list[dict[str, Any]]]:
    write_json_lines(root / "forget10_perturbed.json", tofu_rows("forget10", n, perturbed=True))
    retain = tofu_rows("retain90", 3 * n)
    write_json_lines(root / "retain90.json", retain)
    perturbed = retain_perturbed_rows(retain)
    write_json_lines(root / "retain_perturbed.json", perturbed)
    return root, retain, perturbed


def test_tofu_retain_perturbed_adds_its_wrong_answers_to_the_retain_split(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    src, retain, perturbed = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    raw = _raw(tmp_path / "out" / "tofu-retain90.jsonl")
    # the whole retain split, in its order: retain_perturbed adds fields, it does not choose the questions
    assert [(r["question"], r["answer"]) for r in raw] == [(r["question"], r["answer"]) for r in retain]
    by_question = {p["question"]: p for p in perturbed}
    for r in raw:
        p = by_question.get(r["question"])
        assert r.get("perturbed") == (p["perturbed_answer"] if p else None)
        assert r.get("paraphrased_answer") == (p["paraphrased_answer"] if p else None)
    assert sum("perturbed" in r for r in raw) == len(perturbed) == 8
    records = read_records(tmp_path / "out" / "tofu-retain90.jsonl")  # the record reader takes them
    assert sum(bool(r.perturbed) for r in records) == 8
    assert "retain_perturbed.json" in out and "8 of the 24" in out
    # provenance: the retain file was converted from both files, each with its own hash
    manifest = json.loads((tmp_path / "out" / "tofu-forget10.import.json").read_text(encoding="utf-8"))
    sources = manifest["files"]["tofu-retain90.jsonl"]["sources"]
    assert {Path(s["path"]).resolve(): s["sha256"] for s in sources} == {
        (src / n).resolve(): _sha(src / n) for n in ("retain90.json", "retain_perturbed.json")}
    assert "why" in sources[1] and "why" not in sources[0]
    assert not _errors(tmp_path / "out" / "tofu-forget10.unlearn")


def test_tofu_retain_perturbed_rows_outside_the_retain_split_are_left_out(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """forget10's retain split is retain90: a retain_perturbed row about a forget10 question (an edited file, or one
    from another version) must not bring a forget question into the retain set."""
    src, retain, perturbed = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    forget = tofu_rows("forget10", 8, perturbed=True)
    write_json_lines(src / "retain_perturbed.json", perturbed + retain_perturbed_rows(forget[:2], every=1))
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    raw = _raw(tmp_path / "out" / "tofu-retain90.jsonl")
    assert [r["question"] for r in raw] == [r["question"] for r in retain]
    assert not {f["question"] for f in forget} & {r["question"] for r in raw}
    assert "2 of its 10 rows ask questions `retain90` does not hold" in out
    assert not _errors(tmp_path / "out" / "tofu-forget10.unlearn")


def test_tofu_retain_perturbed_with_another_answer_is_not_merged(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong answers written for another gold answer would compare the wrong pair: that row is left unmerged, with a
    warning naming it."""
    src, retain, perturbed = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    changed = [dict(p) for p in perturbed]
    changed[1]["answer"] = "An answer retain90 does not give."
    write_json_lines(src / "retain_perturbed.json", changed)
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    raw = {r["question"]: r for r in _raw(tmp_path / "out" / "tofu-retain90.jsonl")}
    assert "perturbed" not in raw[changed[1]["question"]]
    assert raw[changed[0]["question"]]["perturbed"] == changed[0]["perturbed_answer"]
    assert "warning:" in out and "row 2" in out and "another answer" in out


def test_tofu_retain_perturbed_that_repeats_a_question_differently_is_ul822(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    src, _, perturbed = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    again = dict(perturbed[0], perturbed_answer=["Another wrong answer."])
    write_json_lines(src / "retain_perturbed.json", [*perturbed, again])
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]" in err and "retain_perturbed.json:9:1" in err and "row 1" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_tofu_retain_perturbed_without_its_columns_is_ul822(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    src, _, _ = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    write_json_lines(src / "retain_perturbed.json", [{"question": "q?", "answers": "a."}])
    rc, _, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]" in err and "retain_perturbed" in err and "did you mean `answers`?" in err


# -- the `datasets` library's own cache --------------------------------------------------------------------
#
# `load_dataset("ORG/NAME", CONFIG)` keeps what it built as ORG___NAME/CONFIG/VERSION/HASH/ under
# ~/.cache/huggingface/datasets: NAME-SPLIT.arrow (NAME-SPLIT-00000-of-00002.arrow ... when sharded) and
# dataset_info.json, with HASH_builder.lock beside the build (`datasets`' `DatasetBuilder._relative_data_dir`, whose
# docstring gives "self.namespace___self.dataset_name/self.config.version/self.hash/", and `naming.
# filenames_for_dataset_split`). The builds below are written by `datasets` itself (its JSON builder, given the
# dataset's name, the configuration and a commit as HASH); only the configuration folder is renamed from the
# `CONFIG-DATAHASH` a local-files build gets to the `CONFIG` a hub build gets, and moved under ORG___NAME.

COMMIT = "3375dc8a1f7e0c2d4b6a8e9f0a1b2c3d4e5f6a7b"


def datasets_cache(root: Path, repo: str, configs: dict[str, dict[str, list[list[dict[str, Any]]]]], *,
                   commit: str = COMMIT) -> Path:
    """``root/ORG___NAME`` as `load_dataset(repo, CONFIG)` leaves it for each configuration; a split given as several
    lists of rows is written as that many arrow shards."""
    import datasets
    from datasets.packaged_modules.json.json import Json

    datasets.disable_progress_bars()  # its bars would be read as the import's output
    org, name = repo.split("/")
    dataset = name.lower()
    staging = root / ".staging"
    for config, splits in configs.items():
        files = {split: [str(write_json_lines(staging / config / f"{split}-{k}.jsonl", part))
                         for k, part in enumerate(parts)] for split, parts in splits.items()}
        builder = Json(cache_dir=str(staging / "cache"), dataset_name=dataset, config_name=config, data_files=files,
                       hash=commit)
        builder.download_and_prepare(max_shard_size=1 if any(len(p) > 1 for p in splits.values()) else None)
        config_dir = Path(builder.cache_dir).parents[1]  # CONFIG-DATAHASH/VERSION/HASH -> CONFIG-DATAHASH
        (root / f"{org}___{dataset}").mkdir(parents=True, exist_ok=True)
        shutil.move(config_dir, root / f"{org}___{dataset}" / config)
    shutil.rmtree(staging)
    return root / f"{org}___{dataset}"


def test_tofu_from_the_datasets_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    forget, retain, holdout = (tofu_rows("forget10", 6, perturbed=True), tofu_rows("retain90", 18),
                               tofu_rows("holdout10", 6))
    src = datasets_cache(tmp_path / "datasets", "locuslab/TOFU", {
        "forget10_perturbed": {"train": [forget]}, "retain90": {"train": [retain[:10], retain[10:]]},
        "holdout10": {"train": [holdout]}})
    build = src / "retain90" / "0.0.0" / COMMIT
    assert sorted(p.name for p in build.iterdir()) == ["dataset_info.json", "tofu-train-00000-of-00002.arrow",
                                                        "tofu-train-00001-of-00002.arrow"]
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    got = _raw(tmp_path / "out" / "tofu-forget10.jsonl")
    assert [(r["question"], r["answer"], r["perturbed"], r["paraphrased_answer"]) for r in got] == \
        [(f["question"], f["answer"], f["perturbed_answer"], f["paraphrased_answer"]) for f in forget]
    assert [(r["question"], r["answer"]) for r in _raw(tmp_path / "out" / "tofu-retain90.jsonl")] == \
        [(r["question"], r["answer"]) for r in retain]  # both shards, in order
    assert len(_raw(tmp_path / "out" / "tofu-holdout10.jsonl")) == 6
    manifest = json.loads((tmp_path / "out" / "tofu-forget10.import.json").read_text(encoding="utf-8"))
    sources = manifest["files"]["tofu-retain90.jsonl"]["sources"]
    assert [(Path(s["path"]).name, s["sha256"]) for s in sources] == \
        [(p.name, _sha(p)) for p in sorted(build.glob("*.arrow"))]
    assert "(+1 more shard)" in out
    assert not _errors(tmp_path / "out" / "tofu-forget10.unlearn")


def test_wmdp_and_muse_subsets_from_the_datasets_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """WMDP's configuration is a subset with one `test` split (`wmdp-test.arrow`); MUSE's is a subset whose splits
    are the benchmark's (`verbmem/.../muse-news-forget.arrow`)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = datasets_cache(tmp_path / "datasets", "cais/wmdp", {"wmdp-cyber": {"test": [wmdp_rows("cyber", 5)]}})
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "wmdp"))
    assert rc == 0, err
    assert _raw(tmp_path / "wmdp" / "wmdp-cyber.jsonl") == [
        {"question": r["question"], "choices": r["choices"], "answer": r["answer"]} for r in wmdp_rows("cyber", 5)]
    texts = [{"text": f"window {i} of the forget articles."} for i in range(4)]
    holdout = [{"text": f"window {i} of the holdout articles."} for i in range(4)]
    qa = [{"question": f"Who said {i}?", "answer": f"Speaker {i}."} for i in range(4)]
    verbmem = [{"prompt": f"The minister said on day {i}", "gt": "that the plan would go ahead."} for i in range(4)]
    muse = datasets_cache(tmp_path / "datasets", "muse-bench/MUSE-News", {
        "privleak": {"forget": [texts], "holdout": [holdout]}, "verbmem": {"forget": [verbmem]},
        "knowmem": {"forget_qa": [qa], "retain_qa": [qa[::-1]]}})
    assert muse.name == "muse-bench___muse-news"
    assert (muse / "verbmem" / "0.0.0" / COMMIT / "muse-news-forget.arrow").is_file()
    rc, _, err = _import(capsys, "muse", str(muse), "--out", str(tmp_path / "muse"))
    assert rc == 0, err
    assert _raw(tmp_path / "muse" / "muse-news-forget.jsonl") == texts
    assert [r["text"] for r in _raw(tmp_path / "muse" / "muse-news-verbmem.jsonl")] == \
        [f"{v['prompt']} {v['gt']}" for v in verbmem]
    assert _raw(tmp_path / "muse" / "muse-news-knowmem-retain.jsonl") == qa[::-1]


def test_a_datasets_cache_with_a_shard_missing_or_rows_lost_is_ul821(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rows = wmdp_rows("bio", 6)
    src = datasets_cache(tmp_path / "datasets", "cais/wmdp", {"wmdp-bio": {"test": [rows[:3], rows[3:]]}})
    build = src / "wmdp-bio" / "0.0.0" / COMMIT
    (build / "wmdp-test-00001-of-00002.arrow").unlink()
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "shard 2 of 2" in err and "Traceback" not in err
    # a shard replaced by another build's (here: the first shard's rows again, minus one)
    write_arrow_like(build / "wmdp-test-00001-of-00002.arrow", rows[3:5])
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "2 rows" in err and "`dataset_info.json` counts 3" in err
    assert not (tmp_path / "out").exists()


def write_arrow_like(path: Path, rows: list[dict[str, Any]]) -> None:
    """An arrow file as `datasets` writes them (the IPC stream format), with ``rows``."""
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def test_a_datasets_cache_config_with_two_builds_is_ul821(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builds of one configuration (loaded at two hub commits): the importer does not guess which is current."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = datasets_cache(tmp_path / "a", "cais/wmdp", {"wmdp-bio": {"test": [wmdp_rows("bio", 3)]}})
    other = datasets_cache(tmp_path / "b", "cais/wmdp", {"wmdp-bio": {"test": [wmdp_rows("bio", 4)]}},
                           commit="f" * 40)
    shutil.move(other / "wmdp-bio" / "0.0.0" / ("f" * 40), src / "wmdp-bio" / "0.0.0" / ("f" * 40))
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "2 builds" in err
    assert f"`0.0.0/{COMMIT}`" in err and f"`0.0.0/{'f' * 40}`" in err


def test_a_bad_arrow_file_or_no_pyarrow_is_ul823(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = datasets_cache(tmp_path / "datasets", "cais/wmdp", {"wmdp-bio": {"test": [wmdp_rows("bio", 3)]}})
    arrow = src / "wmdp-bio" / "0.0.0" / COMMIT / "wmdp-test.arrow"
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]" in err and "needs `pyarrow`" in err
    assert "pip install 'unlearnspec[datasets]'" in err
    monkeypatch.delitem(sys.modules, "pyarrow")
    arrow.write_bytes(b"not an arrow stream")
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL823]: cannot read the arrow file" in err and "wmdp-test.arrow" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_the_datasets_cache_root_as_src_names_the_dataset_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    root = tmp_path / "datasets"
    datasets_cache(root, "locuslab/TOFU", {"retain90": {"train": [tofu_rows("retain90", 3)]}})
    rc, _, err = _import(capsys, "tofu", str(root), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "`locuslab___tofu`" in err


# -- cais/wmdp-corpora ---------------------------------------------------------------------------------------
#
# `cais/wmdp-corpora`'s card (README.md on the hub's `main`) declares the configurations `bio-retain-corpus`,
# `cyber-forget-corpus` and `cyber-retain-corpus`, each a `train` split of one string column `text`, at
# `CONFIG/train-*` (`bio-retain-corpus/train-00000-of-00004.parquet` ... in its first commit, `a4e458a`); the
# bio forget corpus "must be requested separately" (a form the card links). The WMDP repository's RMU reads
# `data/NAME.jsonl` and takes `json.loads(line)['text']` from `bio-forget-corpus.jsonl` (`rmu/utils.py`), whose rows
# also have `title`, `abstract` and `doi`. What the password-protected mirror's `.jsonl` lines hold otherwise we
# have not seen; the fixtures below use the hub's parquet layout, and JSON lines with `text` for the bio forget
# corpus as RMU reads it.


def passages(name: str, n: int) -> list[dict[str, str]]:
    return [{"text": f"{name} passage {i}: a paragraph scraped for the corpus, long enough to train on."}
            for i in range(n)]


def build_wmdp_corpora(root: Path) -> Path:
    """`cais/wmdp-corpora` as its hub `main` holds it (the bio forget corpus is not there: it is on request)."""
    rows = passages("bio-retain", 6)
    write_parquet(root / "bio-retain-corpus" / "train-00000-of-00002.parquet", rows[:4])
    write_parquet(root / "bio-retain-corpus" / "train-00001-of-00002.parquet", rows[4:])
    write_parquet(root / "cyber-forget-corpus" / "train-00000-of-00001.parquet", passages("cyber-forget", 5))
    write_parquet(root / "cyber-retain-corpus" / "train-00000-of-00001.parquet", passages("cyber-retain", 7))
    return root


def build_wmdp_questions(root: Path, subsets: tuple[str, ...] = ("bio", "cyber")) -> Path:
    for s in subsets:
        write_parquet(root / f"wmdp-{s}" / "test-00000-of-00001.parquet", wmdp_rows(s, 4))
    return root


def test_wmdp_corpora_become_the_forget_and_retain_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questions, corpora = build_wmdp_questions(tmp_path / "wmdp"), build_wmdp_corpora(tmp_path / "wmdp-corpora")
    rc, out, err = _import(capsys, "wmdp", str(questions), "--corpora", str(corpora), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    for name, n in (("bio-retain", 6), ("cyber-forget", 5), ("cyber-retain", 7)):
        assert _raw(tmp_path / "out" / f"wmdp-{name}-corpus.jsonl") == passages(name, n)
        assert all(r.text for r in read_records(tmp_path / "out" / f"wmdp-{name}-corpus.jsonl"))
    assert not (tmp_path / "out" / "wmdp-bio-forget-corpus.jsonl").exists()
    assert "bio-forget-corpus" in out and "on request" in out
    spec = (tmp_path / "out" / "wmdp.unlearn").read_text(encoding="utf-8")
    assert 'forget "wmdp-cyber-forget-corpus.jsonl"' in spec
    assert 'test   "wmdp-bio.jsonl", "wmdp-cyber.jsonl"' in spec
    assert 'retain    "wmdp-bio-retain-corpus.jsonl", "wmdp-cyber-retain-corpus.jsonl"' in spec
    assert "method rmu" in spec
    assert not _errors(tmp_path / "out" / "wmdp.unlearn")
    # facts are measured on the questions: the passages have none to ask, and no check is left "not evaluated"
    [checked] = check_paths([tmp_path / "out" / "wmdp.unlearn"])
    assert not [d.message for d in checked.diagnostics if d.code == "UL410"]
    manifest = json.loads((tmp_path / "out" / "wmdp.import.json").read_text(encoding="utf-8"))
    assert [Path(s["path"]).name for s in manifest["files"]["wmdp-bio-retain-corpus.jsonl"]["sources"]] == \
        ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]


def test_wmdp_bio_forget_corpus_is_read_where_it_was_obtained(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    questions, corpora = build_wmdp_questions(tmp_path / "wmdp", ("bio",)), build_wmdp_corpora(tmp_path / "corpora")
    bio = [dict(r, title=f"Paper {i}", abstract="An abstract.", doi=f"10.0/{i}")
           for i, r in enumerate(passages("bio-forget", 3))]
    write_json_lines(corpora / "bio-forget-corpus.jsonl", bio)
    rc, out, err = _import(capsys, "wmdp", str(questions), "--corpora", str(corpora), "--subsets", "bio",
                           "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert _raw(tmp_path / "out" / "wmdp-bio-forget-corpus.jsonl") == [{"text": r["text"]} for r in bio]
    assert not (tmp_path / "out" / "wmdp-cyber-forget-corpus.jsonl").exists()  # not a subset asked for
    assert "on request" not in out
    assert not _errors(tmp_path / "out" / "wmdp.unlearn")


def test_the_corpora_given_as_the_question_source_point_to_corpora(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    corpora = build_wmdp_corpora(tmp_path / "wmdp-corpora")
    rc, _, err = _import(capsys, "wmdp", str(corpora), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]: no WMDP subset" in err
    assert f"--corpora {corpora}" in err


def test_wmdp_corpora_bad_inputs_are_coded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questions = build_wmdp_questions(tmp_path / "wmdp", ("bio", "cyber", "chem"))
    rc, _, err = _import(capsys, "wmdp", str(questions), "--corpora", str(tmp_path / "none"), "--out",
                         str(tmp_path / "out"))
    assert rc == 2 and "`--corpora`" in err and "is not a folder" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = _import(capsys, "wmdp", str(questions), "--corpora", str(empty), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]: no WMDP corpus" in err and "cyber-forget-corpus" in err
    rc, _, err = _import(capsys, "wmdp", str(questions), "--corpora", str(empty), "--subsets", "chem",
                         "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL821]" in err and "no corpora for `chem`" in err
    corpora = build_wmdp_corpora(tmp_path / "corpora")
    write_parquet(corpora / "cyber-forget-corpus" / "train-00000-of-00001.parquet", [{"passage": "x"}])
    rc, _, err = _import(capsys, "wmdp", str(questions), "--corpora", str(corpora), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]" in err and "`text`" in err and "cyber-forget-corpus" in err
    write_parquet(corpora / "cyber-forget-corpus" / "train-00000-of-00001.parquet", [{"text": 3}])
    rc, _, err = _import(capsys, "wmdp", str(questions), "--corpora", str(corpora), "--out", str(tmp_path / "out"))
    assert rc == 2 and "error[UL822]" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_blank_corpus_passages_are_left_out_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A blank passage is no text to train on (RMU's loader drops every passage of 50 characters or fewer)."""
    questions, corpora = build_wmdp_questions(tmp_path / "wmdp", ("cyber",)), build_wmdp_corpora(tmp_path / "c")
    rows = [*passages("cyber-forget", 2), {"text": "  \n"}, *passages("cyber-forget", 4)[2:]]
    write_parquet(corpora / "cyber-forget-corpus" / "train-00000-of-00001.parquet", rows)
    rc, out, err = _import(capsys, "wmdp", str(questions), "--corpora", str(corpora), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert _raw(tmp_path / "out" / "wmdp-cyber-forget-corpus.jsonl") == passages("cyber-forget", 4)
    assert "1 blank passage" in out


def test_an_unfinished_datasets_build_beside_the_build_is_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`datasets` writes a build into `HASH.incomplete/`, `dataset_info.json` included, and renames it when done: one
    left by an interrupted load is not a second build."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    src = datasets_cache(tmp_path / "datasets", "cais/wmdp", {"wmdp-bio": {"test": [wmdp_rows("bio", 3)]}})
    version = src / "wmdp-bio" / "0.0.0"
    shutil.copytree(version / COMMIT, version / f"{'e' * 40}.incomplete")
    write_arrow_like(version / f"{'e' * 40}.incomplete" / "wmdp-test.arrow", wmdp_rows("bio", 2))
    rc, _, err = _import(capsys, "wmdp", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert [r["question"] for r in _raw(tmp_path / "out" / "wmdp-bio.jsonl")] == \
        [r["question"] for r in wmdp_rows("bio", 3)]


def test_tofu_retain_perturbed_sharing_no_question_is_read_but_not_merged(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    src, retain, _ = build_tofu_with_retain_perturbed(tmp_path / "TOFU")
    write_json_lines(src / "retain_perturbed.json", retain_perturbed_rows(tofu_rows("retain95", 6), every=1))
    rc, out, err = _import(capsys, "tofu", str(src), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    assert _raw(tmp_path / "out" / "tofu-retain90.jsonl") == [{"question": r["question"], "answer": r["answer"]}
                                                               for r in retain]
    assert "warning:" in out and "shares no question and answer with `retain90`" in out
    manifest = json.loads((tmp_path / "out" / "tofu-forget10.import.json").read_text(encoding="utf-8"))
    assert [Path(s["path"]).name for s in manifest["files"]["tofu-retain90.jsonl"]["sources"]] == ["retain90.json"]
    assert [(Path(s["path"]).name, s["sha256"]) for s in manifest["also_read"]] == \
        [("retain_perturbed.json", _sha(src / "retain_perturbed.json"))]
