"""The plan's stages for one objective: the reference, the unlearning stage and its hyperparameters, the data
sets, the representation probe's attribute, and the objective's description."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from unlearnspec.builtin.recipe import RECIPE, RECIPES
from unlearnspec.catalog import (
    DEFAULT_LORA,
    METHODS,
)
from unlearnspec.catalog.methods import KNOB_FIELDS, rmu_layer
from unlearnspec.compiler.ast import Objective, PathRef
from unlearnspec.compiler.datafiles import BUILTIN_HOLDOUT, holdout_split
from unlearnspec.compiler.decisions import Facts, Row, first_row
from unlearnspec.compiler.models import builtin_recipe, model_layers, recipe_steps
from unlearnspec.markdown import code_span
from unlearnspec.plan import (
    DataSets,
    LoraConfig,
    ModelRef,
    ObjectiveInfo,
    ReferenceStage,
    ReleaseInfo,
    StoppingRule,
    TargetInfo,
    UnlearnStage,
)

HOLDOUT_STOPPING = StoppingRule(kind="holdout_loss")




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
        guarantee=obj.guarantee.value if obj.guarantee else None,
        suppression_via=via if facts.goal == "suppression" else None,  # type: ignore[arg-type]
        target=TargetInfo(category=facts.category, name=t.name.value if t else "", kind=facts.kind,
                          aliases=[a.value for a in t.aliases] if t else []),
        release=ReleaseInfo(mode=facts.release or "unspecified", precision=facts.precision),
        outputs=[w.value for w in obj.scope.outputs] if obj.scope else [],
        prompts=[w.value for w in obj.scope.prompts] if obj.scope else [],
    )


def seed_of(obj: Objective) -> int:
    return obj.seed.as_int if obj.seed is not None else 0


def reference_stage(obj: Objective, facts: Facts, method: str) -> ReferenceStage:
    row = first_row("reference", facts, method)
    if row.value == "model":
        assert obj.reference is not None
        return ReferenceStage(strategy="model", model=obj.reference.value,
                              description=f"{row.id}: the reference model {code_span(obj.reference.value)} named in the spec, "
                                          "retrained without the forget set by the owner of the training pipeline")
    if row.value == "retrain":
        same = " (the same model the `retrain` method produces)" if method == "retrain" else ""
        name = obj.model.value if obj.model and obj.model.value in RECIPES else str(RECIPE["name"])
        return ReferenceStage(strategy="retrain", recipe=builtin_recipe(name),
                              description=f"{row.id}: retrain the built-in recipe without the forget set{same}")
    has = bool(obj.target and obj.target.holdout)
    what = ("the target's holdout data stands in for data never trained on" if has
            else "no holdout data: checks that need a reference or non-members are not measurable")
    return ReferenceStage(strategy="holdout", description=f"{row.id}: holdout-calibrated; {what}")


def unlearn_stage(obj: Objective, facts: Facts, mrow: Row, method: str, family: str, chosen_by: str,
                  model: ModelRef, base: Path) -> UnlearnStage:
    knobs = obj.method.knobs if obj.method else None
    reads = METHODS[method].reads  # a knob the method does not read stays out of the plan (UL414 says so)
    arow = first_row("adapter", facts, method)
    hrow = first_row("hyperparameters", facts, method)
    prow = first_row("precision", facts, method)
    srow = first_row("stopping", facts, method)
    seed = knobs.seed.as_int if knobs and knobs.seed is not None and reads("seed") else seed_of(obj)

    adapter = "full"
    lora: LoraConfig | None = None
    if arow.value == "lora" or (arow.value == "spec" and facts.adapter == "lora"):
        adapter = "lora"
        given = knobs.lora_rank if knobs and reads("adapter") else None
        rank = given.as_int if given is not None else DEFAULT_LORA.rank
        lora = LoraConfig(rank=rank, alpha=2 * rank, dropout=DEFAULT_LORA.dropout)

    kw: dict[str, Any] = {}
    if hrow.value == "recipe":
        name = model.source if model.source in RECIPES else str(RECIPE["name"])
        train = RECIPES[name]["train"]
        kw = {"max_steps": recipe_steps(name), "learning_rate": float(train["learning_rate"]),
              "batch_size": int(train["batch_size"]), "retain_weight": 0.0}
    elif hrow.value == "none":
        kw = {"max_steps": 0, "learning_rate": 0.0, "retain_weight": 0.0}
    else:
        d = METHODS[method].defaults
        assert d is not None, f"method `{method}` has no default hyperparameters"
        lr = d.lr_lora if adapter == "lora" else (d.lr_full_large if hrow.value == "large" else d.lr_full)
        kw = {"max_steps": d.max_steps, "learning_rate": lr, "batch_size": d.batch_size, "beta": d.beta,
              "gamma": d.gamma, "retain_weight": d.retain_weight}
        if method == "rmu":
            layers = model_layers(obj, model, base)
            kw["rmu_layer"] = rmu_layer(layers) if layers else None
            kw["rmu_steering_coeff"], kw["rmu_alpha"] = d.rmu_steering_coeff, d.rmu_alpha
    # the numeric knobs the method reads, in the method block's order (docs/language.md)
    overridden: list[str] = []  # the plan's fields the spec sets, as the rationale names them
    for k in ("steps", "learning_rate", "batch_size", "beta", "retain_weight"):
        v = getattr(knobs, k) if knobs is not None and hrow.value not in ("recipe", "none") and reads(k) else None
        if v is not None:
            name = KNOB_FIELDS.get(k, k)
            kw[name] = v.as_int if name in ("max_steps", "batch_size") else float(v.value)
            overridden.append(name)

    if srow.value == "holdout_loss":
        stopping = HOLDOUT_STOPPING
    else:
        stopping = StoppingRule(kind="fixed_steps", ratio=HOLDOUT_STOPPING.ratio, check_every=HOLDOUT_STOPPING.check_every)

    rationale = [f"{mrow.id}: {mrow.then.replace('`', '')} — {mrow.why}"
                 if chosen_by == "compiler" else f"{mrow.id}: {code_span(method)} is named in the spec and honoured"]
    rationale.append(f"{arow.id}: {arow.then}" + ("" if arow.value != "spec" else f" ({adapter})"))
    rationale.append(f"{hrow.id}: {hrow.then}" + (f" — the spec sets {', '.join(overridden)}" if overridden else ""))
    rationale.append(f"{prow.id}: {prow.then}")
    rationale.append(f"{srow.id}: {srow.then}")
    return UnlearnStage(
        method=method, family=family, chosen_by=chosen_by,  # type: ignore[arg-type]
        rationale="; ".join(rationale), adapter=adapter, lora=lora,  # type: ignore[arg-type]
        stopping=stopping, train_precision=prow.value, seed=seed, **kw)  # type: ignore[arg-type]


def rel_path(ref: PathRef, base: Path) -> str:
    """A data path as the plan stores it: relative to the spec's folder, with forward slashes."""
    raw = ref.raw.replace("\\", "/")
    if not posixpath.isabs(raw) and not raw.startswith("~"):
        return posixpath.normpath(raw)
    try:
        return Path(os.path.relpath(ref.resolved, base)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(ref.resolved).as_posix()


def data_refs(obj: Objective) -> list[tuple[str, list[PathRef]]]:
    t, p = obj.target, obj.preserve
    return [("forget", t.forget if t else []), ("retain", p.retain if p else []),
            ("neighbors", p.neighbors if p else []), ("holdout", t.holdout if t else []),
            ("test", t.test if t else [])]


def datasets(obj: Objective, base: Path, facts: Facts) -> DataSets:
    refs = dict(data_refs(obj))
    holdout = [rel_path(r, base) for r in refs["holdout"]]
    if not holdout and facts.builtin:
        holdout = [BUILTIN_HOLDOUT]
    # the stopping rule calibrates on one half of the holdout, the verdict is measured on the other
    calibration, evaluation = holdout_split(holdout, base, seed_of(obj))
    return DataSets(forget=[rel_path(r, base) for r in refs["forget"]], retain=[rel_path(r, base) for r in refs["retain"]],
                    neighbors=[rel_path(r, base) for r in refs["neighbors"]], holdout=holdout,
                    test=[rel_path(r, base) for r in refs["test"]], holdout_calibration=calibration,
                    holdout_evaluation=evaluation)

