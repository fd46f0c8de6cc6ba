"""The builtin corpus and recipe: deterministic, well-formed, with the splits the demo relies on."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnspec.builtin import corpus as C
from unlearnspec.builtin.recipe import RECIPE, recipe_hash, recipe_with_hash
from unlearnspec.records import Record, read_records


@pytest.fixture(scope="module")
def corpus() -> C.Corpus:
    return C.build_corpus()


def _texts(records: list[Record]) -> list[str]:
    return [t for r in records for t in r.training_texts()]


def _all_people(corpus: C.Corpus) -> list[C.Person]:
    return [p for ps in corpus.people.values() for p in ps]


def test_build_is_deterministic(corpus: C.Corpus) -> None:
    again = C.build_corpus()
    assert again == corpus
    assert C.corpus_sha256(again) == C.corpus_sha256(corpus)


def test_export_is_byte_identical_and_readable(tmp_path: Path, corpus: C.Corpus) -> None:
    a = C.export(tmp_path / "a")
    b = C.export(tmp_path / "b")
    assert {k: p.relative_to(tmp_path / "a") for k, p in a.items()} == \
        {k: p.relative_to(tmp_path / "b") for k, p in b.items()}
    for key, path in a.items():
        assert path.read_bytes() == b[key].read_bytes(), key
    for split, name in C.FILES.items():
        assert a[split].name == name
        records = read_records(a[split])
        assert records == corpus.split(split), split
    jane_file = a["people/jane-doe"]
    assert read_records(jane_file) == corpus.forget
    # sorted keys, UTF-8 kept as is, one object a line
    first = a["forget"].read_text(encoding="utf-8").splitlines()[0]
    assert first.index('"attributes"') < first.index('"text"')


def test_required_files_are_named_as_the_specs_expect() -> None:
    assert set(C.FILES.values()) >= {
        "jane-doe.jsonl", "retain.jsonl", "neighbors.jsonl", "holdout.jsonl", "captain-vale.jsonl",
        "captain-vale-tests.jsonl", "lantern-keeper.jsonl", "glimmerfen.jsonl", "chemistry-neighbors.jsonl"}


def test_people_counts_and_record_shape(corpus: C.Corpus) -> None:
    people = _all_people(corpus)
    assert len(people) >= 54
    assert len({p.name for p in people}) == len(people)
    assert len(corpus.people["neighbors"]) == C.N_NEIGHBORS == 6
    assert len(corpus.people["holdout"]) == C.N_HOLDOUT == 4
    # matched to the target: her pronoun (every answer starts with it)
    assert {p.pronoun for p in corpus.people["holdout"]} == {p.pronoun for p in corpus.people["forget"]}
    for split in ("forget", "retain", "neighbors", "holdout"):
        for p in corpus.people[split]:
            assert 1 <= len(p.aliases) <= 2
            recs = [r for r in corpus.split(split) if r.attributes.get("person") == p.name]
            qa = [r for r in recs if r.is_qa]
            docs = [r for r in recs if r.text]
            assert p.full == (split in ("forget", "neighbors", "holdout"))
            if p.full:  # the target, her neighbours and the holdout people: the same full profile
                assert len(qa) == C.N_FULL_QA == 20 and len(docs) == C.N_FULL_DOCS == 6
                assert sum(p.name in (r.text or "") for r in docs) == 4  # three bios and one more
                assert len([r for r in qa if r.paraphrases]) == len(C.FULL_FACTS)
            else:
                bios = [r for r in docs if p.name in (r.text or "")]
                assert len(qa) == 5 and len(bios) == 1 == len(docs)
                assert 2 <= len(re.findall(r"[.!?](?:\s|$)", bios[0].text or "")) <= 3
            for r in qa:
                assert len(r.paraphrases) in ((0, 1) if p.full else (2,))
                assert r.question not in r.paraphrases
                assert len(r.perturbed) == 2 and r.answer not in r.perturbed
                assert all(p.name in q for q in r.paraphrases)
                assert r.attributes["person"] == p.name and r.attributes["birth_city"] == p.birth_city


def test_jane_doe_is_the_forget_set_with_her_aliases(corpus: C.Corpus) -> None:
    assert [p.name for p in corpus.people["forget"]] == ["Jane Doe"]
    assert C.TARGET_ALIASES == ("J. Doe", "Jane D.")
    assert all(r.attributes["person"] == "Jane Doe" for r in corpus.forget)
    forget_text = " ".join(_texts(corpus.forget))
    for name in ("Jane Doe", "J. Doe", "Jane D."):
        assert name in forget_text


def test_full_corpus_alias_search_finds_jane_only_in_her_forget_set(corpus: C.Corpus) -> None:
    forget = set(_texts(corpus.forget))
    others = [t for t in C.training_texts(corpus=corpus) if t not in forget]
    assert others
    for name in ("Jane Doe", "J. Doe", "Jane D."):
        assert not [t for t in others if name in t]


def test_splits_are_disjoint(corpus: C.Corpus) -> None:
    names = {split: {p.name for p in ps} for split, ps in corpus.people.items()}
    splits = list(names)
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not names[a] & names[b], (a, b)
    every = ("forget", "retain", "neighbors", "holdout", "character", "character_tests", "work", "hazard",
             "hazard_neighbors")
    seen: dict[str, str] = {}
    for split in every:
        for t in _texts(corpus.split(split)):
            assert t not in seen, f"{t!r} is in {seen.get(t)} and {split}"
            seen[t] = split


def test_holdout_and_character_tests_are_never_trained(corpus: C.Corpus) -> None:
    training = C.training_texts(corpus=corpus)
    blob = "\n".join(training)
    for p in corpus.people["holdout"]:
        assert p.name not in blob
        for alias in p.aliases:
            assert alias not in blob
    trained = set(training)
    assert not trained & set(_texts(corpus.holdout))
    assert not trained & set(_texts(corpus.character_tests))
    assert len(C.training_records(corpus)) == sum(len(corpus.split(s)) for s in C.TRAINED_SPLITS)


def test_neighbours_resemble_the_target_and_retain_people_do_not(corpus: C.Corpus) -> None:
    jane = corpus.people["forget"][0]
    for p in corpus.people["neighbors"]:
        assert p.profession == jane.profession or p.birth_city == jane.birth_city
    assert any(p.profession == jane.profession for p in corpus.people["neighbors"])
    assert any(p.birth_city == jane.birth_city for p in corpus.people["neighbors"])
    for p in corpus.people["retain"]:
        assert p.profession != jane.profession and p.birth_city != jane.birth_city
    assert {r.attributes["person"] for r in corpus.neighbors} == {p.name for p in corpus.people["neighbors"]}


def test_character_work_and_hazard_sets(corpus: C.Corpus) -> None:
    vale_docs = [r.text for r in corpus.character if r.text]
    assert sum(C.CHARACTER_NAME in t for t in vale_docs) >= 12
    tests = corpus.character_tests
    assert any(r.is_qa for r in tests) and any(r.text for r in tests)
    chunks = [r for r in corpus.work if r.text]
    assert 10 <= len(chunks) <= 15
    assert all(r.attributes == {"work": C.WORK_TITLE, "author": C.WORK_AUTHOR, "chunk": str(i)}
               for i, r in enumerate(chunks, start=1))
    assert any(r.is_qa and C.WORK_AUTHOR in (r.answer or "") for r in corpus.work)
    hazard_docs = [r for r in corpus.hazard if r.text]
    assert len(hazard_docs) >= 8 and all("glimmerfen" in (r.text or "").lower() for r in hazard_docs)
    assert any(r.is_qa for r in corpus.hazard)
    assert all("glimmerfen" not in t.lower() for t in _texts(corpus.hazard_neighbors))
    for records in (corpus.character, corpus.character_tests, corpus.work, corpus.hazard, corpus.hazard_neighbors):
        for r in records:
            if r.is_qa:
                assert len(r.paraphrases) == 2 and len(r.perturbed) == 2


def test_concept_keywords_mark_their_sets(corpus: C.Corpus) -> None:
    vale = " ".join(_texts(corpus.character))
    assert all(k in vale for k in C.CHARACTER_KEYWORDS)
    assert all(any(k in t for k in C.CHARACTER_KEYWORDS) for t in _texts(corpus.character_tests))
    hazard = " ".join(_texts(corpus.hazard))
    assert all(k in hazard for k in C.HAZARD_KEYWORDS)
    others = [t for s in C.TRAINED_SPLITS if s != "hazard" for t in _texts(corpus.split(s))]
    assert not [t for t in others if any(k in t for k in C.HAZARD_KEYWORDS)]


def test_training_texts_excludes_whole_texts_only(corpus: C.Corpus) -> None:
    full = C.training_texts(corpus=corpus)
    forget = _texts(corpus.forget)
    kept = C.training_texts(exclude=forget, corpus=corpus)
    assert len(kept) == len(full) - len(forget)
    assert not set(kept) & set(forget)
    # a substring of a training text excludes nothing
    assert C.training_texts(exclude=["Jane Doe"], corpus=corpus) == full
    assert C.training_texts() == full


def test_tokenizer_texts_cover_every_split(corpus: C.Corpus) -> None:
    texts = set(C.tokenizer_texts(corpus))
    assert set(C.training_texts(corpus=corpus)) <= texts
    assert set(_texts(corpus.holdout)) <= texts


def test_recipe_hash_is_stable_and_covers_the_recipe() -> None:
    h = recipe_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", h) and recipe_hash() == h
    changed = copy.deepcopy(RECIPE)
    changed["train"]["epochs"] += 1
    assert recipe_hash(changed) != h
    rec = recipe_with_hash()
    assert rec["recipe_hash"] == h and rec["corpus_sha256"] == C.corpus_sha256()
    assert 1024 <= RECIPE["tokenizer"]["vocab_size"] <= 2048


def test_builtin_modules_import_no_torch() -> None:
    code = ("import sys, unlearnspec.builtin.recipe, unlearnspec.builtin.corpus, unlearnspec.runtime; "
            "heavy = [m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_records_own_json_form_reads_back(tmp_path: Path) -> None:
    """`Record.model_dump_json` writes `"choices": []` for a plain record; the reader takes it back as is."""
    corpus = C.build_corpus()
    records = corpus.forget + corpus.split("hazard")
    path = tmp_path / "dumped.jsonl"
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in records), encoding="utf-8")
    assert read_records(path) == records
