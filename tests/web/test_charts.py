"""The SVG charts (api.web.charts drawn by templates/charts.html): whatever the series, the
SVG is well-formed, its text escaped, every bar inside the viewBox, and the chart has an
accessible name and a title per bar."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from api.web import charts
from api.web.templates import environment

SVG = "{http://www.w3.org/2000/svg}"
labels = st.text(max_size=80)
values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
)
series = st.lists(st.tuples(labels, values), max_size=40)


def _draw(macro: str, chart: object) -> ET.Element:
    module = environment("en").get_template("charts.html").module
    svg = str(getattr(module, macro)(chart))
    return ET.fromstring(svg)  # raises on anything malformed


def _inside(root: ET.Element) -> None:
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    rects = root.iter(f"{SVG}rect")
    for rect in rects:
        x, y = float(rect.get("x")), float(rect.get("y"))
        w, h = float(rect.get("width")), float(rect.get("height"))
        assert all(math.isfinite(v) for v in (x, y, w, h))
        assert 0 <= x and 0 <= y and 0 <= w and 0 <= h
        assert x + w <= width + 0.01 and y + h <= height + 0.01


def _names(root: ET.Element, count: int) -> None:
    assert root.get("role") == "img" and root.get("aria-label") is not None
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(bars) == count
    assert all(bar.find(f"{SVG}title") is not None for bar in bars)


@given(series)
def test_any_series_makes_well_formed_columns_inside_the_viewbox(points) -> None:
    chart = charts.columns(points, "Pushes <per> day & night", lambda v: f"{v:g}")
    root = _draw("columns", chart)
    _inside(root)
    _names(root, len(points))
    assert root.get("aria-label") == "Pushes <per> day & night"


@given(series)
def test_any_series_makes_well_formed_bars_inside_the_viewbox(points) -> None:
    chart = charts.bars(points, "Top", lambda v: f"{v:.0f} B")
    root = _draw("bars", chart)
    _inside(root)
    _names(root, len(points))


@given(st.lists(st.tuples(labels, st.integers(0, 10**12)), min_size=1, max_size=40))
def test_columns_are_as_tall_as_their_values(points) -> None:
    chart = charts.columns(points, "c", str)
    heights = [bar.height for bar in chart.bars]
    for (_, a), (_, b), ha, hb in zip(points, points[1:], heights, heights[1:], strict=False):
        assert (a < b) == (ha < hb) or math.isclose(ha, hb)
    top = max(v for _, v in points)
    if top:  # the largest reaches at least half of the plot (the axis ends at a round step)
        assert max(heights) >= (chart.bottom - 10) / 2
    # the y axis' ticks count up from zero in whole steps
    ticks = [int(t.text) for t in chart.y_ticks]
    assert ticks[0] == 0 and ticks == sorted(ticks) and ticks[-1] >= top


def test_text_is_escaped_never_markup() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">&amp;'
    root = _draw("bars", charts.bars([(hostile, 5)], hostile, lambda v: f"{v:g} <b>"))
    assert root.find(f"{SVG}script") is None and root.find(f".//{SVG}img") is None
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert charts.cut(hostile) in texts and "5 <b>" in texts
    title = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar").find(f"{SVG}title")
    assert title.text == f"{hostile}: 5 <b>"  # the whole label, as text
    columns = _draw("columns", charts.columns([(hostile, 1)], hostile, str))
    assert columns.get("aria-label") == hostile and columns.find(f".//{SVG}script") is None


def test_characters_xml_cannot_hold_become_replacement_characters() -> None:
    root = _draw("bars", charts.bars([("a\x00b\x1b\ufffe", 1)], "x\x07", str))
    assert root.get("aria-label") == "x\ufffd"
    assert "a\ufffdb\ufffd\ufffd" in [t.text for t in root.iter(f"{SVG}text")]


def test_long_labels_are_cut_and_a_month_has_a_few_labels() -> None:
    name = "org/" + "very-long-name-" * 10
    (row,) = charts.bars([(name, 1)], "x", str).rows
    assert len(row.label) == charts.LABEL_CHARS and row.label.endswith("…")
    assert row.bar.title.startswith(name)
    days = [(f"Dec {d}", d) for d in range(1, 31)]
    chart = charts.columns(days, "x", str)
    shown = [t.text for t in chart.x_ticks]
    assert shown == ["Dec 6", "Dec 14", "Dec 22", "Dec 30"]  # a week apart, today named
    assert [t.anchor for t in chart.x_ticks] == ["middle"] * 3 + ["end"]  # inside the chart
    assert chart.x_ticks[-1].at == charts.WIDTH - 4  # the plot's right end
    gaps = [b.at - a.at for a, b in zip(chart.x_ticks, chart.x_ticks[1:], strict=False)]
    assert min(gaps) >= (charts.WIDTH - 44) / 30 * 7.5  # never crowded (CJK dates are wide)
    assert [t.anchor for t in charts.columns([("a", 1)], "x", str).x_ticks] == ["middle"]


def test_nice_steps_are_round() -> None:
    found = [charts.nice_step(v) for v in (0, 3, 4, 7, 40, 1000, 12345)]
    assert found == [1, 1, 1, 2, 10, 500, 5000]
