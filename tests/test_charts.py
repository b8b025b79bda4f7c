"""The dashboard's server-drawn SVG charts: bars proportional to their values, labels kept as
text, axes with round ticks, clear errors on values that are not numbers."""

from __future__ import annotations

import math

import pytest
from lxml import etree

from engine.errors import InputError
from web.charts import bar_chart, line_chart, nice_ticks, progress_bar, stacked_bar_chart

NS = {"s": "http://www.w3.org/2000/svg"}
DEPTS = [("辦公室", 96.5), ("財務科", 88.0), ("城市管理局執法大隊第三中隊", 75.0), ("Planning", 50)]


def _svg(text: str) -> etree._Element:
    root = etree.fromstring(text.encode("utf-8"))
    assert root.find(".//s:script", NS) is None
    return root


def _bars(root: etree._Element) -> list[etree._Element]:
    return root.findall(".//s:g[@class='bar']", NS)


def test_bar_chart__horizontal__widths_proportional_and_values_written() -> None:
    root = _svg(bar_chart(DEPTS, title="各部門按時辦結率", unit="%", x_label="按時辦結率"))
    bars = _bars(root)
    assert [b.get("data-label") for b in bars] == [d[0] for d in DEPTS]
    widths = [float(b.find(".//s:rect", NS).get("width")) for b in bars]
    for (_, value), w in zip(DEPTS, widths):
        assert w / widths[0] == pytest.approx(value / 96.5, rel=0.01)
    text = "".join(root.itertext())
    assert "各部門按時辦結率" in text and "96.5%" in text and "按時辦結率" in text and "100%" in text
    # A long label is shortened to its column, the full text stays in the tooltip.
    assert "城市管理局執法大隊第三中隊: 75%" in "".join(t.text for t in root.iterfind(".//s:title", NS))


def test_bar_chart__vertical__heights_proportional_and_axis_ticks() -> None:
    data = [("第一季", 12), ("第二季", 30), ("第三季", 25), ("第四季", 0)]
    root = _svg(bar_chart(data, horizontal=False, y_label="件數"))
    rects = [b.find(".//s:rect", NS) for b in _bars(root)]
    heights = [float(r.get("height")) for r in rects]
    assert heights[1] / heights[0] == pytest.approx(30 / 12, rel=0.01) and heights[3] == 0
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 1) for r in rects}
    assert len(bottoms) == 1  # every column stands on the zero line
    ticks = [t.text for t in root.iterfind(".//s:g[@class='axis y-axis']//s:tspan", NS)]
    assert ticks == ["0", "10", "20", "30"]


def test_stacked_bar_chart__series_coloured_alike_and_totals() -> None:
    data = [("一級", [("已處理", 20), ("逾期", 2)]), ("二級", [("逾期", 1), ("已處理", 8)])]
    root = _svg(stacked_bar_chart(data, title="escalations"))
    colors: dict[str, set[str]] = {}
    for seg in root.iterfind(".//s:g[@class='segment']", NS):
        colors.setdefault(seg.get("data-series"), set()).add(seg.find("s:rect", NS).get("fill"))
    assert set(colors) == {"已處理", "逾期"} and all(len(c) == 1 for c in colors.values())
    assert colors["已處理"] != colors["逾期"]
    assert [b.get("data-value") for b in _bars(root)] == ["22", "9"]
    assert "已處理" in "".join(root.find(".//s:g[@class='legend-item']", NS).itertext())
    for horizontal in (True, False):
        _svg(stacked_bar_chart(data, horizontal=horizontal))


def test_line_chart__points_follow_values_and_gaps_break_the_line() -> None:
    months = [(f"2012-{m:02d}", v) for m, v in zip(range(1, 13), [3, 5, 9, 14, 11, 8, 7, 12, 15, 10, 6, 4])]
    root = _svg(line_chart(months, title="投訴按月份"))
    points = root.findall(".//s:g[@class='point']", NS)
    assert len(points) == 12
    ys = [float(p.find("s:circle", NS).get("cy")) for p in points]
    assert ys[8] == min(ys) and ys[0] == max(ys)
    xs = [float(p.find("s:circle", NS).get("cx")) for p in points]
    assert xs == sorted(xs) and xs[-1] < float(root.get("width"))
    two = _svg(line_chart([("公眾", months), ("媒體", [("2012-01", 1), ("2012-03", 2), ("2012-04", 1)])]))
    media = two.find(".//s:g[@data-series='媒體']", NS)
    assert len(media.findall("s:polyline", NS)) == 1  # 01 alone, then 03-04 (02 missing)
    assert len(media.findall("s:g[@class='point']", NS)) == 3


def test_progress_bar__fill_share_and_limits() -> None:
    root = _svg(progress_bar(7, 12, label="第二階段", width=322))
    assert float(root.find(".//s:rect[@class='fill']", NS).get("width")) == pytest.approx(320 * 7 / 12, abs=0.01)
    assert "7 / 12 (58%)" in "".join(root.itertext())
    assert _svg(progress_bar(0, 0)).find(".//s:rect[@class='fill']", NS) is None
    assert "100%" in "".join(_svg(progress_bar(15, 12)).itertext())


def test_charts__labels_escaped_and_empty_data() -> None:
    text = bar_chart([("<script>alert(1)</script>", 3)], title="<b>&")
    assert "<script>" not in text and "&lt;script&gt;" in text
    for svg in (bar_chart([]), stacked_bar_chart([]), line_chart([])):
        assert "No data" in "".join(_svg(svg).itertext())
    assert "沒有資料" in bar_chart([], empty_text="沒有資料")


def test_charts__labels_that_are_not_text__written_as_text() -> None:
    root = _svg(bar_chart([(2012, 3), (2013, 4)]))  # type: ignore[list-item]
    assert [b.get("data-label") for b in _bars(root)] == ["2012", "2013"]
    assert len(_svg(line_chart([(1, 2.0), (2, 3.0)])).findall(".//s:g[@class='point']", NS)) == 2  # type: ignore[list-item]


def test_charts__bad_values__clear_errors() -> None:
    with pytest.raises(InputError, match="finite number"):
        bar_chart([("a", math.nan)])
    with pytest.raises(InputError, match="finite number"):
        line_chart([("a", "3")])  # type: ignore[list-item]
    with pytest.raises(InputError, match="negative"):
        stacked_bar_chart([("a", [("x", 1), ("y", -1)])])
    with pytest.raises(InputError, match="total cannot be negative"):
        progress_bar(1, -2)


def test_nice_ticks__round_steps_covering_the_range() -> None:
    assert nice_ticks(0, 96.5) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0, 3) == [0, 1, 2, 3]
    assert nice_ticks(0, 0.9) == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert nice_ticks(-3, 5) == [-4, -2, 0, 2, 4, 6]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1]
