"""The plots of report.html: what each chart shows, as numbers and plain strings; ``templates/charts.html.j2``
draws them as inline SVG.

Why hand-made SVG: the report must open anywhere, offline, as one file, and the compiler-side package must not
pull in matplotlib. The charts are simple (lines, bars, ROC curves), so a small coordinate frame plus "nice"
ticks is all that is needed. This module computes them: coordinates, tick labels, colours, dash patterns, and the
texts a chart shows (its title, its ``<desc>`` — a sentence with the numbers —, axis labels, legend entries).
It writes no markup and escapes nothing: the template is rendered with jinja2's autoescaping, the one HTML
escaping path, so a spec's text (a check id, a dataset name) is escaped there like any other. Lines differ by
dash pattern as well as colour, so they read in greyscale and for colour-blind readers (Okabe–Ito palette,
darkened where a colour would fall below 3:1 against white, WCAG 1.4.11).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from unlearnspec.report.model import CheckResult, ModelName, TrainingLog
from unlearnspec.report.verdict import (
    OP_SYMBOLS,
    deciding_part,
    describe_check,
    fmt_estimate,
    fmt_number,
    metric_label,
    threshold_text,
)

MODEL_ORDER: tuple[ModelName, ...] = ("original", "unlearned", "reference", "attacked", "served")
# (colour, dash pattern) per model: Okabe–Ito colours (served: its orange darkened from #E69F00, 2.3:1 against
# white, to 3.8:1), distinct dashes.
STYLE: dict[str, tuple[str, str]] = {
    "original": ("#0072B2", ""),
    "unlearned": ("#D55E00", ""),
    "reference": ("#009E73", "6 3"),
    "attacked": ("#CC79A7", "2 3"),
    "served": ("#B07800", "8 3 2 3"),
    "forget": ("#D55E00", ""),
    "retain": ("#0072B2", "6 3"),
}
#: The outcome colours of "claims at a glance" (text at 11 px: each at least 4.5:1 against white).
STATUS_COLOUR: dict[str, str] = {"pass": "#1b7a3a", "fail": "#b3261e", "inconclusive": "#a15c00",
                                 "not_evaluated": "#666666", "info": "#555555"}


def _safe_id(raw: str) -> str:
    """An XML id from arbitrary text (check ids contain '@', spaces, anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")
    return f"c-{cleaned or 'chart'}"


def coordinate(x: float) -> str:
    """Coordinates with two decimals: stable output, small files (the charts template's ``xy`` filter)."""
    return f"{x:.2f}"


_num = coordinate


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("ticks need finite bounds")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    span = hi - lo
    magnitude = 10 ** math.floor(math.log10(span / count))
    step = magnitude
    for m in (1, 2, 2.5, 5, 10):
        step = m * magnitude
        if span / step <= count:
            break
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    n = round((end - start) / step)
    return [round(start + i * step, 12) + 0.0 for i in range(n + 1)]


def _tick_label(x: float) -> str:
    return f"{x:.6g}"


def _text_width(text: str, size: float = 12.0) -> float:
    """A generous estimate of rendered text width (no font metrics offline): margins sized with it
    keep legends and titles inside the picture."""
    return len(text) * size * 0.62


def _right_margin(labels: Sequence[str]) -> int:
    """Room for the legend: gap, swatch, gap, the longest label."""
    return int(14 + 28 + max((_text_width(t) for t in labels), default=0.0) + 10)


def _width_for(left: int, inner: float, right: int, title: str) -> int:
    return int(max(left + inner + right, left + _text_width(title, 13.0) + 16))


@dataclass(frozen=True)
class _Frame:
    """Maps data coordinates to the plot area of an SVG of size ``width`` × ``height``."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int = 560
    height: int = 300
    left: int = 64
    right: int = 150
    top: int = 36
    bottom: int = 48

    @property
    def inner_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def inner_h(self) -> float:
        return self.height - self.top - self.bottom

    def sx(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * self.inner_w

    def sy(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.top + self.inner_h - (y - self.y0) / span * self.inner_h


# -- what the template draws -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    at: float  # the x (or y) coordinate
    label: str


@dataclass(frozen=True)
class Axes:
    left: float
    right: float  # the plot area's right edge
    top: float
    bottom: float  # the plot area's bottom edge
    height: int  # the picture's
    xticks: list[Tick]
    yticks: list[Tick]
    xlabel: str
    ylabel: str

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def middle_y(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass(frozen=True)
class Legend:
    """One legend entry: a line sample (``box`` False) or a swatch (``outline``: drawn as the compared bar is)."""

    x: float
    y: float
    colour: str
    dash: str
    label: str
    box: bool = False
    outline: bool = False


@dataclass(frozen=True)
class Line:
    """A series: a polyline through ``points`` (``x,y x,y ...``), or a dot at ``dot`` when it has one point."""

    colour: str
    dash: str
    points: str = ""
    dot: tuple[float, float] | None = None


@dataclass(frozen=True)
class Rule:
    """A straight dashed line (a bound, a stopping level, the chance diagonal): the path data of its segment."""

    d: str
    colour: str
    dash: str
    width: float = 1.5


@dataclass(frozen=True)
class Bar:
    """One model's bar (``rect`` x, y, width, height; None: the model has no value, ``n/a`` at ``label``), its
    interval as an error bar (path data) and its value's label."""

    model: str
    value: str
    label_x: float
    label_y: float
    colour: str = ""
    rect: tuple[float, float, float, float] | None = None
    outline: bool = False
    error: str = ""
    error_text: str = ""


@dataclass(frozen=True)
class GlanceRow:
    """A row of "claims at a glance": a claim's heading (``check`` None), or one deciding check on its own scale."""

    y: float
    label: str
    check: str | None = None
    status: str = ""
    word: str = ""
    colour: str = ""
    interval: tuple[float, float] | None = None
    dot: float | None = None
    bound: float | None = None


@dataclass(frozen=True)
class Chart:
    """One SVG picture: its ``kind`` names the template macro that draws it (loss, bars, roc, glance)."""

    kind: str
    id: str
    width: int
    height: int
    title: str
    desc: str
    axes: Axes | None = None
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    legend: list[Legend] = field(default_factory=list)
    rows: list[GlanceRow] = field(default_factory=list)
    left: float = 64  # where a glance row's scale starts, and its length
    inner: float = 0.0


def _axes(frame: _Frame, xticks: Sequence[float], yticks: Sequence[float], xlabel: str, ylabel: str,
          xtick_labels: Sequence[str] | None = None) -> Axes:
    labels = xtick_labels if xtick_labels is not None else [_tick_label(t) for t in xticks]
    return Axes(left=frame.left, right=frame.left + frame.inner_w, top=frame.top, bottom=frame.top + frame.inner_h,
                height=frame.height, xticks=[Tick(frame.sx(t), text) for t, text in zip(xticks, labels, strict=True)],
                yticks=[Tick(frame.sy(t), _tick_label(t)) for t in yticks], xlabel=xlabel, ylabel=ylabel)


def _legend(frame: _Frame, entries: Sequence[tuple[str, str, str, str]]) -> list[Legend]:
    """``entries``: (kind "line"|"box", colour, dash or "outline", label), placed in the right margin."""
    x = frame.width - frame.right + 14
    return [Legend(x=x, y=frame.top + 8 + i * 20, colour=colour, dash="" if kind == "box" else dash, label=label,
                   box=kind == "box", outline=dash == "outline") for i, (kind, colour, dash, label) in enumerate(entries)]


def _segments(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """Consecutive points with values; a missing value breaks the line instead of bridging it."""
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x, y))
    return [s for s in segments if s]


