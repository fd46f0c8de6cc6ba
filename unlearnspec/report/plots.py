"""Plots for report.html as inline SVG, drawn with the standard library only.

Why hand-written SVG: the report must open anywhere, offline, as one file, and the compiler-side
package must not pull in matplotlib. The charts are simple (lines, bars, ROC curves), so a small
coordinate frame plus "nice" ticks is all that is needed. Every chart carries an accessible
``<title>`` and ``<desc>`` (a sentence with the numbers), axis labels, ticks and a legend; lines
differ by dash pattern as well as colour, so they read in greyscale and for colour-blind readers
(Okabe–Ito palette). All text is escaped here, because the templates insert these strings as markup.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from unlearnspec.report.model import CheckResult, ModelName, TrainingLog
from unlearnspec.report.verdict import deciding_part, describe_check, fmt_number, metric_label, threshold_text

MODEL_ORDER: tuple[ModelName, ...] = ("original", "unlearned", "reference", "attacked", "served")
# (colour, dash pattern) per model: Okabe–Ito colours, distinct dashes.
STYLE: dict[str, tuple[str, str]] = {
    "original": ("#0072B2", ""),
    "unlearned": ("#D55E00", ""),
    "reference": ("#009E73", "6 3"),
    "attacked": ("#CC79A7", "2 3"),
    "served": ("#E69F00", "8 3 2 3"),
    "forget": ("#D55E00", ""),
    "retain": ("#0072B2", "6 3"),
}
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\" font-size=\"12\""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _safe_id(raw: str) -> str:
    """An XML id from arbitrary text (check ids contain '@', spaces, anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")
    return f"c-{cleaned or 'chart'}"


def _num(x: float) -> str:
    """Coordinates with two decimals: stable output, small files."""
    return f"{x:.2f}"


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


def _open(frame: _Frame, chart_id: str, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="{frame.width}" height="{frame.height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" {FONT}>',
        f'<title id="{chart_id}-title">{_esc(title)}</title>',
        f'<desc id="{chart_id}-desc">{_esc(desc)}</desc>',
        f'<text x="{frame.left}" y="20" font-weight="bold" font-size="13">{_esc(title)}</text>',
    ]


def _axes(frame: _Frame, xticks: Sequence[float], yticks: Sequence[float], xlabel: str, ylabel: str,
          xtick_labels: Sequence[str] | None = None) -> list[str]:
    out = []
    bottom, left = frame.top + frame.inner_h, frame.left
    for t in yticks:
        y = frame.sy(t)
        out.append(f'<path d="M{_num(left)} {_num(y)}H{_num(left + frame.inner_w)}" stroke="#e3e3e3" />')
        out.append(f'<path d="M{_num(left - 4)} {_num(y)}H{_num(left)}" stroke="#333" />')
        out.append(f'<text x="{_num(left - 7)}" y="{_num(y + 4)}" text-anchor="end">{_esc(_tick_label(t))}</text>')
    labels = xtick_labels if xtick_labels is not None else [_tick_label(t) for t in xticks]
    for t, text in zip(xticks, labels, strict=True):
        x = frame.sx(t)
        out.append(f'<path d="M{_num(x)} {_num(bottom)}V{_num(bottom + 4)}" stroke="#333" />')
        out.append(f'<text x="{_num(x)}" y="{_num(bottom + 17)}" text-anchor="middle">{_esc(text)}</text>')
    out.append(f'<path d="M{_num(left)} {_num(frame.top)}V{_num(bottom)}H{_num(left + frame.inner_w)}" '
               f'stroke="#333" fill="none" />')
    out.append(f'<text x="{_num(left + frame.inner_w / 2)}" y="{frame.height - 8}" '
               f'text-anchor="middle">{_esc(xlabel)}</text>')
    cy = frame.top + frame.inner_h / 2
    out.append(f'<text x="14" y="{_num(cy)}" text-anchor="middle" '
               f'transform="rotate(-90 14 {_num(cy)})">{_esc(ylabel)}</text>')
    return out


def _legend(frame: _Frame, entries: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """``entries``: (kind "line"|"box", colour, dash, label) drawn in the right margin."""
    x = frame.width - frame.right + 14
    out = []
    for i, (kind, colour, dash, label) in enumerate(entries):
        y = frame.top + 8 + i * 20
        if kind == "box":
            out.append(f'<rect x="{x}" y="{y - 6}" width="22" height="12" fill="{colour}" '
                       f'stroke="#000" stroke-width="{2 if dash == "outline" else 0}" />')
        else:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<path d="M{x} {y}h22" stroke="{colour}" stroke-width="2.5"{dash_attr} />')
        out.append(f'<text x="{x + 28}" y="{y + 4}">{_esc(label)}</text>')
    return out


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


def _line(frame: _Frame, points: Sequence[tuple[float, float]], colour: str, dash: str) -> str:
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    if len(points) == 1:
        x, y = points[0]
        return f'<circle cx="{_num(frame.sx(x))}" cy="{_num(frame.sy(y))}" r="3" fill="{colour}" />'
    coords = " ".join(f"{_num(frame.sx(x))},{_num(frame.sy(y))}" for x, y in points)
    return (f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"'
            f' stroke-linejoin="round"{dash_attr} />')


def loss_chart(training: TrainingLog, chart_id: str = "loss") -> str:
    """Forget and retain loss over the unlearning steps, with the stopping rule's bound if any.

    Returns "" when the log has no finite value to draw."""
    series = [("forget", training.forget_loss)]
    if training.retain_loss:
        series.append(("retain", training.retain_loss))
    values = [v for _, ys in series for v in ys if v is not None]
    if training.stop_threshold is not None:
        values.append(training.stop_threshold)
    if not values or not training.steps:
        return ""
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
    cid = _safe_id(chart_id)
    desc_parts = []
    for name, ys in series:
        finite = [v for v in ys if v is not None]
        if finite:
            desc_parts.append(f"{name} loss from {fmt_number(finite[0])} to {fmt_number(finite[-1])}")
    desc = f"Over {len(xs)} logged steps (step {int(xs[0])} to {int(xs[-1])}): " + "; ".join(desc_parts)
    if training.stop_reason:
        desc += f". Stopped: {training.stop_reason}"
    out = _open(frame, cid, title, desc + ".")
    out += _axes(frame, xticks, yticks, "training step", "loss")
    legend: list[tuple[str, str, str, str]] = []
    for name, ys in series:
        colour, dash = STYLE[name]
        out += [_line(frame, seg, colour, dash) for seg in _segments(xs, ys)]
        legend.append(("line", colour, dash, f"{name} loss"))
    if training.stop_threshold is not None:
        y = frame.sy(training.stop_threshold)
        out.append(f'<path d="M{_num(frame.left)} {_num(y)}H{_num(frame.left + frame.inner_w)}" '
                   f'stroke="#555" stroke-width="1.5" stroke-dasharray="2 2" />')
        legend.append(("line", "#555", "2 2", f"stop bound {fmt_number(training.stop_threshold)}"))
    out += _legend(frame, legend)
    out.append("</svg>")
    return "\n".join(out)


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
    two_sided = d.quantity.startswith("worst |")
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


def check_bars(check: CheckResult, chart_id: str | None = None, reference_label: str = "reference") -> str:
    """One check: a bar per model that has a value, the bound as a dashed line (for a check decided on
    its gap to the reference, where that gap puts it: :func:`bound_lines`), and the bar the bound is
    compared with outlined. Returns "" when there is nothing to draw."""
    models = [m for m in MODEL_ORDER if check.values.get(m) is not None or m == check.decided_on]
    values = [v for m in models if (v := check.values.get(m)) is not None]
    if not values and check.threshold is None:
        return ""
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
    cid = _safe_id(chart_id or f"bars-{check.check_id}")
    out = _open(frame, cid, title, describe_check(check, reference_label) + ".")
    ylabel = metric_label(check.metric)
    if _text_width(ylabel) > frame.inner_h:
        ylabel = "value"
    out += _axes(frame, [i + 0.5 for i in range(n)], yticks, "model", ylabel, names)
    zero = frame.sy(max(min(0.0, yticks[-1]), yticks[0]))
    slot = frame.inner_w / max(n, 1)
    for i, m in enumerate(models):
        v = check.values.get(m)
        cx = frame.sx(i + 0.5)
        if v is None:
            out.append(f'<text x="{_num(cx)}" y="{_num(zero - 6)}" text-anchor="middle">n/a</text>')
            continue
        y = frame.sy(v)
        top, h = min(y, zero), abs(zero - y)
        outline = ' stroke="#000" stroke-width="2"' if m == check.decided_on else ""
        out.append(f'<rect x="{_num(cx - slot * 0.3)}" y="{_num(top)}" width="{_num(slot * 0.6)}" '
                   f'height="{_num(h)}" fill="{STYLE[m][0]}"{outline}><title>{_esc(m)}: '
                   f'{_esc(fmt_number(v))}</title></rect>')
        iv = check.interval.get(m)
        if iv is not None:  # the model's confidence interval, as an error bar
            y_lo, y_hi = frame.sy(iv[0]), frame.sy(iv[1])
            out.append(f'<path class="error-bar" d="M{_num(cx)} {_num(y_lo)}V{_num(y_hi)}'
                       f'M{_num(cx - 6)} {_num(y_lo)}H{_num(cx + 6)}M{_num(cx - 6)} {_num(y_hi)}H{_num(cx + 6)}" '
                       f'stroke="#222" stroke-width="1.5" fill="none"><title>{_esc(m)}: interval '
                       f'{_esc(fmt_number(iv[0]))} to {_esc(fmt_number(iv[1]))}</title></path>')
            top = min(top, y_hi)
        label_y = top - 5 if v >= 0 else top + h + 14
        out.append(f'<text x="{_num(cx)}" y="{_num(label_y)}" text-anchor="middle" paint-order="stroke" '
                   f'stroke="#fff" stroke-width="3">{_esc(fmt_number(v))}</text>')
    legend: list[tuple[str, str, str, str]] = [("box", "#ffffff", "outline", legend_labels[-1])]
    if lines is not None:
        for level in lines[0]:
            y = frame.sy(level)
            out.append(f'<path d="M{_num(frame.left)} {_num(y)}H{_num(frame.left + frame.inner_w)}" '
                       f'stroke="#000" stroke-width="1.5" stroke-dasharray="6 4" />')
        legend.insert(0, ("line", "#000", "6 4", legend_labels[0]))
    out += _legend(frame, legend)
    out.append("</svg>")
    return "\n".join(out)


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


def roc_chart(check: CheckResult, chart_id: str | None = None, reference_label: str = "reference") -> str:
    """ROC curves of a membership-inference check per model, with the chance diagonal.

    Returns "" when the check carries no curves."""
    curves = roc_curves(check)
    if not curves:
        return ""
    cid = _safe_id(chart_id or f"roc-{check.check_id}")
    aucs = {name: curve_auc(*c) for name, c in curves.items()}
    label = {name: reference_label if name == "reference" else name for name in curves}
    legend_labels = [f"{label[n]} (AUC {fmt_number(a)})" for n, a in aucs.items()] + ["chance"]
    part = deciding_part(check)
    title = f"{check.check_id}: membership ROC" + (f" ({part})" if part else "")
    right = _right_margin(legend_labels)
    frame = _Frame(0.0, 1.0, 0.0, 1.0, height=340, right=right, width=_width_for(64, 256, right, title))
    desc = ("ROC curves of the membership attack on " + check.dataset + ": "
            + "; ".join(f"{label[n]} AUC {fmt_number(a)}" for n, a in aucs.items())
            + " (areas of the drawn curves). AUC 0.5, the diagonal, means members and non-members "
            "cannot be told apart.")
    out = _open(frame, cid, title, desc)
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    out += _axes(frame, ticks, ticks, "false positive rate", "true positive rate")
    out.append(f'<path d="M{_num(frame.sx(0))} {_num(frame.sy(0))}L{_num(frame.sx(1))} {_num(frame.sy(1))}" '
               f'stroke="#888" stroke-dasharray="3 3" fill="none" />')
    legend: list[tuple[str, str, str, str]] = []
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        colour, dash = STYLE.get(name, ("#444444", "1 2"))
        out.append(_line(frame, _closed_curve(fpr, tpr), colour, dash))
        legend.append(("line", colour, dash, legend_labels[i]))
    legend.append(("line", "#888", "3 3", legend_labels[-1]))
    out += _legend(frame, legend)
    out.append("</svg>")
    return "\n".join(out)


STATUS_COLOUR: dict[str, str] = {"pass": "#1b7a3a", "fail": "#b3261e", "inconclusive": "#a15c00",
                                 "not_evaluated": "#777777", "info": "#555555"}


def claims_at_a_glance(checks: Sequence[CheckResult], claims: Sequence[tuple[str, str, Sequence[str]]],
                       chart_id: str = "glance") -> str:
    """The figure a reviewer reads first: one row per deciding check of each claim, the deciding
    quantity's confidence interval as a bar, its value as a dot and the bound as a dashed tick, each
    row on its own scale and coloured by its outcome (pass, fail, inconclusive, not evaluated).

    ``claims`` is ``(label, verdict, check ids)`` per claim."""
    by_id = {c.check_id: c for c in checks}
    rows: list[tuple[str, str, CheckResult | None]] = []
    for label, verdict, ids in claims:
        rows.append((f"{label}: {verdict.replace('_', ' ').upper()}", "claim", None))
        for i in ids:
            c = by_id.get(i)
            if c is not None and c.threshold is not None:
                rows.append((f"{c.check_id}", "check", c))
    if not rows:
        return ""
    # the right margin holds the outcome word ("not evaluated", "inconclusive") at 11 px
    row_h, left, width, right = 26, 330, 800, 96
    height = 40 + row_h * len(rows) + 24
    inner = width - left - right
    cid = _safe_id(chart_id)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart glance" id="{cid}" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-labelledby="{cid}-title" {FONT}>',
           f'<title id="{cid}-title">Claims at a glance</title>',
           '<text x="8" y="20" font-weight="bold" font-size="13">Claims at a glance: each check\'s interval '
           'against its bound (dot: value; dashed tick: bound)</text>']
    for k, (label, kind, c) in enumerate(rows):
        y = 40 + k * row_h + row_h / 2
        weight = ' font-weight="bold"' if kind == "claim" else ""
        out.append(f'<text x="{8 if kind == "claim" else 20}" y="{_num(y + 4)}"{weight}>{_esc(label)}</text>')
        if c is None:
            continue
        d = c.decision
        thr = d.threshold.value if d is not None else (c.threshold.value if c.threshold else None)
        value = d.value if d is not None else c.value
        iv = (d.interval if d is not None else c.interval.get(c.decided_on))
        colour = STATUS_COLOUR.get(c.status, "#555")
        if value is None or thr is None:
            out.append(f'<text x="{left}" y="{_num(y + 4)}" fill="{colour}">not evaluated</text>')
            continue
        pts = [value, thr, *(iv or ())]
        lo, hi = min(pts), max(pts)
        pad = 0.1 * ((hi - lo) or abs(hi) or 1.0)
        lo, hi = lo - pad, hi + pad

        def sx(x: float, lo: float = lo, hi: float = hi) -> float:
            return left + (x - lo) / ((hi - lo) or 1.0) * inner

        out.append(f'<path d="M{left} {_num(y)}H{left + inner}" stroke="#ddd" />')
        if iv is not None:
            out.append(f'<path class="interval" d="M{_num(sx(iv[0]))} {_num(y)}H{_num(sx(iv[1]))}" stroke="{colour}" '
                       f'stroke-width="6" stroke-linecap="round" opacity="0.5" />')
        out.append(f'<circle cx="{_num(sx(value))}" cy="{_num(y)}" r="4" fill="{colour}"><title>'
                   f'{_esc(c.check_id)}: {_esc(c.status)}</title></circle>')
        out.append(f'<path d="M{_num(sx(thr))} {_num(y - 9)}V{_num(y + 9)}" stroke="#000" stroke-dasharray="3 2" />')
        out.append(f'<text x="{left + inner + 4}" y="{_num(y + 4)}" fill="{colour}" font-size="11">'
                   f'{_esc(c.status.replace("_", " "))}</text>')
    out.append("</svg>")
    return "\n".join(out)
