"""The resolve pass's reader of ``system "..."``: the system prompt a chat model is asked with.

A system prompt is a turn of the model's chat template (docs/models.md, prompt formats). When the compiler
knows the model's prompt format — a built-in (its recipe's tokenizer) or a local folder (its tokenizer files,
read as JSON, no framework) — a system prompt on a model without a chat template is UL221. A hub id's
format is known only once its tokenizer loads: ``unlearnspec run`` reports the same code then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from unlearnspec.builtin.recipe import RECIPES
from unlearnspec.compiler.ast import Objective, Text
from unlearnspec.compiler.diagnostics import Label
from unlearnspec.compiler.model_files import prompt_fields
from unlearnspec.compiler.resolve_audit import AuditResolver
from unlearnspec.compiler.syntax import Field
from unlearnspec.inputs import spec_path
from unlearnspec.markdown import code_span


def known_prompt_format(model: str, base_dir: Path) -> Literal["plain", "chat"] | None:
    """The prompt format of the model a spec names, when the compiler can tell (None: a hub id, or no tokenizer)."""
    if model in RECIPES:
        return "chat" if RECIPES[model]["tokenizer"].get("chat_template") else "plain"
    path = spec_path(model, base_dir)
    if path.is_dir():
        return prompt_fields(path)[0]
    return None


class PromptResolver(AuditResolver):
    """Reads ``system`` (mixed into the resolve pass's resolver)."""

    def system(self, field: Field) -> Text | None:
        """``system "..."``: one non-empty string."""
        text = self.one_string(field)
        if text is None:
            return None
        if not text.value.strip():
            self.report("UL205", "error", text.span, "`system` is an empty system prompt",
                        help=["write the system prompt the model is asked with, or leave `system` out"])
            return None
        return text

    def system_fits_model(self, obj: Objective) -> None:
        """UL221: a system prompt on a model whose tokenizer has no chat template (when the compiler knows)."""
        if obj.system is None or obj.model is None:
            return
        if known_prompt_format(obj.model.value, self.base_dir) != "plain":
            return
        self.report("UL221", "error", obj.system.span,
                    f"{code_span(obj.model.value)} has no chat template, so it cannot be given a system prompt",
                    labels=[Label(span=obj.model.span, message="this model is asked in the plain format")],
                    help=["a system prompt is a turn of a chat template; remove `system`, or name a model whose "
                          "tokenizer has a chat template (`builtin:tiny-bios-chat`)"])
