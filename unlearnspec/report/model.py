"""The report: what a run measured, what each claim's verdict is, and how the run was done.

``report.json`` is this model serialised (``Report.model_dump_json``); its JSON schema is
``Report.model_json_schema()`` and its shape is versioned by ``format_version``. The report is meant
to be re-checkable by anyone: every check keeps its per-item values so that its aggregate can be
recomputed, and the model validators below refuse a report whose verdicts do not follow from its own
numbers (a ``passed`` flag that contradicts value and threshold, a claim verdict or overall result that
its checks do not support). A tampered or buggy report therefore fails ``Report.model_validate_json``
instead of being read as a pass.

Exit codes (``Report.exit_code``, used by ``unlearnspec run`` and CI):

* ``0`` — every objective passed: every claim's checks were evaluated and passed.
* ``1`` — at least one claim failed its evidence, or cannot be met as written (compile status
  ``cannot_be_met``), so the objective fails.
* ``3`` — incomplete: nothing failed, but at least one claim was not evaluated (a missing value, an
  attack that did not run, a claim with no deciding check). Never treated as a pass.

Code ``2`` is never written into a report: the command line reserves it for usage and input errors
(a refused plan, a changed input), where no report is produced.

Light module: pydantic and the standard library only.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from unlearnspec.catalog.methods import FamilyName
from unlearnspec.markdown import code_span
from unlearnspec.plan import ClaimStatus, FileHash, PlanFinding, ReleaseInfo, TargetInfo, Threshold
from unlearnspec.report.chain import ChainReport
from unlearnspec.report.rules import (  # noqa: F401 - the exit codes and verdict types are re-exported
    EXIT_CODES,
    EXIT_FAIL,
    EXIT_INCOMPLETE,
    EXIT_PASS,
    CheckStatus,
    Overall,
    Verdict,
    cannot_fail,
    claim_verdict,
    objective_overall,
    report_overall,
)

FORMAT_VERSION = "1.3"
"""1.3: a chain step records its method family (``ChainStep.family``: which requests count against ``requests K``)
and the utility set that decided its cumulative drop (``ChainStep.utility_set``); a re-check says whether it used the
same reference as then (``Recheck.same_reference``) and at which confidence it decided (``Deciding.confidence``).
1.2: a data set whose files repeat records says how many different ones it held (``DataUse.distinct``), the
records every evaluation counted once each; forget quality is decided on its p-value's interval, and a p-value
below the bound fails on the test (``Decision.rejects``); a worst case with a part it could not bound cannot pass
(``Decision.cannot_pass``); a chain's re-checked checks carry what decided them then and now
(``RecheckedCheck.deciding_then``/``deciding_now``, whose ``point_value`` marks a value decided without an
interval, intervals being off). 1.1: a report's ``overall`` follows from its objectives *and* its chains (``ChainReport.outcomes``); a 1.0
report, whose ``overall`` followed from its objectives alone, is read by that rule."""

CHAINS_DECIDE_FROM = (1, 1)  # the first format version whose overall reads the chains

ModelName = Literal["original", "unlearned", "reference", "attacked", "served"]
DecidedOn = Literal["unlearned", "attacked", "served"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite_or_none(x: float | None) -> float | None:
    """Non-finite numbers become ``null``: JSON has no NaN, and a NaN metric is no evidence."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


class ModelValue(_Model):
    """One metric's value for each model the run compared. ``None``: not measured (or not finite).

    ``served`` is the deployed system (model plus output filter) for system-level suppression; the
    other names follow the plan's evaluate and attack stages."""

    original: float | None = None
    unlearned: float | None = None
    reference: float | None = None
    attacked: float | None = None
    served: float | None = None

    @field_validator("original", "unlearned", "reference", "attacked", "served", mode="after")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        return _finite_or_none(v)

    def get(self, name: ModelName) -> float | None:
        value: float | None = getattr(self, name)
        return value


Pair = tuple[float, float]


