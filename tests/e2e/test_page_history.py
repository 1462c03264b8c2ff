"""The History page in a real headless Chromium over a real lake: the numbers shown are the
lake's (checked by the test's own DuckDB query of the silver rows), the date range changes
them in place, and the navigation reaches the page."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jobs.bootstrap import lake_for
from jobs.settings import Settings
from tests.support.browser import text, tid, wait_for
from tests.support.dashboard_server import running_dashboard, save_screenshot
from tests.support.lake_days import add_day, seeded_lake
from tests.support.platform_up import free_ports

pytestmark = pytest.mark.e2e
REFRESH_S = 2  # the pages' lake refresh for this test (60 s by default)


def silver_totals(settings: Settings, first: dt.date, last: dt.date) -> tuple[int, Decimal]:
    """Orders and revenue of the days, straight from the silver Parquet (not the gold views)."""
    lake = lake_for(settings)
    con = lake.connect()
    try:
        uris = [
            f"s3://silver/orders/date={(first + dt.timedelta(days=i)).isoformat()}/data.parquet"
            for i in range((last - first).days + 1)
        ]
        row = con.execute("SELECT count(*), sum(total) FROM read_parquet($u)", {"u": uris})
        n, revenue = row.fetchone() or (0, Decimal(0))
    finally:
        con.close()
    return int(n), Decimal(revenue)


def money(d: Decimal) -> str:
    return f"${d:,.2f}"


def wait_text(driver: Any, testid: str, want: str, timeout: float = 10) -> None:
    wait_for(driver, lambda d: text(d, testid) == want, f"{testid} never showed {want!r}", timeout)


def field_css(testid: str) -> str:
    """A Quasar input: the attribute lands on the native <input> itself."""
    return f"input{tid(testid)}, {tid(testid)} input"


def type_into(driver: Any, testid: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, field_css(testid))
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(value, Keys.ENTER)


@pytest.fixture
def lake_settings(live_settings: Settings) -> Settings:
    return live_settings


def test_history_shows_the_lakes_numbers_and_the_range_changes_them(
    lake_settings: Settings, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    days = seeded_lake(lake_settings)
    first, last = days[0], days[-1]
    fast = {"SHOPLAKE_DASHBOARD_LAKE_REFRESH": str(REFRESH_S)}
    with running_dashboard(lake_settings, tmp_path / "dashboard.log", fast) as base:
        # the navigation of the Today page reaches History
        browser.get(f"{base}/")
        browser.find_element(By.CSS_SELECTOR, tid("nav-history")).click()
        WebDriverWait(browser, 15).until(lambda d: d.current_url == f"{base}/history")
        assert "bg-slate-800" in browser.find_element(
            By.CSS_SELECTOR, tid("nav-history")
        ).get_attribute("class")

        # default: the last 30 days the lake has, i.e. all 8 seeded days
        n, revenue = silver_totals(lake_settings, first, last)
        wait_text(browser, "history-orders", f"{n:,}", timeout=20)
        assert text(browser, "history-revenue") == money(revenue)
        aov = (revenue / n).quantize(Decimal("0.01"))
        assert text(browser, "history-aov") == money(aov)
        assert text(browser, "history-days") == "8"
        start_field = browser.find_element(
            By.CSS_SELECTOR, field_css("history-range-control-start")
        )
        assert start_field.get_attribute("value") == first.isoformat()
        # the newest day heads the table, with its own orders and revenue
        n_last, rev_last = silver_totals(lake_settings, last, last)
        want = [last.isoformat(), f"{n_last:,}", money(rev_last)]
        WebDriverWait(browser, 10).until(
            lambda d: (
                [
                    td.text
                    for td in d.find_elements(
                        By.CSS_SELECTOR, f"{tid('history-table')} tbody tr td"
                    )
                ][:3]
                == want
            ),
            message=f"the table's first row {want}",
        )
        marker = browser.execute_script("window.__same_page = 1; return window.__same_page")
        time.sleep(1.2)  # charts drawn
        save_screenshot(browser, "history", tmp_path)

        # a preset: the last 7 days
        browser.find_element(
            By.XPATH, "//*[@data-testid='history-range-control-preset']//*[text()='7 days']"
        ).click()
        n7, revenue7 = silver_totals(lake_settings, days[1], last)
        wait_text(browser, "history-orders", f"{n7:,}")
        assert text(browser, "history-revenue") == money(revenue7)
        assert text(browser, "history-days") == "7"

        # typed: one day in the middle
        day = days[3]
        type_into(browser, "history-range-control-start", day.isoformat())
        type_into(browser, "history-range-control-end", day.isoformat())
        n1, revenue1 = silver_totals(lake_settings, day, day)
        wait_text(browser, "history-orders", f"{n1:,}")
        assert text(browser, "history-revenue") == money(revenue1)
        assert text(browser, "history-days") == "1"
        # all of it changed in place: no reload
        assert browser.execute_script("return window.__same_page") == marker

        # a preset follows the lake: a new day's gold shows at the next refresh, in place
        browser.find_element(
            By.XPATH, "//*[@data-testid='history-range-control-preset']//*[text()='30 days']"
        ).click()
        wait_text(browser, "history-days", "8")
        new_day = last + dt.timedelta(days=1)
        add_day(lake_settings, new_day)
        n9, revenue9 = silver_totals(lake_settings, first, new_day)
        wait_text(browser, "history-days", "9", timeout=REFRESH_S + 10)
        assert text(browser, "history-orders") == f"{n9:,}"
        assert text(browser, "history-revenue") == money(revenue9)
        assert browser.execute_script("return window.__same_page") == marker

        # the navigation leads on to the Data quality page
        browser.find_element(By.CSS_SELECTOR, tid("nav-quality")).click()
        WebDriverWait(browser, 15).until(lambda d: d.current_url == f"{base}/quality")


def test_history_says_when_the_lake_has_no_gold(
    lake_settings: Settings, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with running_dashboard(lake_settings, tmp_path / "dashboard.log") as base:
        browser.get(f"{base}/history")
        WebDriverWait(browser, 20).until(
            lambda d: "no gold yet" in d.find_element(By.CSS_SELECTOR, tid("history-empty")).text
        )
        assert not browser.find_element(By.CSS_SELECTOR, tid("history-orders")).is_displayed()


def test_history_shows_a_notice_when_the_lake_is_down(
    lake_settings: Settings, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (closed,) = free_ports(1)  # nothing listens there: the lake is down
    down = {"SHOPLAKE_S3_ENDPOINT": f"http://127.0.0.1:{closed}"}
    with running_dashboard(lake_settings, tmp_path / "dashboard.log", down) as base:
        browser.get(f"{base}/history")
        WebDriverWait(browser, 20).until(
            lambda d: "lake" in d.find_element(By.CSS_SELECTOR, tid("history-trouble")).text
        )
        # the page itself answers: the navigation works while the lake does not
        browser.find_element(By.CSS_SELECTOR, tid("nav-quality")).click()
        WebDriverWait(browser, 15).until(lambda d: d.current_url == f"{base}/quality")
        WebDriverWait(browser, 20).until(
            lambda d: "lake" in d.find_element(By.CSS_SELECTOR, tid("quality-trouble")).text
        )
