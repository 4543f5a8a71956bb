"""Small server-rendered SVG charts: no JavaScript, no CDN, readable without colour.

Each chart is a standalone `<svg>` (well-formed XML) with a `<title>` and `<desc>` that screen
readers announce (`role="img"`, `aria-labelledby`), text labels on its axes and a `<title>` on
every bar (the browser shows it on hover). Every piece of text is escaped here, so callers may
pass names that came from users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

SVG_NS = "http://www.w3.org/2000/svg"
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Series:
    """One stack of a stacked bar chart: its name (legend), one value per label, its colour."""

    name: str
    values: Sequence[int]
    color: str


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    ident = escape(chart_id)
    return [
        f'<svg xmlns="{SVG_NS}" class="chart" id="{ident}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
    ]


def _nice_max(value: int) -> int:
    """The axis top: the smallest of 1, 2, 5 x 10^n at or above the value (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def stacked_bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    width: int = 1000,
    height: int = 220,
    label_every: int = 5,
) -> SafeString:
    """Vertical bars, one per label, each stacking the series' values bottom-up."""
    left, right, top, bottom = 40, 12, 30, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top_value = _nice_max(max(totals, default=0))
    parts = _open(chart_id, title, description, width, height)
    # Legend, top left.
    x = left
    for item in series:
        parts.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{escape(item.color)}"/>'
            f'<text x="{x + 14}" y="17" font-size="12" {FONT} fill="#1d2330">'
            f"{escape(item.name)}</text>"
        )
        x += 24 + 7 * len(item.name)
    # Horizontal grid lines with their values.
    for fraction in (0, 0.5, 1):
        if (top_value * fraction) % 1:
            continue  # counts are whole: no "0.5" line
        y = top + plot_h - plot_h * fraction
        parts.append(
            f'<line x1="{left}" y1="{_number(y)}" x2="{left + plot_w}" y2="{_number(y)}" '
            f'stroke="#dfe3ea" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{_number(y + 4)}" font-size="11" {FONT} fill="#5b6475" '
            f'text-anchor="end">{_number(top_value * fraction)}</text>'
        )
    step = plot_w / max(1, len(labels))
    bar_w = max(1.0, step * 0.7)
    for i, label in enumerate(labels):
        x0 = left + i * step + (step - bar_w) / 2
        baseline: float = top + plot_h
        details = ", ".join(f"{s.values[i]} {s.name.lower()}" for s in series)
        parts.append(f'<g class="bar"><title>{escape(label)}: {escape(details)}</title>')
        for item in series:
            value = item.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top_value
            baseline -= h
            parts.append(
                f'<rect x="{_number(x0)}" y="{_number(baseline)}" width="{_number(bar_w)}" '
                f'height="{_number(h)}" fill="{escape(item.color)}"/>'
            )
        parts.append("</g>")
        if i % label_every == 0 or i == len(labels) - 1:
            parts.append(
                f'<text x="{_number(x0 + bar_w / 2)}" y="{height - 10}" font-size="11" {FONT} '
                f'fill="#5b6475" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # every interpolated text is escaped above


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    values: Sequence[int],
    value_labels: Sequence[str],
    color: str,
    width: int = 520,
    empty_text: str = "Nothing to show yet.",
) -> SafeString:
    """Horizontal bars, one row per label, each with its value written beside it."""
    row_h, top, label_w, value_w = 30, 10, 150, 110
    height = top * 2 + row_h * max(1, len(labels))
    parts = _open(chart_id, title, description, width, height)
    if not labels:
        parts.append(
            f'<text x="10" y="{top + 19}" font-size="13" {FONT} fill="#5b6475">'
            f"{escape(empty_text)}</text></svg>"
        )
        return mark_safe("".join(parts))  # noqa: S308  # escaped above
    plot_w = width - label_w - value_w
    top_value = max(max(values, default=0), 1)
    for i, (label, value, shown) in enumerate(zip(labels, values, value_labels, strict=True)):
        y = top + i * row_h
        w = plot_w * value / top_value if value > 0 else 0
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {escape(shown)}</title>'
            f'<text x="{label_w - 8}" y="{y + 19}" font-size="12" {FONT} fill="#1d2330" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 6}" width="{_number(max(w, 1))}" height="18" '
            f'fill="{escape(color)}"/>'
            f'<text x="{_number(label_w + max(w, 1) + 6)}" y="{y + 19}" font-size="12" {FONT} '
            f'fill="#5b6475">{escape(shown)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # every interpolated text is escaped above