def three_valued(threshold: Threshold, value: float, interval: Pair | None,
                  attainable: Pair | None = None, no_evidence: str | None = None, rejects: bool = False,
                  cannot_pass: str | None = None) -> bool | None:
    """The burden-of-proof rule (FRAMEWORK.md §7, docs/reports.md): ``True`` when the interval lies
    entirely on the passing side of the threshold, ``False`` when entirely on the failing side,
    ``None`` (inconclusive) otherwise — and ``None`` too when the threshold holds over the whole
    range the statistic can reach at this sample size, or when the measurement cannot tell a model that
    holds the target from one that never saw it (``no_evidence`` says why): a test that cannot fail is
    no evidence. ``rejects``: a hypothesis test rejected at the bound's level, which is evidence of a
    difference on its own, so the check fails whatever the interval. ``cannot_pass``: part of the quantity could
    not be bounded (why), so the interval of the rest can fail the check but never pass it. Without an interval
    the point value decides."""
    if cannot_fail(threshold, attainable) or no_evidence:
        return None
    if rejects:
        return False
    if interval is None:
        return threshold.holds(value)
    low_ok, high_ok = threshold.holds(interval[0]), threshold.holds(interval[1])
    if low_ok and high_ok:
        return None if cannot_pass else True
    if not low_ok and not high_ok:
        return False
    return None


class Decision(_Model):
    """What a check is actually decided on, when it is not the decided model's plain value.

    Membership is judged relative to the retrained reference (the gap ``|AUC_unlearned −
    AUC_reference|``, worst item type deciding; without a reference, ``|AUC − 0.5|``), ROUGE-type
    metrics as the gap to the reference, a KS test with the range its p-value can reach at these
    sample sizes. ``threshold`` is the bound on ``quantity``, derived from the plan's threshold
    (``how`` says how); ``more_items`` is roughly how many items would settle an inconclusive check.
    ``no_evidence`` says why the measurement cannot fail here whatever it reads (the original model, which
    holds the target, does not fail it either): the check is then inconclusive. ``rejects``: the value is a
    test's p-value below its bound, the test's own rejection at that level, so the check fails on it; a
    p-value at or above the bound is no evidence that the two agree, so a pass needs its whole interval there
    (forget quality). ``cannot_pass`` says which part of a worst case could not be bounded (an item type whose
    interval is undefined at this size): the interval, over the other parts, can fail the check, never pass it."""

    quantity: str
    value: float
    interval: Pair | None = None
    threshold: Threshold
    attainable: Pair | None = None
    no_evidence: str | None = None
    rejects: bool = Field(default=False, exclude_if=lambda v: not v)
    cannot_pass: str | None = Field(default=None, exclude_if=lambda v: v is None)
    how: str = ""
    n: int = 0
    more_items: int | None = None

    @model_validator(mode="after")
    def _a_rejection_is_below_its_bound(self) -> Decision:
        if self.rejects and (self.threshold.op not in (">=", ">") or self.threshold.holds(self.value)):
            raise ValueError("`rejects` marks a p-value on the failing side of its lower bound (`>=` or `>`)")
        return self


