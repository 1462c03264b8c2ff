"""The Data quality page in a real headless Chromium over a real lake: each day's validation
and the quarantined rows shown are the lake's (checked by the test's own DuckDB query of the
quarantine Parquet), a click on a day browses its quarantine, the date range changes the days."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jobs.bootstrap import lake_for
from jobs.settings import Settings
from tests.support.browser import text, tid, wait_for
from tests.support.dashboard_server import running_dashboard, save_screenshot
from tests.support.lake_days import add_day, seeded_lake

pytestmark = pytest.mark.e2e
PAGE_ROWS = 25  # rows the quarantine browser shows at once
Rows = Counter[tuple[str, str]]  # (order id, reject reason) -> rows


def lake_counts(settings: Settings) -> tuple[dict[dt.date, int], dict[dt.date, Rows]]:
    """Bronze rows per day, and each day's quarantined (order id, reason), from the Parquet."""
    con = lake_for(settings).connect()
    try:
        bronze = dict(
            con.execute(
                "SELECT date, count(*) FROM read_parquet('s3://bronze/orders/date=*/data.parquet',"
                " hive_partitioning = true) GROUP BY 1"
            ).fetchall()
        )
        rejected: dict[dt.date, Rows] = {}
        for day, order_id, reason in con.execute(
            "SELECT date, coalesce(order_id, ''), _reject_reason FROM read_parquet("
            "'s3://silver/orders_rejected/date=*/data.parquet', hive_partitioning = true)"
        ).fetchall():
            rejected.setdefault(day, Counter())[(order_id, reason)] += 1
    finally:
        con.close()
    return bronze, rejected


def shown_rows(driver: Any) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"{tid('quarantine-table')} tbody tr")
    cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    return [(c[0], c[1]) for c in cells if len(c) > 1]


def check_quarantine(driver: Any, day: dt.date, own: Rows) -> None:
    """The browser shows ``day``: its count, and rows that are the lake's rows of that day."""
    n = own.total()
    want = f"{n:,} row{'s' if n != 1 else ''} quarantined on {day}"
    wait_for(
        driver,
        lambda d: text(d, "quarantine-count").startswith(want),
        f"quarantine count {want!r}",
    )

    def the_days_rows(d: Any) -> bool:
        # the count can change a moment before the rows do (the previous day's page may even
        # have had as many rows), so wait for rows that are this day's
        rows = Counter(shown_rows(d))
        return rows.total() == min(n, PAGE_ROWS) and rows <= own

    wait_for(driver, the_days_rows, f"{min(n, PAGE_ROWS)} quarantined rows of {day}")


def test_quality_shows_the_validation_and_the_quarantine_of_the_lake(
    live_settings: Settings, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    days = seeded_lake(live_settings)
    busy = days[-1] + dt.timedelta(days=1)  # a day with more quarantined rows than a page
    add_day(live_settings, busy, orders=1200)
    days.append(busy)
    bronze, rejected = lake_counts(live_settings)
    assert rejected[busy].total() > PAGE_ROWS
    total_rejected = sum(v.total() for v in rejected.values())
    last = days[-1]
    with running_dashboard(live_settings, tmp_path / "dashboard.log") as base:
        browser.get(f"{base}/quality")
        wait_for(
            browser,
            lambda d: text(d, "quality-rejected") == f"{total_rejected:,}",
            "the total of quarantined rows",
            timeout=20,
        )
        assert text(browser, "quality-days") == "9"
        assert text(browser, "quality-bronze") == f"{sum(bronze.values()):,}"
        # each day's row: bronze and rejected counts of the lake, newest first
        day_rows = f"{tid('quality-table')} tbody tr"
        wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, day_rows)) == 9, "9 days")
        rows = browser.find_elements(By.CSS_SELECTOR, day_rows)
        cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
        for c in cells:
            on = dt.date.fromisoformat(c[0])
            assert c[1] in ("ok", "warn", "fail")
            assert (c[2], c[3]) == (
                f"{bronze[on]:,}",
                f"{rejected.get(on, Counter()).total():,}",
            ), c
            assert c[4] == f"{100 * rejected.get(on, Counter()).total() / bronze[on]:.1f}%"
        assert cells[0][0] == last.isoformat()

        # the browser opens on the newest day; Next shows the rest of its rows
        check_quarantine(browser, last, rejected[last])
        first_page = Counter(shown_rows(browser))
        marker = browser.execute_script("window.__same_page = 1; return window.__same_page")
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1.2)  # charts drawn
        save_screenshot(browser, "quality", tmp_path)
        browser.find_element(By.CSS_SELECTOR, tid("quarantine-next")).click()
        n = rejected[last].total()
        wait_for(
            browser,
            lambda d: (
                f"showing {PAGE_ROWS + 1}–{min(n, 2 * PAGE_ROWS)}" in text(d, "quarantine-count")
            ),
            "the second page",
        )
        second = min(n - PAGE_ROWS, PAGE_ROWS)
        wait_for(
            browser,
            lambda d: (
                (first_page + Counter(shown_rows(d))).total() == PAGE_ROWS + second
                and first_page + Counter(shown_rows(d)) <= rejected[last]
            ),
            "the second page's rows, none of the first page's",
        )

        # a click on another day's row browses that day's quarantine
        other = days[2]
        browser.find_element(
            By.XPATH,
            f"//*[@data-testid='quality-table']//tbody//tr[td[1][text()='{other.isoformat()}']]",
        ).click()
        check_quarantine(browser, other, rejected[other])

        # the range: the last 7 days
        browser.find_element(
            By.XPATH, "//*[@data-testid='quality-range-control-preset']//*[text()='7 days']"
        ).click()
        in_range = sum(rejected.get(d, Counter()).total() for d in days[-7:])
        wait_for(browser, lambda d: text(d, "quality-days") == "7", "7 days shown")
        wait_for(
            browser, lambda d: text(d, "quality-rejected") == f"{in_range:,}", "7 days' rejects"
        )
        assert browser.execute_script("return window.__same_page") == marker

        browser.find_element(By.CSS_SELECTOR, tid("nav-history")).click()
        wait_for(browser, lambda d: d.current_url == f"{base}/history", "History reached")


def test_quality_says_when_no_day_was_validated(
    live_settings: Settings, browser: Any, tmp_path: Path
) -> None:
    with running_dashboard(live_settings, tmp_path / "dashboard.log") as base:
        browser.get(f"{base}/quality")
        wait_for(
            browser,
            lambda d: "No validation report" in text(d, "quality-empty"),
            "the empty-lake notice",
            timeout=20,
        )
