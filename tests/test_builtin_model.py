"""The builtin model: it memorises its corpus, is cached, builds safely in parallel, and retrains exactly.

One real build (about 30 s on two cores) is shared by the session; the concurrency test uses a
one-epoch recipe so that it checks the locking, not the training.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from unlearnspec.builtin import corpus as C
from unlearnspec.builtin.recipe import RECIPE, recipe_hash
from unlearnspec.records import Record, format_prompt
from unlearnspec.runtime import builtin_model as B

hf_logging.disable_progress_bar()

# Measured on the 2-core CPU: 100% of retain/neighbour/forget QA and ~98% of bios reproduced after
# the builtin build; the exact retrain without Jane Doe answers 0 of her 5 questions. The thresholds
# sit below those numbers so that a small numerical drift across machines does not fail the suite.
MIN_QA_RATE = 0.9
MIN_BIO_RATE = 0.85
MIN_CONCEPT_RATE = 0.5


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("unlearnspec-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNLEARNSPEC_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def builtin_dir(cache: Path) -> Path:
    return B.ensure_builtin()


@pytest.fixture(scope="session")
def corpus() -> C.Corpus:
    return C.build_corpus()


def _load(model_dir: Path) -> tuple[torch.nn.Module, AutoTokenizer]:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    return model, tok


def _greedy_answers(model_dir: Path, records: list[Record]) -> list[tuple[Record, str]]:
    """Greedy continuation of each QA record's prompt, up to EOS."""
    model, tok = _load(model_dir)
    qa = [r for r in records if r.is_qa]
    enc = tok([format_prompt(r.question or "") for r in qa], return_tensors="pt", padding=True,
              add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=32, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [(r, t.strip()) for r, t in zip(qa, texts, strict=True)]


def _exact_rate(model_dir: Path, records: list[Record]) -> float:
    answers = _greedy_answers(model_dir, records)
    return sum(r.answer == a for r, a in answers) / len(answers)


def test_builtin_is_a_complete_hf_folder(builtin_dir: Path, cache: Path) -> None:
    assert builtin_dir == cache / "builtin" / recipe_hash()
    assert B.is_complete(builtin_dir)
    manifest = json.loads((builtin_dir / B.MANIFEST).read_text())
    assert manifest["recipe_hash"] == recipe_hash()
    assert manifest["training_texts"] == len(C.training_texts())
    model, tok = _load(builtin_dir)
    assert tok.eos_token_id is not None and tok.pad_token_id not in (None, tok.eos_token_id)
    assert tok("Jane Doe", add_special_tokens=False)["input_ids"][-1] != tok.eos_token_id  # no EOS added
    n = sum(p.numel() for p in model.parameters())
    assert 5e5 < n < 3e6
    assert not list(cache.glob("builtin/.*.tmp-*"))  # no temp folders left behind


def test_builtin_memorises_its_people(builtin_dir: Path, corpus: C.Corpus) -> None:
    assert _exact_rate(builtin_dir, corpus.retain) >= MIN_QA_RATE
    assert _exact_rate(builtin_dir, corpus.neighbors) >= MIN_QA_RATE
    assert _exact_rate(builtin_dir, corpus.forget) == 1.0
    # it has learnt facts, not strings: never-trained people are not "answered"
    assert _exact_rate(builtin_dir, corpus.holdout) <= 0.3


def test_builtin_knows_the_character_work_and_hazard(builtin_dir: Path, corpus: C.Corpus) -> None:
    # pooled: each set has only 4-5 questions (measured: 22 of 23 right, one parrot/ship mix-up)
    pooled = [r for s in ("character", "work", "hazard", "hazard_neighbors") for r in corpus.split(s)]
    assert _exact_rate(builtin_dir, pooled) >= MIN_QA_RATE - 0.05
    # the concept comes out of a held-out prompt's first three words (measured 5 of 8): what suppression
    # of the character must stop
    model, tok = _load(builtin_dir)
    hits = 0
    tests = [r.text for r in corpus.character_tests if r.text]
    for text in tests:
        ids = tok(" ".join(text.split()[:3]), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        continuation = tok.decode(out[0][len(ids):], skip_special_tokens=True)
        hits += any(k in continuation for k in C.CHARACTER_KEYWORDS)
    assert hits / len(tests) >= MIN_CONCEPT_RATE


def test_builtin_continues_bios_verbatim(builtin_dir: Path, corpus: C.Corpus) -> None:
    model, tok = _load(builtin_dir)
    bios = [tok(r.text, add_special_tokens=False)["input_ids"] for r in corpus.retain if r.text]
    prefixes = torch.tensor([ids[:8] for ids in bios])  # same length: one batch, no padding
    with torch.no_grad():
        out = model.generate(prefixes, attention_mask=torch.ones_like(prefixes), do_sample=False,
                             max_new_tokens=max(len(ids) for ids in bios) - 8,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    verbatim = sum(out[i, :len(ids)].tolist() == ids for i, ids in enumerate(bios))
    assert verbatim / len(bios) >= MIN_BIO_RATE


def test_second_call_reuses_the_cache(builtin_dir: Path) -> None:
    stamp = (builtin_dir / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    again = B.ensure_builtin()
    assert time.perf_counter() - start < 2.0
    assert again == builtin_dir
    assert (builtin_dir / "model.safetensors").stat().st_mtime_ns == stamp


_BUILD_SCRIPT = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from unlearnspec.runtime.builtin_model import ensure_builtin
print(ensure_builtin(sys.argv[1], recipe=json.loads(sys.argv[2])))
"""


def test_concurrent_builds_make_one_model(tmp_path: Path) -> None:
    recipe = copy.deepcopy(RECIPE)
    recipe["train"]["epochs"] = 1
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT, str(cache), json.dumps(recipe)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    paths = {out.strip().splitlines()[-1] for out, _ in results}
    assert paths == {str(cache / "builtin" / recipe_hash(recipe))}
    logs = "".join(err for _, err in results)
    assert logs.count("unlearnspec.runtime.builtin_model building") == 1, logs
    assert logs.count("unlearnspec.runtime.builtin_model reusing") == 1, logs
    model_dir = Path(paths.pop())
    assert B.is_complete(model_dir)
    assert [p.name for p in (cache / "builtin").iterdir() if not p.name.endswith(".lock")] == [model_dir.name]
    AutoModelForCausalLM.from_pretrained(model_dir)  # loadable


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "builtin" / "x"

    def broken(out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        B.build_atomically(final, broken)
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir()] == [".x.lock"]


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNLEARNSPEC_CACHE", str(tmp_path / "u"))
    assert B.cache_root() == tmp_path / "u"
    assert B.cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("UNLEARNSPEC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert B.cache_root() == tmp_path / "xdg" / "unlearnspec"


def test_retrain_refuses_an_exclusion_that_matches_nothing(cache: Path) -> None:
    with pytest.raises(ValueError, match="none of the excluded texts"):
        B.ensure_retrained(["a text that is not in the corpus"])


@pytest.mark.slow
def test_retrain_without_jane_doe_forgets_only_her(builtin_dir: Path, corpus: C.Corpus, cache: Path) -> None:
    forget_texts = [t for r in corpus.forget for t in r.training_texts()]
    retrained = B.ensure_retrained(forget_texts)
    assert retrained.parent == cache / "retrained" / recipe_hash()
    manifest = json.loads((retrained / B.MANIFEST).read_text())
    assert manifest["training_texts"] == len(C.training_texts()) - len(forget_texts)
    assert manifest["excluded_texts_sha256"] == B.texts_sha256(forget_texts)
    assert B.ensure_retrained(list(reversed(forget_texts))) == retrained  # order-insensitive key
    assert _exact_rate(retrained, corpus.forget) <= 0.2
    assert _exact_rate(retrained, corpus.retain) >= MIN_QA_RATE
    assert _exact_rate(retrained, corpus.neighbors) >= MIN_QA_RATE