def _line(frame: _Frame, points: Sequence[tuple[float, float]], colour: str, dash: str) -> Line:
    if len(points) == 1:
        x, y = points[0]
        return Line(colour, dash, dot=(frame.sx(x), frame.sy(y)))
    return Line(colour, dash, points=" ".join(f"{_num(frame.sx(x))},{_num(frame.sy(y))}" for x, y in points))


def _across(frame: _Frame, y: float) -> str:
    return f"M{_num(frame.left)} {_num(y)}H{_num(frame.left + frame.inner_w)}"


def loss_chart(training: TrainingLog, chart_id: str = "loss") -> Chart | None:
    """Forget and retain loss over the unlearning steps, with the stopping rule's bound if any.

    None when the log has no finite value to draw."""
    series = [("forget", training.forget_loss)]
    if training.retain_loss:
        series.append(("retain", training.retain_loss))
    values = [v for _, ys in series for v in ys if v is not None]
    if training.stop_threshold is not None:
        values.append(training.stop_threshold)
    if not values or not training.steps:
        return None
    xs = [float(s) for s in training.steps]
    xticks = nice_ticks(min(xs), max(xs))
    yticks = nice_ticks(min(values), max(values))
    title = "Unlearning: forget and retain loss"
    labels = [f"{name} loss" for name, _ in series]
    if training.stop_threshold is not None:
        labels.append(f"stop bound {fmt_number(training.stop_threshold)}")
    right = _right_margin(labels)
    frame = _Frame(xticks[0], xticks[-1], yticks[0], yticks[-1], right=right,
                   width=_width_for(64, 360, right, title))
    desc_parts = []
    for name, ys in series:
        finite = [v for v in ys if v is not None]
        if finite:
            desc_parts.append(f"{name} loss from {fmt_number(finite[0])} to {fmt_number(finite[-1])}")
    desc = f"Over {len(xs)} logged steps (step {int(xs[0])} to {int(xs[-1])}): " + "; ".join(desc_parts)
    if training.stop_reason:
        desc += f". Stopped: {training.stop_reason}"
    lines = [_line(frame, seg, *STYLE[name]) for name, ys in series for seg in _segments(xs, ys)]
    legend = [("line", *STYLE[name], f"{name} loss") for name, _ in series]
    rules = []
    if training.stop_threshold is not None:
        rules.append(Rule(_across(frame, frame.sy(training.stop_threshold)), "#555", "2 2"))
        legend.append(("line", "#555", "2 2", labels[-1]))
    return Chart("loss", _safe_id(chart_id), frame.width, frame.height, title, desc + ".",
                 axes=_axes(frame, xticks, yticks, "training step", "loss"), lines=lines, rules=rules,
                 legend=_legend(frame, legend))


