"""The typed, checked AST: one objective with every field resolved, a source span on every node.

Built by the resolve pass from the generic syntax tree. The feasibility rules and the lowering read
only this model. Optional fields are ``None`` when the spec leaves them out; the lowering documents
the defaults it then chooses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from unlearnspec.compiler.diagnostics import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True)

    span: Span


class Word(Node):
    value: str


class Text(Node):
    value: str


class Number(Node):
    value: float

    @property
    def as_int(self) -> int:
        return int(self.value)


class PathRef(Node):
    """A data file named in the spec: as written, and resolved relative to the spec's folder."""

    raw: str
    resolved: str
    records: int | None = None
    qa_records: int | None = None
    mcq_records: int | None = None
    text_records: int | None = None  # records with a document (`text`)
    # the keys the records' `attributes` carry, sorted; None when the compiler cannot read them (a `save_to_disk` folder)
    attribute_keys: tuple[str, ...] | None = None


class Given(Node):
    """``unlearned "folder"``: an already-unlearned checkpoint to audit (docs/models.md, auditing a checkpoint).

    ``raw`` as written, ``resolved`` relative to the spec's folder; ``form`` says how it is loaded: a full
    model folder (``config.json`` + safetensors), or a peft adapter folder applied on the spec's ``model``."""

    raw: str
    resolved: str
    form: Literal["model", "adapter"]


class Release(Node):
    mode: Word
    precision: Word | None = None


class Target(Node):
    category: Word
    name: Text
    kind: Word | None = None
    forget: list[PathRef] = Field(default_factory=list)
    aliases: list[Text] = Field(default_factory=list)
    holdout: list[PathRef] = Field(default_factory=list)
    test: list[PathRef] = Field(default_factory=list)
    attribute: Text | None = None

    @property
    def kind_value(self) -> str:
        """The target kind, or the category's default when the spec leaves it out."""
        if self.kind is not None:
            return self.kind.value
        return "concept" if self.category.value in ("character", "capability") else "observed"


class Goal(Node):
    goal: Word
    via: Word | None = None


class MethodKnobs(BaseModel):
    model_config = ConfigDict(frozen=True)

    adapter: Word | None = None
    lora_rank: Number | None = None
    steps: Number | None = None
    learning_rate: Number | None = None
    batch_size: Number | None = None
    beta: Number | None = None
    retain_weight: Number | None = None
    seed: Number | None = None


class Method(Node):
    name: Word
    knobs: MethodKnobs = Field(default_factory=MethodKnobs)


class Scope(Node):
    outputs: list[Word] = Field(default_factory=list)
    prompts: list[Word] = Field(default_factory=list)

    def has_output(self, name: str) -> bool:
        return any(w.value == name for w in self.outputs)

    def has_prompt(self, name: str) -> bool:
        return any(w.value == name for w in self.prompts)


class Tolerance(Node):
    """``utility [retain|neighbors] drop <= N%``: an accepted side effect, in percent."""

    applies_to: str  # "all" | "retain" | "neighbors"
    op: str
    percent: float


class Preserve(Node):
    retain: list[PathRef] = Field(default_factory=list)
    neighbors: list[PathRef] = Field(default_factory=list)
    utility: list[Tolerance] = Field(default_factory=list)
    side_effects_none: Word | None = None


class Budget(Node):
    """``budget { utility drop <= N%  requests K }`` on the first objective of a chain: the cumulative
    utility drop the chain may cost, and how many approximate requests it may apply before retraining."""

    utility: Tolerance | None = None
    requests: Number | None = None


class Claim(Node):
    name: str
    name_span: Span
    steps: Number | None = None
    law: Text | None = None


class Evidence(Node):
    metric: str
    metric_span: Span
    op: str
    value: float


class Accept(Node):
    code: Word
    justification: Text


class Objective(Node):
    name: str
    name_span: Span
    title: Text | None = None
    basis: Text | None = None
    owner: Text | None = None
    model: Text | None = None
    system: Text | None = None  # the system prompt a chat model is asked with (docs/models.md, prompt formats)
    unlearned: Given | None = None  # an already-unlearned checkpoint to audit: the plan then has no unlearn stage
    reference: Text | None = None
    release: Release | None = None
    target: Target | None = None
    goal: Goal | None = None
    method: Method | None = None
    guarantee: Word | None = None
    scope: Scope | None = None
    preserve: Preserve | None = None
    claims: list[Claim] = Field(default_factory=list)
    claims_span: Span | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    confidence: Number | None = None  # `evidence { confidence 95% }`: the level of every check's interval
    accepts: list[Accept] = Field(default_factory=list)
    seed: Number | None = None
    after: Text | None = None  # the objective this one starts from (a chain; docs/requests.md)
    budget: Budget | None = None

    @property
    def audit(self) -> bool:
        """Whether the objective audits a given checkpoint instead of unlearning here."""
        return self.unlearned is not None

    def claim(self, name: str) -> Claim | None:
        return next((c for c in self.claims if c.name == name), None)

    def has_claim(self, *names: str) -> bool:
        return any(c.name in names for c in self.claims)


class Spec(BaseModel):
    """A checked spec file: its objectives, in source order."""

    model_config = ConfigDict(frozen=True)

    path: str
    base_dir: str
    objectives: list[Objective] = Field(default_factory=list)
