"""What the compiler reads from a local model folder's tokenizer files without a framework: its chat
template and prompt format.

Kept apart from :mod:`unlearnspec.compiler.models` (the plan's model entries) because the resolve pass
reads it too (UL221), and checking never loads the plan's models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from unlearnspec.inputs import load_json, read_regular


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
