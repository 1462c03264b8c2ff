"""The dashboard warns, in a real headless Chromium, when alerts are dead letters or changes
were set aside, and says where to look; it shows nothing while delivery is fine."""

from __future__ import annotations

import psycopg
import pytest

from jobs.alerts.ledger import postgres as ledger
from jobs.settings import Settings
from web.alerts_health import AlertsHealth

pytestmark = pytest.mark.e2e
NOTICE = '[data-testid="alerts-trouble"]'


def dead_letter_and_rejection(at: Settings) -> None:
    with psycopg.connect(at.dsn) as conn:
        ledger.ensure_schema(conn)
        with conn.transaction():
            ledger.record_alerts(
                conn, [{"alert_id": "d1", "source_lsn": 1, "order_id": "O1"}], ["webhook"]
            )
            ledger.record_rejected_changes(
                conn, [(7, 3, "public.orders", "c", {"order_id": "X"}, "column x: bad")]
            )
        ledger.claim(conn, "webhook", ["d1"])
        ledger.fail(conn, "webhook", ["d1"], "POST failed: HTTP 422", permanent=True)


def test_the_poller_reads_the_ledger(settings: Settings) -> None:
    health = AlertsHealth(settings.dsn)
    assert health.poll_once() is None  # no ledger yet: nothing to say
    dead_letter_and_rejection(settings)
    assert health.poll_once() == (
        "⚠ alerts: 1 dead letter (webhook 1) · 1 rejected change · see `shoplake alerts status`"
    )
    assert AlertsHealth("postgresql://127.0.0.1:1/none").poll_once() is None


def test_the_page_shows_dead_letters_and_rejected_changes(
    settings: Settings,
    dashboard_url: str,
    browser,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(dashboard_url)
    WebDriverWait(browser, 15).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="live-indicator"]')
    )
    assert not browser.find_element(By.CSS_SELECTOR, NOTICE).is_displayed()
    dead_letter_and_rejection(settings)
    WebDriverWait(browser, 25).until(
        lambda d: d.find_element(By.CSS_SELECTOR, NOTICE).is_displayed()
    )
    text = browser.find_element(By.CSS_SELECTOR, NOTICE).text
    assert "1 dead letter (webhook 1)" in text and "1 rejected change" in text
    assert "shoplake alerts status" in text
