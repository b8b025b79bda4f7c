"""The operators' pages in a real browser (Debian's Chromium through Playwright), in Chinese:
an administrator retries an incident, unlocks an external task, changes an instance and moves it
to another version through the preview. Each page is saved as a screenshot under TIGAO_ARTIFACTS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_support import at_charge, at_review, deploy, with_incident
from page_support import BPMN, org_with_admin, prepare
from test_web_browser import WEB, _login, _Server, _shot, browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    url = str(tmp_path / "ops-browser.db")
    e = prepare(url, org_with_admin(tmp_path), deploy=[BPMN, WEB])
    deploy(e, 1)
    with _Server(url) as base:
        yield e, base
    e.close()


def test_admin__retries_an_incident__in_chinese(browser: Any, site: tuple[Any, str]) -> None:  # noqa: F811
    e, base = site
    iid, inc = with_incident(e)
    at_charge(e)
    page = _login(browser, base, "ada", lang="zh-TW")
    with page.expect_navigation():
        page.click("header nav a[href='/incidents']")
    assert page.locator("h1").inner_text() == "異常事件"
    row = page.locator(f"[data-testid='open-incidents'] tr[data-incident-id='{inc['id']}']")
    assert "the payment gateway is down" in row.inner_text()
    assert row.locator(f"a[href='/instances/{iid}']").count() == 1
    _shot(page, "zh-incidents")
    stale = page.context.new_page()  # a second tab with the same list
    stale.goto(f"{base}/incidents")
    with page.expect_navigation():
        page.click(f"[data-testid='retry-{inc['id']}']")
    assert page.locator(".flash.ok").inner_text() == f"異常 {inc['id']} 已解決。"
    assert page.locator(f"[data-testid='resolved-incidents'] tr[data-incident-id='{inc['id']}']").count() == 1
    assert e.incidents() == []
    events = len(e.history(iid))
    with stale.expect_navigation():  # the same retry from the stale tab: refused on the page, in Chinese
        stale.click(f"[data-testid='retry-{inc['id']}']")
    assert "引擎拒絕了此變更;未做任何變更。" in stale.locator("[data-testid='refusal']").inner_text()
    _shot(stale, "zh-incidents-refused")
    assert len(e.history(iid)) == events
    page.context.close()


def test_admin__unlocks_an_external_task__in_chinese(browser: Any, site: tuple[Any, str]) -> None:  # noqa: F811
    e, base = site
    iid = at_charge(e, locked=True)
    at_charge(e)
    with_incident(e)
    [row] = e.external_tasks(instance_id=iid)
    page = _login(browser, base, "ada", lang="zh-TW")
    with page.expect_navigation():
        page.click("header nav a[href='/external-tasks']")
    assert page.locator("h1").inner_text() == "外部任務"
    line = page.locator(f"tr[data-external-id='{row['id']}']")
    assert "pay-1" in line.inner_text() and "已鎖定" in line.inner_text()
    _shot(page, "zh-external-tasks")
    with page.expect_navigation():
        page.click(f"[data-testid='unlock-{row['id']}']")
    assert "已解除鎖定" in page.locator(".flash.ok").inner_text()
    assert e.external_tasks(instance_id=iid)[0]["worker_id"] is None
    page.select_option("select[name='state']", "waiting")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.locator(f"tr[data-external-id='{row['id']}']").count() == 1
    page.context.close()


def test_admin__changes_an_instance__refusal_then_success(browser: Any, site: tuple[Any, str]) -> None:  # noqa: F811
    e, base = site
    iid = at_review(e)
    page = _login(browser, base, "ada", lang="zh-TW")
    page.goto(f"{base}/instances/{iid}")
    # The diagram's tooltips speak the page's language.
    tip = page.locator("svg g[data-element-id='Task_review'] > title").first.text_content()
    assert "使用者任務" in tip and "User task" not in tip
    form = page.locator("[data-testid='modify-set']")
    form.locator("[name='name']").fill("amount")
    form.locator("[name='value']").fill("two hundred")
    form.locator("[name='reason']").fill("金額打錯")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    refusal = page.locator("[data-testid='refusal']")
    assert "值不是 JSON" in refusal.inner_text()
    assert page.locator("[data-testid='modify-set'] [name='value']").input_value() == "two hundred"
    _shot(page, "zh-instance-modify-refused")
    assert e.instance(iid)["data"]["amount"] == 120
    page.locator("[data-testid='modify-set'] [name='value']").fill("250")
    with page.expect_navigation():
        page.locator("[data-testid='modify-set'] button[type=submit]").click()
    assert page.locator(".flash.ok").inner_text() == "變數 amount 已設定。"
    assert e.instance(iid)["data"]["amount"] == 250
    _shot(page, "zh-instance")
    page.context.close()


def test_admin__migrates_through_the_preview(browser: Any, site: tuple[Any, str]) -> None:  # noqa: F811
    e, base = site
    iid = at_review(e)
    deploy(e, 2)
    page = _login(browser, base, "ada", lang="zh-TW")
    page.goto(f"{base}/instances/{iid}")
    with page.expect_navigation():
        page.click("[data-testid='migrate-link']")
    page.select_option("[data-testid='choose-version'] select[name='to']", "2")
    with page.expect_navigation():
        page.click("[data-testid='choose-version'] button[type=submit]")
    assert page.locator("tr[data-element='Task_review'] [data-testid='no-counterpart']").count() == 1
    assert page.locator("[data-testid='confirm']").count() == 0
    _shot(page, "zh-migrate-refused")
    page.select_option("select[name='map.Task_review']", "Task_check")
    with page.expect_navigation():
        page.click("[data-testid='mapping'] button[type=submit]")
    assert page.locator("[data-testid='no-counterpart']").count() == 0
    page.fill("[data-testid='confirm'] [name='reason']", "審核改為檢查")
    _shot(page, "zh-migrate-preview")
    with page.expect_navigation():
        page.click("[data-testid='confirm'] button[type=submit]")
    assert page.locator(".flash.ok").inner_text() == f"實例 {iid} 已從版本 1 移至 2。"
    assert e.instance(iid)["version"] == 2
    _shot(page, "zh-instance-migrated")
    page.context.close()
