"""Inline SVG for the HTML report's plots: a histogram with a marker line, a stacked bar
against a limit, horizontal bars. Plain strings, no library, nothing fetched: the page must
open offline and be pasted or attached as one file."""
from __future__ import annotations

import math
from html import escape

from doctor.results.plots import BarChart, Histogram, Plot, StackedBar

WIDTH, LEFT, RIGHT = 720, 64, 24
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948")
LIMIT, SOFT, BAD, TEXT, GRID = "#d62728", "#ff9896", "#d62728", "#333", "#ddd"


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 12, fill: str = TEXT,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f"{escape(text)}</text>")


def _nice_step(top: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `top`."""
    raw = max(top, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _svg(height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" '
            f'style="max-width:100%;height:auto">'
            + "".join(body) + "</svg>")


def histogram(plot: Histogram) -> str:
    top_x = max(plot.bin_width * len(plot.counts), plot.marker or 0)
    top_y = max(max(plot.counts, default=0), 1)
    height, plot_top, plot_bottom = 260, 16, 210
    span = WIDTH - LEFT - RIGHT
    sx = span / top_x
    sy = (plot_bottom - plot_top) / top_y
    body = []
    step_y = max(1.0, _nice_step(top_y, 4))   # whole rows
    tick = 0.0
    while tick <= top_y:   # counts axis with grid lines
        y = plot_bottom - tick * sy
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(LEFT - 6, y + 4, _number(tick), "end", 11))
        tick += step_y
    for i, count in enumerate(plot.counts):
        if not count:
            continue
        lo = i * plot.bin_width
        over = plot.marker is not None and lo + plot.bin_width > plot.marker
        body.append(f'<rect class="bin" x="{LEFT + lo * sx:.1f}" y="{plot_bottom - count * sy:.1f}" '
                    f'width="{max(plot.bin_width * sx - 1, 1):.1f}" height="{count * sy:.1f}" '
                    f'fill="{SOFT if over else PALETTE[0]}"><title>{_number(lo)}–{_number(lo + plot.bin_width)} '
                    f'tokens: {count:,} rows</title></rect>')
    step_x = _nice_step(top_x, 6)
    tick = 0.0
    while tick <= top_x:
        x = LEFT + tick * sx
        body.append(f'<line x1="{x:.1f}" y1="{plot_bottom}" x2="{x:.1f}" y2="{plot_bottom + 4}" stroke="{TEXT}"/>')
        body.append(_text(x, plot_bottom + 16, _number(tick), "middle", 11))
        tick += step_x
    body.append(f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}" stroke="{TEXT}"/>')
    body.append(_text(LEFT + span / 2, height - 12, plot.x_label, "middle"))
    body.append(_text(14, plot_top + (plot_bottom - plot_top) / 2, "rows", "middle", 12,
                      extra=f' transform="rotate(-90 14 {plot_top + (plot_bottom - plot_top) / 2:.1f})"'))
    if plot.marker is not None:
        x = LEFT + plot.marker * sx
        body.append(f'<line class="marker" x1="{x:.1f}" y1="{plot_top - 6}" x2="{x:.1f}" y2="{plot_bottom}" '
                    f'stroke="{LIMIT}" stroke-width="2" stroke-dasharray="6 3"/>')
        anchor = "end" if x > WIDTH - 160 else "start"
        body.append(_text(x + (-6 if anchor == "end" else 6), plot_top + 6, plot.marker_label, anchor, 12, LIMIT))
    return _svg(height, body, plot.title)


def stacked_bar(plot: StackedBar) -> str:
    top = max(plot.total, plot.limit or 0) * 1.08
    span = WIDTH - LEFT - RIGHT
    sx = span / max(top, 1e-9)
    bar_y, bar_h = 34, 44
    # the legend wraps to as many rows as its entries need
    rows, row_x = 1, float(LEFT)
    for part in plot.parts:
        w = 22 + 6.3 * len(f"{part.label} {_number(part.value)} {plot.unit}")
        if row_x + w > WIDTH - RIGHT and row_x > LEFT:
            rows, row_x = rows + 1, float(LEFT)
        row_x += w
    height = 130 + 20 * rows
    body = []
    x = float(LEFT)
    for i, part in enumerate(plot.parts):
        w = part.value * sx
        body.append(f'<rect class="segment" x="{x:.1f}" y="{bar_y}" width="{max(w, 0):.1f}" height="{bar_h}" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(part.label)}: {_number(part.value)} '
                    f'{escape(plot.unit)}</title></rect>')
        x += w
    for value, label, colour, y in ((plot.limit, plot.limit_label, LIMIT, 16),
                                    (plot.soft_limit, plot.soft_label, SOFT, bar_y + bar_h + 16)):
        if value is None:
            continue
        lx = LEFT + value * sx
        body.append(f'<line class="limit" x1="{lx:.1f}" y1="{bar_y - 10}" x2="{lx:.1f}" y2="{bar_y + bar_h + 6}" '
                    f'stroke="{colour}" stroke-width="2" stroke-dasharray="6 3"/>')
        body.append(_text(lx, y + (4 if y < bar_y else 0), label, "end" if lx > WIDTH / 2 else "start", 12, colour))
    legend_x, legend_y = float(LEFT), float(bar_y + bar_h + 36)
    for i, part in enumerate(plot.parts):   # the legend says what each colour is, with its size
        text = f"{part.label} {_number(part.value)} {plot.unit}"
        w = 22 + 6.3 * len(text)
        if legend_x + w > WIDTH - RIGHT and legend_x > LEFT:
            legend_x, legend_y = float(LEFT), legend_y + 20
        body.append(f'<rect x="{legend_x:.1f}" y="{legend_y:.0f}" width="10" height="10" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        body.append(_text(legend_x + 14, legend_y + 9, text, size=11))
        legend_x += w
    return _svg(height, body, plot.title)


def bar_chart(plot: BarChart) -> str:
    row, label_w = 26, 170
    height = 20 + row * len(plot.bars) + 10
    top = max((b.value for b in plot.bars), default=0) or 1
    span = WIDTH - label_w - RIGHT - 80
    body = []
    for i, bar in enumerate(plot.bars):
        y = 12 + i * row
        w = bar.value / top * span
        colour = PALETTE[0] if bar.ok else BAD
        body.append(_text(label_w - 8, y + 14, bar.label, "end"))
        body.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="{row - 8}" '
                    f'fill="{colour}"><title>{escape(bar.label)}: {bar.value:.2f} {escape(plot.unit)}</title></rect>')
        note = bar.note if bar.note == "skipped" else f"{bar.value:.2f} {plot.unit}" + (f" ({bar.note})" if bar.note else "")
        body.append(_text(label_w + w + 6, y + 14, note, size=11, fill=BAD if not bar.ok else "#888" if bar.note else TEXT))
    return _svg(height, body, plot.title)


def render(plot: Plot) -> str:
    if isinstance(plot, Histogram):
        return histogram(plot)
    if isinstance(plot, StackedBar):
        return stacked_bar(plot)
    return bar_chart(plot)