def bound_lines(check: CheckResult, reference_label: str = "reference") -> tuple[list[float], str] | None:
    """Where the bound that decides ``check`` lies on the models' own scale, and its legend: the spec's
    threshold, or — for a check decided on a gap — the line(s) the decided model's value must stay within:
    the reference's value plus the bound (ROUGE-type, relearning), the reference's AUC (or 0.5) plus and
    minus the tolerance (membership). None without a threshold."""
    if check.threshold is None:
        return None
    d = check.decision
    if d is None or d.threshold.op not in ("<=", "<"):
        return [check.threshold.value], f"threshold {threshold_text(check)}"
    tol = d.threshold.value
    two_sided = d.quantity.startswith("worst |") or d.quantity.startswith("|AUC")
    if "reference" in d.quantity:
        centre, name = check.values.get("reference"), reference_label
    elif two_sided:
        centre, name = 0.5, "0.5"
    else:
        return [check.threshold.value], f"threshold {threshold_text(check)}"
    if centre is None:
        return [check.threshold.value], f"threshold {threshold_text(check)}"
    if two_sided:
        return [centre - tol, centre + tol], f"bound: {name} ± {fmt_number(tol)}"
    return [centre + tol], f"bound: {name} + {fmt_number(tol)}"


def check_bars(check: CheckResult, chart_id: str | None = None, reference_label: str = "reference") -> Chart | None:
    """One check: a bar per model that has a value, the bound as a dashed line (for a check decided on
    its gap to the reference, where that gap puts it: :func:`bound_lines`), and the bar the bound is
    compared with outlined. None when there is nothing to draw."""
    models = [m for m in MODEL_ORDER if check.values.get(m) is not None or m == check.decided_on]
    values = [v for m in models if (v := check.values.get(m)) is not None]
    if not values and check.threshold is None:
        return None
    lines = bound_lines(check, reference_label)
    bounds = [0.0, *values] + (lines[0] if lines is not None else [])
    bounds += [x for m in models for x in check.interval.get(m, ())]
    lo, hi = min(bounds), max(bounds)
    headroom = 0.08 * ((hi - lo) or abs(hi) or 1.0)  # room for value labels above the tallest bar
    yticks = nice_ticks(lo - (headroom if lo < 0 else 0.0), hi + (headroom if hi > 0 else 0.0))
    n = len(models)
    status = check.status.replace("_", " ").upper()
    title = f"{check.check_id}: {metric_label(check.metric)} ({status})"
    legend_labels = [f"compared: {check.decided_on}"]
    if lines is not None:
        legend_labels.insert(0, lines[1])
    names = [reference_label if m == "reference" else m for m in models]
    slot_w = max(80.0, max(_text_width(t) for t in names) + 16)
    right = _right_margin(legend_labels)
    frame = _Frame(0.0, float(n), yticks[0], yticks[-1], height=280, right=right,
                   width=_width_for(64, slot_w * n, right, title))
    ylabel = metric_label(check.metric)
    if _text_width(ylabel) > frame.inner_h:
        ylabel = "value"
    zero = frame.sy(max(min(0.0, yticks[-1]), yticks[0]))
    slot = frame.inner_w / max(n, 1)
    bars = []
    for i, m in enumerate(models):
        v = check.values.get(m)
        cx = frame.sx(i + 0.5)
        if v is None:
            bars.append(Bar(m, "n/a", cx, zero - 6))
            continue
        y = frame.sy(v)
        top, h = min(y, zero), abs(zero - y)
        iv = check.interval.get(m)
        error = error_text = ""
        if iv is not None:  # the model's confidence interval, as an error bar
            y_lo, y_hi = frame.sy(iv[0]), frame.sy(iv[1])
            error = (f"M{_num(cx)} {_num(y_lo)}V{_num(y_hi)}M{_num(cx - 6)} {_num(y_lo)}H{_num(cx + 6)}"
                     f"M{_num(cx - 6)} {_num(y_hi)}H{_num(cx + 6)}")
            error_text = f"{m}: interval {fmt_number(iv[0])} to {fmt_number(iv[1])}"
            top = min(top, y_hi)
        bars.append(Bar(m, fmt_number(v), cx, top - 5 if v >= 0 else top + h + 14, STYLE[m][0],
                        (cx - slot * 0.3, min(y, zero), slot * 0.6, h), m == check.decided_on, error, error_text))
    legend: list[tuple[str, str, str, str]] = [("box", "#ffffff", "outline", legend_labels[-1])]
    rules = []
    if lines is not None:
        rules = [Rule(_across(frame, frame.sy(level)), "#000", "6 4") for level in lines[0]]
        legend.insert(0, ("line", "#000", "6 4", legend_labels[0]))
    return Chart("bars", _safe_id(chart_id or f"bars-{check.check_id}"), frame.width, frame.height, title,
                 describe_check(check, reference_label) + ".",
                 axes=_axes(frame, [i + 0.5 for i in range(n)], yticks, "model", ylabel, names), rules=rules,
                 bars=bars, legend=_legend(frame, legend))


