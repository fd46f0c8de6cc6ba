"""The decision table: goal × target kind × release × claims → method, adapter, hyperparameters, reference,
stopping, probes, attacks, evidence; and the facts of an objective its rows read.

It is data: the lowering evaluates its rows and records which row fired in each stage's rationale, the
analyse pass takes the method from its method rows (:func:`choose_method`, the one place the method is
chosen), and ``docs/planning.md`` shows the same rows (a test checks the doc against
:func:`decision_table_markdown`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from unlearnspec import catalog
from unlearnspec.catalog import (
    LORA_MIN_PARAMETERS,
    METHODS,
    UNKNOWN,
)
from unlearnspec.compiler.ast import Objective
from unlearnspec.markdown import template_environment


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
    audit: bool = False  # `unlearned`: a given checkpoint is audited, nothing is unlearned here

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
    # -- method (the one place it is chosen: choose_method; the feasibility rules judge the same choice) --
    _r("M0", "method", "the spec names an `unlearned` checkpoint to audit", "the method as stated (`unknown` when "
       "the spec names none); nothing is unlearned here: the plan has no unlearn stage",
       "the vendor ran the method; the rules judge it as stated, and `unknown` as a method that is neither exact "
       "nor ruled out for any claim (docs/models.md)", "given", lambda f, m: f.audit),
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
       "set's facts (20 when the claim gives none), at a learning rate for the model's size; measured on the other "
       "facts' questions", "a few steps restore unlearned knowledge (Hu et al., arXiv:2406.13356)",
       "relearn", lambda f, m: "robust_to_finetuning" in f.claims),
    _r("A2", "attacks", "goal `removal`, release `open_weights` or `on_device`, no A1",
       "relearn: 20 steps; measured for information", "whoever holds the weights can fine-tune them",
       "relearn", lambda f, m: f.goal == "removal" and f.weights_leave and "robust_to_finetuning" not in f.claims),
    _r("A5", "attacks", "a relearning attack (A1 or A2), and `preserve` gives `neighbors` or `retain` data",
       "relearn also on related but disjoint data — the neighbours, else the retain set — for the same steps; "
       "each deciding relearning check is measured again after it and decides the same claim (without "
       "`robust_to_finetuning`, its recovery is measured for information)",
       "fine-tuning on small, even unrelated, data restores 'unlearned' knowledge (Hu et al., arXiv:2406.13356; "
       "Łucki et al., arXiv:2409.18025)", "relearn",
       lambda f, m: f.related_data and ("robust_to_finetuning" in f.claims
                                        or (f.goal == "removal" and f.weights_leave))),
    _r("A3", "attacks", "release precision below fp32 (`bf16`, `fp16`, `int8`, `int4`)",
       "quantize to the release precision; every deciding check is measured again on the quantized model, against "
       "the reference quantized alike, and decides its claims too (the released artifact is the quantized model)",
       "quantization restores forgotten knowledge; evaluate at deployment precision (Zhang et al., "
       "arXiv:2410.16454)", "quantize", lambda f, m: f.precision not in (None, "fp32")),
    _r("A4", "attacks", "claim `robust_to_quantization`",
       "quantize at the release precision and at int8 and int4 below it (int8 and int4 from fp32)",
       "4-bit quantization restored 83% of forgotten knowledge (Zhang et al.)", "quantize",
       lambda f, m: "robust_to_quantization" in f.claims),
    _r("A6", "attacks", "release `open_weights` or `on_device`",
       "quantize to int8 and int4 below the release precision; measured for information where no claim decides it",
       "whoever holds the weights can quantize them, and 4-bit quantization restored 'forgotten' knowledge "
       "(Zhang et al., arXiv:2410.16454)", "quantize", lambda f, m: f.weights_leave),
    # -- evidence (additive) --
    _r("E1", "evidence", "every claim", "its checks: the spec's thresholds for the metrics of its evidence family, "
       "else the documented defaults (evidence_defaults)", "what the compiler judges is what the plan measures",
       "claims", lambda f, m: True),
    _r("E2", "evidence", "`preserve` names retain or neighbour data", "utility-drop checks with the `utility` "
       "tolerance (5% when none); they decide the implied `side_effects_within_tolerance`", "side effects are inherent; "
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


def probe_names(facts: Facts, demanded: set[str]) -> set[str]:
    """The probes a plan runs (rows P1-P5): those the scope asks for, and ``demanded``, the ones a claim's
    evidence reads."""
    names: set[str] = set()
    for r in matching_rows("probes", facts, ""):
        names |= demanded if r.value == "evidence" else {r.value}
    return names


def decision_table_markdown() -> str:
    """The decision table as ``docs/planning.md`` shows it (generated from :data:`DECISION_TABLE` by
    ``templates/planning_tables.md.j2``)."""
    rows = sorted(DECISION_TABLE, key=lambda r: (DECIDES_ORDER.index(r.decides), _row_key(r.id)))
    return _planning_table("decision_table", rows=rows)


def method_defaults_markdown() -> str:
    """The per-method hyperparameter defaults as ``docs/planning.md`` shows them (``templates/planning_tables.md.j2``)."""
    return _planning_table("method_defaults", methods=[m for m in METHODS.values() if m.defaults is not None])


def _planning_table(name: str, **context: object) -> str:
    template = template_environment("unlearnspec.compiler").get_template("planning_tables.md.j2")
    return str(getattr(template.make_module(), name)(**context))


def _row_key(row_id: str) -> tuple[str, int]:
    head = row_id.rstrip("0123456789")
    return head, int(row_id[len(head):] or 0)


def model_kind(value: str, base: Path) -> str:
    """How a model string is loaded — the same test the resolve pass applies."""
    if value.startswith("builtin:"):
        return "builtin"
    if value.startswith((".", "/", "~")) or (base / value).exists():
        return "local"
    return "hub"


def facts_of(obj: Objective, model_kind: str, parameters: int | None = None) -> Facts:
    """The facts of ``obj`` (``parameters``: the model's size, known once the lowering has read its files)."""
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
        model_kind=model_kind,
        parameters=parameters,
        method=obj.method.name.value if obj.method else None,
        adapter=obj.method.knobs.adapter.value if obj.method and obj.method.knobs.adapter else None,
        has_reference=obj.reference is not None,
        has_holdout=model_kind == "builtin" or bool(t and t.holdout),
        related_data=bool(obj.preserve and (obj.preserve.neighbors or obj.preserve.retain)),
        audit=obj.unlearned is not None,
    )


