"""Build, cache and retrain ``builtin:tiny-bios``.

The model is not shipped: it is trained here from :mod:`unlearnspec.builtin.recipe` (about half a
minute on two CPU cores) and cached under the recipe hash, so a changed corpus or recipe can never
be served from a stale cache. :func:`ensure_retrained` trains the same recipe without a set of
texts — the exact-removal reference that approximate methods are compared with.

Builds are atomic and safe under concurrency: a build trains into a temporary folder beside its
destination and renames it into place while holding an exclusive ``flock`` on a lock file, so a
second process waits for the first and reuses its result, and a crashed build leaves no half-made
model behind.
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import tokenizers
import torch
import transformers

from unlearnspec.builtin import corpus as corpus_mod
from unlearnspec.builtin.recipe import RECIPE, canonical_recipe_json, recipe_hash
from unlearnspec.runtime.lm_training import train_bpe_tokenizer, train_causal_lm

log = logging.getLogger(__name__)

MANIFEST = "unlearnspec-builtin.json"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", MANIFEST)


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$UNLEARNSPEC_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/unlearnspec``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("UNLEARNSPEC_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "unlearnspec"


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
                os.replace(tmp, final)
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
        "model": RECIPE["name"],
        "recipe": json.loads(canonical_recipe_json(dict(recipe))),
        "recipe_hash": rhash,
        "corpus_sha256": corpus_mod.corpus_sha256(),
        "training_texts": len(texts),
        "training_texts_sha256": texts_sha256(texts),
        "excluded_texts_sha256": excluded,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
    }


def _train_recipe(out: Path, recipe: Mapping[str, Any], texts: list[str], manifest: dict[str, Any]) -> None:
    corpus = corpus_mod.build_corpus()
    train = recipe["train"]
    start = time.perf_counter()
    with pinned_threads(int(train.get("threads", 2))):
        tokenizer = train_bpe_tokenizer(corpus_mod.tokenizer_texts(corpus), recipe["tokenizer"])
        train_causal_lm(texts, tokenizer, {"model": recipe["model"], "train": train}, out, seed=int(train["seed"]))
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    log.info("trained %s on %d texts in %.1f s", recipe["name"], len(texts), time.perf_counter() - start)


def ensure_builtin(cache_dir: Path | str | None = None, recipe: Mapping[str, Any] | None = None) -> Path:
    """A local Hugging Face folder with ``builtin:tiny-bios`` (model + tokenizer), trained if not cached.

    ``recipe`` overrides :data:`RECIPE` (tests use a one-epoch recipe); it is hashed like the real
    one, so each recipe gets its own cache entry.
    """
    recipe = dict(RECIPE if recipe is None else recipe)
    rhash = recipe_hash(recipe)
    final = cache_root(cache_dir) / "builtin" / rhash

    def build(tmp: Path) -> None:
        texts = corpus_mod.training_texts()
        log.info("building %s (recipe %s) into %s", recipe["name"], rhash[:12], final)
        _train_recipe(tmp, recipe, texts, _manifest(recipe, rhash, texts, None))

    return build_atomically(final, build)


def ensure_retrained(exclude_texts: Iterable[str], cache_dir: Path | str | None = None,
                     recipe: Mapping[str, Any] | None = None) -> Path:
    """The exact-retraining reference: the builtin recipe trained without ``exclude_texts``.

    Texts are matched whole against the training texts (pass a forget set's
    ``Record.training_texts()``). Cached under the recipe hash and the sha256 of the sorted
    excluded texts. Raises ``ValueError`` when no excluded text is in the training corpus, since
    the "reference" would then be the original model under another name.
    """
    recipe = dict(RECIPE if recipe is None else recipe)
    excluded = sorted(set(exclude_texts))
    texts = corpus_mod.training_texts(exclude=excluded)
    full = corpus_mod.training_texts()
    if excluded and len(texts) == len(full):
        raise ValueError("none of the excluded texts is in the builtin training corpus")
    rhash = recipe_hash(recipe)
    ehash = texts_sha256(excluded)
    final = cache_root(cache_dir) / "retrained" / rhash / ehash

    def build(tmp: Path) -> None:
        log.info("retraining %s without %d texts (%d of %d kept) into %s", recipe["name"], len(excluded),
                 len(texts), len(full), final)
        _train_recipe(tmp, recipe, texts, _manifest(recipe, rhash, texts, ehash))

    return build_atomically(final, build)