def roc_curves(check: CheckResult) -> dict[str, tuple[list[float], list[float]]]:
    """The ROC curves a membership check carries in ``extra["roc"]``, per model, in model order."""
    roc = check.extra.get("roc")
    if not isinstance(roc, dict):
        return {}
    out: dict[str, tuple[list[float], list[float]]] = {}
    order: dict[str, int] = {m: i for i, m in enumerate(MODEL_ORDER)}
    for name in sorted(roc, key=lambda k: (order.get(k, len(order)), k)):
        curve = roc[name]
        if isinstance(curve, dict) and isinstance(curve.get("fpr"), list) and isinstance(curve.get("tpr"), list):
            fpr = [float(x) for x in curve["fpr"]]  # type: ignore[union-attr, arg-type]
            tpr = [float(x) for x in curve["tpr"]]  # type: ignore[union-attr, arg-type]
            out[name] = (fpr, tpr)
    return out


def _closed_curve(fpr: Sequence[float], tpr: Sequence[float]) -> list[tuple[float, float]]:
    """Points sorted along the curve, from (0, 0) to (1, 1) — every ROC curve has these ends."""
    pts = sorted(zip(fpr, tpr, strict=True))
    if not pts or pts[0] != (0.0, 0.0):
        pts.insert(0, (0.0, 0.0))
    if pts[-1] != (1.0, 1.0):
        pts.append((1.0, 1.0))
    return pts