@dataclass(frozen=True)
class MethodChoice:
    """The unlearning method an objective will run, who chose it, and the method row (M1-M5) that decided.

    The one place the method is chosen: the analyse pass, the feasibility rules and the lowering all read
    it. ``method`` and ``family`` are None only when the spec names neither a method nor a goal.
    """

    method: str | None
    family: str | None  # catalog.FAMILIES key
    chosen_by: str  # "spec" | "compiler"
    row: Row | None = None

    @property
    def rationale(self) -> str:
        if self.row is None:
            return "no goal"
        if self.row.value == "given":
            return "as stated for the audited checkpoint" if self.method != UNKNOWN else "not stated"
        return "named in the spec" if self.chosen_by == "spec" else self.row.why


def choose_method(facts: Facts, *, has_goal: bool = True) -> MethodChoice:
    """The method rows' decision: the spec's method (M1), else the first matching row of M2-M5."""
    if facts.method is None and not has_goal:
        return MethodChoice(None, None, "compiler")
    row = first_row("method", facts, "")
    if row.value == "given":  # an audit: the method as the vendor stated it, else unknown
        stated = facts.method or UNKNOWN
        return MethodChoice(stated, catalog.family_of(stated), "spec", row)
    if row.value == "spec":
        assert facts.method is not None
        return MethodChoice(facts.method, catalog.family_of(facts.method), "spec", row)
    return MethodChoice(row.value, catalog.family_of(row.value), "compiler", row)


def planned_method(obj: Objective, builtin: bool) -> MethodChoice:
    """:func:`choose_method` for ``obj`` (``builtin``: its model is the built-in one), as the rules read it."""
    return choose_method(facts_of(obj, "builtin" if builtin else "local"), has_goal=obj.goal is not None)
