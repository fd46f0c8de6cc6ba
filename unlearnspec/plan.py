"""The plan: what the compiler decides and the runtime executes, exactly.

A plan is a versioned JSON document (``format_version``). The compiler writes it; a reviewer reads
it (``unlearnspec show``); the runtime executes it and refuses it when an input's hash changed.
Every parameter is resolved here, so that the runtime makes no decision of its own.

This module is shared by the compiler and the runtime and imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from unlearnspec.catalog import METHODS, ClaimStatus
from unlearnspec.catalog.methods import (
    DEFAULT_LORA,
    FILTER_NGRAM,
    REFUSAL_TEXT,
    STANDARD_DEFAULTS,
    STOPPING_CHECK_EVERY,
    STOPPING_RATIO,
    UNUSED_RMU_ALPHA,
    UNUSED_RMU_STEERING_COEFF,
)
from unlearnspec.errors import UserError
from unlearnspec.inputs import first_problem, load_json, read_regular, spec_path
from unlearnspec.markdown import code_span

FORMAT_VERSION = "1.0"
E_INSIDE_INPUT = "UL715"  # an output inside a folder the plan only reads (catalog/codes_front.py)
E_UNREADABLE_PLAN = "UL703"

class PlanLoadError(UserError):
    """A plan file that cannot be read: missing, not JSON, not a plan, another format, invalid fields."""

    def __init__(self, message: str, help: list[str] | None = None) -> None:
        super().__init__(E_UNREADABLE_PLAN, message, help or [])

Severity = Literal["error", "warning", "note"]
Comparison = Literal["<=", ">=", "<", ">"]

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

class FileHash(_Model):
    """A file the plan depends on, by path relative to the spec's folder and its sha256."""

    path: str
    sha256: str
    role: str = ""

class ModelRef(_Model):
    """The source model. ``kind`` says how it is loaded; ``sha256`` pins its content."""

    source: str
    kind: Literal["builtin", "local", "hub"]
    sha256: str | None = None  # None for a hub id that cannot be resolved offline at plan time
    files: list[FileHash] = Field(default_factory=list)
    recipe: dict[str, object] | None = None  # builtin: the corpus and training recipe, hashed
    parameters: int | None = None  # parameter count known at plan time (safetensors headers / recipe)
    note: str = ""  # e.g. why a hub id carries no hash
    # How question-answer items are put to a local model: its tokenizer's chat template, or the plain
    # format; absent when the plan cannot tell (the built-in and hub ids: the built-in is plain).
    prompt_format: Literal["plain", "chat"] | None = Field(default=None, exclude_if=lambda v: v is None)
    chat_template_sha256: str | None = Field(default=None, exclude_if=lambda v: v is None)
    # The spec's system prompt (`system "..."`): part of the plan's hash, absent when the spec gives none.
    system: str | None = Field(default=None, exclude_if=lambda v: v is None)
    # A hub id found in the local Hugging Face cache at plan time: the snapshot's commit, whose files ``files``
    # lists by their paths inside the snapshot (the run loads that commit, never a later one); absent otherwise.
    revision: str | None = Field(default=None, exclude_if=lambda v: v is None)

class ToolInfo(_Model):
    name: str = "unlearnspec"
    version: str

class TargetInfo(_Model):
    category: str
    name: str
    kind: str
    aliases: list[str] = Field(default_factory=list)

class ReleaseInfo(_Model):
    mode: str
    precision: str | None = None

class ObjectiveInfo(_Model):
    """The objective in the words of the spec."""

    name: str
    title: str | None = None
    basis: str | None = None
    owner: str | None = None
    goal: Literal["removal", "suppression"]
    # The spec's `guarantee` (a name of catalog.vocab.GUARANTEES), part of the plan's hash; left out of the JSON
    # when the spec states none, so such a plan is byte-identical to one written before it was recorded.
    guarantee: str | None = Field(default=None, exclude_if=lambda v: v is None)
    suppression_via: Literal["model", "system"] | None = None
    target: TargetInfo
    release: ReleaseInfo
    outputs: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)

class PlanFinding(_Model):
    """A compiler finding carried into the plan (accepted ones with their justification)."""

    code: str
    severity: Severity
    message: str
    claim: str | None = None
    help: list[str] = Field(default_factory=list)
    accepted: bool = False
    justification: str | None = None
    location: str | None = None  # "file:line:col"

class Threshold(_Model):
    op: Comparison
    value: float

    def holds(self, x: float) -> bool:
        return {"<=": x <= self.value, ">=": x >= self.value, "<": x < self.value,
                ">": x > self.value}[self.op]

