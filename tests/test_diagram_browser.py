"""The diagrams as a real browser draws them (Debian's Chromium through Playwright): shapes on
their DI bounds, labels inside their boxes with the real fonts, a screenshot of each kept
under the test's tmp_path for a person to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from web.charts import bar_chart, line_chart, progress_bar, stacked_bar_chart
from web.diagram import Marker, render_svg

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
DIAGRAMS = [ROOT / "processes" / "phase2_implement.bpmn", ROOT / "processes" / "complaint.bpmn",
            *sorted((ROOT / "tests" / "bpmn" / "render").glob("*.bpmn"))]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")]

MEASURE = """() => {
  const out = [];
  for (const g of document.querySelectorAll('g.bpmn-shape')) {
    const o = g.querySelector('.outline').getBBox();
    const label = g.querySelector(':scope > text.label');
    const t = label ? label.getBBox() : null;
    out.push({id: g.dataset.elementId, cls: g.getAttribute('class'), bounds: g.dataset.bounds,
              box: [o.x, o.y, o.width, o.height], text: t ? [t.x, t.y, t.width, t.height] : null});
  }
  return out;
}"""


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_browser__shapes_on_di_bounds_and_labels_inside(browser, tmp_path: Path, path: Path) -> None:  # type: ignore[no-untyped-def]
    svg = render_svg(path.read_text(encoding="utf-8"), title=path.name,
                     markers={"Task_register_complaint": Marker("active", count=3)})
    page_file = tmp_path / f"{path.stem}.html"
    page_file.write_text(f"<!doctype html><meta charset=utf-8><body style='margin:0'>{svg}</body>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(page_file.as_uri())
    shapes = page.evaluate(MEASURE)
    page.screenshot(path=str(tmp_path / f"{path.stem}.png"), full_page=False)
    page.close()
    assert shapes
    inside_kinds = ("bpmn-task ", "bpmn-userTask", "bpmn-scriptTask", "bpmn-serviceTask", "bpmn-sendTask",
                    "bpmn-receiveTask", "bpmn-manualTask", "bpmn-businessRuleTask", "bpmn-callActivity")
    for shape in shapes:
        want = [float(v) for v in shape["bounds"].split()]
        if "bpmn-dataStoreReference" not in shape["cls"]:
            assert shape["box"] == pytest.approx(want, abs=0.05), shape["id"]
        if shape["text"] and any(k in shape["cls"] + " " for k in inside_kinds):
            x, y, w, h = want
            tx, ty, tw, th = shape["text"]
            # The estimate of text widths holds with the fonts the browser really uses.
            assert tx >= x - 2 and tx + tw <= x + w + 2, (shape["id"], shape["text"], want)
            assert ty >= y - 2 and ty + th <= y + h + 2, (shape["id"], shape["text"], want)


def test_browser__dashboard_charts_render(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    charts = [bar_chart([("辦公室", 96.5), ("城市管理局執法大隊第三中隊", 75.0)], title="按時辦結率", unit="%"),
              stacked_bar_chart([("一級", [("已處理", 20), ("逾期", 2)])], title="督辦升級", horizontal=False),
              line_chart([(f"2012-{m:02d}", m % 5) for m in range(1, 13)], title="投訴按月份"),
              progress_bar(7, 12, label="第二階段")]
    page_file = tmp_path / "charts.html"
    page_file.write_text("<!doctype html><meta charset=utf-8><body>" + "".join(charts) + "</body>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(page_file.as_uri())
    boxes = page.evaluate("() => [...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width)")
    page.screenshot(path=str(tmp_path / "charts.png"))
    page.close()
    assert len(boxes) == 4 and all(w > 100 for w in boxes)
