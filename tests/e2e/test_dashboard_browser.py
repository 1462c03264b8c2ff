"""The dashboard in a real headless Chromium: KPIs change on the open page after a metrics run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobs import dashboard_metrics
from jobs.adapters import source_db
from jobs.domain import generator
from jobs.settings import Settings
from tests.support.browser import chromium_installed, headless_chromium

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KPI = '[data-testid="kpi-total_orders"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(settings: Settings) -> dict[str, str]:
    # PYTEST_* would switch NiceGUI into its own screen-test mode
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPLAKE_", "PYTEST_"))}
    env.update(
        {
            "SHOPLAKE_DATA_DIR": str(settings.data_dir),
            "SHOPLAKE_SOURCE_DSN": settings.dsn,
            "SHOPLAKE_LAKE_URI": settings.lake_uri,
            "SHOPLAKE_S3_ENDPOINT": settings.s3_endpoint_url,
            "SHOPLAKE_S3_ACCESS_KEY": settings.s3_access_key,
            "SHOPLAKE_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
            "SHOPLAKE_REDIS_URL": settings.redis_url,
            "SHOPLAKE_TIMEZONE": settings.timezone,
        }
    )
    return env


@pytest.fixture
def settings(live_settings: Settings) -> Settings:
    return live_settings


@pytest.fixture
def dashboard_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "dashboard.log").open("wb")
    child = subprocess.Popen(
        [sys.executable, "-m", "lite.cli", "dashboard", "--port", str(port)],
        cwd=ROOT,
        env=cli_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert child.poll() is None, (tmp_path / "dashboard.log").read_text()
            assert time.monotonic() < deadline, "the dashboard did not start in 40 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        child.wait(15)
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if not chromium_installed():
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install -y chromium "
            "chromium-driver)"
        )
    with headless_chromium(["--window-size=1440,1000"]) as driver:
        yield driver


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
    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"KPI changed {before} -> {after} {seen_after:.2f}s after the run; screenshot {shot}")
