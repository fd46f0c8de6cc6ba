"""The built-in corpus, scaled up: the same people, stories and hazard, plus thousands of retain people.

Why: a GPU-size built-in (``builtin:bios-100m``) needs more than the ~50 people of the CPU demo, or a
100M-parameter model memorises its corpus in a few steps and unlearning dynamics look nothing like a
real model's. The extra people are drawn by the corpus's own generator (:mod:`unlearnspec.builtin.corpus`:
the same pools, bio templates and QA templates) with their own seed, and join the *retain* split only:
the target, her neighbours, the holdout people, the character, the work and the hazard are the CPU
corpus's, record for record, so every example spec's data files (``specs/data``) describe both.

Pure standard library, like the corpus: the compiler hashes the scaled corpus without torch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import random
from collections.abc import Mapping
from typing import Any

from unlearnspec.builtin import corpus as C
from unlearnspec.records import Record

MAX_EXTRA_PEOPLE = len(C._FIRST_NAMES) * len(C._SURNAMES) - (C.N_NEIGHBORS + C.N_RETAIN + C.N_HOLDOUT + 1)


def _extra_people(n: int, seed: int, taken: set[str]) -> list[C.Person]:
    """``n`` new people: unused first-name/surname pairs in a seeded order, facts from the corpus's pools."""
    if not 0 <= n <= MAX_EXTRA_PEOPLE:
        raise ValueError(f"extra_people must be between 0 and {MAX_EXTRA_PEOPLE}, not {n}")
    rng = random.Random(seed)
    pairs = [(f, s) for f, s in itertools.product(C._FIRST_NAMES, C._SURNAMES) if f"{f[0]} {s}" not in taken]
    rng.shuffle(pairs)
    out = []
    for (first, pronoun), last in pairs[:n]:
        out.append(C.Person(name=f"{first} {last}", pronoun=pronoun, aliases=(f"{first[0]}. {last}",),
                            birth_city=rng.choice(C._CITIES), birth_year=str(rng.randint(1948, 1996)),
                            profession=rng.choice(C._PROFESSIONS), employer=rng.choice(C._EMPLOYERS),
                            award=rng.choice(C._AWARDS), hobby=rng.choice(C._HOBBIES)))
    return out


@functools.lru_cache(maxsize=4)
def scaled_corpus(extra_people: int, seed: int) -> C.Corpus:
    """The CPU corpus with ``extra_people`` more retain people (each a bio and five QA pairs)."""
    base = C.build_corpus()
    taken = {p.name for people in base.people.values() for p in people}
    extra = _extra_people(extra_people, seed, taken)
    rng = random.Random(seed + 1)
    records = [r for p in extra for r in C._person_records(p, rng)]
    people = dict(base.people)
    people["retain"] = [*base.people["retain"], *extra]
    return dataclasses.replace(base, retain=[*base.retain, *records], people=people)


def _people_files(corpus: C.Corpus) -> dict[str, str]:
    """``people/<slug>.jsonl`` contents, as :func:`unlearnspec.builtin.corpus.corpus_files` writes them,
    grouped in one pass (that function scans the whole split per person: quadratic at thousands)."""
    out: dict[str, str] = {}
    for split in ("forget", "neighbors", "retain", "holdout"):
        by_person: dict[str, list[Record]] = {}
        for r in corpus.split(split):
            by_person.setdefault(r.attributes.get("person", ""), []).append(r)
        for p in corpus.people[split]:
            out[f"people/{p.slug}.jsonl"] = C._jsonl(by_person.get(p.name, []))
    return out


@functools.lru_cache(maxsize=4)
def _scaled_sha256(extra_people: int, seed: int) -> str:
    corpus = scaled_corpus(extra_people, seed)
    files = {name: C._jsonl(corpus.split(split)) for split, name in C.FILES.items()} | _people_files(corpus)
    h = hashlib.sha256()
    for name, content in sorted(files.items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(content.encode()).digest())
    return h.hexdigest()


def corpus_sha256_for(recipe: Mapping[str, Any]) -> str:
    """:func:`unlearnspec.builtin.corpus.corpus_sha256` of the recipe's corpus (the same value, computed in
    linear time for a scaled corpus)."""
    n, seed = _scale(recipe)
    return C.corpus_sha256() if n == 0 else _scaled_sha256(n, seed)


def _scale(recipe: Mapping[str, Any]) -> tuple[int, int]:
    spec = recipe.get("corpus", {})
    # The generator has one version and one seed: a recipe naming others would hash differently and train on
    # the same corpus, so it is refused rather than silently given this one.
    for key, have in (("version", C.CORPUS_VERSION), ("seed", C.CORPUS_SEED)):
        if key in spec and spec[key] != have:
            raise ValueError(f"the corpus generator here is {key} {have!r}; the recipe asks for {spec[key]!r}")
    return int(spec.get("extra_people", 0)), int(spec.get("extra_seed", C.CORPUS_SEED + 100))


def corpus_for(recipe: Mapping[str, Any]) -> C.Corpus:
    """The corpus a recipe trains on: the CPU corpus, or the scaled one when ``corpus.extra_people`` is set."""
    n, seed = _scale(recipe)
    return C.build_corpus() if n == 0 else scaled_corpus(n, seed)