class MetricCheck(_Model):
    """One metric computed by the evaluate/attack stages and compared with a threshold."""

    id: str  # unique within the plan, e.g. "verbatim_rouge@forget"
    metric: str  # registry name, e.g. "verbatim_rouge", "membership_auc", "forget_quality"
    dataset: str  # "forget" | "retain" | "neighbors" | "holdout" | probe/attack datasets
    threshold: Threshold | None = None
    source: Literal["spec", "default"] = "default"
    params: dict[str, object] = Field(default_factory=dict)
    probe: str | None = None  # the probe or attack whose outputs the metric reads
    model: Literal["unlearned", "attacked", "served"] = "unlearned"
    note: str = ""  # where the threshold comes from, or why the check cannot be measured
    missing: list[str] = Field(default_factory=list)  # unmet needs ("reference", "holdout", ...): not measurable

class ClaimPlan(_Model):
    """A claim, its compile-time status, and the checks that decide it at run time."""

    claim: str
    args: dict[str, object] = Field(default_factory=dict)
    status: ClaimStatus
    reasons: list[str] = Field(default_factory=list)  # finding codes behind a non-supported status
    checks: list[str] = Field(default_factory=list)  # MetricCheck ids
    evidence_note: str = ""
    instead: str = ""  # for a claim that is not supported: the weaker, achievable claim to write

class DataSets(_Model):
    """Data files by role; paths relative to the spec's folder."""

    forget: list[str] = Field(default_factory=list)
    retain: list[str] = Field(default_factory=list)
    neighbors: list[str] = Field(default_factory=list)
    holdout: list[str] = Field(default_factory=list)
    test: list[str] = Field(default_factory=list)  # operational test set of a suppression objective
    # The holdout split into disjoint halves (indices into the holdout records, in file order):
    # ``calibration`` feeds the stopping rule, ``evaluation`` the membership and forget-quality
    # checks (``records.split_holdout``). Both empty: the plan predates the split, and the
    # runtime splits the same way.
    holdout_calibration: list[int] = Field(default_factory=list)
    holdout_evaluation: list[int] = Field(default_factory=list)

class LoraConfig(_Model):
    rank: int = DEFAULT_LORA.rank
    alpha: int = DEFAULT_LORA.alpha
    dropout: float = DEFAULT_LORA.dropout
    target_modules: list[str] | None = None  # None: the architecture's attention + MLP projections

class StoppingRule(_Model):
    """Stop before the forget set becomes more surprising than data the model never saw.

    Every ``check_every`` steps the mean forget loss is compared with the mean holdout loss of
    the original model times ``ratio``; training stops once it is exceeded (approximate methods
    otherwise overshoot into gibberish, which is itself a membership signal)."""

    kind: Literal["holdout_loss", "fixed_steps"] = "holdout_loss"
    ratio: float = STOPPING_RATIO
    check_every: int = STOPPING_CHECK_EVERY

class PrepareStage(_Model):
    kind: Literal["prepare"] = "prepare"
    description: str = "load the source model and the data; verify every hash"

class ReferenceStage(_Model):
    """How the 'as if never trained' reference is obtained."""

    kind: Literal["reference"] = "reference"
    strategy: Literal["retrain", "model", "holdout"]
    model: str | None = None  # strategy "model": the given reference model
    recipe: dict[str, object] | None = None  # strategy "retrain": the training recipe
    description: str = ""

class UnlearnStage(_Model):
    kind: Literal["unlearn"] = "unlearn"
    method: str
    family: Literal["exact", "approximate", "model_suppression", "system_suppression"]
    chosen_by: Literal["spec", "compiler"]
    rationale: str = ""
    adapter: Literal["full", "lora"] = "full"
    lora: LoraConfig | None = None
    # a value the stage does not state: the catalog's standard defaults (the lowering states every one)
    max_steps: int = STANDARD_DEFAULTS.max_steps
    learning_rate: float = STANDARD_DEFAULTS.lr_full
    batch_size: int = STANDARD_DEFAULTS.batch_size
    gradient_accumulation_steps: int = 1
    retain_weight: float = STANDARD_DEFAULTS.retain_weight
    beta: float = STANDARD_DEFAULTS.beta  # NPO / SimNPO inverse temperature
    gamma: float = STANDARD_DEFAULTS.gamma  # SimNPO reward margin
    rmu_layer: int | None = None
    # RMU's steering coefficient (the control vector's norm over the original model's mean activation norm at the
    # steered block on the forget tokens, runtime/methods/rmu.py) and the weight of its retain term. An RMU stage
    # holds the catalog's (METHODS["rmu"].defaults: the lowering writes them, and a stage made without them takes
    # them, `_rmu_defaults`); another method's stage holds inert values nothing reads (catalog.methods.UNUSED_RMU_*).
    rmu_steering_coeff: float = UNUSED_RMU_STEERING_COEFF
    rmu_alpha: float = UNUSED_RMU_ALPHA
    refusal_text: str = REFUSAL_TEXT
    filter_ngram: int = FILTER_NGRAM
    stopping: StoppingRule = Field(default_factory=StoppingRule)
    train_precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = 0

    @model_validator(mode="after")
    def _rmu_defaults(self) -> UnlearnStage:
        """An RMU stage that does not state its steering coefficient or alpha takes the catalog's."""
        defaults = METHODS["rmu"].defaults
        if self.method == "rmu" and defaults is not None:
            for name in ("rmu_steering_coeff", "rmu_alpha"):
                if name not in self.model_fields_set:
                    setattr(self, name, getattr(defaults, name))
        return self

