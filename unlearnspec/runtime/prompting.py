"""How a question-answer item becomes model input: the plain format, or the tokenizer's chat template.

A tokenizer without a chat template gets the project's plain format (``Question: {q}\\nAnswer:`` and
`` {answer}``). One with a template (Llama 3, Qwen, Mistral instruct models) gets
``apply_chat_template``: the prompt is the conversation up to the assistant's turn
(``add_generation_prompt=True``), the target is the answer followed by the template's end-of-turn
token. Training labels cover exactly those tokens — the answer and the end-of-turn token, never the
system prompt, the role headers, or what a template writes after the end of turn (Qwen's newline) —
because a mask that is off by a header or a trailing token trains the model on the wrong thing
(open-unlearning issue #195, PR #101). Generation stops at the end-of-turn token as well as at EOS.

A run uses ONE format (:func:`check_planned_format`: the loaded tokenizer's, with the spec's system
prompt, checked against the plan) for every model and in every place a question is put to a model or an
answer scored: likelihoods, probes, ``mcq_accuracy``, the representation probe, the methods' training
items and the relearning attack each take it as ``fmt`` (default: the tokenizer's own, :func:`resolve`).
docs/models.md ("what each evaluation does with a chat model") lists what each does with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from unlearnspec.records import format_prompt, format_qa
from unlearnspec.runtime.load_errors import E_BAD_MODEL, describe_error
from unlearnspec.runtime.rundir import E_STALE_PLAN, RunError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class PromptFormat:
    """``plain`` or ``chat``; for ``chat`` the template's sha256 and the optional system prompt."""

    kind: Literal["plain", "chat"]
    template_sha256: str | None = None
    system: str | None = None

    @classmethod
    def of(cls, tokenizer: Any, system: str | None = None) -> PromptFormat:
        template = getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):  # several named templates: the default one formats QA items
            template = template.get("default")
        if not isinstance(template, str) or not template:
            return cls("plain")
        return cls("chat", hashlib.sha256(template.encode("utf-8")).hexdigest(), system)

    def describe(self) -> dict[str, str | None]:
        """What a plan or run records about the format."""
        return {"prompt_format": self.kind, "chat_template_sha256": self.template_sha256, "system": self.system}

    def _messages(self, question: str, answer: str | None = None,
                  history: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        for q, a in history:
            msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        msgs.append({"role": "user", "content": question})
        if answer is not None:
            msgs.append({"role": "assistant", "content": answer})
        return msgs

    def prompt(self, tokenizer: Any, question: str, *, history: Sequence[tuple[str, str]] = (),
               prefill: str = "") -> str:
        """The text a question is asked with (generation continues it).

        Chat only: ``history`` is earlier (question, answer) exchanges, rendered as user and assistant
        turns before the question; ``prefill`` starts the assistant's answer (the model continues it).
        """
        if self.kind == "plain":
            if history or prefill:
                raise ValueError("history and prefill are chat-format arguments")
            return format_prompt(question)
        text = str(tokenizer.apply_chat_template(self._messages(question, history=history), tokenize=False,
                                                 add_generation_prompt=True))
        return text + prefill

    def qa_text(self, tokenizer: Any, question: str, answer: str) -> tuple[str, str]:
        """``(prompt, prompt + target)``: how a QA item is scored (the target is the answer; for chat, and the
        end-of-turn token). Plain: ``format_prompt`` and ``format_qa``, the texts the project always used."""
        if self.kind == "plain":
            return format_prompt(question), format_qa(question, answer)
        prompt = self.prompt(tokenizer, question)
        return prompt, prompt + self.target(tokenizer, answer)

    def end_of_turn_id(self, tokenizer: Any) -> int | None:
        """The first token the template writes after an assistant's answer: its end of turn (None: plain)."""
        if self.kind == "plain":
            return None
        probe = "\u2063answer\u2063"  # a marker no template alters
        full = str(tokenizer.apply_chat_template(self._messages("q", probe), tokenize=False))
        after = full[full.rindex(probe) + len(probe):]
        ids = tokenizer(after, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError("the chat template writes nothing after the assistant's answer: no end-of-turn token")
        return int(ids[0])

    def end_of_turn(self, tokenizer: Any) -> str | None:
        """The text of :meth:`end_of_turn_id` (``<|eot_id|>``, or ``\n`` for a template whose turns end in a newline:
        the decoded text, not the tokenizer's internal spelling of the token, such as byte-level BPE's ``Ċ``)."""
        eot = self.end_of_turn_id(tokenizer)
        return None if eot is None else str(tokenizer.decode([eot], skip_special_tokens=False))

    def target(self, tokenizer: Any, answer: str) -> str:
        """What follows the prompt in a training sequence: the answer and the end of turn."""
        if self.kind == "plain":
            return " " + answer
        return answer + str(self.end_of_turn(tokenizer))

    def encode(self, tokenizer: Any, question: str, answer: str, max_length: int = 512) -> tuple[list[int], list[int]]:
        """``(input_ids, labels)`` of one QA item; labels are ``-100`` except on the target's tokens.

        Plain items end with EOS, which is scored (the model learns where an answer stops); chat items
        end with the end-of-turn token instead. The boundary is found on the token ids of the prompt,
        which for a chat template ends in special tokens, so no merge can cross it.
        """
        prompt = self.prompt(tokenizer, question)
        prompt_ids = list(tokenizer(prompt, add_special_tokens=self.kind == "plain")["input_ids"])
        if self.kind == "chat":
            target_ids = list(tokenizer(self.target(tokenizer, answer), add_special_tokens=False)["input_ids"])
        else:
            whole = list(tokenizer(prompt + self.target(tokenizer, answer), add_special_tokens=True)["input_ids"])
            if whole[: len(prompt_ids)] != prompt_ids:
                raise ValueError("the prompt's tokens change when the answer follows it")
            target_ids = whole[len(prompt_ids):] + [int(tokenizer.eos_token_id)]
        ids = (prompt_ids + target_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + target_ids)[:max_length]
        return ids, labels

    def stop_token_ids(self, tokenizer: Any) -> list[int]:
        """Token ids generation stops at: the end-of-turn token (chat) and EOS."""
        out: list[int] = []
        eot = self.end_of_turn_id(tokenizer)
        if eot is not None:
            out.append(eot)
        if tokenizer.eos_token_id is not None and int(tokenizer.eos_token_id) not in out:
            out.append(int(tokenizer.eos_token_id))
        return out


PLAIN = PromptFormat("plain")
"""The plain format: what every function that is given no format and no tokenizer uses."""


def resolve(fmt: PromptFormat | None, tokenizer: Any) -> PromptFormat:
    """``fmt`` when given, else the tokenizer's own format (its chat template, no system prompt)."""
    return fmt if fmt is not None else PromptFormat.of(tokenizer)


def prompt_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt to generate from or score after: the tokenizer's special tokens are added
    unless the text already begins with its BOS token (a chat template writes it itself), so a chat
    prompt never gets a second BOS."""
    bos = getattr(tokenizer, "bos_token", None)
    add = not (isinstance(bos, str) and bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add)["input_ids"])


E_SYSTEM_WITHOUT_TEMPLATE = "UL221"  # catalog/codes_front.py: a system prompt for a model with no chat template


def check_planned_format(tokenizer: Any, model: Any) -> PromptFormat:
    """The run's prompt format: the loaded tokenizer's, with the plan's system prompt (``model`` is the plan's
    :class:`~unlearnspec.plan.ModelRef`).

    Refused (exit 2) when the loaded tokenizer's format or chat template differs from the one the plan recorded
    (UL702: the numbers would be measured in a format nobody reviewed), or when the plan gives a system prompt
    and the tokenizer has no chat template to put it in (UL221, which the compiler reports when it knows the
    format: built-ins and local folders)."""
    system = getattr(model, "system", None)
    fmt = PromptFormat.of(tokenizer, system=system)
    planned, planned_sha = getattr(model, "prompt_format", None), getattr(model, "chat_template_sha256", None)
    if planned is not None and (planned != fmt.kind or planned_sha != fmt.template_sha256):
        found = "no chat template" if fmt.kind == "plain" else f"a chat template with sha256 {fmt.template_sha256}"
        wanted = "no chat template" if planned == "plain" else f"a chat template with sha256 {planned_sha}"
        raise RunError(E_STALE_PLAN, f"the tokenizer of `{model.source}` has {found}, but the plan was made for "
                       f"{wanted}", help=["the questions would be asked in a format the plan does not record; make a "
                                          "new plan (`unlearnspec plan SPEC -o plan.json`) and review it"])
    if system is not None and fmt.kind == "plain":
        raise RunError(E_SYSTEM_WITHOUT_TEMPLATE, f"`{model.source}` has no chat template, so it cannot be given a "
                       "system prompt", help=["a system prompt is a turn of a chat template; remove `system` from "
                                              "the spec, or name a model whose tokenizer has a chat template"])
    if fmt.kind == "chat":  # once here, before any stage: a template that refuses the run's turns fails now
        try:
            fmt.qa_text(tokenizer, "Question?", "Answer.")
        except Exception as exc:  # jinja2's TemplateError (`raise_exception`), or no end of turn
            raise RunError(E_BAD_MODEL, f"the chat template of `{model.source}` cannot put a question to the model: "
                           f"{describe_error(exc)}",
                           help=["some templates refuse a system turn (Gemma's): remove `system` from the spec"
                                 if system is not None else "the template must render a user turn, the assistant's "
                                 "answer and an end of turn after it"]) from exc
    return fmt


def stop_ids(tokenizer: Any) -> Sequence[int]:
    """The stop tokens of ``tokenizer``'s own format (its chat template's end of turn, and EOS)."""
    return PromptFormat.of(tokenizer).stop_token_ids(tokenizer)
