"""The Alerts page in a real headless Chromium against a real ledger: per-sink delivery counts
and the latest alerts match the test's own query of the ledger, the rule filter works in place,
and a new alert appears without a reload."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.alerts.ledger import postgres as ledger
from jobs.domain.alert import Alert
from jobs.domain.change_events import envelope
from jobs.domain.rules import alerts_for_change
from jobs.settings import Settings
from tests.support.dashboard_server import running_dashboard, save_screenshot
from tests.support.page_reading import attributes, text, texts

pytestmark = pytest.mark.e2e

SINKS = ["console", "webhook"]
HIGH = "HIGH_VALUE_ORDER"


def alerts_for(settings: Settings, i: int, **row: Any) -> list[Alert]:
    """The alerts the python engine raises for the insert of order ``A<i>`` with ``row``."""
    now = dt.datetime.now(dt.UTC)
    after = {
        "order_id": f"A{i:04d}",
        "customer_id": f"C{i % 7}",
        "product_name": "Lamp",
        "price": "5.00",
        "quantity": 1,
        "total": "5.00",
        "status": "pending",
    } | row
    event = envelope(
        "c",
        None,
        after,
        lsn=50_000_000 + i * 8,
        tx_id=5000 + i,
        commit_ts_ms=int(now.timestamp() * 1000),
        db="shop",
    )
    return alerts_for_change(event, settings.alert_params(), now)


def record(settings: Settings, alerts: list[Alert]) -> None:
    with psycopg.connect(settings.dsn) as conn, conn.transaction():
        ledger.record_alerts(conn, alerts, SINKS)


def own_counts(settings: Settings) -> dict[tuple[str, str], int]:
    """(sink, state) -> deliveries, straight from the ledger's table."""
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT sink, state, count(*) FROM shoplake_alerts.alert_deliveries GROUP BY 1, 2"
        ).fetchall()
    return {(sink, state): int(n) for sink, state, n in rows}


def own_latest(settings: Settings, rule: str | None = None) -> tuple[list[str], int]:
    """The alert ids of a rule (or all), newest first, and how many there are."""
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT alert_id FROM shoplake_alerts.alerts"
            " WHERE %(r)s::text IS NULL OR record->>'alert_type' = %(r)s ORDER BY seq DESC",
            {"r": rule},
        ).fetchall()
    return [r[0] for r in rows], len(rows)


@pytest.fixture
def ledger_with_alerts(live_settings: Settings) -> Settings:
    """8 INVALID_QUANTITY and 4 HIGH_VALUE_ORDER alerts: console delivered them all; the
    webhook refused two for good (dead letters) and has the rest pending."""
    with psycopg.connect(live_settings.dsn) as conn:
        ledger.ensure_schema(conn)
    invalid = [a for i in range(8) for a in alerts_for(live_settings, i, quantity=0)]
    high = [
        a
        for i in range(8, 12)
        for a in alerts_for(live_settings, i, price="20000.00", total="20000.00")
    ]
    assert {a.alert_type for a in invalid} == {"INVALID_QUANTITY"}
    assert {a.alert_type for a in high} == {HIGH}
    record(live_settings, invalid + high)
    with psycopg.connect(live_settings.dsn) as conn:
        ledger.finish(conn, "console", [a.alert_id for a in invalid + high], ok=True)
        ledger.fail(conn, "webhook", [invalid[0].alert_id, high[1].alert_id], "HTTP 422", True)
    return live_settings


@pytest.fixture
def page_url(ledger_with_alerts: Settings, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(ledger_with_alerts, tmp_path / "dashboard.log") as base:
        yield f"{base}/alerts"


def text_of(driver: Any, testid: str) -> str:
    return text(driver, f'[data-testid="{testid}"]')


def shown_ids(driver: Any) -> list[str]:
    rows = attributes(driver, '[data-testid="alerts-table"] tbody tr', "data-testid")
    return [r.removeprefix("alert-") for r in rows]


def delivery(driver: Any, alert_id: str, sink: str) -> str:
    return text(driver, f'[data-testid="alert-{alert_id}"] [data-testid="delivery-{sink}"]')


def test_alerts_page_shows_the_ledger_and_filters_in_place(
    ledger_with_alerts: Settings, page_url: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings = ledger_with_alerts
    browser.get(page_url)
    WebDriverWait(browser, 15).until(lambda d: len(shown_ids(d)) > 0)

    counts = own_counts(settings)
    assert counts[("console", "delivered")] == 12 and counts[("webhook", "dead")] == 2
    for sink in SINKS:
        for state in ("delivered", "pending", "dead"):
            expected = counts.get((sink, state), 0)
            if state == "pending":  # the page counts in-flight ("sending") as not yet delivered
                expected += counts.get((sink, "sending"), 0)
            assert text_of(browser, f"sink-{sink}-{state}") == f"{expected:,}", (sink, state)

    latest, total = own_latest(settings)
    assert shown_ids(browser) == latest[:15]  # the first page of the table, newest first
    assert text_of(browser, "alerts-count").startswith(f"{total:,} alerts")
    dead_id = latest[-1]  # the oldest: INVALID_QUANTITY A0000, refused
    with psycopg.connect(settings.dsn) as conn:
        dead_ids = {
            r[0]
            for r in conn.execute(
                "SELECT alert_id FROM shoplake_alerts.alert_deliveries"
                " WHERE sink = 'webhook' AND state = 'dead'"
            ).fetchall()
        }
    assert dead_id in dead_ids
    assert "dead-lettered" in delivery(browser, dead_id, "webhook")
    assert "delivered" in delivery(browser, dead_id, "console")
    save_screenshot(browser, "alerts", tmp_path)
    marker = browser.execute_script("window.__same_page = 1; return window.__same_page")

    # filter by rule: the select narrows the table in place
    browser.find_element(By.CSS_SELECTOR, '[data-testid="rule-filter"]').click()
    option = WebDriverWait(browser, 5, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: next(
            (e for e in d.find_elements(By.CSS_SELECTOR, ".q-menu .q-item") if e.text == HIGH),
            None,
        )
    )
    option.click()
    high_ids, high_total = own_latest(settings, HIGH)
    WebDriverWait(browser, 10).until(lambda d: shown_ids(d) == high_ids)
    assert set(texts(browser, '[data-testid="alert-rule"]')) == {HIGH}
    assert text_of(browser, "alerts-count").startswith(f"{high_total:,} {HIGH} alerts")

    # a new alert of the rule shows up on the open page, without a reload
    fresh = alerts_for(settings, 99, price="30000.00", total="30000.00")
    record(settings, fresh)
    t0 = time.monotonic()
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda d: shown_ids(d)[:1] == [fresh[0].alert_id]
    )
    seen_after = time.monotonic() - t0
    assert text_of(browser, "alerts-count").startswith(f"{high_total + 1:,} {HIGH} alerts")
    assert browser.execute_script("return window.__same_page") == marker
    assert "pending" in delivery(browser, fresh[0].alert_id, "webhook")
    print(f"a new alert showed {seen_after:.2f}s after it was recorded")
