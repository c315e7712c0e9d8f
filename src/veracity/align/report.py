"""Self-contained HTML drift report: inline CSS and SVG plots, no scripts, no external assets."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veracity.align.drift import DriftReport, FeatureDrift

__all__ = ["render_html"]

REF_COLOR = "#4C78A8"
CUR_COLOR = "#F58518"
BAD_COLOR = "#D62728"
OK_COLOR = "#54A24B"
MAX_PLOTS = 40
MAX_SLICES = 25

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.badge{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drift td{background:#fdecea}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.plot{border:1px solid #eee;padding:6px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.muted{color:#777;font-size:12px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.4g}"


def _pvalue_chart(features: list[FeatureDrift], alpha: float) -> str:
    feats = sorted(features, key=lambda f: f.p_adjusted)[:MAX_PLOTS]
    if not feats:
        return ""
    label_w, bar_w, row_h = 160, 420, 18
    height = row_h * len(feats) + 30
    cap = 16.0
    vals = [min(-math.log10(max(f.p_adjusted, 1e-16)), cap) for f in feats]
    vmax = max([*vals, -math.log10(alpha) * 1.5, 1.0])
    scale = bar_w / vmax
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}" '
        f'role="img" aria-label="adjusted p-values per feature">'
    ]
    for i, (f, v) in enumerate(zip(feats, vals, strict=True)):
        y = 4 + i * row_h
        color = BAD_COLOR if f.drift else REF_COLOR
        bar = max(v * scale, 1)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">{_e(f.name[:24])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{bar:.1f}" height="{row_h - 5}" fill="{color}">'
            f"<title>{_e(f.name)}: adjusted p = {_e(_fmt(f.p_adjusted))}</title></rect>"
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 12}" font-size="10">{_e(_fmt(f.p_adjusted))}</text>'
        )
    ax = label_w + (-math.log10(alpha)) * scale
    parts.append(
        f'<line x1="{ax:.1f}" x2="{ax:.1f}" y1="0" y2="{height - 22}" stroke="#000" stroke-dasharray="4 3"/>'
        f'<text x="{ax:.1f}" y="{height - 8}" font-size="11" text-anchor="middle">alpha = {_e(alpha)}</text>'
        f'<text x="{label_w + bar_w / 2}" y="{height - 8}" font-size="10" fill="#777">'
        f"bar length: -log10(adjusted p)</text></svg>"
    )
    return "".join(parts)


def _numeric_plot(f: FeatureDrift, w: int, h: int) -> str:
    hist = f.histogram
    edges = hist.get("edges") or []
    if len(edges) < 2:
        return ""
    ref, cur = hist["reference"], hist["current"]
    top = max([*ref, *cur, 1e-12])
    pad_l, pad_b = 6, 16
    pw, ph = w - 2 * pad_l, h - pad_b - 4
    nb = len(ref)

    def path(vals: list[float]) -> str:
        pts = [f"M{pad_l},{4 + ph}"]
        for i, v in enumerate(vals):
            x0 = pad_l + pw * i / nb
            x1 = pad_l + pw * (i + 1) / nb
            y = 4 + ph - ph * v / top
            pts.append(f"L{x0:.1f},{y:.1f}L{x1:.1f},{y:.1f}")
        pts.append(f"L{pad_l + pw},{4 + ph}Z")
        return "".join(pts)

    return (
        f'<path d="{path(ref)}" fill="{REF_COLOR}" fill-opacity="0.35" stroke="{REF_COLOR}"/>'
        f'<path d="{path(cur)}" fill="{CUR_COLOR}" fill-opacity="0.35" stroke="{CUR_COLOR}"/>'
        f'<text x="{pad_l}" y="{h - 3}" font-size="9">{_e(_fmt(edges[0]))}</text>'
        f'<text x="{w - pad_l}" y="{h - 3}" font-size="9" text-anchor="end">{_e(_fmt(edges[-1]))}</text>'
    )


def _categorical_plot(f: FeatureDrift, w: int, h: int) -> str:
    hist = f.histogram
    levels = hist.get("levels") or []
    if not levels:
        return ""
    ref, cur = hist["reference"], hist["current"]
    top = max([*ref, *cur, 1e-12])
    pad_b = 16
    ph = h - pad_b - 4
    slot = (w - 8) / len(levels)
    bw = max(slot / 2 - 1, 1)
    parts = []
    for i, lvl in enumerate(levels):
        x = 4 + i * slot
        for j, (vals, color) in enumerate(((ref, REF_COLOR), (cur, CUR_COLOR))):
            bh = ph * vals[i] / top
            parts.append(
                f'<rect x="{x + j * bw:.1f}" y="{4 + ph - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{color}">'
                f"<title>{_e(lvl)}: {'reference' if j == 0 else 'current'} {vals[i]:.3f}</title></rect>"
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{h - 3}" font-size="9" text-anchor="middle">{_e(str(lvl)[:8])}</text>'
        )
    return "".join(parts)


def _distribution_plots(features: list[FeatureDrift]) -> str:
    feats = sorted(features, key=lambda f: f.p_adjusted)[:MAX_PLOTS]
    w, h = 250, 120
    cells = []
    for f in feats:
        body = _numeric_plot(f, w, h) if f.kind == "numeric" else _categorical_plot(f, w, h)
        mark = f' <b style="color:{BAD_COLOR}">drift</b>' if f.drift else ""
        cells.append(
            f'<div class="plot"><div><b>{_e(f.name)}</b>{mark} <span class="muted">{_e(f.test)} p = '
            f"{_e(_fmt(f.p_adjusted))}, PSI {_e(_fmt(f.psi))}</span></div>"
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
            f'aria-label="distribution of {_e(f.name)}">{body}</svg></div>'
        )
    legend = (
        f'<p class="legend"><span style="background:{REF_COLOR}"></span>reference (training)'
        f'<span style="background:{CUR_COLOR}"></span>current (operations)</p>'
    )
    return legend + '<div class="grid">' + "".join(cells) + "</div>"


def _feature_table(features: list[FeatureDrift]) -> str:
    rows = []
    for f in sorted(features, key=lambda f: f.p_value):
        cls = ' class="drift"' if f.drift else ""
        rows.append(
            f"<tr{cls}><td>{_e(f.name)}</td><td>{_e(f.kind)}</td><td>{_e(f.test)}</td>"
            f'<td class="num">{_e(_fmt(f.statistic))}</td><td class="num">{_e(_fmt(f.p_value))}</td>'
            f'<td class="num">{_e(_fmt(f.p_adjusted))}</td><td class="num">{_e(_fmt(f.psi))}</td>'
            f"<td>{'yes' if f.drift else 'no'}</td></tr>"
        )
    head = (
        "<tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p</th>"
        "<th>adjusted p</th><th>PSI</th><th>drift</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _slice_table(report: DriftReport) -> str:
    if not report.slices:
        return "<p>No slice is more frequent in current data than in reference data.</p>"
    rows = []
    for i, s in enumerate(report.slices[:MAX_SLICES], 1):
        rows.append(
            f'<tr><td class="num">{i}</td><td>{_e(s.kind)}</td><td>{_e(s.description)}</td>'
            f'<td class="num">{s.n_reference}</td><td class="num">{s.n_current}</td>'
            f'<td class="num">{s.share_reference:.1%}</td><td class="num">{s.share_current:.1%}</td>'
            f'<td class="num">{_e(_fmt(s.ratio))}</td><td class="num">{_e(_fmt(s.p_value))}</td></tr>'
        )
    head = (
        "<tr><th>rank</th><th>kind</th><th>slice</th><th>reference rows</th><th>current rows</th>"
        "<th>reference share</th><th>current share</th><th>ratio</th><th>p</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _multivariate_table(report: DriftReport) -> str:
    if not report.multivariate:
        return "<p>Only per-feature tests were run.</p>"
    rows = []
    for name, t in report.multivariate.items():
        rows.append(
            f'<tr><td>{_e(name)}</td><td class="num">{_e(_fmt(t.statistic))}</td>'
            f'<td class="num">{_e(_fmt(t.p_value))}</td></tr>'
        )
    out = f"<table><tr><th>test</th><th>statistic</th><th>p</th></tr>{''.join(rows)}</table>"
    comb = report.multivariate.get("combined")
    if comb is not None:
        comps = comb.details.get("components", {})
        crow = "".join(
            f'<tr><td>{_e(k)}</td><td class="num">{_e(_fmt(v))}</td></tr>'
            for k, v in sorted(comps.items(), key=lambda kv: kv[1])
        )
        out += (
            '<p class="muted">Components of the combined permutation test (permutation p-value of each '
            "statistic; the combined p-value calibrates their minimum):</p>"
            f"<table><tr><th>component</th><th>p</th></tr>{crow}</table>"
        )
    return out


def _label_shift(report: DriftReport) -> str:
    ls = report.label_shift
    if ls is None:
        return ""
    k = len(ls.source_priors)
    w, h = max(60 * k, 240), 140
    slot = (w - 8) / k
    bw = slot / 2 - 2
    parts = []
    for i in range(k):
        x = 4 + i * slot
        for j, (vals, color) in enumerate(((ls.source_priors, REF_COLOR), (ls.target_priors, CUR_COLOR))):
            bh = 110 * float(vals[i])
            parts.append(
                f'<rect x="{x + j * bw:.1f}" y="{114 - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{color}">'
                f"<title>class {i}: {float(vals[i]):.3f}</title></rect>"
            )
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{h - 8}" font-size="10" text-anchor="middle">{i}</text>')
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">{"".join(parts)}</svg>'
    return (
        f"<h2>Label shift ({_e(ls.method)})</h2><p>Estimated class priors: reference (blue) and current "
        f"(orange). Test of no shift in predicted classes: p = {_e(_fmt(ls.p_value))}.</p>{svg}"
    )


def render_html(report: DriftReport, *, title: str = "Drift report") -> str:
    """Render ``report`` as one HTML page with inline SVG plots and no external resources."""
    color = BAD_COLOR if report.drift else OK_COLOR
    verdict = "Drift detected" if report.drift else "No drift detected"
    drifted = ", ".join(report.drifted_features) or "none"
    summary = (
        f'<p><span class="badge" style="background:{color}">{verdict}</span> '
        f"p = {_e(_fmt(report.p_value))} (method {_e(report.method)}, alpha {_e(report.alpha)}); "
        f"{report.n_reference} reference rows, {report.n_current} current rows.</p>"
        f"<p>Features with drift after {_e(report.correction)} correction: {_e(drifted)}.</p>"
    )
    body = (
        f"<h1>{_e(title)}</h1>{summary}"
        f"<h2>Multivariate tests</h2>{_multivariate_table(report)}"
        f"<h2>Adjusted p-values per feature</h2>{_pvalue_chart(report.per_feature, report.alpha)}"
        f"<h2>Distributions</h2>{_distribution_plots(report.per_feature)}"
        f"<h2>Per-feature tests</h2>{_feature_table(report.per_feature)}"
        f"<h2>Coverage slices: frequent in operations, rare in training</h2>{_slice_table(report)}"
        f"{_label_shift(report)}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
