"""Server-side SVG charts for the dashboard: no charting library, no script, nothing from outside.

Every chart is an ``<svg role="img">`` with a ``<title>`` that states its figures in words, so that
screen readers get the numbers and not only the shapes. All text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

__all__ = ["PALETTE", "bar_chart", "colour_for", "heat_map", "line_chart", "mini_progress", "stacked_bar"]

# Okabe-Ito colour-blind-safe palette (darkened where needed for contrast on white).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#8a7d00", "#555555")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def colour_for(label: str, index: int, colours: Mapping[str, str] | None = None) -> str:
    chosen = (colours or {}).get(label)
    if chosen and chosen.startswith("#") and len(chosen) in (4, 7):
        return chosen
    return PALETTE[index % len(PALETTE)]


def _svg(width: int, height: int, title: str, body: str, cls: str) -> Markup:
    return Markup(
        f'<svg class="chart {cls}" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def bar_chart(items: Sequence[tuple[str, int | float]], *, title: str,
              colours: Mapping[str, str] | None = None, width: int = 460) -> Markup:
    """Horizontal bars, one per (label, value), with the value written after each bar."""
    if not items:
        return Markup('<p class="muted">No data yet.</p>')
    row, label_w = 26, 110
    height = row * len(items) + 8
    top = max(v for _, v in items) or 1
    body = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 60) * value / top
        body.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" {FONT} fill="#1b1f24">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="18" rx="3" '
            f'fill="{colour_for(label, i, colours)}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" {FONT} fill="#1b1f24">{value:g}</text>'
        )
    summary = ", ".join(f"{label} {value:g}" for label, value in items)
    return _svg(width, height, f"{title}: {summary}", "".join(body), "bars")


def line_chart(points: Sequence[tuple[str, float]], *, title: str, y_label: str = "",
               width: int = 460, height: int = 200) -> Markup:
    """A line with dots over points in [0, 1], y axis in percent."""
    if not points:
        return Markup('<p class="muted">Not enough overlapping labels yet.</p>')
    left, right, top, bottom = 44, 36, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (i * step if len(points) > 1 else plot_w / 2), top + plot_h * (1 - max(0.0, min(1.0, v)))

    body = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#57606a">'
                    f"{tick:.0%}</text>")
    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    body.append(f'<polyline points="{path}" fill="none" stroke="#0072b2" stroke-width="2.5"/>')
    every = max(1, -(-len(points) // 4))
    for i, ((label, v), (x, y)) in enumerate(zip(points, coords, strict=True)):
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#0072b2"><title>{escape(label)}: {v:.0%}'
                    f"</title></circle>")
        if i % every == 0:
            body.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" {FONT} '
                        f'fill="#57606a">{escape(label)}</text>')
    if y_label:
        body.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle" {FONT} '
                    f'fill="#57606a">{escape(y_label)}</text>')
    summary = ", ".join(f"{label}: {v:.0%}" for label, v in points)
    return _svg(width, height, f"{title}: {summary}", "".join(body), "line")


def stacked_bar(parts: Sequence[tuple[str, int, str]], *, title: str, width: int = 460) -> Markup:
    """One horizontal bar split into (label, count, colour) parts, with a legend below."""
    total = sum(n for _, n, _ in parts)
    if total == 0:
        return Markup('<p class="muted">No tasks yet.</p>')
    height = 64
    x, body, legend_x = 0.0, [], 0
    for label, n, colour in parts:
        w = width * n / total
        if w > 0:
            body.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="24" fill="{colour}"/>')
        x += w
        text = f"{label} {n}"
        body.append(f'<rect x="{legend_x}" y="36" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{legend_x + 16}" y="47" {FONT} fill="#1b1f24">{escape(text)}</text>')
        legend_x += 24 + 7 * len(text)
    summary = ", ".join(f"{label} {n}" for label, n, _ in parts)
    return _svg(max(width, legend_x), height, f"{title}: {summary} of {total}", "".join(body), "stacked")


def heat_map(labels: Sequence[str], matrix: Sequence[Sequence[int]], *, title: str) -> Markup:
    """Rows: consensus label; columns: the annotator's label; shade by row share, counts printed."""
    cell, left, top = 34, 78, 58
    n = len(labels)
    width, height = left + cell * n + 48, top + cell * n + 4
    body = [f'<text x="{left}" y="12" {FONT} fill="#57606a">their label →</text>']
    for j, label in enumerate(labels):
        x = left + j * cell + cell / 2
        body.append(f'<text transform="translate({x:.0f},{top - 6}) rotate(-40)" {FONT} fill="#1b1f24">'
                    f"{escape(label[:10])}</text>")
    words = []
    for i, label in enumerate(labels):
        y = top + i * cell
        body.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end" {FONT} fill="#1b1f24">'
                    f"{escape(label[:10])}</text>")
        row_total = sum(matrix[i]) or 1
        for j in range(n):
            count = matrix[i][j]
            share = count / row_total
            if i == j:
                fill = f"rgba(0,114,178,{0.12 + 0.88 * share:.2f})"
            else:
                fill = f"rgba(213,94,0,{0.08 + 0.92 * min(1.0, share * 2):.2f})" if count else "#f6f8fa"
            ink = "#ffffff" if share > 0.55 else "#1b1f24"
            body.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                        f'fill="{fill}"/><text x="{left + j * cell + cell / 2 - 1:.0f}" y="{y + cell / 2 + 4:.0f}" '
                        f'text-anchor="middle" {FONT} fill="{ink}">{count}</text>')
            if count:
                words.append(f"{labels[i]} labelled {labels[j]}: {count}")
    return _svg(width, height, f"{title}. " + "; ".join(words), "".join(body), "heat")


def mini_progress(done: int, total: int, flagged: int = 0) -> Markup:
    """A small bar for the projects list."""
    share = done / total if total else 0.0
    title = f"{done} of {total} items done ({share:.0%})" + (f", {flagged} suspect" if flagged else "")
    body = (f'<rect x="0" y="3" width="120" height="10" rx="5" fill="#d0d7de"/>'
            f'<rect x="0" y="3" width="{120 * share:.1f}" height="10" rx="5" fill="#009e73"/>')
    return _svg(120, 16, title, body, "mini")
