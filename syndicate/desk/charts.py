"""Small SVG charts drawn on the server: list growth per week and one send's outcome.

Hand-written: two bar charts are a few dozen lines of SVG, where a plotting library would add
megabytes and a script to the page. Every chart has a <title> and a <desc> saying its numbers in
words, for screen readers; colours are the newsletter's (attributes, not styles, so the desk's
Content-Security-Policy needs no inline-style exception).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from markupsafe import Markup

JOINED = "#8a3b12"
LEFT = "#c9874f"
OUTCOME_COLOURS = {
    "sent": "#4f7a3a",
    "deferred": "#c9874f",
    "failed": "#a32d12",
    "bounced": "#6b6150",
    "unsubscribed": "#8c8273",
}


@dataclass(frozen=True)
class Week:
    monday: date
    joined: int
    left: int


def weeks(joined: list[datetime], left: list[datetime], today: date, count: int = 12) -> list[Week]:
    """The last `count` weeks (Monday to Sunday), oldest first, with joins and departures."""
    this_monday = today - timedelta(days=today.weekday())
    mondays = [this_monday - timedelta(weeks=n) for n in range(count - 1, -1, -1)]

    def monday_of(moment: datetime) -> date:
        day = moment.date()
        return day - timedelta(days=day.weekday())

    joins, leaves = Counter(map(monday_of, joined)), Counter(map(monday_of, left))
    return [Week(m, joins.get(m, 0), leaves.get(m, 0)) for m in mondays]


def growth(data: list[Week], chart_id: str = "growth") -> Markup:
    """Bars up for readers who joined, down for readers who left, one pair per week."""
    width, height, pad, label = 560, 220, 28, 18
    middle = (height - label) / 2
    peak = max([1, *[w.joined for w in data], *[w.left for w in data]])
    scale = (middle - pad / 2) / peak
    slot = (width - pad) / max(len(data), 1)
    bars, labels = [], []
    for i, week in enumerate(data):
        x = pad + i * slot + slot * 0.15
        w = slot * 0.7
        up, down = week.joined * scale, week.left * scale
        bars.append(
            f'<rect x="{x:.1f}" y="{middle - up:.1f}" width="{w:.1f}" height="{up:.1f}" '
            f'fill="{JOINED}"><title>week of {week.monday:%d %b}: {week.joined} joined</title>'
            "</rect>"
        )
        bars.append(
            f'<rect x="{x:.1f}" y="{middle:.1f}" width="{w:.1f}" height="{down:.1f}" '
            f'fill="{LEFT}"><title>week of {week.monday:%d %b}: {week.left} left</title></rect>'
        )
        if i % 2 == 0 or len(data) <= 6:
            labels.append(
                f'<text x="{x + w / 2:.1f}" y="{height - 4}" text-anchor="middle" '
                f'font-size="11" fill="currentColor">{week.monday:%d %b}</text>'
            )
    joined, left = sum(w.joined for w in data), sum(w.left for w in data)
    words = "; ".join(f"week of {w.monday:%d %b}: +{w.joined} −{w.left}" for w in data)
    svg = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">Readers per week: {joined} joined, {left} left in '
        f"{len(data)} weeks</title>"
        f'<desc id="{chart_id}-desc">{escape(words)}</desc>'
        f'<line x1="{pad}" y1="{middle}" x2="{width}" y2="{middle}" stroke="currentColor" '
        f'stroke-width="1"/>'
        f'<text x="0" y="{pad / 2 + 6}" font-size="11" fill="currentColor">+{peak}</text>'
        f'<text x="0" y="{middle * 2 - pad / 2}" font-size="11" fill="currentColor">−{peak}</text>'
        + "".join(bars)
        + "".join(labels)
        + "</svg>"
    )
    return Markup(svg)


def outcome(counts: dict[str, int], label: str) -> Markup:
    """One send as a stacked bar: sent, deferred, failed, bounced, unsubscribed after."""
    width, height = 120, 14
    total = sum(counts.get(name, 0) for name in OUTCOME_COLOURS) or 1
    x, parts = 0.0, []
    for name, colour in OUTCOME_COLOURS.items():
        n = counts.get(name, 0)
        if not n:
            continue
        w = width * n / total
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour}">'
            f"<title>{n} {name}</title></rect>"
        )
        x += w
    words = ", ".join(f"{counts.get(name, 0)} {name}" for name in OUTCOME_COLOURS)
    svg = (
        f'<svg class="bar" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}: {words}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="none" stroke="#8c8273"/>'
        + "".join(parts)
        + "</svg>"
    )
    return Markup(svg)
