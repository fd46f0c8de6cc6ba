"""Load the source model and its tokenizer, and decide where and in which precision to train.

Three kinds of source, as the plan's ``ModelRef.kind`` names them:

* ``builtin:tiny-bios`` and the other built-ins of :data:`unlearnspec.builtin.recipe.RECIPES` — built
  from their recipes (or found in the cache) by :func:`unlearnspec.runtime.builtin_model.ensure_builtin`;
* a local Hugging Face folder — loaded from ``*.safetensors`` only: pickle checkpoints
  (``pytorch_model.bin``) execute code when unpickled, and an unlearning run is often pointed at a
  model someone else sent, so we refuse them instead of trusting them;
* a hub id — from the local Hugging Face cache only (``local_files_only``: a run never downloads; what
  it loads must be there already, as the plan assumes), with the same flags; a model not in the cache
  becomes a :class:`LoadError` with a hint, never a traceback.

Weights load in fp32 unless the caller asks otherwise: a checkpoint saved in bf16 (most hub models) is
not trained in bf16 on a CPU, where there is no mixed precision to keep fp32 master weights
(:func:`use_bf16`), and on a GPU the Trainer's bf16 autocast expects fp32 weights. Code shipped with a
model (``auto_map``) never runs unless ``allow_remote_code``; a folder whose tokenizer files are missing
(transformers then builds a one-token tokenizer that encodes every text to nothing) or whose vocabulary
does not fit the model's embeddings is refused, as is a sharded checkpoint missing a shard its index
names. The source folder is only read: transformers copies the weights out of the safetensors files, so
training, peft's ``get_peft_model`` (which wraps the loaded model in place) and merging change memory, never
the files (``tests/test_loading_source.py``).

Every failure is a :class:`LoadError` carrying a stable code, a one-sentence message and ``help``
lines, which the CLI renders like a compiler diagnostic.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from unlearnspec.builtin.recipe import RECIPES
from unlearnspec.markdown import code_span
from unlearnspec.records import sha256_path
from unlearnspec.runtime import builtin_model
from unlearnspec.runtime.hubcache import hub_snapshot_dir
from unlearnspec.runtime.load_errors import (  # re-exported: callers import them from here
    E_BAD_MODEL,
    E_NOT_FOUND,
    E_PICKLE_WEIGHTS,
    E_REMOTE_CODE,
    E_RETRAIN_UNKNOWN,
    E_UNAVAILABLE,
    LoadError,
    describe_error,
)

BUILTIN_SOURCE = "builtin:tiny-bios"

__all__ = ["BUILTIN_SOURCE", "E_BAD_MODEL", "E_NOT_FOUND", "E_PICKLE_WEIGHTS", "E_REMOTE_CODE", "E_RETRAIN_UNKNOWN",
           "E_UNAVAILABLE", "LoadError", "describe_device", "describe_error", "device_for_run", "dtype_for_run",
           "load_model", "model_files_sha256", "use_bf16"]

log = logging.getLogger(__name__)

#: A text every tokenizer of a language model must turn into tokens (a one-token stand-in turns it into none).
_PROBE_TEXT = "Question: Where was Jane Doe born?"


def device_for_run() -> torch.device:
    """The device a run trains and evaluates on: the first CUDA device when there is one, else CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def use_bf16(train_precision: str) -> bool:
    """Whether to train in bf16: only when the plan asks for it *and* the GPU supports it.

    On CPU we always train in fp32: CPU bf16 autocast is slow and changes numbers between machines.
    """
    return train_precision == "bf16" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def dtype_for_run(train_precision: str = "fp32") -> torch.dtype:
    """Weights dtype to load with: bf16 where :func:`use_bf16` holds, else fp32."""
    return torch.bfloat16 if use_bf16(train_precision) else torch.float32


def model_files_sha256(directory: str | Path) -> str:
    """sha256 of a model folder (file names and contents, sorted).

    The same function hashes data folders (:func:`unlearnspec.records.sha256_path`), so the plan's
    ``ModelRef.sha256`` written by the compiler and the runtime's check agree byte for byte.
    """
    d = Path(directory)
    if not d.is_dir():
        raise LoadError(f"model folder {code_span(d)} does not exist", code=E_NOT_FOUND)
    return sha256_path(d)


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.endswith(("/", "\\")) or "\\" in source