class CheckResult(_Model):
    """One metric check as measured: its values per model, the threshold and the outcome.

    ``passed`` is derived, not asserted. Each model's value comes with ``n`` (items) and
    ``interval`` (low, high) at ``confidence``; the check passes when the deciding interval lies
    entirely on the passing side of the threshold, fails when it lies entirely on the failing side
    and is ``inconclusive`` (``passed is None``, ``inconclusive`` true) otherwise. The deciding
    quantity is ``decision`` when present (a gap to the reference, ...), else the ``decided_on``
    model's value and interval; without an interval the point value decides. A contradicting
    ``passed`` is refused. ``passed is None`` without ``inconclusive`` means not evaluated
    (``not_evaluated_reason`` says why), or, for a check without a threshold, a value reported for
    information only."""

    check_id: str
    metric: str
    dataset: str
    probe: str | None = None
    attack: str | None = None
    threshold: Threshold | None = None
    values: ModelValue = Field(default_factory=ModelValue)
    decided_on: DecidedOn = "unlearned"
    passed: bool | None = None
    not_evaluated_reason: str | None = None
    per_item: dict[str, list[float | None]] = Field(default_factory=dict)
    item_ids: list[str] = Field(default_factory=list)
    n: dict[str, int] = Field(default_factory=dict)
    interval: dict[str, Pair] = Field(default_factory=dict)
    confidence: float | None = None
    decision: Decision | None = None
    inconclusive: bool = False
    findings: list[str] = Field(default_factory=list)
    extra: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("per_item", mode="after")
    @classmethod
    def _finite_items(cls, v: dict[str, list[float | None]]) -> dict[str, list[float | None]]:
        return {k: [_finite_or_none(x) for x in xs] for k, xs in v.items()}

    @property
    def value(self) -> float | None:
        """The value compared with the threshold: the ``decided_on`` model's."""
        return self.values.get(self.decided_on)

    @property
    def status(self) -> CheckStatus:
        if self.passed is True:
            return "pass"
        if self.passed is False:
            return "fail"
        if self.inconclusive:
            return "inconclusive"
        if self.threshold is None and self.not_evaluated_reason is None and self.value is not None:
            return "info"
        return "not_evaluated"

    @model_validator(mode="after")
    def _consistent(self) -> CheckResult:
        if self.item_ids:
            for name, xs in self.per_item.items():
                if len(xs) != len(self.item_ids):
                    raise ValueError(f"per_item[{name!r}] has {len(xs)} values for "
                                     f"{len(self.item_ids)} item ids")
        roc = self.extra.get("roc")
        if roc is not None:
            _validate_roc(roc)
        for name, (low, high) in self.interval.items():
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ValueError(f"interval[{name!r}] must be finite with low <= high")
        if self.not_evaluated_reason is not None:
            if self.passed is not None or self.inconclusive:
                raise ValueError("a check with a not_evaluated_reason cannot have passed/failed")
            return self
        value = self.value
        if self.threshold is None:
            if self.passed is not None or self.inconclusive:
                raise ValueError("a check without a threshold cannot pass or fail")
            if value is None:
                self.not_evaluated_reason = f"no value for the {self.decided_on} model"
            return self
        if self.decision is not None:
            d = self.decision
            if not math.isfinite(d.value) or (d.interval is not None and not all(map(math.isfinite, d.interval))):
                raise ValueError("a decision's value and interval must be finite (JSON has no NaN)")
            expected = three_valued(d.threshold, d.value, d.interval, d.attainable, d.no_evidence, d.rejects,
                                    d.cannot_pass)
            shown = f"{d.quantity} {d.value} {d.threshold.op} {d.threshold.value}"
        elif value is None:
            if self.passed is not None or self.inconclusive:
                raise ValueError(f"passed={self.passed} but the {self.decided_on} model has no value")
            self.not_evaluated_reason = f"no value for the {self.decided_on} model"
            return self
        else:
            expected = three_valued(self.threshold, value, self.interval.get(self.decided_on))
            shown = f"{value} {self.threshold.op} {self.threshold.value}"
        if expected is None:
            if self.passed is not None:
                raise ValueError(f"passed={self.passed} but the interval straddles the threshold ({shown})")
            self.inconclusive = True
            return self
        if self.decision is not None and self.decision.more_items is not None:  # only an unsettled check needs more
            self.decision = self.decision.model_copy(update={"more_items": None})
        if self.inconclusive:
            raise ValueError(f"inconclusive, but the interval lies on one side of the threshold ({shown})")
        if self.passed is None:
            self.passed = expected
        elif self.passed != expected:
            raise ValueError(f"passed={self.passed} contradicts {shown}")
        return self


def _validate_roc(roc: JsonValue) -> None:
    """``extra["roc"]`` is ``{model: {"fpr": [...], "tpr": [...]}}`` with equal-length lists in [0, 1]."""
    if not isinstance(roc, dict):
        raise ValueError('extra["roc"] must map model names to {"fpr": [...], "tpr": [...]}')
    for name, curve in roc.items():
        if not isinstance(curve, dict) or not isinstance(curve.get("fpr"), list) \
                or not isinstance(curve.get("tpr"), list):
            raise ValueError(f'extra["roc"][{name!r}] must be {{"fpr": [...], "tpr": [...]}}')
        fpr, tpr = curve["fpr"], curve["tpr"]
        assert isinstance(fpr, list) and isinstance(tpr, list)
        if len(fpr) != len(tpr):
            raise ValueError(f'extra["roc"][{name!r}]: fpr and tpr differ in length')
        for x in [*fpr, *tpr]:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
                raise ValueError(f'extra["roc"][{name!r}]: rates must be numbers in [0, 1]')


class ClaimVerdict(_Model):
    """A claim's outcome. ``verdict`` follows from ``compile_status`` and the checks (see verdict.py)."""

    claim: str
    args: dict[str, JsonValue] = Field(default_factory=dict)
    compile_status: ClaimStatus
    verdict: Verdict
    checks: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    explanation: str

    @model_validator(mode="after")
    def _never_pass_when_unmeetable(self) -> ClaimVerdict:
        if self.compile_status == "cannot_be_met" and self.verdict != "cannot_be_met":
            raise ValueError("a claim the compiler found cannot be met has verdict 'cannot_be_met'")
        return self