def curve_auc(fpr: Sequence[float], tpr: Sequence[float]) -> float:
    """Area under the ROC curve by the trapezoid rule over the closed curve."""
    pts = _closed_curve(fpr, tpr)
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True))


def _roc_auc_text(check: CheckResult, name: str, area: float) -> str:
    """A curve's AUC as the legend states it: the check's own value with its interval and n when the curve is that
    model's measured one (the deciding pair's), else the drawn curve's area, marked as such."""
    value, iv, n = check.values.get(name) if name in MODEL_ORDER else None, check.interval.get(name), check.n.get(name)
    if value is not None and math.isclose(value, area, abs_tol=5e-4):
        return f"AUC {fmt_estimate(value, iv, n)}" if iv is not None else f"AUC {fmt_number(value)} (no interval)"
    return f"area {fmt_number(area)} (of the drawn curve, no interval)"


def roc_chart(check: CheckResult, chart_id: str | None = None, reference_label: str = "reference") -> Chart | None:
    """ROC curves of a membership-inference check per model, with the chance diagonal.

    None when the check carries no curves."""
    curves = roc_curves(check)
    if not curves:
        return None
    aucs = {name: curve_auc(*c) for name, c in curves.items()}
    label = {name: reference_label if name == "reference" else name for name in curves}
    legend_labels = [f"{label[n]}: {_roc_auc_text(check, n, a)}" for n, a in aucs.items()] + ["chance (AUC 0.5)"]
    part = deciding_part(check)
    title = f"{check.check_id}: membership ROC" + (f" ({part})" if part else "")
    right = _right_margin(legend_labels)
    frame = _Frame(0.0, 1.0, 0.0, 1.0, height=340, right=right, width=_width_for(64, 256, right, title))
    desc = ("ROC curves of the membership attack on " + check.dataset + ": "
            + "; ".join(f"{label[n]} {_roc_auc_text(check, n, a)}" for n, a in aucs.items())
            + ". AUC 0.5, the diagonal, means members and non-members cannot be told apart.")
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    diagonal = Rule(f"M{_num(frame.sx(0))} {_num(frame.sy(0))}L{_num(frame.sx(1))} {_num(frame.sy(1))}", "#888",
                    "3 3", 1.0)
    lines, legend = [], []
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        colour, dash = STYLE.get(name, ("#444444", "1 2"))
        lines.append(_line(frame, _closed_curve(fpr, tpr), colour, dash))
        legend.append(("line", colour, dash, legend_labels[i]))
    legend.append(("line", "#888", "3 3", legend_labels[-1]))
    return Chart("roc", _safe_id(chart_id or f"roc-{check.check_id}"), frame.width, frame.height, title, desc,
                 axes=_axes(frame, ticks, ticks, "false positive rate", "true positive rate"), lines=lines,
                 rules=[diagonal], legend=_legend(frame, legend))