class GivenStage(_Model):
    """An audit: the already-unlearned checkpoint the spec names (``unlearned``) stands where an unlearn stage
    would. The runtime loads it as the unlearned model, after checking its folder against ``sha256``; nothing is
    trained and the folder is never written."""

    kind: Literal["given"] = "given"
    source: str  # the folder as written in the spec (relative to the spec's folder)
    form: Literal["model", "adapter"]  # a full model folder, or a peft adapter applied on the spec's model
    sha256: str  # the folder's content hash (records.sha256_path: file names and contents)
    files: list[FileHash] = Field(default_factory=list)
    method: str  # as the vendor stated it, or "unknown"
    family: Literal["exact", "approximate", "model_suppression", "system_suppression", "unknown"]
    description: str = "load the given checkpoint as the unlearned model; nothing is unlearned here"


class Probe(_Model):
    name: str  # "direct" | "paraphrased" | "adversarial" | "in_context"
    templates: list[str] = Field(default_factory=list)
    description: str = ""

EvalModel = Literal["original", "unlearned", "reference"]

def _all_models() -> list[EvalModel]:
    return ["original", "unlearned", "reference"]

class EvaluateStage(_Model):
    kind: Literal["evaluate"] = "evaluate"
    models: list[EvalModel] = Field(default_factory=_all_models)
    probes: list[Probe] = Field(default_factory=list)
    max_new_tokens: int = 48
    prefix_fraction: float = 0.5
    mink_fraction: float = 0.2
    eval_batch_size: int = 32
    representation_probe: str | None = None  # attribute name, when `removed` is claimed
    confidence: float = 0.95  # every check's bootstrap confidence interval (the spec's `evidence { confidence }`)

class RelearnAttack(_Model):
    kind: Literal["relearn"] = "relearn"
    steps: int
    learning_rate: float = 1e-3
    data: Literal["forget_subset", "related"] = "forget_subset"
    fraction: float = 0.5
    batch_size: int = 4
    seed: int = 0

class QuantizeAttack(_Model):
    kind: Literal["quantize"] = "quantize"
    precision: Literal["fp32", "bf16", "fp16", "int8", "int4"]

Attack = Annotated[RelearnAttack | QuantizeAttack, Field(discriminator="kind")]

class AttackStage(_Model):
    kind: Literal["attack"] = "attack"
    attacks: list[Attack] = Field(default_factory=list)

class VerdictStage(_Model):
    kind: Literal["verdict"] = "verdict"
    description: str = "decide each claim from its checks; compiler findings stand beside them"

Stage = Annotated[
    PrepareStage | ReferenceStage | UnlearnStage | GivenStage | EvaluateStage | AttackStage | VerdictStage,
    Field(discriminator="kind"),
]

class Estimate(_Model):
    """Rough wall time, from the builtin model's measured step costs scaled by model size."""

    cpu_seconds: float
    gpu_seconds: float
    basis: str

class ObjectivePlan(_Model):
    objective: ObjectiveInfo
    model: ModelRef
    data: DataSets
    claims: list[ClaimPlan]
    checks: list[MetricCheck]
    findings: list[PlanFinding]
    stages: list[Stage]
    estimate: Estimate | None = None
    feasible: bool = True  # False when planned with --allow-infeasible over errors


class ChainLink(_Model):
    """One objective of a chain: its plan's hash, and a hash over it and every link before it."""

    objective: str
    after: str | None = None
    objective_sha256: str  # sha256 of this objective's plan (compact sorted JSON)
    link_hash: str  # sha256 over the previous link's hash, the objective's name and objective_sha256


class ChainBudget(_Model):
    """What a chain may cost before retraining is due: its cumulative utility drop (percent) and the
    number of approximate requests."""

    utility_drop: float | None = None
    approximate_requests: int | None = None


class ChainPlan(_Model):
    """Objectives applied one after another, each starting from the previous one's result (docs/requests.md)."""

    links: list[ChainLink]
    budget: ChainBudget | None = None
    starts_after: dict[str, str] | None = None  # {"file", "objective", "sha256"}: continues another file's chain