class EffectiveBatch(_Model):
    """How the plan's global batch ran (``runtime/scaling.py``): ``global_batch`` examples per optimizer
    step = ``processes × micro_batch × accumulation``; each loader batch of ``loader_batch`` examples
    is split across the processes. ``sharding`` is the data-parallel scheme (``single``, ``ddp``,
    ``fsdp``) and why it was chosen."""

    global_batch: int
    processes: int = 1
    micro_batch: int
    accumulation: int = 1
    loader_batch: int
    sharding: str = "single"
    sharding_reason: str = ""


class TrainingLog(_Model):
    """Losses during unlearning, one entry per logged step; ``retain_loss`` is empty for methods with
    no retain term. ``stop_threshold`` is the stopping rule's forget-loss bound, when there is one."""

    steps: list[int] = Field(default_factory=list)
    forget_loss: list[float | None] = Field(default_factory=list)
    retain_loss: list[float | None] = Field(default_factory=list)
    stop_reason: str | None = None
    stop_threshold: float | None = None
    batch: EffectiveBatch | None = None

    @field_validator("forget_loss", "retain_loss", mode="after")
    @classmethod
    def _finite_losses(cls, v: list[float | None]) -> list[float | None]:
        return [_finite_or_none(x) for x in v]

    @model_validator(mode="after")
    def _lengths(self) -> TrainingLog:
        if len(self.forget_loss) != len(self.steps):
            raise ValueError("forget_loss needs one value per step")
        if self.retain_loss and len(self.retain_loss) != len(self.steps):
            raise ValueError("retain_loss needs one value per step, or none at all")
        return self


class AuditTrail(_Model):
    """How the run was done, so that it can be repeated and its inputs proven unchanged."""

    plan_hash: str
    spec_sha256: str
    inputs: list[FileHash] = Field(default_factory=list)
    model_sha256: str | None = None
    tool_version: str
    libraries: dict[str, str] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)
    device: str
    process_count: int = 1
    started_at: AwareDatetime
    finished_at: AwareDatetime
    wall_seconds: float
    #: how the plan was vouched for: made from the spec by this run (``planned``), a saved plan re-derived
    #: from its spec and found equal (``rederived``), or run with ``--trust-plan``, not re-derived (``trusted``)
    plan_provenance: Literal["planned", "rederived", "trusted"] | None = None


class GivenModel(_Model):
    """An audit: the checkpoint was given (the spec's ``unlearned``), not produced by this run."""

    source: str  # the folder as the spec names it
    form: Literal["model", "adapter"]
    sha256: str  # the folder's content hash, checked against the plan before the checkpoint was loaded
    method: str  # as stated by whoever unlearned it, or UNKNOWN


class PromptInfo(_Model):
    """How the run put questions to the models (docs/models.md, prompt formats): the plain format, or the
    tokenizer's chat template (its sha256, checked against the plan's) with the spec's system prompt."""

    prompt_format: Literal["plain", "chat"]
    chat_template_sha256: str | None = None
    system: str | None = None


class DataUse(_Model):
    """One data set an objective's run read: its role, where it came from (files relative to the spec, or a
    built-in corpus split such as ``builtin:holdout``) and how many records it held. The holdout is split in
    two halves that never overlap: ``calibration`` records (which set when training stops, if
    ``calibration_stops_training``; otherwise unused) and ``evaluation`` records, the non-members the verdicts
    use. ``distinct`` is set when the files repeat records: the number of different records, each of which
    evaluation counts once as an item (the halves count different records too); unlearning trained on all
    ``records`` as given."""

    role: Literal["forget", "retain", "neighbors", "holdout", "test"]
    sources: list[str]
    records: int = Field(ge=0)
    distinct: int | None = Field(default=None, ge=0, exclude_if=lambda v: v is None)
    calibration: int | None = Field(default=None, ge=0)
    evaluation: int | None = Field(default=None, ge=0)
    calibration_stops_training: bool = False

    @model_validator(mode="after")
    def _split_fits(self) -> DataUse:
        split = (self.calibration, self.evaluation)
        if self.distinct is not None and self.distinct >= self.records:
            raise ValueError("`distinct` is given only for a set that repeats records, and counts fewer than `records`")
        held = self.distinct if self.distinct is not None else self.records
        if split != (None, None) and (self.role != "holdout" or None in split
                                      or self.calibration + self.evaluation > held):  # type: ignore[operator]
            raise ValueError("only the holdout is split, into a calibration and an evaluation half that fit in it")
        return self


