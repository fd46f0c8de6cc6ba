"""The built-in corpora state each person's facts only in that person's own records, in the CPU corpus and in
the scaled one of ``builtin:bios-100m``: no record names another person (by name or alias), the holdout
people are named nowhere in training, and the neighbours resemble the target without being her."""

from __future__ import annotations

import re

import pytest

from unlearnspec.builtin import corpus as C
from unlearnspec.builtin.llama_recipes import BIOS_100M_RECIPE
from unlearnspec.builtin.scaled import corpus_for

PERSON_SPLITS = ("forget", "neighbors", "retain", "holdout")
ALL_SPLITS = (*PERSON_SPLITS, "character", "character_tests", "work", "hazard", "hazard_neighbors")


@pytest.fixture(scope="module", params=["cpu", "scaled"])
def corpus(request: pytest.FixtureRequest) -> C.Corpus:
    return C.build_corpus() if request.param == "cpu" else corpus_for(BIOS_100M_RECIPE)


def _mentions(corpus: C.Corpus) -> tuple[re.Pattern[str], dict[str, set[str]]]:
    """A pattern matching every person's full name (and every alias that appears in some text), and who each
    match can be."""
    who: dict[str, set[str]] = {}
    for people in corpus.people.values():
        for p in people:
            for name in (p.name, *p.aliases):
                who.setdefault(name, set()).add(p.name)
    alternatives = sorted(who, key=len, reverse=True)  # the longest first: "Jane D." before a shorter name
    return re.compile(r"\b(?:" + "|".join(map(re.escape, alternatives)) + r")(?![\w])"), who


def test_every_record_names_only_its_own_person(corpus: C.Corpus) -> None:
    pattern, who = _mentions(corpus)
    wrong = []
    for split in ALL_SPLITS:
        for r in corpus.split(split):
            own = r.attributes.get("person")
            for text in [*r.training_texts(), *r.paraphrases, *r.perturbed]:
                for name in pattern.findall(text):
                    if own not in who[name]:
                        wrong.append((split, own, name))
    assert not wrong, wrong[:5]


def test_the_people_of_different_splits_are_different_people(corpus: C.Corpus) -> None:
    seen: dict[str, str] = {}
    for split in PERSON_SPLITS:
        for p in corpus.people[split]:
            assert p.name not in seen, (p.name, seen.get(p.name), split)
            seen[p.name] = split
    for split in PERSON_SPLITS:
        named = {r.attributes["person"] for r in corpus.split(split)}
        assert named == {p.name for p in corpus.people[split]}, split


def test_no_holdout_person_is_named_in_training(corpus: C.Corpus) -> None:
    trained = "\n".join(C.training_texts(corpus=corpus))
    for p in corpus.people["holdout"]:
        for name in (p.name, *p.aliases):
            assert not re.search(r"\b" + re.escape(name) + r"(?![\w])", trained), name


def test_no_one_else_has_the_targets_profile(corpus: C.Corpus) -> None:
    """Her city, profession and employer are shared on purpose (neighbours, holdout); with her award, hobby
    and birth year no one else matches her, so a record stating them together can only be about her."""
    jane = corpus.people["forget"][0]
    others = [p for s in ("neighbors", "retain", "holdout") for p in corpus.people[s]]
    facts = ("birth_city", "profession", "employer", "award", "hobby", "birth_year")
    key = tuple(getattr(jane, f) for f in facts)
    assert all(tuple(getattr(p, f) for f in facts) != key for p in others)


def test_neighbours_are_like_the_target_but_distinct(corpus: C.Corpus) -> None:
    jane = corpus.people["forget"][0]
    for p in corpus.people["neighbors"]:
        shared = [f for f in C.FULL_FACTS if getattr(p, f) == getattr(jane, f)]
        assert {"birth_city", "profession"} & set(shared), p.name  # similar: her city or her profession
        assert len(shared) <= len(C.FULL_FACTS) // 2, (p.name, shared)  # distinct: most facts differ
        assert p.name.split()[0] != jane.name.split()[0] and p.name.split()[-1] != jane.name.split()[-1]
