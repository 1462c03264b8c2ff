"""The dashboard in a real headless Chromium: KPIs change on the open page after a metrics run."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from jobs import dashboard_metrics
from jobs.adapters import source_db
from jobs.domain import generator
from jobs.settings import Settings
from tests.support.dashboard_server import save_screenshot

pytestmark = pytest.mark.e2e

KPI = '[data-testid="kpi-total_orders"]'


def insert_completed(settings: Settings, n: int, now: dt.datetime, first_seq: int) -> None:
    model = generator.build_model(3, 200, 60)
    rng = generator._rng(3, 9, first_seq)
    rows = generator.generate_orders(
        model,
        now - dt.timedelta(seconds=30),
        now,
        n,
        rng,
        first_seq=first_seq,
        defects=generator.DefectRates(0, 0, 0, 0, 0, 0, 0),
    )
    status = rows.schema.get_field_index("status")
    rows = rows.set_column(status, "status", [["completed"] * n])
    with source_db.session(settings.dsn) as conn:
        source_db.copy_in(conn, "orders", rows, skip_existing=False)
        conn.commit()


def test_kpis_update_on_the_open_page(
    settings: Settings, dashboard_url: str, browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    now = dt.datetime.now(dt.UTC)
    insert_completed(settings, 40, now, first_seq=900_001)
    job = dashboard_metrics.MetricsJob(settings)
    job.run()
    browser.get(dashboard_url)
    WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.CSS_SELECTOR, KPI).text not in ("", "–")
    )
    before = browser.find_element(By.CSS_SELECTOR, KPI).text
    assert int(before.replace(",", "")) >= 40
    assert "Live" in browser.find_element(By.CSS_SELECTOR, '[data-testid="live-indicator"]').text
    marker = browser.execute_script("window.__same_page = 1; return window.__same_page")

    insert_completed(settings, 25, dt.datetime.now(dt.UTC), first_seq=950_001)
    job.run()
    t0 = time.monotonic()
    WebDriverWait(browser, 3, poll_frequency=0.05).until(
        lambda d: d.find_element(By.CSS_SELECTOR, KPI).text != before
    )
    seen_after = time.monotonic() - t0
    after = browser.find_element(By.CSS_SELECTOR, KPI).text
    assert int(after.replace(",", "")) == int(before.replace(",", "")) + 25
    # no reload happened: our mark on the window survived
    assert browser.execute_script("return window.__same_page") == marker
    shot = save_screenshot(browser, "today", tmp_path)
    print(f"KPI changed {before} -> {after} {seen_after:.2f}s after the run; screenshot {shot}")
