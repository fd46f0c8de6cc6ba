"""Build, cache and retrain the built-in models (``builtin:tiny-bios``, ``builtin:tiny-bios-chat``, ...).

No model is shipped: each is trained here from its recipe in :data:`unlearnspec.builtin.recipe.RECIPES`
(about half a minute on two CPU cores for the CPU built-ins) and cached under the recipe hash, so a changed corpus or recipe can never
be served from a stale cache. :func:`ensure_retrained` trains the same recipe without a set of
texts — the exact-removal reference that approximate methods are compared with.

Builds are atomic and safe under concurrency: a build trains into a temporary folder beside its
destination, fsyncs it and renames it into place while holding an exclusive ``flock`` on a lock file, so a
second process waits for the first and reuses its result, and a crashed build (or a power loss) leaves no
half-made model behind.

A cache entry is used only when it checks out (:func:`entry_problem`): its manifest lists every file with
its size and sha256, and names the environment that decided its bits (:func:`build_environment`: the
torch, transformers, tokenizers and accelerate versions, the machine architecture, the device and
precision, and the training code itself). A file cut short, edited or missing, or an entry built under other libraries, is moved
aside and built again under the lock, never loaded. The folder keeps its name (the recipe hash, which
the plan pins): the environment is checked inside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata as md
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from unlearnspec.builtin import corpus as corpus_mod
from unlearnspec.builtin.recipe import RECIPE, canonical_recipe_json, recipe_corpus_sha256, recipe_hash
from unlearnspec.builtin.scaled import corpus_for
from unlearnspec.builtin.training import training_items
from unlearnspec.io import fsync_dir, fsync_tree
from unlearnspec.runtime import lm_training
from unlearnspec.runtime.lm_training import train_bpe_tokenizer, train_causal_lm, train_llama_lm

log = logging.getLogger(__name__)

MANIFEST = "unlearnspec-builtin.json"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", MANIFEST)
#: Libraries whose versions change the trained bits: kernels and initialisation (torch), model code,
#: Trainer, scheduler and collators (transformers), the BPE fit (tokenizers), the data loader's seeded
#: order (accelerate). Not safetensors or numpy: they do not touch the numbers.
_NUMERIC_LIBRARIES = ("torch", "transformers", "tokenizers", "accelerate")


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$UNLEARNSPEC_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/unlearnspec``."""
    if cache_dir is not None:
        return Path(os.path.abspath(cache_dir))
    env = os.environ.get("UNLEARNSPEC_CACHE")
    if env:  # absolute, as every path a run records (a resume may start in another folder)
        return Path(os.path.abspath(os.path.expanduser(env)))
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.path.abspath(xdg)) / "unlearnspec"


def train_threads(recipe: Mapping[str, Any]) -> int:
    """The torch threads a recipe trains with: exactly the recipe's on CPU, where the count decides how float
    sums are split (fewer cores than threads only costs time); at most the machine's cores on a GPU."""
    train = recipe["train"]
    n = max(1, int(train.get("threads", 2)))
    return n if _trains_on_cpu(recipe) else max(1, min(n, os.cpu_count() or 1))


def _trains_on_cpu(recipe: Mapping[str, Any]) -> bool:
    return recipe["train"].get("device") == "cpu" or not torch.cuda.is_available()  # as lm_training decides


def _short(value: object) -> str:
    """A value of the environment as a message shows it: a sha256 by its first 12 digits."""
    text = str(value)
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


@functools.cache
def training_code_sha256() -> str:
    """The sha256 of the code that trains a built-in (``runtime/lm_training.py``: the tokenizer, the model's
    configuration, the Trainer and its collators). A change there changes the bits a recipe builds, and without
    this a cache built before the change went on being served (the tests passing on old weights where a fresh
    machine builds new ones), unless whoever changed it remembered to bump the recipe's version."""
    return hashlib.sha256(Path(lm_training.__file__).read_bytes()).hexdigest()


