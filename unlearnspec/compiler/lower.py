"""Lowering: a checked spec → a sealed, hashed, byte-stable :class:`~unlearnspec.plan.Plan`.

Like a Terraform plan, everything the runtime will do is decided here, at compile time, where a
reviewer can read it: the method and every hyperparameter, the reference strategy, each metric
check with its threshold and the claim it serves, the probes and the attacks, and the sha256 of
every input. The runtime decides nothing of its own.

The decisions follow one table, :data:`DECISION_TABLE` (goal × target kind × release × claims →
method, adapter, hyperparameters, reference, stopping, probes, attacks, evidence). It is data: the
lowering evaluates its rows, records which row fired in each stage's rationale, and
``docs/planning.md`` shows the same rows (a test checks the doc against :func:`decision_table_markdown`).
Two decisions belong to other modules and are only *recorded* here, so that what the compiler
judges is what the plan runs:

* the method when the spec names none — :func:`unlearnspec.compiler.rules.base.planned_method`
  (the method rows below mirror it; :func:`method_row` asserts they agree);
* each claim's evidence and its thresholds — :mod:`unlearnspec.compiler.evidence_defaults`; each
  claim's status (supported / cannot be verified / cannot be met) —
  :func:`unlearnspec.compiler.feasibility.claim_statuses`.

Determinism: no timestamps, no absolute paths (data paths are relative to the spec's folder, the
spec is recorded by file *name* and sha256), every list in a defined order, and JSON with sorted
keys (:meth:`Plan.canonical_json`). Planning the same spec with the same inputs twice gives the
same bytes on any machine, in any working directory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import posixpath
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnspec import __version__
from unlearnspec.compiler import vocab
from unlearnspec.compiler.ast import Objective, PathRef, Spec
from unlearnspec.compiler.check import CheckResult, check_file
from unlearnspec.compiler.codes import REGISTRY, CodePage, ensure_registered, register
from unlearnspec.compiler.diagnostics import Diagnostic, Label, sort_diagnostics
from unlearnspec.compiler.evidence_defaults import (
    EvidenceItem,
    side_effect_evidence,
)
from unlearnspec.plan import (
    AttackStage,
    ClaimPlan,
    DataSets,
    Estimate,
    EvaluateStage,
    FileHash,
    LoraConfig,
    MetricCheck,
    ModelRef,
    ObjectiveInfo,
    ObjectivePlan,
    Plan,
    PlanFinding,
    PrepareStage,
    Probe,
    QuantizeAttack,
    ReferenceStage,
    RelearnAttack,
    ReleaseInfo,
    Stage,
    StoppingRule,
    TargetInfo,
    Threshold,
    ToolInfo,
    UnlearnStage,
    VerdictStage,
)
from unlearnspec.records import DataFormatError, Record, read_records, sha256_path, split_holdout

# -- constants the runtime honours --------------------------------------------------------------------

#: Adversarial prompt templates, by id, that the ``adversarial`` probe asks every forget question
#: through. The runtime's documented set (``unlearnspec/runtime/evaluation/probes.py``,
#: ``ADVERSARIAL_TEMPLATES``) defines each id; a test keeps the two in step.
ADVERSARIAL_TEMPLATES: tuple[str, ...] = (
    "prefix_injection", "role_play", "completion_priming", "system_override", "single_word", "fiction_frame",
)

PROBE_DESCRIPTIONS: dict[str, str] = {
    "direct": "each forget question asked in the training prompt format",
    "paraphrased": "each paraphrase of each forget question (Lynch et al., arXiv:2402.16835)",
    "adversarial": "each forget question wrapped in every adversarial template (prompt injection, role play, "
                   "priming, fake system override, one-word answers, fiction framing)",
    "in_context": "each forget question with the target's own documents placed in the prompt "
                  "(in-context reintroduction, Shumailov et al., arXiv:2407.00106)",
}

LORA_MIN_PARAMETERS = 100_000_000  # above this (or when the size is unknown), LoRA instead of full fine-tuning
DEFAULT_LORA = LoraConfig(rank=8, alpha=16, dropout=0.0)
DEFAULT_RELEARN_STEPS = 20  # evidence_defaults.DEFAULT_RELEARN_STEPS; the same number for the open-weights attack
BUILTIN_ATTRIBUTE = "birth_city"  # the labelled fact of every built-in person record
#: The implicit claim the `preserve { utility drop <= N% }` tolerance decides (not a spec word).
TOLERANCE_CLAIM = "side_effects_within_tolerance"

HOLDOUT_STOPPING = StoppingRule(kind="holdout_loss", ratio=1.0, check_every=5)
BUILTIN_HOLDOUT = "builtin:holdout"  # the built-in corpus's holdout people (never trained on)


@dataclass(frozen=True)
class MethodDefaults:
    """Starting hyperparameters of one method (each is overridden by the spec's method block)."""

    max_steps: int
    lr_full: float  # full fine-tuning of a small model (<= 100M parameters)
    lr_full_large: float  # full fine-tuning of a larger model (only when the spec asks for it)
    lr_lora: float
    batch_size: int = 8
    beta: float = 0.1
    gamma: float = 0.0
    retain_weight: float = 1.0


#: Per-method defaults. TOFU/MUSE fine-tune 7B models fully at 1e-5; small models and LoRA adapters
#: take larger steps. On the built-in model at 1e-4, NPO and gradient difference reach the stopping
#: bound (forget loss = holdout loss) after about 15 steps, within one 5-step check of it (2e-4
#: overshot to 1.5× the bound at the second check); the stopping rule, not the step budget, is what
#: keeps approximate methods from overshooting.
METHOD_DEFAULTS: dict[str, MethodDefaults] = {
    "grad_ascent": MethodDefaults(max_steps=40, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4, retain_weight=0.0),
    "grad_diff": MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4),
    "npo": MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4, beta=0.1),
    "simnpo": MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4, beta=2.5, gamma=0.0),
    "rmu": MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=5e-5, lr_lora=1e-4),
    "refusal": MethodDefaults(max_steps=60, lr_full=1e-4, lr_full_large=1e-5, lr_lora=1e-4),
}

# -- the lowering's own finding --------------------------------------------------------------------------

#: Which claims a method family cannot serve, and why (a named method is honoured, but the plan says so).
CANNOT_SERVE: dict[str, dict[str, str]] = {
    "model_suppression": {
        "removed": "refusal tuning changes what the model says, not what its weights carry (M1)",
        "as_if_never_trained": "refusal tuning leaves the information in the weights (M1)",
    },
    "system_suppression": {
        "removed": "an output filter leaves the weights untouched (M1)",
        "as_if_never_trained": "an output filter leaves the weights untouched (M1)",
        "robust_to_finetuning": "whoever can fine-tune the weights runs them without the filter (M1)",
        "robust_to_quantization": "whoever can quantize the weights runs them without the filter (M1)",
    },
}

UL601 = register(CodePage(
    code="UL601", name="method-cannot-serve-claim", severity="error", category="feasibility",
    summary="The method named in the spec cannot deliver one of the objective's claims (a suppression method "
            "with a claim about the weights).",
    why="A named method is honoured: the plan runs what the spec says. But refusal tuning and output filters "
        "act on outputs; the information stays in the parameters, so claims about the weights (`removed`, "
        "`as_if_never_trained`) or about what happens to the weights (`robust_to_finetuning`, "
        "`robust_to_quantization` behind a filter) cannot be met by them. Source: Cooper et al. 2024, "
        "Section 4, mismatch M1 (output suppression is not a replacement for removal).",
    example="goal suppression via system\nmethod filter\nclaims {\n  not_generated\n  robust_to_finetuning\n}",
    instead="claims {\n  not_generated\n}\n\n# or a removal objective with a removal method (`npo`, `retrain`)",
    references=["A. F. Cooper, C. A. Choquette-Choo, M. Bogen, et al., \"Machine Unlearning Doesn't Do What You "
                "Think: Lessons for Generative AI Policy, Research, and Practice\", arXiv:2412.06966 (2024), "
                "Section 4, mismatch M1"],
))


