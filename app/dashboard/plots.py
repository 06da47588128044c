"""The dashboard's plots, drawn on the server as SVG.

Why SVG from the server and not a JavaScript chart library: Tandem runs on machines without
internet access (no CDN), the figures are few and simple (bars, error bars, a heatmap), an SVG is
part of the page (it prints, scales on a phone, needs no script, and a screen reader gets its
title and each mark's <title>), and there is no vendored bundle to keep up to date. Each mark
carries its figure in a data-value attribute, which the browser tests read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH = 640
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _svg(height: int, title: str, body: list[str], *, width: int = WIDTH, css_class: str = "plot") -> Markup:
    """An SVG as wide as its container up to its own width (so it shrinks on a phone)."""
    return Markup(
        f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT}><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _nice_top(value: float) -> float:
    """A round number at or above ``value`` for an axis's end (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def daily_bars(days: Sequence[tuple[date, int]], title: str = "Judgments per day") -> Markup:
    height, left, bottom, top = 220, 44, 28, 12
    most = _nice_top(max((n for _, n in days), default=0))
    inner_w, inner_h = WIDTH - left - 8, height - bottom - top
    step = inner_w / max(1, len(days))
    body = [
        f'<line x1="{left}" y1="{top + inner_h}" x2="{WIDTH - 8}" y2="{top + inner_h}" stroke="currentColor"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" fill="currentColor">{most:g}</text>',
        f'<text x="{left - 6}" y="{top + inner_h}" text-anchor="end" fill="currentColor">0</text>',
    ]
    for i, (day, count) in enumerate(days):
        bar = inner_h * count / most
        x = left + i * step
        body.append(
            f'<rect class="bar" data-value="{count}" x="{x + 1:.1f}" y="{top + inner_h - bar:.1f}" '
            f'width="{max(1.0, step - 2):.1f}" height="{bar:.1f}"><title>{day.isoformat()}: {count}</title></rect>'
        )
        if (len(days) - 1 - i) % 7 == 0:  # weekly, ending today
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="currentColor">'
                f"{day:%m-%d}</text>"
            )
    return _svg(height, title, body)


def strengths(models: Sequence[dict], title: str = "Bradley–Terry rating with 95% interval") -> Markup:
    """One row per model: its rating as a dot, its interval as a bar (the report's ranking)."""
    if not models:
        return Markup("")
    row, left, right, top = 28, 190, 24, 10
    height = top + row * len(models) + 30
    low = min(m["lower"] if m["lower"] is not None else m["rating"] for m in models)
    high = max(m["upper"] if m["upper"] is not None else m["rating"] for m in models)
    low, high = low - 10, high + 10
    span = WIDTH - left - right

    def x(value: float) -> float:
        return left + span * (value - low) / (high - low)

    body = [
        f'<line x1="{x(1000):.1f}" y1="{top}" x2="{x(1000):.1f}" y2="{height - 26}" stroke="currentColor" '
        f'stroke-dasharray="3 3" opacity=".5"/>'
        if low < 1000 < high
        else "",
        f'<text x="{left}" y="{height - 8}" fill="currentColor">{low:.0f}</text>',
        f'<text x="{WIDTH - right}" y="{height - 8}" text-anchor="end" fill="currentColor">{high:.0f}</text>',
    ]
    for i, model in enumerate(models):
        y = top + row * i + row / 2
        lower = model["lower"] if model["lower"] is not None else model["rating"]
        upper = model["upper"] if model["upper"] is not None else model["rating"]
        name = escape(str(model["model"]))
        body.append(
            f'<g class="model" data-model="{name}" data-value="{model["rating"]}">'
            f"<title>{name}: {model['rating']} ({lower} to {upper})</title>"
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor">{name}</text>'
            f'<line class="interval" x1="{x(lower):.1f}" y1="{y:.1f}" x2="{x(upper):.1f}" y2="{y:.1f}" '
            f'stroke="currentColor" stroke-width="2"/>'
            f'<circle cx="{x(model["rating"]):.1f}" cy="{y:.1f}" r="5" class="point"/></g>'
        )
    return _svg(height, title, body)


def heatmap(names: Sequence[str], win_rate: dict, battles: dict, title: str = "Win rate of row over column") -> Markup:
    """Cells coloured from red (0) through grey (½) to blue (1); empty where no battle."""
    if not names:
        return Markup("")
    cell, left, top = 40, 190, 120
    # Room on the right for the last column's slanted name.
    size_w, size_h = left + cell * len(names) + 110, top + cell * len(names) + 8
    body = []
    for j, column in enumerate(names):
        cx = left + cell * j + cell / 2
        body.append(
            f'<text transform="translate({cx:.1f},{top - 6}) rotate(-45)" fill="currentColor">{escape(column)}</text>'
        )
    for i, row in enumerate(names):
        y = top + cell * i
        body.append(
            f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end" fill="currentColor">{escape(row)}</text>'
        )
        for j, column in enumerate(names):
            rate = None if row == column else win_rate[row][column]
            if rate is None:
                continue
            shade = _diverging(rate)
            body.append(
                f'<g class="cell" data-value="{rate:.3f}"><title>{escape(row)} over {escape(column)}: '
                f"{rate:.2f} in {battles[row][column]} battles</title>"
                f'<rect x="{left + cell * j}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{shade}"/>'
                f'<text x="{left + cell * j + cell / 2:.1f}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                f'fill="#000">{rate:.2f}</text></g>'
            )
    return _svg(size_h, title, body, width=size_w, css_class="plot heatmap")


def _diverging(rate: float) -> str:
    """Light colours only, so the black figures on them keep a contrast above 7:1."""
    far = abs(rate - 0.5) * 2
    base = (248, 180, 170) if rate < 0.5 else (160, 200, 250)
    mixed = [round(235 + (channel - 235) * far) for channel in base]
    return "#{:02x}{:02x}{:02x}".format(*mixed)
