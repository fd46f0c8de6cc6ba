"""What the compiler reads from a local model folder without a framework: whether it is one a run can load
(UL207), and its tokenizer's chat template and prompt format.

Kept apart from :mod:`unlearnspec.compiler.models` (the plan's model entries) because the resolve pass
reads it too (UL221), and checking never loads the plan's models.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal

from unlearnspec.inputs import load_json, read_json_file, read_regular, safetensors_whole
from unlearnspec.markdown import code_span


def chat_template(folder: Path) -> str | None:
    """The chat template a local model's tokenizer carries, read as JSON/text (no framework), or None.

    transformers keeps it in ``chat_template.jinja`` (recent versions) or under ``chat_template`` in
    ``tokenizer_config.json`` — a string, or a list of named templates of which ``default`` formats chats.
    """
    jinja = folder / "chat_template.jinja"
    try:
        if jinja.is_file():
            return read_regular(jinja).decode("utf-8")
        config = load_json(read_regular(folder / "tokenizer_config.json").decode("utf-8"))
    except (OSError, ValueError):
        return None
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template else None


def prompt_fields(folder: Path) -> tuple[Literal["plain", "chat"] | None, str | None]:
    """``(prompt_format, chat_template_sha256)`` of a local model folder (None, None without a tokenizer)."""
    template = chat_template(folder)
    if template is not None:
        return "chat", hashlib.sha256(template.encode("utf-8")).hexdigest()
    if (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file():
        return "plain", None
    return None, None


def model_folder_problem(path: Path, value: str) -> tuple[str, list[str]] | None:
    """Why the local folder ``path`` (written ``value`` in the spec) is no Hugging Face model a run can load, as a
    message and help lines; None when it is one: a readable ``config.json`` holding a JSON object, and a file of
    safetensors weights (pickles are never loaded)."""
    if not (path / "config.json").is_file():
        return f"{code_span(value)} is not a Hugging Face model folder (no config.json)", []
    try:
        config = read_json_file(path / "config.json")
    except (OSError, UnicodeDecodeError, ValueError):
        config = None
    if not isinstance(config, dict):
        return (f"the `config.json` of model folder {code_span(value)} is not a JSON object",
                ["the folder's `config.json` describes the model; write it with `model.save_pretrained(folder)`"])
    weights = sorted(p for p in path.glob("*.safetensors") if p.is_file())
    if not weights:
        return (f"model folder {code_span(value)} has no safetensors weights",
                ["only safetensors weights are loaded; convert pickled weights with "
                 "`save_pretrained(safe_serialization=True)`"])
    cut = next((p for p in weights if not safetensors_whole(p)), None)
    if cut is not None:
        return (f"{code_span(cut.name)} in model folder {code_span(value)} is cut short or damaged: its size does not cover the "
                "tensors its header declares", ["an interrupted copy or download leaves such a file; copy the "
                                                "folder again from its source"])
    return None


_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, found as ``huggingface_hub`` finds it (``HF_HUB_CACHE``, else ``HF_HOME``'s
    ``hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``). Written out here because
    the compiler depends on Lark, pydantic and jinja2 only; a test holds it equal to the library's answer, and the
    runtime finds the snapshot with the library itself."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_snapshot(repo_id: str) -> tuple[Path, str] | None:
    """The local snapshot a hub id's ``main`` names in the hub cache (the layout ``hf download`` writes:
    ``models--ORG--NAME/refs/main`` holds a commit, ``snapshots/COMMIT/`` the files), as ``(folder, commit)``; None
    when the model is not in the cache, or the snapshot has no ``config.json``. Read offline: nothing is fetched."""
    if not _REPO_ID.fullmatch(repo_id):
        return None
    root = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    try:
        commit = read_regular(root / "refs" / "main").decode("ascii").strip()
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    folder = root / "snapshots" / commit
    if not _COMMIT.fullmatch(commit) or not (folder / "config.json").is_file():
        return None
    return folder, commit