# -- the facts a decision reads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the decision table reads about one objective (goal × target kind × release × claims, and the model)."""

    goal: str
    via: str | None
    kind: str
    category: str
    release: str | None
    precision: str | None
    claims: frozenset[str]
    prompts: frozenset[str]
    exact: bool  # `guarantee exact` or claim `as_if_never_trained`
    model_kind: str  # "builtin" | "local" | "hub"
    parameters: int | None
    method: str | None  # as named in the spec
    adapter: str | None  # as named in the spec's method block
    has_reference: bool
    has_holdout: bool
    related_data: bool = False  # `preserve` gives neighbours or a retain set (data a relearning attacker may hold)

    @property
    def builtin(self) -> bool:
        return self.model_kind == "builtin"

    @property
    def small(self) -> bool:
        return self.builtin or (self.parameters is not None and self.parameters <= LORA_MIN_PARAMETERS)

    @property
    def weights_leave(self) -> bool:
        return self.release in ("open_weights", "on_device")


@dataclass(frozen=True)
class Row:
    """One row of the decision table: when it applies, what it decides, and why.

    ``value`` is the machine-readable decision (a method, an adapter, a strategy, a probe, an attack);
    ``when``/``then``/``why`` are the words ``docs/planning.md`` shows.
    """

    id: str
    decides: str
    when: str
    then: str
    why: str
    value: str
    test: Callable[[Facts, str], bool] = field(compare=False, repr=False)


def _r(id: str, decides: str, when: str, then: str, why: str, value: str,
       test: Callable[[Facts, str], bool]) -> Row:
    return Row(id=id, decides=decides, when=when, then=then, why=why, value=value, test=test)


_SUPPRESSION_METHODS = ("refusal", "filter")

#: The decision table. Within a ``decides`` group whose name is singular the first matching row wins;
#: ``probes``, ``attacks`` and ``evidence`` rows are additive. The second argument of each test is the
#: method that will run (the method rows decide it; the other rows read it).
DECISION_TABLE: tuple[Row, ...] = (
    # -- method (mirrors rules.base.planned_method; the feasibility rules judge the same choice) --
    _r("M1", "method", "the spec names a method", "that method (`chosen_by: spec`)",
       "a named method is honoured; UL601 when its family cannot serve a claim (a suppression method with a "
       "claim about the weights)", "spec", lambda f, m: f.method is not None),
    _r("M2", "method", "goal `suppression via system`", "`filter` (system suppression)",
       "suppression in the serving system is an output filter", "filter",
       lambda f, m: f.goal == "suppression" and f.via == "system"),
    _r("M3", "method", "goal `suppression` (via model, or no `via`)", "`refusal` (model suppression)",
       "suppression inside the model: refusal tuning on the target's prompts; it works whoever serves the model",
       "refusal", lambda f, m: f.goal == "suppression"),
    _r("M4", "method", "goal `removal`, exact (`guarantee exact` or claim `as_if_never_trained`), built-in model",
       "`retrain` (exact)", "only retraining is exact, and the built-in model's corpus and recipe are known "
       "(FRAMEWORK §3)", "retrain", lambda f, m: f.goal == "removal" and f.exact and f.builtin),
    _r("M5", "method", "goal `removal`, otherwise", "`npo` (approximate)",
       "NPO is the TOFU/MUSE baseline that does not collapse like gradient ascent (Zhang et al., "
       "arXiv:2404.05868); retraining needs a known recipe", "npo", lambda f, m: f.goal == "removal"),
    # -- adapter --
    _r("AD1", "adapter", "method `retrain` or `filter`", "full (no adapter)",
       "retraining follows the recipe; a filter trains nothing", "full",
       lambda f, m: m in ("retrain", "filter")),
    _r("AD2", "adapter", "the spec's method block names `adapter`", "as named; LoRA rank from the spec, else 8",
       "a named knob is honoured", "spec", lambda f, m: f.adapter is not None),
    _r("AD3", "adapter", "built-in model, or a model of at most 100M parameters", "full fine-tuning",
       "a small model fine-tunes fully in minutes on a CPU", "full", lambda f, m: f.small),
    _r("AD4", "adapter", "a model of more than 100M parameters, or of unknown size (hub id)",
       "LoRA rank 8, alpha 16, dropout 0, on the attention and MLP projections",
       "LoRA keeps memory and the original weights safe on large models", "lora", lambda f, m: True),
    # -- hyperparameters --
    _r("H1", "hyperparameters", "method `retrain`, built-in model",
       "the recipe's learning rate and batch size; steps = epochs × batches",
       "exact retraining repeats the original training run without the forget set", "recipe",
       lambda f, m: m == "retrain" and f.builtin),
    _r("H2", "hyperparameters", "method `retrain`, any other model (UL309)", "none: the recipe is unknown, nothing "
       "can be retrained (`max_steps` 0)", "the plan records the request; the run refuses the stage", "none",
       lambda f, m: m == "retrain"),
    _r("H3", "hyperparameters", "method `filter`", "no training (`max_steps` 0); filter n-grams of 4 tokens and the "
       "target's name and aliases", "a system filter blocks outputs that repeat the forget set", "none",
       lambda f, m: m == "filter"),
    _r("H4", "hyperparameters", "full fine-tuning of a model over 100M parameters (named in the spec)",
       "the method's defaults with its large-model learning rate (1e-5; RMU 5e-5)",
       "TOFU and MUSE fine-tune 7B models fully at 1e-5", "large", lambda f, m: not f.small and f.adapter == "full"),
    _r("H5", "hyperparameters", "any other method",
       "the method's defaults (docs/planning.md, method defaults), overridden by the spec's knobs",
       "starting points from the methods' papers, bounded by the stopping rule", "defaults", lambda f, m: True),
    # -- train precision --
    _r("TP1", "precision", "`release ... precision bf16`", "train in bf16 (on a GPU that supports it; fp32 on CPU)",
       "train at the precision that will be released", "bf16", lambda f, m: f.precision == "bf16"),
    _r("TP2", "precision", "otherwise", "train in fp32",
       "fp16 training needs loss scaling and int8/int4 are inference formats; the release precision is "
       "evaluated by a quantize attack instead", "fp32", lambda f, m: True),
    # -- stopping --
    _r("S1", "stopping", "method `retrain`, `filter` or `refusal`", "fixed steps",
       "nothing to stop early; refusal tuning makes the forget answers unlikely long before the refusal is learnt, "
       "so the holdout-loss rule would stop it too soon", "fixed_steps",
       lambda f, m: m in ("retrain", "filter", "refusal")),
    _r("S2", "stopping", "holdout data (the target's `holdout`, or the built-in corpus's holdout people)",
       "stop once the forget loss exceeds the original model's holdout loss (ratio 1.0, checked every 5 steps)",
       "beyond that point the forget set is more surprising than unseen data, itself a membership signal",
       "holdout_loss", lambda f, m: f.has_holdout),
    _r("S3", "stopping", "no holdout data", "fixed steps (`max_steps`)",
       "no unseen data to calibrate against", "fixed_steps", lambda f, m: True),
    # -- reference --
    _r("R1", "reference", "the spec names a `reference` model", "that model",
       "the owner of the training pipeline retrained it without the forget set", "model",
       lambda f, m: f.has_reference),
    _r("R2", "reference", "built-in model", "retrain the recipe without the forget set",
       "the training data and recipe are known: the gold-standard reference", "retrain", lambda f, m: f.builtin),
    _r("R3", "reference", "otherwise", "holdout-calibrated: the target's `holdout` data stands in for "
       "'never trained on'", "with neither data nor recipe, unseen data of the same distribution is the only "
       "baseline; checks that need a reference model are recorded as not measurable", "holdout",
       lambda f, m: True),
    # -- probes (additive) --
    _r("P1", "probes", "always", "`direct`", "the forget questions as trained", "direct", lambda f, m: True),
    _r("P2", "probes", "`scope prompts` names `paraphrased`, or `any`", "`paraphrased`",
       "paraphrases reveal knowledge the exact prompts miss (Lynch et al.)", "paraphrased",
       lambda f, m: bool(f.prompts & {"paraphrased", "any"})),
    _r("P3", "probes", "`scope prompts` names `adversarial`, or `any`",
       "`adversarial`, with every template of ADVERSARIAL_TEMPLATES",
       "adversarial prompts recover suppressed outputs (M1)", "adversarial",
       lambda f, m: bool(f.prompts & {"adversarial", "any"})),
    _r("P4", "probes", "`scope prompts` names `in_context`, or `any`", "`in_context`",
       "a user can put the information back in the prompt (M3)", "in_context",
       lambda f, m: bool(f.prompts & {"in_context", "any"})),
    _r("P5", "probes", "a claim's evidence reads a probe (e.g. `robust_to_prompting`, `not_generated_similar`)",
       "that probe", "the evidence decides the claim, so its probe must run", "evidence", lambda f, m: True),
    # -- attacks (additive) --
    _r("A1", "attacks", "claim `robust_to_finetuning [steps N]`", "relearn: N fine-tuning steps on half the forget "
       "set (20 when the claim gives none)", "a few steps restore unlearned knowledge (Hu et al., arXiv:2406.13356)",
       "relearn", lambda f, m: "robust_to_finetuning" in f.claims),
    _r("A2", "attacks", "goal `removal`, release `open_weights` or `on_device`, no A1",
       "relearn: 20 steps; measured for information", "whoever holds the weights can fine-tune them",
       "relearn", lambda f, m: f.goal == "removal" and f.weights_leave and "robust_to_finetuning" not in f.claims),
    _r("A5", "attacks", "a relearning attack (A1 or A2), and `preserve` gives `neighbors` or `retain` data",
       "relearn also on related but disjoint data — the neighbours, else the retain set — for the same steps; "
       "its recovery is measured for information beside the claim",
       "fine-tuning on small, even unrelated, data restores 'unlearned' knowledge (Hu et al., arXiv:2406.13356; "
       "Łucki et al., arXiv:2409.18025)", "relearn",
       lambda f, m: f.related_data and ("robust_to_finetuning" in f.claims
                                        or (f.goal == "removal" and f.weights_leave))),
    _r("A3", "attacks", "release precision below fp32 (`bf16`, `fp16`, `int8`, `int4`)",
       "quantize to the release precision; every deciding check is measured again on the quantized model and "
       "decides its claims too (the released artifact is the quantized model)",
       "quantization restores forgotten knowledge; evaluate at deployment precision (Zhang et al., "
       "arXiv:2410.16454)", "quantize", lambda f, m: f.precision not in (None, "fp32")),
    _r("A4", "attacks", "claim `robust_to_quantization`",
       "quantize at the release precision when below fp32, else at int8 and int4",
       "4-bit quantization restored 83% of forgotten knowledge (Zhang et al.)", "quantize",
       lambda f, m: "robust_to_quantization" in f.claims),
    # -- evidence (additive) --
    _r("E1", "evidence", "every claim", "its checks: the spec's thresholds for the metrics of its evidence family, "
       "else the documented defaults (evidence_defaults)", "what the compiler judges is what the plan measures",
       "claims", lambda f, m: True),
    _r("E2", "evidence", "`preserve` names retain or neighbour data", "utility-drop checks with the `utility` "
       "tolerance (5% when none); they decide `no_side_effects` when claimed", "side effects are inherent; "
       "only a measured tolerance is meetable", "side_effects", lambda f, m: True),
    _r("E3", "evidence", "claim `removed`, or any check of `probe_accuracy_gap`", "a linear representation probe "
       "on the target's `attribute` (built-in person or records target: `birth_city`); it decides the claim when "
       "its evidence names `probe_accuracy_gap`, else it is measured for information",
       "output metrics cannot tell removal from suppression (Gao et al., arXiv:2604.08271)", "representation",
       lambda f, m: "removed" in f.claims),
    _r("E4", "evidence", "a check whose needs are missing (reference, holdout, QA records, attribute, retain, "
       "neighbours)", "kept in the plan with `missing` and a note; the runtime reports it not evaluated",
       "missing evidence is never a pass", "missing", lambda f, m: True),
    _r("E5", "evidence", "an A2 or A3 attack", "a `relearn_recovery` or `quantization_recovery` check without "
       "a threshold (unless a claim's evidence has one), beside the removal claims", "measured and reported, decides no claim", "information",
       lambda f, m: True),
    _r("E6", "evidence", "a probe that no claim's evidence reads", "its knowledge ROUGE (`knowledge_rouge`, "
       "`paraphrase_rouge`, `adversarial_rouge`, `in_context_rouge`) without a threshold, beside the output claims",
       "the scope asked for the probe; its result is reported, and decides no claim", "information",
       lambda f, m: True),
)