class Plan(_Model):
    format_version: str = FORMAT_VERSION
    tool: ToolInfo
    spec: FileHash
    inputs: list[FileHash] = Field(default_factory=list)
    seed: int = 0
    objectives: list[ObjectivePlan]
    # Chains of requests; left out of the JSON when there are none, so a plan without chains is
    # byte-identical to one written before chains existed.
    chains: list[ChainPlan] = Field(default_factory=list, exclude_if=lambda v: not v)
    plan_hash: str = ""

    def canonical_json(self) -> str:
        """The byte-stable serialisation ``plan`` writes: sorted keys, two-space indent."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def compute_hash(self) -> str:
        body = self.model_dump(mode="json")
        body["plan_hash"] = ""
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def sealed(self) -> Plan:
        return self.model_copy(update={"plan_hash": self.compute_hash()})

    def read_only_folders(self, spec_dir: Path) -> list[Path]:  # writing inside one is E_INSIDE_INPUT
        """The folders this plan's run only reads, absolute: every local model folder (the source, a reference
        model, an audited checkpoint) and every data folder. Nothing a command writes may go inside one: it would
        change a model or data set the plan pins (and a run measures)."""
        def place(value: str) -> Path:
            return Path(os.path.abspath(spec_path(value, spec_dir)))

        found: list[Path] = []
        for op in self.objectives:
            if op.model.kind == "local":
                found.append(place(op.model.source))
            for st in op.stages:
                if isinstance(st, ReferenceStage) and st.strategy == "model" and st.model:
                    found.append(place(st.model))
                elif isinstance(st, GivenStage):
                    found.append(place(st.source))
        found += [place(f.path) for f in self.inputs if (spec_dir / f.path).is_dir()]
        return sorted({f for f in found if f.is_dir()})

    @classmethod
    def load(cls, path: Path) -> Plan:
        """A saved plan, validated; the one loader of plan files (``show``, ``diff``, ``run``).

        Only a regular file is read (a FIFO is refused, not waited on), JSON nested deeper than
        :data:`unlearnspec.inputs.MAX_JSON_DEPTH` is refused as malformed, and a ``format_version`` is
        called newer only when it is a version number with a larger major part. Raises
        :class:`PlanLoadError`."""
        try:
            text = read_regular(path).decode("utf-8")
        except FileNotFoundError as err:
            raise PlanLoadError(f"plan {code_span(path)} does not exist") from err
        except UnicodeDecodeError as err:
            raise PlanLoadError(f"plan {code_span(path)} is not UTF-8 text (byte {err.start})") from err
        except OSError as err:
            reason = err.strerror or str(err)
            raise PlanLoadError(f"cannot read plan {code_span(path)}: {reason[:1].lower() + reason[1:]}") from err
        try:
            data = load_json(text)
        except json.JSONDecodeError as err:
            raise PlanLoadError(f"{code_span(path)} is not valid JSON (line {err.lineno}, column {err.colno}: "
                                f"{err.msg[:1].lower() + err.msg[1:]})") from err
        if not isinstance(data, dict) or "format_version" not in data or "objectives" not in data:
            raise PlanLoadError(f"{code_span(path)} is not an unlearnspec plan (no `format_version` and `objectives`)",
                                help=["make one with `unlearnspec plan SPEC -o plan.json`"])
        version = data["format_version"]
        ours = FORMAT_VERSION.split(".")[0]
        m = re.fullmatch(r"(\d{1,9})(?:\.\d{1,9})*", version) if isinstance(version, str) else None
        if m is None:
            shown = json.dumps(version, ensure_ascii=False)[:40]
            raise PlanLoadError(f"plan format {code_span(shown)} is not a version number",
                                help=[f"this unlearnspec reads plan format {ours}.x; make a new plan"])
        if m.group(1).lstrip("0") != ours:
            newer = int(m.group(1)) > int(ours)
            raise PlanLoadError(f"plan format {code_span(version)} is {'newer than' if newer else 'not one'} this unlearnspec "
                                f"reads ({ours}.x)",
                                help=["upgrade unlearnspec" if newer else "make a new plan with this unlearnspec"])
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            where, why = first_problem(err, "plan")
            raise PlanLoadError(f"{code_span(path)} is not a valid plan: {code_span(where)}: {why}",
                                help=["make a new plan with `unlearnspec plan SPEC -o plan.json`"]) from err

def plan_schema() -> dict[str, object]:
    return Plan.model_json_schema()

def is_plan_path(path: Path) -> bool:
    """Whether ``path`` names a plan rather than a spec: a ``.json`` file, in any letter case."""
    return path.suffix.lower() == ".json"
