"""The pages in a real browser: Debian's Chromium driven by Playwright, against a real server.

Every page visited is saved as a screenshot under `TIGAO_ARTIFACTS` (default
`build/screenshots/`), so a person can look at what the tests saw.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from page_support import BPMN, PASSWORD, org_with_admin, prepare

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TIGAO_ARTIFACTS", ROOT / "build" / "screenshots"))
WEB = Path(__file__).parent / "web"

pytestmark = pytest.mark.slow


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("TIGAO_REQUIRE_BROWSER") == "1":
            pytest.fail("Debian's chromium is required (TIGAO_REQUIRE_BROWSER=1) but /usr/bin/chromium is missing")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """A real uvicorn server on a loopback port, in a thread of the test process."""

    def __init__(self, url: str):
        import uvicorn

        from web.app import create_app

        self.port = _free_port()
        config = uvicorn.Config(create_app(url, worker=False), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    url = str(tmp_path / "browser.db")
    e = prepare(url, org_with_admin(tmp_path), deploy=[BPMN, WEB])
    with _Server(url) as base:
        yield e, base
    e.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(browser: Any, base: str, user: str, lang: str = "en-GB") -> Any:
    ctx = browser.new_context(locale=lang, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(f"{base}/login")
    page.fill("#user", user)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert "/login" not in page.url, f"{user} could not log in"
    return page


def test_staff__sees_task__field_error__corrects__completes(browser: Any, site: tuple[Any, str]) -> None:
    e, base = site
    iid = e.start("web_form", actor="alice")
    tid = next(t.id for t in e.tasks(scope="all", instance_id=iid))
    page = _login(browser, base, "alice")
    page.goto(f"{base}/tasks")
    _shot(page, "tasks")
    assert page.locator(f"tr[data-task-id='{tid}']").count() == 1
    with page.expect_navigation():
        page.click(f"tr[data-task-id='{tid}'] a")
    _shot(page, "task")
    page.fill("[name='summary']", "Pothole")
    page.fill("[name='lanes_blocked']", "9")  # over the maximum of 6
    page.select_option("[name='category']", "3")
    page.fill("[name='location.road']", "S203")
    with page.expect_navigation():
        page.click("form.task-form button[type=submit]")
    _shot(page, "task-error")
    err = page.locator("[data-field='lanes_blocked'] .error")
    assert err.count() == 1 and err.inner_text()
    assert page.input_value("[name='summary']") == "Pothole"  # kept
    page.fill("[name='lanes_blocked']", "2")
    with page.expect_navigation():
        page.click("form.task-form button[type=submit]")
    _shot(page, "tasks-after-complete")
    assert "/tasks" in page.url and page.locator(".flash.ok").count() == 1
    assert e.task(tid).state == "completed"
    page.context.close()


def test_admin__deploys_broken_file__sees_file_and_line(browser: Any, site: tuple[Any, str]) -> None:
    _e, base = site
    page = _login(browser, base, "ada")
    page.goto(f"{base}/deploy")
    page.set_input_files("input[type=file]", str(BPMN / "bad" / "dunder_script.bpmn"))
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    _shot(page, "deploy-problems")
    table = page.locator("[data-testid='problems']")
    assert "dunder_script.bpmn" in table.inner_text()
    for name in ("definitions", "instances", "directory", "audit"):
        page.goto(f"{base}/{name}")
        _shot(page, name)
    page.goto(f"{base}/definitions/web_form/1")
    _shot(page, "definition")
    page.context.close()


def test_auditor__steps_a_replay_forward_and_back(browser: Any, site: tuple[Any, str]) -> None:
    e, base = site
    iid = e.start("web_form", actor="alice")
    tid = next(t.id for t in e.tasks(scope="all", instance_id=iid))
    e.complete(tid, "alice", {"summary": "abc", "lanes_blocked": 0, "category": 1, "location": {"road": "r"}})
    page = _login(browser, base, "erin")
    page.goto(f"{base}/instances/{iid}/history")
    _shot(page, "history")
    page.goto(f"{base}/instances/{iid}/replay?step=1")
    label = page.locator("[data-testid='step-label']")
    assert "Step 1 of" in label.inner_text()
    with page.expect_navigation():
        page.click("a[rel=next]")
    assert "Step 2 of" in label.inner_text()
    _shot(page, "replay")
    with page.expect_navigation():
        page.click("a[rel=prev]")
    assert "Step 1 of" in label.inner_text()
    page.goto(f"{base}/instances/{iid}/replay?step=999")
    assert page.locator("[data-testid='past-end']").count() == 1
    page.context.close()


def test_public__files_a_complaint_and_tracks_it(browser: Any, tmp_path: Path) -> None:
    from campaign.demo import FORMS, ORG, PROCESSES
    from engine import Engine
    from engine.timeutil import parse_datetime

    url = str(tmp_path / "hotline.db")
    e = Engine(url)
    e.init(simulated=parse_datetime("2012-03-01T09:00:00+08:00"))
    e.load_directory(ORG)
    e.deploy([PROCESSES, FORMS], actor="u05")
    with _Server(url) as base:
        ctx = browser.new_context(locale="zh-TW", viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(f"{base}/public/complaint")
        _shot(page, "public-form")
        page.fill("[name='contact']", "13800000000")
        page.fill("[name='description']", "短")  # too short: the form says so next to the field
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert page.locator("[data-field='description'] .error").count() == 1
        page.fill("[name='description']", "路政所窗口工作人員推諉不辦,要求說明理由。")
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        _shot(page, "public-done")
        code = page.locator("[data-testid='tracking-code']").inner_text()
        with page.expect_navigation():
            page.click("a.button")
        _shot(page, "track")
        assert code in page.locator("[data-testid='case']").inner_text()
        assert page.locator("[data-testid='stage']").count() == 1
        ctx.close()
    e.close()
