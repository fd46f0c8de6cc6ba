"""Build, cache and retrain the built-in models (``builtin:tiny-bios``, ``builtin:tiny-bios-chat``, ...).

No model is shipped: each is trained here from its recipe in :data:`unlearnspec.builtin.recipe.RECIPES`
(about half a minute on two CPU cores for the CPU built-ins) and cached under the recipe hash, so a changed corpus or recipe can never
be served from a stale cache. :func:`ensure_retrained` trains the same recipe without a set of
texts — the exact-removal reference that approximate methods are compared with.

Builds are atomic and safe under concurrency: a build trains into a temporary folder beside its
destination, fsyncs it and renames it into place while holding an exclusive ``flock`` on a lock file, so a
second process waits for the first and reuses its result, and a crashed build (or a power loss) leaves no
half-made model behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tokenizers
import torch
import transformers

from unlearnspec.builtin import corpus as corpus_mod
from unlearnspec.builtin.recipe import RECIPE, canonical_recipe_json, recipe_corpus_sha256, recipe_hash
from unlearnspec.builtin.scaled import corpus_for
from unlearnspec.builtin.training import training_items
from unlearnspec.io import fsync_dir, fsync_tree
from unlearnspec.runtime.lm_training import train_bpe_tokenizer, train_causal_lm, train_llama_lm

log = logging.getLogger(__name__)

MANIFEST = "unlearnspec-builtin.json"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", MANIFEST)


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$UNLEARNSPEC_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/unlearnspec``."""
    if cache_dir is not None:
        return Path(os.path.abspath(cache_dir))
    env = os.environ.get("UNLEARNSPEC_CACHE")
    if env:  # absolute, as every path a run records (a resume may start in another folder)
        return Path(os.path.abspath(os.path.expanduser(env)))
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.path.abspath(xdg)) / "unlearnspec"


def is_complete(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a finished build (the rename makes this all-or-nothing)."""
    return all((model_dir / f).is_file() for f in _REQUIRED_FILES)


def texts_sha256(texts: Iterable[str]) -> str:
    """Order- and duplicate-insensitive identity of a set of texts (the exclusion key)."""
    body = json.dumps(sorted(set(texts)), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[None]:
    """Run with ``min(n, cpu count)`` torch threads, then restore: same threads, same float sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, os.cpu_count() or 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_atomically(final: Path, build: Callable[[Path], None]) -> Path:
    """Return ``final``, building it first (under a lock, into a temp folder, then rename) if absent."""
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.parent / f".{final.name}.lock"
    with lock_path.open("a") as lock:
        log.debug("taking the build lock %s", lock_path)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if is_complete(final):  # another process built it while we waited
                log.info("reusing %s", final)
                return final
            if final.exists():  # an incomplete leftover from outside this protocol
                shutil.rmtree(final)
            for stale in final.parent.glob(f".{final.name}.tmp-*"):  # from a builder that was killed
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is read like any model folder
            try:
                build(tmp)
                fsync_tree(tmp)  # every file on the disk before the name says the build is complete
                os.replace(tmp, final)
                fsync_dir(final.parent)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return final


def _manifest(recipe: Mapping[str, Any], rhash: str, texts: list[str], excluded: str | None) -> dict[str, Any]:
    # Deterministic on purpose (no timestamps or timings): the folder's hash should depend only on
    # what was built and with which libraries.
    return {
        "model": recipe["name"],
        "recipe": json.loads(canonical_recipe_json(dict(recipe))),
        "recipe_hash": rhash,
        "corpus_sha256": recipe_corpus_sha256(dict(recipe)),
        "training_texts": len(texts),
        "training_texts_sha256": texts_sha256(texts),
        "excluded_texts_sha256": excluded,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
    }


def _texts(items: Sequence[Any]) -> list[str]:
    """What the manifest identifies a training set by: each item's text, or its chat pair as JSON."""
    return [i.text if not i.is_chat else json.dumps([i.question, i.answer], ensure_ascii=False) for i in items]


def _train_recipe(out: Path, recipe: Mapping[str, Any], items: Sequence[Any], manifest: dict[str, Any],
                  callbacks: Sequence[Any] = ()) -> None:
    corpus = corpus_for(recipe)
    train = recipe["train"]
    arch = recipe["model"].get("architecture", "gpt2")
    start = time.perf_counter()
    with pinned_threads(int(train.get("threads", 2))):
        tokenizer = train_bpe_tokenizer(corpus_mod.tokenizer_texts(corpus), recipe["tokenizer"])
        config = {"model": recipe["model"], "train": train}
        if arch == "gpt2":
            texts = [str(i.text) for i in items]
            train_causal_lm(texts, tokenizer, config, out, seed=int(train["seed"]), callbacks=callbacks)
        elif arch == "llama":
            train_llama_lm(items, tokenizer, config, out, seed=int(train["seed"]), callbacks=callbacks)
        else:
            raise ValueError(f"unsupported architecture `{arch}` in recipe `{recipe['name']}`")
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    log.info("trained %s on %d items in %.1f s", recipe["name"], len(items), time.perf_counter() - start)


def ensure_builtin(cache_dir: Path | str | None = None, recipe: Mapping[str, Any] | None = None,
                   callbacks: Sequence[Any] = ()) -> Path:
    """A local Hugging Face folder with a built-in model (model + tokenizer), trained if not cached.

    ``recipe`` defaults to :data:`RECIPE` (``builtin:tiny-bios``); pass ``recipe_for(name)`` for another
    built-in, or an edited recipe (tests use a one-epoch one): it is hashed like the real one, so each
    recipe gets its own cache entry. ``callbacks`` (Trainer callbacks) see the training of a fresh build.
    """
    recipe = dict(RECIPE if recipe is None else recipe)
    rhash = recipe_hash(recipe)
    final = cache_root(cache_dir) / "builtin" / rhash

    def build(tmp: Path) -> None:
        items = training_items(recipe)
        log.info("building %s (recipe %s) into %s", recipe["name"], rhash[:12], final)
        _train_recipe(tmp, recipe, items, _manifest(recipe, rhash, _texts(items), None), callbacks)

    return build_atomically(final, build)


def ensure_retrained(exclude_texts: Iterable[str], cache_dir: Path | str | None = None,
                     recipe: Mapping[str, Any] | None = None) -> Path:
    """The exact-retraining reference: the built-in recipe trained without ``exclude_texts``.

    Texts are matched whole against the records' training texts (pass a forget set's
    ``Record.training_texts()``); a QA pair excluded by its plain text is dropped in every format the
    recipe trains it in (:mod:`unlearnspec.builtin.training`). Cached under the recipe hash and the
    sha256 of the sorted excluded texts. Raises ``ValueError`` when no excluded text is in the training
    corpus, since the "reference" would then be the original model under another name.
    """
    recipe = dict(RECIPE if recipe is None else recipe)
    excluded = sorted(set(exclude_texts))
    items = training_items(recipe, exclude=excluded)
    full = training_items(recipe)
    if excluded and len(items) == len(full):
        raise ValueError("none of the excluded texts is in the builtin training corpus")
    rhash = recipe_hash(recipe)
    ehash = texts_sha256(excluded)
    final = cache_root(cache_dir) / "retrained" / rhash / ehash

    def build(tmp: Path) -> None:
        log.info("retraining %s without %d texts (%d of %d items kept) into %s", recipe["name"], len(excluded),
                 len(items), len(full), final)
        _train_recipe(tmp, recipe, items, _manifest(recipe, rhash, _texts(items), ehash))

    return build_atomically(final, build)