def _check_local_dir(d: Path, *, allow_remote_code: bool = False) -> None:
    if not (d / "config.json").is_file():
        raise LoadError(f"folder {code_span(d)} is not a Hugging Face model (no `config.json`)", code=E_BAD_MODEL,
                        help=["save the model with `model.save_pretrained(folder)`"])
    if not any(d.glob("*.safetensors")):
        pickles = sorted(p.name for p in d.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt"})
        detail = f" (found {', '.join(code_span(p) for p in pickles)})" if pickles else ""
        raise LoadError(
            f"model folder {code_span(d)} has no `*.safetensors` weights{detail}",
            code=E_PICKLE_WEIGHTS,
            help=["pickle checkpoints can run arbitrary code when loaded, so unlearnspec does not open them",
                  "convert once in a trusted environment: `model.save_pretrained(folder, safe_serialization=True)`"])
    index = d / "model.safetensors.index.json"
    if index.is_file() and not (d / "model.safetensors").is_file():  # transformers reads the index then
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LoadError(f"the shard index {code_span(index.name)} of {code_span(d)} does not read: "
                            f"{describe_error(exc)}", code=E_BAD_MODEL,
                            help=["it is a JSON object whose `weight_map` names each tensor's shard file; "
                                  "copy the folder again from its source"]) from None
        missing = sorted(str(n) for n in shards if not (d / str(n)).is_file())
        if missing:
            raise LoadError(f"model folder {code_span(d)} lacks {len(missing)} of the {len(shards)} weight shards "
                            f"its index names ({', '.join(code_span(n) for n in missing[:3])}"
                            f"{', ...' if len(missing) > 3 else ''})", code=E_BAD_MODEL,
                            help=["an interrupted copy or download leaves shards out; copy the folder again from "
                                  "its source"])
    if not allow_remote_code:
        try:
            config = json.loads((d / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # transformers says what is wrong with it
        if isinstance(config, dict) and config.get("auto_map"):
            log.warning("model folder %s ships its own modelling code (`auto_map` in config.json); it is not run: "
                        "the model loads with transformers' own class for `%s`, or is refused if there is none",
                        d, config.get("model_type"))


def _check_tokenizer(model: Any, tokenizer: Any, label: str) -> None:
    """Refuse a tokenizer that cannot serve the model: no EOS, no tokens for a plain sentence (the tokenizer
    files are missing and transformers made a stand-in), or ids beyond the model's embedding rows."""
    if tokenizer.eos_token_id is None:
        raise LoadError(f"the tokenizer of {code_span(label)} has no end-of-sequence token", code=E_BAD_MODEL,
                        help=["training items end with it and generation stops at it; set `eos_token` in the "
                              "folder's `tokenizer_config.json`"])
    if not tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"]:
        raise LoadError(f"the tokenizer of {code_span(label)} turns text into no tokens at all", code=E_BAD_MODEL,
                        help=["its tokenizer files (`tokenizer.json`, or `vocab.json` and `merges.txt`, or "
                              "`tokenizer.model`) are missing: save them beside the model with "
                              "`tokenizer.save_pretrained(folder)`"])
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if isinstance(rows, int) and len(tokenizer) > rows:
        raise LoadError(f"the tokenizer of {code_span(label)} has {len(tokenizer)} tokens, more than the model's "
                        f"{rows} embedding rows", code=E_BAD_MODEL,
                        help=["the tokenizer does not belong to these weights (ids past the table would fail or "
                              "read another token's row); use the tokenizer the model was trained with"])


def _from_pretrained(where: str, label: str, *, allow_remote_code: bool, dtype: torch.dtype | None,
                     hub: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # never a download at run time, and never code from the model's folder unless the user allowed it
    kwargs: dict[str, Any] = {"trust_remote_code": allow_remote_code, "local_files_only": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(where, use_safetensors=True, dtype=dtype, **kwargs)
    except OSError as exc:
        if hub:
            raise LoadError(
                f"cannot load model {code_span(label)}: it is not in the local Hugging Face cache, and a run "
                "never downloads", code=E_UNAVAILABLE,
                help=[f"download it once where a network exists ({code_span('hf download ' + label)}) and run "
                      "again, or give the local folder instead",
                      "the hub model must publish `*.safetensors` weights",
                      f"detail: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]) from exc
        raise LoadError(f"cannot load model {code_span(label)}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                        code=E_BAD_MODEL) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise LoadError(f"model {code_span(label)} needs its own code to load", code=E_REMOTE_CODE,
                            help=["its repository ships Python that would run on this machine;"
                                  " allow it explicitly (`--allow-remote-code`) only if you trust the source"]
                            ) from exc
        raise LoadError(f"cannot load model {code_span(label)}: {str(exc).splitlines()[0]}", code=E_BAD_MODEL) from exc
    except Exception as exc:  # a truncated weights file, a config that does not fit the weights, ...
        raise LoadError(f"cannot load model {code_span(label)}: {describe_error(exc)}", code=E_BAD_MODEL,
                        help=["a weights file cut short by an interrupted copy or download, or a `config.json` "
                              "that does not describe these weights, cannot be loaded; copy the folder again "
                              "from its source"]) from exc
    _check_tokenizer(model, tokenizer, label)
    return model, tokenizer


def load_model(source: str, *, allow_remote_code: bool = False, dtype: torch.dtype | None = None,
               device: torch.device | str | None = None, revision: str | None = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a built-in (``builtin:tiny-bios``...), a local folder or a hub id.

    ``revision``: for a hub id, the commit the plan pinned; its snapshot in the local cache is loaded (and its
    folder recorded like a local folder's), never what the cache's ``main`` names by then. ``dtype`` defaults to fp32 whatever the checkpoint was saved in (see the module's docstring; pass
    :func:`dtype_for_run` or another dtype to choose); ``device`` to where it loads (CPU). The tokenizer gets ``pad_token = eos_token`` when it has none, since batched scoring and
    training need padding. The model is returned in eval mode; the caller owns it (training mutates it).
    """
    if source in RECIPES:
        where, hub = Path(builtin_model.ensure_builtin(recipe=RECIPES[source])), False
    elif source.startswith("builtin:"):
        raise LoadError(f"unknown builtin model {code_span(source)}", code=E_NOT_FOUND,
                        help=["the built-in models are " + ", ".join(code_span(m) for m in RECIPES)])
    else:
        p = Path(source).expanduser()
        if p.is_dir():
            where, hub = p, False
        elif _looks_like_path(source) or p.exists():
            raise LoadError(f"model folder {code_span(source)} does not exist", code=E_NOT_FOUND,
                            help=["paths resolve relative to the spec file's folder"])
        elif revision is not None:
            snapshot = hub_snapshot_dir(source, revision)
            if snapshot is None:
                raise LoadError(f"model {code_span(source)} at commit {code_span(revision)}, which the plan pinned, is "
                                "not in the local Hugging Face cache, and a run never downloads", code=E_UNAVAILABLE,
                                help=[f"download that commit where a network exists ({code_span(f'hf download {source} --revision {revision}')}) "
                                      "and run again, or plan again against the model the cache holds now"])
            where, hub = snapshot, False
        else:
            where, hub = Path(source), True
    if not hub:
        _check_local_dir(where, allow_remote_code=allow_remote_code)
    model, tokenizer = _from_pretrained(source if hub else str(where), source, allow_remote_code=allow_remote_code,
                                        dtype=torch.float32 if dtype is None else dtype, hub=hub)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Where the weights came from, for methods that depend on it (exact retraining needs the builtin's
    # recipe). A plain attribute: it survives ``copy.deepcopy`` and is never saved with the model.
    model.unlearnspec_source = source
    # the folder the weights were read from (None for a hub id: the hub's cache is its own business), so
    # that the report can pin the original by content hash
    model.unlearnspec_dir = None if hub else str(where)
    # Causal LMs whose class name lacks "ForCausalLM" (GPT2LMHeadModel) leave transformers guessing
    # the loss, with a warning at every training step: it is the causal-LM loss, say so.
    if getattr(model, "loss_type", None) is None and type(model).__name__.endswith("LMHeadModel"):
        model.loss_type = "ForCausalLM"
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer


def describe_device() -> str:
    """The device a run uses, in words, for the report's audit section."""
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible)"
    return f"cpu ({torch.get_num_threads()} threads)"


def tokenizer_difference(original: Any, other: Any) -> str | None:
    """How ``other``'s tokenizer differs from ``original``'s in what scoring depends on, or ``None`` when it does
    not: the vocabulary (token text to id) and the end-of-sequence token. Likelihood, Min-K% and membership
    scores of two models are compared item by item, so both must read the same token ids for the same text."""
    mine, theirs = original.get_vocab(), other.get_vocab()
    if mine != theirs:
        changed = sorted(t for t in mine.keys() & theirs.keys() if mine[t] != theirs[t])
        added, removed = sorted(theirs.keys() - mine.keys()), sorted(mine.keys() - theirs.keys())
        parts = [f"{len(added)} token{'s' if len(added) != 1 else ''} added (e.g. {added[0]!r})" if added else "",
                 f"{len(removed)} removed (e.g. {removed[0]!r})" if removed else "",
                 f"{len(changed)} with another id (e.g. {changed[0]!r})" if changed else ""]
        return "its vocabulary differs: " + ", ".join(p for p in parts if p)
    if original.eos_token_id != other.eos_token_id:
        return (f"its end-of-sequence token is {other.eos_token!r} (id {other.eos_token_id}), the original's "
                f"{original.eos_token!r} (id {original.eos_token_id})")
    return None