class ObjectiveReport(_Model):
    """One objective: who asked for what, the claims' verdicts, the evidence and the findings."""

    name: str
    title: str | None = None
    basis: str | None = None
    owner: str | None = None
    goal: Literal["removal", "suppression"]
    suppression_via: Literal["model", "system"] | None = None
    target: TargetInfo
    release: ReleaseInfo | None = None
    method: str
    method_family: FamilyName | None = None  # the catalog's family of `method` (`unknown`: an audit that states none)
    reference: Literal["retrain", "model", "holdout"] | None = None  # how the reference was obtained (the plan's)
    given: GivenModel | None = Field(default=None, exclude_if=lambda v: v is None)  # an audited checkpoint
    prompt: PromptInfo | None = Field(default=None, exclude_if=lambda v: v is None)  # the prompt format the run used
    claims: list[ClaimVerdict]
    checks: list[CheckResult]
    findings: list[PlanFinding] = Field(default_factory=list)
    training: TrainingLog | None = None
    generations: FileHash | None = None  # the generated outputs, a file in the run directory (not in the report)
    #: the model folders the verdicts are about, by content hash (``records.sha256_path``): role ``original``
    #: (the folder loaded), ``reference`` and ``unlearned`` (the folder this run wrote: the model to release)
    models: list[FileHash] = Field(default_factory=list, exclude_if=lambda v: not v)
    #: the data sets the run read, with their record counts (the holdout with its calibration half)
    data: list[DataUse] = Field(default_factory=list, exclude_if=lambda v: not v)
    overall: Overall

    @model_validator(mode="after")
    def _verdicts_follow_from_checks(self) -> ObjectiveReport:
        by_id = {c.check_id: c for c in self.checks}
        if len(by_id) != len(self.checks):
            raise ValueError(f"objective {self.name!r}: duplicate check ids")
        for cv in self.claims:
            missing = [i for i in cv.checks if i not in by_id]
            if missing:
                raise ValueError(f"claim {cv.claim!r} names unknown checks {missing}")
            expected = claim_verdict(cv.compile_status, [by_id[i] for i in cv.checks])
            if cv.verdict != expected:
                raise ValueError(f"claim {cv.claim!r}: verdict {cv.verdict!r} does not follow from its "
                                 f"checks ({expected!r})")
        expected_overall = objective_overall(self.claims)
        if self.overall != expected_overall:
            raise ValueError(f"objective {self.name!r}: overall {self.overall!r} does not follow from its "
                             f"claims ({expected_overall!r})")
        return self


class Report(_Model):
    """The run's report: ``report.json``. See the module docstring for the exit codes."""

    format_version: str = FORMAT_VERSION
    objectives: list[ObjectiveReport]
    audit: AuditTrail
    overall: Overall
    exit_code: Literal[0, 1, 3]
    # Chains of requests (drift, budget); left out of report.json when the plan has none.
    chains: list[ChainReport] = Field(default_factory=list, exclude_if=lambda v: not v)

    @field_validator("format_version")
    @classmethod
    def _a_version_this_reads(cls, v: str) -> str:
        """Another major version's report may mean something else by the same fields: refused, not misread."""
        ours = FORMAT_VERSION.split(".")[0]
        major = v.split(".")[0]
        if not (major.isdigit() and all(p.isdigit() for p in v.split("."))):
            raise ValueError(f"report format {code_span(v[:40])} is not a version number")
        if major.lstrip("0") != ours:
            raise ValueError(f"report format {code_span(v)} is {'newer than' if int(major) > int(ours) else 'not one'} "
                             f"this unlearnspec reads ({ours}.x)")
        return v

    @model_validator(mode="after")
    def _overall_follows(self) -> Report:
        version = tuple(int(p) for p in self.format_version.split(".")[:2])
        chains = self.chains if version >= CHAINS_DECIDE_FROM else []  # a 1.0 report: its objectives alone
        expected = report_overall(self.objectives, [o for c in chains for o, _ in c.outcomes()])
        if self.overall != expected:
            raise ValueError(f"overall {self.overall!r} does not follow from the objectives and chains ({expected!r})")
        if self.exit_code != EXIT_CODES[self.overall]:
            raise ValueError(f"exit_code {self.exit_code} does not match overall {self.overall!r}")
        return self


def report_schema() -> dict[str, object]:
    """The published JSON schema of ``report.json``."""
    return Report.model_json_schema()