def build_environment(recipe: Mapping[str, Any]) -> dict[str, str]:
    """What besides the recipe and the corpus decides a build's bits here, and nothing else: the versions of
    :data:`_NUMERIC_LIBRARIES`, the machine architecture, the device and precision the recipe trains in
    on this machine (a GPU recipe falls back to CPU and fp32 without a GPU) and :func:`training_code_sha256`.
    Thread counts are the recipe's (:func:`train_threads`), so already in its hash."""
    env: dict[str, str] = {"training_code": training_code_sha256()}
    for name in _NUMERIC_LIBRARIES:
        try:
            env[name] = md.version(name)
        except md.PackageNotFoundError:
            env[name] = "absent"
    env["machine"] = platform.machine()
    if _trains_on_cpu(recipe):
        env["device"], env["precision"] = "cpu", "fp32"
    else:
        env["device"] = f"cuda ({torch.cuda.get_device_name(0)})"
        bf16 = recipe["train"].get("precision") == "bf16" and torch.cuda.is_bf16_supported()
        env["precision"] = "bf16" if bf16 else "fp32"
    return env


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files_record(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file of a build but the manifest, by relative path: its size in bytes and its sha256."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out[p.relative_to(folder).as_posix()] = {"bytes": p.stat().st_size, "sha256": _file_sha256(p)}
    return out


#: Entries this process has verified, with the (size, mtime, inode) of each file then: an unchanged
#: entry is not hashed again on every ``ensure_builtin``.
_verified: dict[str, tuple[Any, ...]] = {}


def _signature(model_dir: Path, names: Iterable[str]) -> tuple[Any, ...]:
    stats = [os.stat(model_dir / n) for n in (MANIFEST, *names)]
    return tuple((s.st_size, s.st_mtime_ns, s.st_ino) for s in stats)


def entry_problem(model_dir: Path, expect: Mapping[str, object] | None = None) -> str | None:
    """Why the cache entry ``model_dir`` cannot be used (``None``: it can).

    Usable means: a manifest that reads, holding ``expect``'s values (the recipe hash and exclusion the folder is
    kept under), every file it lists present with its recorded size and sha256 (the safetensors weights, the
    tokenizer, the config: a copy cut short or a flipped byte is found), and the manifest's environment equal to
    :func:`build_environment` of its recipe here.
    """
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no manifest"
    except (OSError, ValueError) as exc:
        return f"its manifest does not read ({type(exc).__name__})"
    if not isinstance(manifest, dict):
        return "its manifest does not read (not an object)"
    if any(manifest.get(k) != v for k, v in (expect or {}).items()):
        return "its manifest names another recipe or exclusion than the folder it is in"
    files, recipe = manifest.get("files"), manifest.get("recipe")
    if not isinstance(files, dict) or not isinstance(recipe, dict) or not files:
        return "its manifest lists no files (made by an older unlearnspec)"
    missing = [f for f in _REQUIRED_FILES if f != MANIFEST and f not in files]
    if missing:
        return f"its manifest does not list `{missing[0]}`"
    try:
        env = build_environment(recipe)
    except (KeyError, TypeError, AttributeError):
        return "its manifest's recipe is not one"
    if manifest.get("environment") != env:
        recorded = manifest.get("environment")
        then: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
        diff = [f"{k} {_short(then.get(k, 'unknown'))} → {_short(v)}" for k, v in env.items() if then.get(k) != v]
        return "it was built in another environment (" + ", ".join(diff or ["unrecorded"]) + ")"
    try:
        sig = _signature(model_dir, files)
    except OSError:
        return "a file its manifest lists is missing"
    if _verified.get(str(model_dir)) == sig:
        return None
    for name, want in files.items():
        p = model_dir / name
        if not p.is_file() or p.is_symlink():
            return f"`{name}` is missing"
        size = want.get("bytes") if isinstance(want, dict) else None
        if p.stat().st_size != size:
            return f"`{name}` is {p.stat().st_size} bytes, not the {size} it was built with"
        if _file_sha256(p) != want["sha256"]:
            return f"`{name}` does not have the sha256 it was built with"
    _verified[str(model_dir)] = sig
    return None


def _problem_for(rhash: str, excluded: str | None) -> Callable[[Path], str | None]:
    """:func:`entry_problem`, and the manifest must name the recipe hash and exclusion the entry is kept under."""

    def problem(model_dir: Path) -> str | None:
        return entry_problem(model_dir, {"recipe_hash": rhash, "excluded_texts_sha256": excluded})

    return problem


def is_complete(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a finished, intact build made in this environment (:func:`entry_problem`)."""
    return entry_problem(model_dir) is None


def texts_sha256(texts: Iterable[str]) -> str:
    """Order- and duplicate-insensitive identity of a set of texts (the exclusion key)."""
    body = json.dumps(sorted(set(texts)), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[None]:
    """Run with exactly ``n`` torch threads, then restore: same threads, same float sums.

    Not capped at the machine's cores: torch splits a reduction by its thread count, so a recipe's two
    threads on a one-core machine must stay two (slower, the same bits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_atomically(final: Path, build: Callable[[Path], None],
                     problem: Callable[[Path], str | None] = entry_problem) -> Path:
    """Return ``final``, building it first (under a lock, into a temp folder, then rename) unless it is
    there and ``problem`` finds nothing wrong with it; a damaged entry is moved aside and built again."""
    if final.is_dir() and problem(final) is None:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.parent / f".{final.name}.lock"
    with lock_path.open("a") as lock:
        log.debug("taking the build lock %s", lock_path)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            why = problem(final) if final.is_dir() else None
            if final.is_dir() and why is None:  # another process built it while we waited
                log.info("reusing %s", final)
                return final
            if final.exists() or final.is_symlink():  # damaged, partial, stale, or from outside this protocol
                log.warning("the cached model %s cannot be used (%s): building it again", final,
                            why or "not a folder")
                # renamed aside first: a reader that has its files open keeps them, none sees half a folder
                aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
                os.replace(final, aside / "old")
                shutil.rmtree(aside, ignore_errors=True)
                _verified.pop(str(final), None)
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
        "environment": build_environment(recipe),
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
    with pinned_threads(train_threads(recipe)):
        tokenizer = train_bpe_tokenizer(corpus_mod.tokenizer_texts(corpus), recipe["tokenizer"])
        config = {"model": recipe["model"], "train": train}
        if arch == "gpt2":
            texts = [str(i.text) for i in items]
            train_causal_lm(texts, tokenizer, config, out, seed=int(train["seed"]), callbacks=callbacks)
        elif arch == "llama":
            train_llama_lm(items, tokenizer, config, out, seed=int(train["seed"]), callbacks=callbacks)
        else:
            raise ValueError(f"unsupported architecture `{arch}` in recipe `{recipe['name']}`")
    # written last, listing what is there: a build is usable only when every file matches it
    manifest = {**manifest, "files": _files_record(out)}
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

    return build_atomically(final, build, _problem_for(rhash, None))


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

    return build_atomically(final, build, _problem_for(rhash, ehash))
