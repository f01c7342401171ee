"""Charts as server-rendered SVG: series of (label, value) turned into the geometry of a
chart — bars, axis ticks, labels, each value's text — that `templates/charts.html` draws
(autoescaped, like every template: labels are text, whatever a pusher named things).

No script, no chart library, no other origin: the page carries its charts. Every chart has
an accessible name (`label`, the SVG's `aria-label`), a `<title>` per bar (its label and
value, which a pointer or a screen reader finds), and the numbers also in visible text or in
a table next to it. Coordinates are in the chart's own viewBox (`width` x `height`); CSS
scales it to the card.

- `columns`: one vertical bar per point along an x axis (e.g. pushes per day), a y axis
  with round ticks;
- `bars`: a ranking, one horizontal bar per point with its label above and its value at
  the end (top repositories, storage per namespace).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

WIDTH = 400  # about the width of a card: text keeps its size on a phone and a desktop
HIGHEST = 1e300
LABEL_CHARS = 40  # a longer label is cut (its whole text stays in the bar's title)
# Characters XML 1.0 does not allow (control characters, surrogates, U+FFFE/FFFF) would make
# the page's SVG malformed: they become U+FFFD.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Format = Callable[[float], str]


class Bar(NamedTuple):
    x: float
    y: float
    width: float
    height: float
    title: str  # label and value, e.g. "Dec 3: 5"


class Tick(NamedTuple):
    at: float  # y of a horizontal grid line (columns) or x of a label
    text: str


class XLabel(NamedTuple):
    at: float
    text: str
    anchor: str  # "middle", or "end" for the last: it keeps inside the chart


class ColumnChart(NamedTuple):
    label: str
    width: int
    height: int
    left: float  # where the plot starts (the y axis)
    bottom: float  # the x axis
    bars: list[Bar]
    y_ticks: list[Tick]  # grid lines with their value
    x_ticks: list[XLabel]  # labels under the bars (every few, so they never overlap)


class RankedBar(NamedTuple):
    bar: Bar
    label: str  # shown above the bar (cut if long)
    label_y: float
    value: str  # shown at the right end


class BarChart(NamedTuple):
    label: str
    width: int
    height: int
    rows: list[RankedBar]


def text(value: object) -> str:
    """A string that is well-formed XML text once escaped."""
    return _NOT_XML.sub("\ufffd", str(value))


def cut(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def nice_step(top: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) so that `ticks` steps reach `top`."""
    raw = top / ticks
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def labelled(count: int, room: int = 4) -> list[int]:
    """Which of `count` columns get a label under them: every few, counted back from the
    last (the newest day is always named), at most `room` (more would overlap)."""
    every = max(1, math.ceil(count / room))
    return sorted(range(count - 1, -1, -every))


def _drawn(value: float) -> float:
    """Negative, infinite or not-a-number values have no bar, and none is drawn beyond 1e300
    (where a float's arithmetic ends): counts and bytes are finite, never below zero."""
    try:
        found = float(value)
    except OverflowError:  # an int beyond any float
        return HIGHEST if value > 0 else 0.0
    return min(found, HIGHEST) if math.isfinite(found) and found > 0 else 0.0


def _values(points: Sequence[tuple[str, float]]) -> list[float]:
    return [_drawn(v) for _, v in points]


def columns(
    points: Sequence[tuple[str, float]],
    label: str,
    value_text: Format,
    height: int = 200,
    integer: bool = True,
) -> ColumnChart:
    """One column per point, left to right; `value_text` writes a value (ticks, titles).
    `integer`: the ticks are whole numbers (counts)."""
    left, right, top, bottom = 40.0, 4.0, 10.0, 24.0
    axis_y = height - bottom
    plot_w, plot_h = WIDTH - left - right, axis_y - top
    values = _values(points)
    step = nice_step(max(values, default=0))
    if integer or step <= 0:  # (a step too small for a float is 0)
        step = max(1.0, math.ceil(step))
    highest = step * max(1, math.ceil(max(values, default=0) / step))
    band = plot_w / max(len(points), 1)
    bars = []
    for i, ((name, given), value) in enumerate(zip(points, values, strict=True)):
        h = plot_h * min(value / highest, 1.0)
        bars.append(
            Bar(
                x=left + i * band + band * 0.15,
                y=axis_y - h,
                width=band * 0.7,
                height=h,
                title=text(f"{name}: {value_text(given)}"),
            )
        )
    y_ticks = []
    steps = round(highest / step)
    for k in range(steps + 1):
        tick = int(step) * k if integer else step * k
        y_ticks.append(Tick(axis_y - plot_h * k / steps, text(value_text(tick))))
    x_ticks = []
    for i in labelled(len(points)):
        name = text(cut(points[i][0], 12))
        if i == len(points) - 1 and i > 0:
            x_ticks.append(XLabel(left + (i + 1) * band, name, "end"))
        else:
            x_ticks.append(XLabel(left + i * band + band / 2, name, "middle"))
    return ColumnChart(text(label), WIDTH, height, left, axis_y, bars, y_ticks, x_ticks)


def bars(points: Sequence[tuple[str, float]], label: str, value_text: Format) -> BarChart:
    """A ranking: one row per point, top to bottom, each bar as long as its share of the
    largest value."""
    row, pad = 40.0, 4.0
    values = _values(points)
    highest = max(values, default=0) or 1.0
    rows = []
    for i, ((name, given), value) in enumerate(zip(points, values, strict=True)):
        y = pad + i * row
        shown = value_text(given)
        bar = Bar(
            x=0.0,
            y=y + 20,
            width=WIDTH * value / highest,
            height=14.0,
            title=text(f"{name}: {shown}"),
        )
        rows.append(RankedBar(bar, text(cut(name)), y + 14, text(shown)))
    height = int(pad * 2 + row * len(points)) or 1
    return BarChart(text(label), WIDTH, height, rows)