def claims_at_a_glance(checks: Sequence[CheckResult], claims: Sequence[tuple[str, str, Sequence[str]]],
                       chart_id: str = "glance") -> Chart | None:
    """The figure a reviewer reads first: one row per deciding check of each claim, the deciding
    quantity's confidence interval as a bar, its value as a dot and the bound as a dashed tick, each
    row on its own scale and coloured by its outcome (pass, fail, inconclusive, not evaluated). Its ``<desc>``
    says the same in words: each claim's verdict, and each check's outcome, value, interval and bound.

    ``claims`` is ``(label, verdict, check ids)`` per claim. None when there is no claim."""
    by_id = {c.check_id: c for c in checks}
    heads: list[tuple[str, CheckResult | None]] = []
    said: list[str] = []
    for label, verdict, ids in claims:
        heads.append((f"{label}: {verdict.replace('_', ' ').upper()}", None))
        parts = []
        for i in ids:
            c = by_id.get(i)
            if c is not None and c.threshold is not None:
                heads.append((c.check_id, c))
                parts.append(_glance_words(c))
        said.append(f"{label}: {verdict.replace('_', ' ')}" + (f" ({'; '.join(parts)})" if parts else ""))
    if not heads:
        return None
    # the right margin holds the outcome word ("not evaluated", "inconclusive") at 11 px
    row_h, left, width, right = 26, 330, 800, 96
    inner = width - left - right
    rows = []
    for k, (label, c) in enumerate(heads):
        y = 40 + k * row_h + row_h / 2
        rows.append(GlanceRow(y, label) if c is None else _glance_row(c, y, left, inner))
    desc = "One row per claim and per check that decides it. " + "; ".join(said) + "."
    return Chart("glance", _safe_id(chart_id), width, 40 + row_h * len(rows) + 24, "Claims at a glance", desc,
                 rows=rows, left=left, inner=inner)


def _decided(c: CheckResult) -> tuple[float | None, float | None, tuple[float, float] | None]:
    """The value, the bound and the interval a check was decided on: its decision's, else the decided model's."""
    d = c.decision
    if d is not None:
        return d.value, d.threshold.value, d.interval
    iv = c.interval.get(c.decided_on)
    return c.value, c.threshold.value if c.threshold else None, (iv[0], iv[1]) if iv else None


def _glance_words(c: CheckResult) -> str:
    """``membership_auc@forget fail: |AUC − AUC_reference|, worst over item types and attacks 0.356 [0.108, 1]
    against ≤ 0.1``: what the row draws, in words, the bound beside the quantity it is held to."""
    value, bound, iv = _decided(c)
    status = c.status.replace("_", " ")
    if value is None or bound is None:
        return f"{c.check_id} {status}"
    threshold = c.decision.threshold if c.decision is not None else c.threshold
    assert threshold is not None  # a bound was found
    what = f"{c.decision.quantity} " if c.decision is not None else ""
    return (f"{c.check_id} {status}: {what}{fmt_estimate(value, iv, bound=bound)} against "
            f"{OP_SYMBOLS[threshold.op]} {fmt_number(bound)}")


def _glance_row(c: CheckResult, y: float, left: float, inner: float) -> GlanceRow:
    value, thr, iv = _decided(c)
    colour = STATUS_COLOUR.get(c.status, "#555555")
    word = c.status.replace("_", " ")
    if value is None or thr is None:
        return GlanceRow(y, c.check_id, c.check_id, c.status, "not evaluated", colour)
    pts = [value, thr, *(iv or ())]
    lo, hi = min(pts), max(pts)
    pad = 0.1 * ((hi - lo) or abs(hi) or 1.0)
    lo, hi = lo - pad, hi + pad

    def sx(x: float) -> float:
        return left + (x - lo) / ((hi - lo) or 1.0) * inner

    return GlanceRow(y, c.check_id, c.check_id, c.status, word, colour,
                     (sx(iv[0]), sx(iv[1])) if iv is not None else None, sx(value), sx(thr))