DECIDES_ORDER = ("method", "adapter", "hyperparameters", "precision", "stopping", "reference", "probes", "attacks",
                 "evidence")


def rows(decides: str) -> tuple[Row, ...]:
    return tuple(r for r in DECISION_TABLE if r.decides == decides)


def first_row(decides: str, facts: Facts, method: str) -> Row:
    for r in rows(decides):
        if r.test(facts, method):
            return r
    raise AssertionError(f"no `{decides}` row matches")  # pragma: no cover - every group ends with a catch-all


def matching_rows(decides: str, facts: Facts, method: str) -> list[Row]:
    return [r for r in rows(decides) if r.test(facts, method)]


def decision_table_markdown() -> str:
    """The decision table as ``docs/planning.md`` shows it (generated from :data:`DECISION_TABLE`)."""
    out = ["| rule | decides | when | then | why |", "|---|---|---|---|---|"]
    for r in sorted(DECISION_TABLE, key=lambda r: (DECIDES_ORDER.index(r.decides), _row_key(r.id))):
        out.append(f"| {r.id} | {r.decides} | {r.when} | {r.then} | {r.why} |")
    return "\n".join(out) + "\n"


def method_defaults_markdown() -> str:
    """The per-method hyperparameter defaults as ``docs/planning.md`` shows them."""
    out = ["| method | max_steps | lr (full, ≤100M) | lr (full, >100M) | lr (LoRA) | batch | beta | gamma | retain_weight |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, d in METHOD_DEFAULTS.items():
        out.append(f"| `{name}` | {d.max_steps} | {d.lr_full:g} | {d.lr_full_large:g} | {d.lr_lora:g} | "
                   f"{d.batch_size} | {d.beta:g} | {d.gamma:g} | {d.retain_weight:g} |")
    return "\n".join(out) + "\n"


def _row_key(row_id: str) -> tuple[str, int]:
    head = row_id.rstrip("0123456789")
    return head, int(row_id[len(head):] or 0)


# -- entry points ----------------------------------------------------------------------------------------


def plan_file(path: Path, *, allow_infeasible: bool = False) -> tuple[Plan | None, CheckResult]:
    """Check ``path`` and lower it to a sealed plan.

    Returns ``(None, result)`` — nothing to run — when the spec has syntax or resolve errors (there is
    no checked objective to plan), or blocking feasibility errors without ``allow_infeasible``. With
    ``allow_infeasible`` the unmet claims are recorded as ``cannot_be_met`` and each affected objective
    has ``feasible: false``, so the run still measures what is measurable. The lowering's own findings
    (UL601) are added to ``result.diagnostics``, so ``plan`` shows them like any other.
    """
    result = check_file(path)
    spec = result.spec
    if spec is None or not spec.objectives or front_end_errors(result.diagnostics):
        return None, result
    extra = [d for obj in spec.objectives for d in lowering_diagnostics(obj, result.diagnostics)]
    if extra:
        result.diagnostics = sort_diagnostics([*result.diagnostics, *extra])
    if result.errors and not allow_infeasible:
        return None, result
    return lower_spec(spec, result.diagnostics, source=result.source, spec_name=path.name), result


def front_end_errors(diags: Iterable[Diagnostic]) -> bool:
    """Syntax (UL1xx) or resolve (UL2xx) errors: the typed AST is incomplete, so nothing can be planned."""
    ensure_registered()
    for d in diags:
        if d.severity != "error":
            continue
        page = REGISTRY.get(d.code)
        if page is None or page.category in ("syntax", "resolve"):
            return True
    return False


def lower_spec(spec: Spec, diagnostics: Sequence[Diagnostic], *, source: bytes, spec_name: str) -> Plan:
    """Lower a checked spec whose front end found no errors; ``diagnostics`` are all of its findings."""
    base = Path(spec.base_dir)
    objectives = [lower_objective(obj, spec, [d for d in diagnostics if d.objective in (obj.name, None)],
                                  spec_name=spec_name) for obj in spec.objectives]
    inputs: dict[str, tuple[str, set[str]]] = {}
    for obj in spec.objectives:
        for role, refs in _data_refs(obj):
            for ref in refs:
                rel = _rel(ref, base)
                sha, roles = inputs.get(rel, (None, set()))
                inputs[rel] = (sha or sha256_path(ref.resolved), roles | {role})
        for f in _reference_files(obj, base):
            sha, roles = inputs.get(f.path, (None, set()))
            inputs[f.path] = (sha or f.sha256, roles | {"reference"})
    seeds = [_seed(obj) for obj in spec.objectives]
    plan = Plan(
        tool=ToolInfo(version=__version__),
        spec=FileHash(path=spec_name, sha256=hashlib.sha256(source).hexdigest(), role="spec"),
        inputs=[FileHash(path=p, sha256=sha, role="+".join(sorted(roles))) for p, (sha, roles) in sorted(inputs.items())],
        seed=seeds[0] if seeds else 0,
        objectives=objectives,
    )
    return plan.sealed()


# -- one objective -----------------------------------------------------------------------------------------


def facts_of(obj: Objective, model: ModelRef) -> Facts:
    t = obj.target
    scope = obj.scope
    return Facts(
        goal=obj.goal.goal.value if obj.goal else "removal",
        via=obj.goal.via.value if obj.goal and obj.goal.via else None,
        kind=t.kind_value if t else "observed",
        category=t.category.value if t else "records",
        release=obj.release.mode.value if obj.release else None,
        precision=obj.release.precision.value if obj.release and obj.release.precision else None,
        claims=frozenset(c.name for c in obj.claims),
        prompts=frozenset(w.value for w in scope.prompts) if scope else frozenset(),
        exact=(obj.guarantee is not None and obj.guarantee.value == "exact") or obj.has_claim("as_if_never_trained"),
        model_kind=model.kind,
        parameters=model.parameters,
        method=obj.method.name.value if obj.method else None,
        adapter=obj.method.knobs.adapter.value if obj.method and obj.method.knobs.adapter else None,
        has_reference=obj.reference is not None,
        has_holdout=model.kind == "builtin" or bool(t and t.holdout),
        related_data=bool(obj.preserve and (obj.preserve.neighbors or obj.preserve.retain)),
    )


def method_row(obj: Objective, facts: Facts) -> tuple[Row, str, str, str]:
    """The method row that fires, and (method, family, chosen_by) as the feasibility rules plan it."""
    from unlearnspec.compiler.rules.base import planned_method

    choice = planned_method(obj, facts.builtin)
    row = first_row("method", facts, choice.method or "")
    method = choice.method or "npo"
    if row.value != "spec" and row.value != method:  # pragma: no cover - the table and planned_method disagree
        raise AssertionError(f"decision row {row.id} chooses `{row.value}`, planned_method `{method}`")
    return row, method, vocab.METHOD_FAMILY[method], choice.chosen_by


def lower_objective(obj: Objective, spec: Spec, diagnostics: Sequence[Diagnostic], *, spec_name: str) -> ObjectivePlan:
    base = Path(spec.base_dir)
    model = model_ref(obj, base)
    facts = facts_of(obj, model)
    mrow, method, family, chosen_by = method_row(obj, facts)
    data = datasets(obj, base, facts)
    reference = reference_stage(obj, facts, method)
    attribute = representation_attribute(obj, facts, base)

    # Evidence: per claim from evidence_defaults, then the side-effect checks, then the lowering's own.
    from unlearnspec.compiler.feasibility import claim_statuses

    book = _CheckBook(method=method, family=family)
    claims: list[ClaimPlan] = []
    for row in claim_statuses(obj, list(diagnostics)):
        ids = [book.add(item, row.claim, attribute) for item in row.evidence]
        args = dict(row.args)
        if row.claim == "robust_to_finetuning" and "steps" not in args:
            args["steps"] = DEFAULT_RELEARN_STEPS
        note = row.why if row.evidence else f"{row.why}; no measurement decides this claim: it stays not evaluated"
        claims.append(ClaimPlan(claim=row.claim, args=args, status=row.status, reasons=list(row.reasons),
                                checks=_unique(ids), evidence_note=note, instead=row.instead))
    no_side = "no_side_effects" in facts.claims
    side_ids: list[str] = []
    for item in side_effect_evidence(obj):
        cid = book.add(item, None, attribute)
        side_ids.append(cid)
        if no_side:
            for cp in claims:
                if cp.claim == "no_side_effects" and cid not in cp.checks:
                    cp.checks.append(cid)

    if side_ids and not no_side:
        # The `preserve` tolerance is part of what the spec asks for: it decides an implicit claim, so
        # a side effect beyond the tolerance fails the objective instead of hiding in the evidence table.
        claims.append(ClaimPlan(
            claim=TOLERANCE_CLAIM, args={}, status="supported", reasons=[], checks=_unique(side_ids),
            evidence_note="the side effects stay within the `preserve` block's stated tolerance"))
    deployment_checks(facts, book, claims)
    probes = probe_list(facts, book.probes)
    info_ids = information_checks(obj, facts, book, probes, attribute)
    attacks, attack_info = attack_list(obj, facts, book)
    for cp in claims:  # information-only checks sit beside the claims they inform, and decide nothing
        for cid, serves in [*info_ids, *attack_info]:
            if cp.claim in serves and cid not in cp.checks:
                cp.checks.append(cid)

    unlearn = unlearn_stage(obj, facts, mrow, method, family, chosen_by, model, base)
    evaluate = EvaluateStage(
        models=["original", "unlearned", "reference"] if reference.strategy != "holdout" else ["original", "unlearned"],
        probes=probes,
        representation_probe=attribute if book.uses("probe_accuracy_gap") else None,
    )
    stages: list[Stage] = [PrepareStage(), reference, unlearn, evaluate]
    if attacks:
        stages.append(AttackStage(attacks=attacks))
    stages.append(VerdictStage())

    findings = [_finding(d, spec_name) for d in sort_diagnostics(list(diagnostics))]
    feasible = not any(d.blocking for d in diagnostics)
    op = ObjectivePlan(
        objective=objective_info(obj, facts, family),
        model=model, data=data, claims=claims, checks=book.checks, findings=findings, stages=stages,
        feasible=feasible,
    )
    return op.model_copy(update={"estimate": estimate(op, obj, base)})


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def objective_info(obj: Objective, facts: Facts, family: str) -> ObjectiveInfo:
    t = obj.target
    via = facts.via
    if facts.goal == "suppression" and via is None:
        via = "system" if family == "system_suppression" else "model"
    return ObjectiveInfo(
        name=obj.name,
        title=obj.title.value if obj.title else None,
        basis=obj.basis.value if obj.basis else None,
        owner=obj.owner.value if obj.owner else None,
        goal=facts.goal,  # type: ignore[arg-type]
        suppression_via=via if facts.goal == "suppression" else None,  # type: ignore[arg-type]
        target=TargetInfo(category=facts.category, name=t.name.value if t else "", kind=facts.kind,
                          aliases=[a.value for a in t.aliases] if t else []),
        release=ReleaseInfo(mode=facts.release or "unspecified", precision=facts.precision),
        outputs=[w.value for w in obj.scope.outputs] if obj.scope else [],
        prompts=[w.value for w in obj.scope.prompts] if obj.scope else [],
    )


def _seed(obj: Objective) -> int:
    return obj.seed.as_int if obj.seed is not None else 0


# -- checks ------------------------------------------------------------------------------------------------

#: The probe each output metric reads when the evidence names none (so ids stay the same either way).
IMPLIED_PROBE: dict[str, str] = {
    "knowledge_rouge": "direct", "paraphrase_rouge": "paraphrased", "adversarial_rouge": "adversarial",
    "in_context_rouge": "in_context", "leak_rate": "direct", "refusal_rate": "direct",
}
#: Metrics read from generated outputs: with a system filter they are measured on the served system.
SERVED_METRICS = frozenset({"verbatim_rouge", "knowledge_rouge", "paraphrase_rouge", "adversarial_rouge",
                            "in_context_rouge", "leak_rate", "refusal_rate"})


class _CheckBook:
    """The objective's metric checks, deduplicated by id, in the order claims first ask for them."""

    def __init__(self, method: str, family: str) -> None:
        self.method = method
        self.family = family
        self.checks: list[MetricCheck] = []
        self._by_id: dict[str, MetricCheck] = {}
        self.probes: set[str] = set()
        self.relearn_steps: set[int] = set()
        self.relearn_related: set[int] = set()
        self.quantize: set[str] = set()

    def put(self, check: MetricCheck) -> None:
        if check.id not in self._by_id:
            self._by_id[check.id] = check
            self.checks.append(check)

    def uses(self, metric: str) -> bool:
        return any(c.metric == metric for c in self.checks)

    def add(self, item: EvidenceItem, claim: str | None, attribute: str | None, *, information: bool = False) -> str:
        """Record ``item`` as a check (``information``: measured and reported, no threshold); returns its id."""
        probe = item.probe or IMPLIED_PROBE.get(item.metric)
        params: dict[str, object] = {}
        missing = list(item.missing)
        notes = [item.note] if item.note else []
        model = "unlearned"
        if item.attack == "relearn" and item.params.get("data") == "related":
            steps = int(str(item.params.get("steps", DEFAULT_RELEARN_STEPS)))
            self.relearn_related.add(steps)
            params["steps"], params["data"] = steps, "related"
            cid, probe, model = f"{item.metric}@relearn_related", "relearn", "attacked"
        elif item.attack == "relearn":
            steps = int(str(item.params.get("steps", DEFAULT_RELEARN_STEPS)))
            self.relearn_steps.add(steps)
            params["steps"] = steps
            cid, probe, model = f"{item.metric}@relearn", "relearn", "attacked"
        elif item.attack == "quantize":
            precision = str(item.params.get("precision", "int4"))
            self.quantize.add(precision)
            params["precision"] = precision
            cid, probe, model = f"{item.metric}@quantize_{precision}", "quantize", "attacked"
        else:
            cid = f"{item.metric}@{item.dataset}"
            if item.probe and item.probe != IMPLIED_PROBE.get(item.metric):
                cid += f"/{item.probe}"
            if probe:
                self.probes.add(probe)
            if self.family == "system_suppression" and item.metric in SERVED_METRICS:
                model = "served"
        if item.metric == "membership_auc":
            params["nonmembers"] = "holdout"
        if item.metric == "probe_accuracy_gap":
            if attribute is None and "attribute" not in missing:
                missing.append("attribute")
            if attribute is not None:
                params["attribute"] = attribute
        if missing:
            from unlearnspec.compiler.evidence_defaults import missing_words

            notes.append("not measurable as planned: needs " + missing_words(missing))
        check = MetricCheck(
            id=cid, metric=item.metric, dataset=item.dataset,
            threshold=None if information else Threshold(op=item.op, value=item.value),  # type: ignore[arg-type]
            source=item.source, params=params, probe=probe, model=model,  # type: ignore[arg-type]
            note="; ".join(notes), missing=sorted(set(missing)))
        existing = self._by_id.get(cid)
        if existing is not None and information:
            return cid
        if existing is not None and existing.threshold is None:  # a deciding check replaces an informational one
            self.checks[self.checks.index(existing)] = check
            self._by_id[cid] = check
            return cid
        if existing is not None:
            if existing.threshold == check.threshold:
                return cid
            # Same measurement, another threshold (a claim's default next to another claim's spec value):
            # keep both, each deciding its own claim.
            cid = f"{cid}~{claim or 'preserve'}"
            check = check.model_copy(update={"id": cid})
            if cid in self._by_id:
                return cid
        self._by_id[cid] = check
        self.checks.append(check)
        return cid


REMOVAL_CLAIMS = frozenset({"removed", "as_if_never_trained"})
OUTPUT_CLAIMS = frozenset({"not_generated", "not_generated_similar", "robust_to_prompting"})
PROBE_METRIC = {"direct": "knowledge_rouge", "paraphrased": "paraphrase_rouge", "adversarial": "adversarial_rouge",
                "in_context": "in_context_rouge"}


def deployment_checks(facts: Facts, book: _CheckBook, claims: list[ClaimPlan]) -> None:
    """A3: when the model is released below fp32, the released artifact is the quantized model, so
    every deciding check of the unlearned (or served) model is measured again on it, with the same
    threshold, and decides the same claims (Zhang et al., arXiv:2410.16454: evaluate at deployment
    precision). The twin's id is the check's id plus ``@quantize_<precision>``."""
    p = facts.precision
    if p in (None, "fp32"):
        return
    book.quantize.add(str(p))
    for mc in list(book.checks):
        if mc.model == "attacked" or mc.threshold is None or mc.missing:
            continue
        twin_id = f"{mc.id}@quantize_{p}"
        params: dict[str, object] = {**mc.params, "precision": p}
        if mc.probe:
            params["probe"] = mc.probe
        if mc.model == "served":
            params["served"] = True
        note = f"A3: measured again at the release precision {p}: the released model is the quantized one"
        twin = mc.model_copy(update={"id": twin_id, "model": "attacked", "probe": "quantize", "params": params,
                                     "note": f"{mc.note}; {note}" if mc.note else note})
        book.put(twin)
        for cp in claims:
            if mc.id in cp.checks and twin_id not in cp.checks:
                cp.checks.insert(cp.checks.index(mc.id) + 1, twin_id)


def information_checks(obj: Objective, facts: Facts, book: _CheckBook, probes: Sequence[Probe],
                       attribute: str | None) -> list[tuple[str, frozenset[str]]]:
    """E3 and E6: checks measured for information, with the claims they sit beside.

    A probe the scope asks for but no claim's evidence reads is still worth its generation pass: its
    knowledge ROUGE is reported (E6). A `removed` claim whose evidence has no representation probe
    gets one for information (E3): output metrics alone cannot tell removal from suppression.
    """
    out: list[tuple[str, frozenset[str]]] = []
    if "removed" in facts.claims and not book.uses("probe_accuracy_gap"):
        cid = book.add(information_item(
            obj, "probe_accuracy_gap", "E3: a linear probe on hidden states against the reference, measured for "
            "information (the claim's evidence does not include it)"), None, attribute, information=True)
        out.append((cid, frozenset({"removed"})))
    dataset = "test" if obj.target is not None and obj.target.test else "forget"
    for pr in probes:
        if pr.name in book.probes:
            continue
        cid = book.add(information_item(
            obj, PROBE_METRIC[pr.name], f"E6: no claim's evidence reads the `{pr.name}` probe; its knowledge ROUGE is "
            "measured for information", dataset=dataset, probe=pr.name), None, attribute, information=True)
        out.append((cid, OUTPUT_CLAIMS))
    return out


def information_item(obj: Objective, metric: str, note: str, *, dataset: str = "forget", probe: str | None = None,
                     attack: str | None = None, params: dict[str, object] | None = None) -> EvidenceItem:
    """An evidence item measured for information only (its threshold is dropped when it is booked)."""
    from unlearnspec.compiler.evidence_defaults import DEFAULT_THRESHOLDS, missing_needs

    op, value, _ = DEFAULT_THRESHOLDS[metric]
    missing, stand_in = missing_needs(obj, metric, dataset)
    return EvidenceItem(metric=metric, op=op, value=value, source="default", dataset=dataset, probe=probe,
                        attack=attack, params=params or {}, note=f"{note}; {stand_in}" if stand_in else note,  # type: ignore[arg-type]
                        missing=missing)


def representation_attribute(obj: Objective, facts: Facts, base: Path) -> str | None:
    """The labelled fact the representation probe predicts: the target's, or the built-in person's.

    ``None`` (the probe's check is then not measurable) when no forget record carries the attribute.
    """
    t = obj.target
    if t is None:
        return None
    attribute = t.attribute.value if t.attribute is not None else None
    if attribute is None and facts.builtin and facts.category in ("person", "records"):
        attribute = BUILTIN_ATTRIBUTE
    if attribute is None:
        return None
    for ref in t.forget:
        if any(attribute in r.attributes for r in _records(_rel(ref, base), base)):
            return attribute
    return None


# -- probes and attacks -------------------------------------------------------------------------------------


def probe_list(facts: Facts, demanded: set[str]) -> list[Probe]:
    names: set[str] = set()
    for r in matching_rows("probes", facts, ""):
        if r.value == "evidence":
            names |= demanded
        else:
            names.add(r.value)
    order = [p for p in vocab.PROMPTS if p != "any"]
    return [Probe(name=n, templates=list(ADVERSARIAL_TEMPLATES) if n == "adversarial" else [],
                  description=PROBE_DESCRIPTIONS[n]) for n in order if n in names]


RELEARN_CLAIMS = REMOVAL_CLAIMS | {"robust_to_finetuning"}


def attack_list(obj: Objective, facts: Facts,
                book: _CheckBook) -> tuple[list[RelearnAttack | QuantizeAttack], list[tuple[str, frozenset[str]]]]:
    """The attacks (relearn first, then quantize from high to low precision) and the information-only
    checks they add, each with the claims it sits beside."""
    seed = _seed(obj)
    info: list[tuple[str, frozenset[str]]] = []
    fired = {r.id for r in matching_rows("attacks", facts, "")}
    if "A2" in fired and not book.relearn_steps:
        info.append((book.add(information_item(
            obj, "relearn_recovery", "A2: the weights leave the deployer's control, so whoever holds them can "
            "fine-tune; measured for information (claim `robust_to_finetuning` would make it decide)",
            attack="relearn", params={"steps": DEFAULT_RELEARN_STEPS}), None, None, information=True), REMOVAL_CLAIMS))
    if "A5" in fired:
        for steps in sorted(book.relearn_steps):
            info.append((book.add(information_item(
                obj, "relearn_recovery", f"A5: relearning for {steps} steps on related but disjoint data (the "
                "neighbours, else the retain set) instead of the forget set; measured for information",
                attack="relearn", params={"steps": steps, "data": "related"}), None, None, information=True),
                RELEARN_CLAIMS))
    recovery_at = {c.params.get("precision") for c in book.checks if c.metric == "quantization_recovery"}
    if "A3" in fired and facts.precision is not None and facts.precision not in recovery_at:
        info.append((book.add(information_item(
            obj, "quantization_recovery", f"A3: the model is released at {facts.precision}; measured for "
            "information (claim `robust_to_quantization` would make it decide)",
            attack="quantize", params={"precision": facts.precision}), None, None, information=True), REMOVAL_CLAIMS))
    attacks: list[RelearnAttack | QuantizeAttack] = [RelearnAttack(steps=s, seed=seed) for s in sorted(book.relearn_steps)]
    attacks.extend(RelearnAttack(steps=s, seed=seed, data="related") for s in sorted(book.relearn_related))
    order = [p for p in vocab.PRECISIONS if p != "fp32"]
    attacks.extend(QuantizeAttack(precision=p) for p in order if p in book.quantize)  # type: ignore[arg-type]
    return attacks, info


# -- stages -------------------------------------------------------------------------------------------------


def reference_stage(obj: Objective, facts: Facts, method: str) -> ReferenceStage:
    row = first_row("reference", facts, method)
    if row.value == "model":
        assert obj.reference is not None
        return ReferenceStage(strategy="model", model=obj.reference.value,
                              description=f"{row.id}: the reference model `{obj.reference.value}` named in the spec, "
                                          "retrained without the forget set by the owner of the training pipeline")
    if row.value == "retrain":
        same = " (the same model the `retrain` method produces)" if method == "retrain" else ""
        return ReferenceStage(strategy="retrain", recipe=builtin_recipe(),
                              description=f"{row.id}: retrain the built-in recipe without the forget set{same}")
    has = bool(obj.target and obj.target.holdout)
    what = ("the target's holdout data stands in for data never trained on" if has
            else "no holdout data: checks that need a reference or non-members are not measurable")
    return ReferenceStage(strategy="holdout", description=f"{row.id}: holdout-calibrated; {what}")


def unlearn_stage(obj: Objective, facts: Facts, mrow: Row, method: str, family: str, chosen_by: str,
                  model: ModelRef, base: Path) -> UnlearnStage:
    knobs = obj.method.knobs if obj.method else None
    arow = first_row("adapter", facts, method)
    hrow = first_row("hyperparameters", facts, method)
    prow = first_row("precision", facts, method)
    srow = first_row("stopping", facts, method)
    seed = knobs.seed.as_int if knobs and knobs.seed is not None else _seed(obj)

    adapter = "full"
    lora: LoraConfig | None = None
    if arow.value == "lora" or (arow.value == "spec" and facts.adapter == "lora"):
        adapter = "lora"
        rank = knobs.lora_rank.as_int if knobs and knobs.lora_rank is not None else DEFAULT_LORA.rank
        lora = LoraConfig(rank=rank, alpha=2 * rank, dropout=DEFAULT_LORA.dropout)

    kw: dict[str, Any] = {}
    if hrow.value == "recipe":
        from unlearnspec.builtin.recipe import RECIPE

        train = RECIPE["train"]
        kw = {"max_steps": _recipe_steps(), "learning_rate": float(train["learning_rate"]),
              "batch_size": int(train["batch_size"]), "retain_weight": 0.0}
    elif hrow.value == "none":
        kw = {"max_steps": 0, "learning_rate": 0.0, "retain_weight": 0.0}
    else:
        d = METHOD_DEFAULTS[method]
        lr = d.lr_lora if adapter == "lora" else (d.lr_full_large if hrow.value == "large" else d.lr_full)
        kw = {"max_steps": d.max_steps, "learning_rate": lr, "batch_size": d.batch_size, "beta": d.beta,
              "gamma": d.gamma, "retain_weight": d.retain_weight}
        if method == "rmu":
            layers = model_layers(obj, model, base)
            kw["rmu_layer"] = layers // 2 if layers else None
    if knobs is not None and hrow.value not in ("recipe", "none"):
        for name, attr in (("max_steps", "steps"), ("learning_rate", "learning_rate"), ("batch_size", "batch_size"),
                           ("beta", "beta"), ("retain_weight", "retain_weight")):
            v = getattr(knobs, attr)
            if v is not None:
                kw[name] = v.as_int if name in ("max_steps", "batch_size") else float(v.value)

    if srow.value == "holdout_loss":
        stopping = HOLDOUT_STOPPING
    else:
        stopping = StoppingRule(kind="fixed_steps", ratio=HOLDOUT_STOPPING.ratio, check_every=HOLDOUT_STOPPING.check_every)

    named = {"max_steps": "steps", "learning_rate": "learning_rate", "batch_size": "batch_size", "beta": "beta",
             "retain_weight": "retain_weight"}
    overridden = [k for k, attr in named.items() if knobs is not None and getattr(knobs, attr) is not None]
    rationale = [f"{mrow.id}: {mrow.then.replace('`', '')} — {mrow.why}"
                 if chosen_by == "compiler" else f"{mrow.id}: `{method}` is named in the spec and honoured"]
    rationale.append(f"{arow.id}: {arow.then}" + ("" if arow.value != "spec" else f" ({adapter})"))
    rationale.append(f"{hrow.id}: {hrow.then}" + (f" — the spec sets {', '.join(overridden)}" if overridden else ""))
    rationale.append(f"{prow.id}: {prow.then}")
    rationale.append(f"{srow.id}: {srow.then}")
    return UnlearnStage(
        method=method, family=family, chosen_by=chosen_by,  # type: ignore[arg-type]
        rationale="; ".join(rationale), adapter=adapter, lora=lora,  # type: ignore[arg-type]
        stopping=stopping, train_precision=prow.value, seed=seed, **kw)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def builtin_recipe() -> dict[str, object]:
    """The built-in recipe with the corpus hash and the overall hash (built once per process)."""
    from unlearnspec.builtin.recipe import recipe_with_hash

    return recipe_with_hash()


@functools.lru_cache(maxsize=1)
def _builtin_corpus() -> Any:
    from unlearnspec.builtin.corpus import build_corpus

    return build_corpus()


def _recipe_steps() -> int:
    """Optimizer steps of the built-in recipe over the full corpus (an upper bound for the retrain)."""
    from unlearnspec.builtin.corpus import training_texts
    from unlearnspec.builtin.recipe import RECIPE

    train = RECIPE["train"]
    texts = training_texts(corpus=_builtin_corpus())
    return int(train["epochs"]) * math.ceil(len(texts) / int(train["batch_size"]))


# -- data and hashes ----------------------------------------------------------------------------------------


def _rel(ref: PathRef, base: Path) -> str:
    """A data path as the plan stores it: relative to the spec's folder, with forward slashes."""
    raw = ref.raw.replace("\\", "/")
    if not posixpath.isabs(raw) and not raw.startswith("~"):
        return posixpath.normpath(raw)
    try:
        return Path(os.path.relpath(ref.resolved, base)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(ref.resolved).as_posix()


def _data_refs(obj: Objective) -> list[tuple[str, list[PathRef]]]:
    t, p = obj.target, obj.preserve
    return [("forget", t.forget if t else []), ("retain", p.retain if p else []),
            ("neighbors", p.neighbors if p else []), ("holdout", t.holdout if t else []),
            ("test", t.test if t else [])]


def datasets(obj: Objective, base: Path, facts: Facts) -> DataSets:
    refs = dict(_data_refs(obj))
    holdout = [_rel(r, base) for r in refs["holdout"]]
    if not holdout and facts.builtin:
        holdout = [BUILTIN_HOLDOUT]
    calibration, evaluation = split_holdout([r for p in holdout for r in _records(p, base)], seed=_seed(obj))
    return DataSets(forget=[_rel(r, base) for r in refs["forget"]], retain=[_rel(r, base) for r in refs["retain"]],
                    neighbors=[_rel(r, base) for r in refs["neighbors"]], holdout=holdout,
                    test=[_rel(r, base) for r in refs["test"]], holdout_calibration=calibration,
                    holdout_evaluation=evaluation)


def model_kind(value: str, base: Path) -> str:
    """How a model string is loaded — the same test the resolve pass applies."""
    if value.startswith("builtin:"):
        return "builtin"
    if value.startswith((".", "/", "~")) or (base / value).exists():
        return "local"
    return "hub"


def _local_dir(value: str, base: Path) -> Path:
    return Path(os.path.expanduser(value)) if value.startswith("~") else base / value


def _folder_files(folder: Path, base: Path) -> list[FileHash]:
    out = []
    for f in sorted(x for x in folder.rglob("*") if x.is_file()):
        try:
            rel = Path(os.path.relpath(f, base)).as_posix()
        except ValueError:
            rel = f.as_posix()
        out.append(FileHash(path=rel, sha256=sha256_path(f), role="model"))
    return out


def folder_sha256(folder: Path, files: Sequence[FileHash], base: Path) -> str:
    """:func:`unlearnspec.records.sha256_path` of ``folder``, from its files' hashes (each file read once)."""
    h = hashlib.sha256()
    for fh in files:
        f = (base / fh.path) if not Path(fh.path).is_absolute() else Path(fh.path)
        h.update(f.resolve().relative_to(folder.resolve()).as_posix().encode() + b"\0")
        h.update(bytes.fromhex(fh.sha256))
    return h.hexdigest()


def model_ref(obj: Objective, base: Path) -> ModelRef:
    value = obj.model.value if obj.model else "builtin:tiny-bios"
    kind = model_kind(value, base)
    if kind == "builtin":
        recipe = builtin_recipe()
        return ModelRef(source=value, kind="builtin", sha256=str(recipe["recipe_hash"]), recipe=recipe,
                        parameters=builtin_parameters(),
                        note="the built-in model is pinned by its recipe and corpus; the runtime builds it from them")
    if kind == "local":
        folder = _local_dir(value, base)
        if not folder.is_dir():  # only reachable under --allow-infeasible with a broken spec
            return ModelRef(source=value, kind="local", note="model folder not found at plan time")
        files = _folder_files(folder, base)
        return ModelRef(source=value, kind="local", sha256=folder_sha256(folder, files, base), files=files,
                        parameters=local_parameters(folder))
    return ModelRef(source=value, kind="hub", sha256=None,
                    note="a hub id cannot be pinned offline at plan time: the plan records no hash for it; download "
                         "the model to a folder and name the folder to pin its files")


def _reference_files(obj: Objective, base: Path) -> list[FileHash]:
    if obj.reference is None:
        return []
    value = obj.reference.value
    if model_kind(value, base) != "local":
        return []
    folder = _local_dir(value, base)
    if not folder.is_dir():
        return []
    return [f.model_copy(update={"role": "reference"}) for f in _folder_files(folder, base)]


# -- model size --------------------------------------------------------------------------------------------


def builtin_parameters() -> int:
    from unlearnspec.builtin.recipe import RECIPE

    m, tok = RECIPE["model"], RECIPE["tokenizer"]
    d, layers, vocab_size, pos = int(m["n_embd"]), int(m["n_layer"]), int(tok["vocab_size"]), int(m["n_positions"])
    return _transformer_parameters(d, layers, vocab_size, 4 * d) + pos * d


def _transformer_parameters(d: int, layers: int, vocab_size: int, ff: int) -> int:
    """Weights of a decoder-only transformer: attention 4d², MLP 2·d·ff, tied embeddings V·d (biases ignored)."""
    return layers * (4 * d * d + 2 * d * ff) + vocab_size * d


def local_parameters(folder: Path) -> int | None:
    """Parameter count from the safetensors headers (exact), else from config.json (approximate)."""
    total = 0
    found = False
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with f.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n > 100_000_000:
                    continue
                header = json.loads(fh.read(n))
        except (OSError, ValueError, struct.error):
            continue
        for name, t in header.items():
            if name == "__metadata__" or not isinstance(t, dict):
                continue
            shape = t.get("shape") or []
            total += math.prod(int(s) for s in shape)
            found = True
    if found:
        return total
    cfg = _config(folder)
    d = _first_int(cfg, "hidden_size", "n_embd", "d_model")
    layers = _first_int(cfg, "num_hidden_layers", "n_layer", "num_layers")
    v = _first_int(cfg, "vocab_size")
    if not (d and layers and v):
        return None
    ff = _first_int(cfg, "intermediate_size", "n_inner", "ffn_dim") or 4 * d
    return _transformer_parameters(d, layers, v, ff)


def model_layers(obj: Objective, model: ModelRef, base: Path) -> int | None:
    """Decoder layers of the model when the plan can know them (RMU steers the middle one)."""
    if model.kind == "builtin":
        from unlearnspec.builtin.recipe import RECIPE

        return int(RECIPE["model"]["n_layer"])
    if model.kind == "local" and obj.model is not None:
        return _first_int(_config(_local_dir(obj.model.value, base)), "num_hidden_layers", "n_layer", "num_layers")
    return None


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _first_int(cfg: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


# -- findings --------------------------------------------------------------------------------------------


def lowering_diagnostics(obj: Objective, diagnostics: Sequence[Diagnostic] = ()) -> list[Diagnostic]:
    """UL601 for each claim the method's family cannot serve, unless a feasibility error already says so."""
    from unlearnspec.compiler.evidence_defaults import is_builtin
    from unlearnspec.compiler.rules.base import planned_method

    choice = planned_method(obj, is_builtin(obj))
    table = CANNOT_SERVE.get(choice.family or "", {})
    from unlearnspec.compiler.feasibility import concerns

    errors = [d for d in diagnostics if d.severity == "error" and d.objective == obj.name]
    out: list[Diagnostic] = []
    for c in obj.claims:
        why = table.get(c.name)
        if why is None or any(concerns(d, c.name) for d in errors):
            continue
        labels = [Label(span=obj.method.name.span, message=f"`{choice.method}` is named here")] if obj.method else []
        how = f"`{choice.method}`" + (" (chosen by the compiler)" if choice.chosen_by == "compiler" else "")
        out.append(Diagnostic(
            code=UL601.code, severity=UL601.severity, span=c.span, labels=labels, objective=obj.name, claim=c.name,
            message=f"method {how} cannot serve claim `{c.name}`: {why}",
            help=[f"drop claim `{c.name}`, or write a removal objective (`goal removal`, `method npo`) if the "
                  "information must leave the weights"]))
    return out


def _finding(d: Diagnostic, spec_name: str) -> PlanFinding:
    """A diagnostic as the plan records it: the location by spec file name, never a working-directory path."""
    return PlanFinding(code=d.code, severity=d.severity, message=d.message, claim=d.claim, help=list(d.help),
                       accepted=d.accepted, justification=d.justification,
                       location=f"{spec_name}:{d.span.line}:{d.span.column}")


# -- estimate --------------------------------------------------------------------------------------------

#: Documented per-step constants of the rough wall-time estimate (docs/planning.md, "Estimate").
#: Calibrated on the built-in model (about 1M parameters), whose recipe trains in about half a minute
#: on two CPU cores; a GPU is assumed to sustain a fixed fraction of an H100's fp32/tf32 rate.
CPU_FLOPS = 5e10
GPU_FLOPS = 5e13
CPU_STEP_OVERHEAD_S = 0.02
GPU_STEP_OVERHEAD_S = 0.02
CPU_LOAD_BYTES_PER_S = 2e8
GPU_LOAD_BYTES_PER_S = 1e9
CPU_STARTUP_S = 2.0
GPU_STARTUP_S = 10.0
TOKENS_PER_CHAR = 0.3
MIN_TOKENS, MAX_TOKENS = 8, 256


@dataclass
class _Workload:
    """What the plan makes the model do, in items and tokens (device-independent)."""

    parameters: int
    train: list[tuple[int, int, int, float]] = field(default_factory=list)  # (steps, batch, tokens, flops/param/token)
    forward: list[tuple[int, int]] = field(default_factory=list)  # (items, tokens)
    generate: list[int] = field(default_factory=list)  # items generated (each max_new_tokens long)
    loads: int = 0

    def seconds(self, flops: float, overhead: float, load_rate: float, startup: float, eval_batch: int,
                new_tokens: int) -> float:
        p = self.parameters
        t = startup + self.loads * (4 * p / load_rate)
        for steps, batch, tokens, k in self.train:
            t += steps * (overhead + k * p * batch * tokens / flops)
        for items, tokens in self.forward:
            t += math.ceil(items / eval_batch) * overhead + 2 * p * items * tokens / flops
        for items in self.generate:
            t += math.ceil(items / eval_batch) * new_tokens * overhead + 2 * p * items * new_tokens / flops
        return t


def _records(path: str, base: Path) -> list[Record]:
    if path == BUILTIN_HOLDOUT:
        return list(_builtin_corpus().holdout)
    p = base / path
    if p.is_dir():
        return []
    try:
        return read_records(p)
    except (OSError, DataFormatError):
        return []


def _shape(paths: Sequence[str], base: Path) -> tuple[int, int, int, int]:
    """(texts, mean tokens per text, QA records, paraphrases) of a data set."""
    recs = [r for p in paths for r in _records(p, base)]
    texts = [t for r in recs for t in r.training_texts()]
    tokens = (sum(len(t) for t in texts) / len(texts) * TOKENS_PER_CHAR) if texts else 32
    tokens = int(min(max(tokens, MIN_TOKENS), MAX_TOKENS))
    return len(texts), tokens, sum(r.is_qa for r in recs), sum(len(r.paraphrases) for r in recs if r.is_qa)


def estimate(op: ObjectivePlan, obj: Objective, base: Path) -> Estimate | None:
    """Rough CPU and GPU seconds for the objective's stages, as an upper bound (every step runs).

    Training costs 6·P·tokens FLOPs a step (4·P with LoRA: no weight gradients for the frozen
    matrices), a forward pass 2·P·tokens, a generated token 2·P plus a per-step overhead; the
    constants above turn FLOPs into seconds. ``None`` when the model's size is unknown (a hub id).
    """
    p = op.model.parameters
    if not p:
        return None
    d = op.data
    shapes = {role: _shape(getattr(d, role), base) for role in ("forget", "retain", "neighbors", "holdout", "test")}
    work = _Workload(parameters=p, loads=1)
    ref = next(s for s in op.stages if isinstance(s, ReferenceStage))
    unl = next(s for s in op.stages if isinstance(s, UnlearnStage))
    ev = next(s for s in op.stages if isinstance(s, EvaluateStage))
    atk = next((s for s in op.stages if isinstance(s, AttackStage)), None)
    f_n, f_tok, f_qa, f_para = shapes["forget"]
    recipe_steps = 0
    recipe = _Workload(parameters=p)  # the built-in recipe always trains on CPU (bit-identical weights)
    if op.model.kind == "builtin" and (ref.strategy == "retrain" or unl.method == "retrain"):
        from unlearnspec.builtin.recipe import RECIPE

        recipe_steps = _recipe_steps()
        recipe.train.append((recipe_steps, int(RECIPE["train"]["batch_size"]), 48, 6.0))
    if ref.strategy == "model":
        work.loads += 1
    if unl.method not in ("retrain", "filter"):
        k = 4.0 if unl.adapter == "lora" else 6.0
        batches = 2 if unl.retain_weight > 0 and d.retain else 1
        work.train.append((unl.max_steps, unl.batch_size * batches, f_tok, k))
        if unl.stopping.kind == "holdout_loss":
            checks = unl.max_steps // max(unl.stopping.check_every, 1)
            work.forward.append((checks * f_n, f_tok))
            work.forward.append((shapes["holdout"][0], shapes["holdout"][1]))
    # Evaluation: each evaluated model scores every data set and answers every probe.
    per_model_gen = 0
    templates = next((len(pr.templates) for pr in ev.probes if pr.name == "adversarial"), 0)
    for pr in ev.probes:
        per_model_gen += {"direct": f_qa, "paraphrased": f_para, "adversarial": f_qa * templates,
                          "in_context": f_qa}.get(pr.name, 0)
    per_model_gen += f_n + shapes["retain"][2] + shapes["neighbors"][2] + shapes["test"][2]
    for _ in ev.models:
        for role in ("forget", "retain", "neighbors", "holdout", "test"):
            n, tok, _, _ = shapes[role]
            work.forward.append((n, tok))
        work.generate.append(per_model_gen)
    if atk is not None:
        for a in atk.attacks:
            if isinstance(a, RelearnAttack):
                work.train.append((a.steps, a.batch_size, f_tok, 6.0))
            work.forward.append((f_n, f_tok))
            work.generate.append(f_qa + f_n)
    on_cpu = recipe.seconds(CPU_FLOPS, CPU_STEP_OVERHEAD_S, CPU_LOAD_BYTES_PER_S, 0.0, ev.eval_batch_size,
                            ev.max_new_tokens)
    cpu = on_cpu + work.seconds(CPU_FLOPS, CPU_STEP_OVERHEAD_S, CPU_LOAD_BYTES_PER_S, CPU_STARTUP_S,
                                ev.eval_batch_size, ev.max_new_tokens)
    gpu = on_cpu + work.seconds(GPU_FLOPS, GPU_STEP_OVERHEAD_S, GPU_LOAD_BYTES_PER_S, GPU_STARTUP_S,
                                ev.eval_batch_size, ev.max_new_tokens)
    size = f"{p / 1e6:.1f}M" if p < 1e9 else f"{p / 1e9:.1f}B"
    basis = (f"upper bound (every step of max_steps, every probe) for a {size}-parameter model: training "
             f"6·P·tokens FLOPs a step (4·P with LoRA), forward 2·P·tokens, at {CPU_FLOPS:.0e} FLOP/s on CPU and "
             f"{GPU_FLOPS:.0e} FLOP/s on one GPU, plus per-step overheads of {CPU_STEP_OVERHEAD_S * 1000:g} ms / "
             f"{GPU_STEP_OVERHEAD_S * 1000:g} ms")
    if recipe_steps:
        basis += f"; includes retraining the built-in recipe ({recipe_steps} steps, always on CPU)"
    return Estimate(cpu_seconds=float(math.ceil(cpu)), gpu_seconds=float(math.ceil(gpu)), basis=basis)
