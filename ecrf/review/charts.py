"""Charts of the dashboards, as SVG drawn on the server: pure functions, markup out.

No script and no `style` attribute (a strict Content-Security-Policy comes later): shapes
carry SVG presentation attributes and CSS classes, coloured by static/css/ecrf.css. Every
text is escaped here. Each chart is an image for assistive technologies (`role="img"`,
its `<title>` and `aria-label`); the page gives the same figures in a table beside it.
"""

from __future__ import annotations

import itertools
import math
from datetime import date

from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

WIDTH = 480
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 16, 16, 32


def _n(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros (no locale: SVG wants dots)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: str, *, cls: str = "chart-text", anchor: str = "") -> str:
    anchor_attr = f' text-anchor="{anchor}"' if anchor else ""
    return f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}"{anchor_attr}>{escape(text)}</text>'


def _svg(height: int, label: str, body: list[str], *, cls: str) -> SafeString:
    title = escape(label)
    return mark_safe(  # nosec B308, B703  # every text and number in it is escaped
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {cls}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'role="img" aria-label="{title}"><title>{title}</title>' + "".join(body) + "</svg>"
    )


def _empty(label: str, message: str, *, cls: str, height: int = 120) -> SafeString:
    return _svg(
        height,
        f"{label}: {message}",
        [
            f'<rect class="chart-frame" x="0.5" y="0.5" width="{WIDTH - 1}" '
            f'height="{height - 1}" rx="4"/>',
            _text(WIDTH / 2, height / 2, message, cls="chart-text chart-empty", anchor="middle"),
        ],
        cls=f"{cls} chart-is-empty",
    )


def _ticks(top: int) -> list[int]:
    """Round values from 0 to at least `top`, at most five: steps of 1, 2, 5, 10, 20..."""
    if top <= 0:
        return [0]
    for power in itertools.count():
        for mantissa in (1, 2, 5):
            step = mantissa * 10**power
            if math.ceil(top / step) <= 4:
                return list(range(0, step * math.ceil(top / step) + 1, step))
    raise AssertionError("unreachable")


def bar_chart(bars: list[tuple[str, int]] | None, *, label: str, empty: str) -> SafeString:
    """Vertical bars, one per (name, value), heights in proportion to the values, each
    value written above its bar. None (a figure not tracked) or no bar: the empty state."""
    if not bars:
        return _empty(label, empty, cls="chart-bars")
    height = 200
    plot_h = height - PAD_TOP - PAD_BOTTOM
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    ticks = _ticks(max(value for _name, value in bars))
    top = ticks[-1] or 1
    base = PAD_TOP + plot_h
    body = [f'<line class="chart-axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{base}"/>']  # fmt: skip
    for tick in ticks:
        y = base - tick / top * plot_h
        body.append(
            _text(PAD_LEFT - 6, y + 4, str(tick), cls="chart-text chart-tick", anchor="end")
        )
    slot = plot_w / len(bars)
    bar_w = slot * 0.6
    for index, (name, value) in enumerate(bars):
        x = PAD_LEFT + index * slot + (slot - bar_w) / 2
        h = value / top * plot_h
        body.append(
            f'<rect class="chart-bar" x="{_n(x)}" y="{_n(base - h)}" width="{_n(bar_w)}" '
            f'height="{_n(h)}" data-value="{value}"><title>{escape(name)}: {value}</title></rect>'
        )
        body.append(_text(x + bar_w / 2, base - h - 4, str(value), anchor="middle"))
        body.append(_text(x + bar_w / 2, base + 18, name, anchor="middle"))
    return _svg(height, label, body, cls="chart-bars")


def progress_bars(rows: list[tuple[str, int, int]], *, label: str, empty: str) -> SafeString:
    """Horizontal bars, one per (name, done, total): the share done of the total, with
    "done / total" written beside. No row, or nothing to do anywhere: the empty state."""
    if not rows or not any(total for _name, _done, total in rows):
        return _empty(label, empty, cls="chart-progress")
    row_h, name_w, figure_w = 28, 72, 120
    height = PAD_TOP + row_h * len(rows) + 8
    track_w = WIDTH - name_w - figure_w
    body = []
    for index, (name, done, total) in enumerate(rows):
        y = PAD_TOP + index * row_h
        share = done / total if total else 0
        body.append(_text(0, y + 14, name))
        body.append(
            f'<rect class="chart-track" x="{name_w}" y="{y}" width="{track_w}" height="18" rx="3"/>'
        )
        body.append(
            f'<rect class="chart-bar" x="{name_w}" y="{y}" width="{_n(share * track_w)}" '
            f'height="18" rx="3" data-done="{done}" data-total="{total}"/>'
        )
        figure = f"{done} / {total}" + (f" ({done * 100 // total} %)" if total else "")
        body.append(_text(name_w + track_w + 8, y + 14, figure))
    return _svg(height, label, body, cls="chart-progress")


def _month_label(month: date) -> str:
    return date_format(month, "M Y")  # "Nov 2026", "nov. 2026": four fit under the chart


def _months_between(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return months


def enrolment_chart(
    months: dict[date, int], *, target: int | None, today: date, label: str, empty: str
) -> SafeString:
    """Patients included, cumulated month by month from the first inclusion to this month,
    as steps; the target as a dashed line. No inclusion yet: the empty state (with the
    target said in words)."""
    if not months:
        if target:
            empty = f"{empty} " + _("Target: %(target)d patients.") % {"target": target}
        return _empty(label, empty, cls="chart-enrolment")
    axis = _months_between(min(months), max(max(months), today.replace(day=1)))
    cumulated, running = [], 0
    for month in axis:
        running += months.get(month, 0)
        cumulated.append(running)
    height = 220
    plot_h = height - PAD_TOP - PAD_BOTTOM
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    ticks = _ticks(max(running, target or 0))
    top = ticks[-1] or 1
    base = PAD_TOP + plot_h
    step = plot_w / len(axis)

    def y(value: int) -> float:
        return base - value / top * plot_h

    body = [
        f'<line class="chart-axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{base}"/>'
    ]
    for tick in ticks:
        body.append(
            _text(PAD_LEFT - 6, y(tick) + 4, str(tick), cls="chart-text chart-tick", anchor="end")
        )
    # Steps: each month's total holds from the month's start to the next month's.
    points = []
    for index, total in enumerate(cumulated):
        x0, x1 = PAD_LEFT + index * step, PAD_LEFT + (index + 1) * step
        points += [(x0, y(total)), (x1, y(total))]
    path = "M" + " L".join(f"{_n(x)} {_n(yy)}" for x, yy in [(PAD_LEFT, base), *points])
    body.append(f'<path class="chart-line" d="{path}" data-total="{running}"/>')
    if target:
        ty = y(target)
        body.append(
            f'<line class="chart-target" x1="{PAD_LEFT}" y1="{_n(ty)}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{_n(ty)}" stroke-dasharray="6 4" data-target="{target}"/>'
        )
        body.append(
            _text(
                WIDTH - PAD_RIGHT,
                ty - 4,
                _("Target: %(target)d") % {"target": target},
                cls="chart-text chart-target-label",
                anchor="end",
            )
        )
    # At most four month labels, evenly spread, the first and the current month included.
    last = len(axis) - 1
    for index in sorted({round(i * last / 3) for i in range(4)}):
        anchor = "start" if index == 0 else "end" if index == last else "middle"
        x = PAD_LEFT + index * step + {"start": 0, "middle": step / 2, "end": step}[anchor]
        body.append(_text(x, base + 18, _month_label(axis[index]), anchor=anchor))
    return _svg(height, label, body, cls="chart-enrolment")
