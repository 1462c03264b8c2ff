"""The Pipeline page in a real headless Chromium: seeded shop -> medallion -> dashboard metrics
-> training. The lake's freshness matches the test's own listing of the S3 buckets, the model
section matches the registry's own files, Airflow and the API (not started here) show their
"not running" notices, and a new metrics run shows on the open page without a reload."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from jobs import dashboard_metrics, medallion, seed, training
from jobs.domain.reco_summary import ModelSummary
from jobs.settings import Settings
from tests.support.dashboard_server import running_dashboard, save_screenshot
from tests.support.page_reading import text, texts
from tests.support.platform_up import free_ports

pytestmark = pytest.mark.e2e

DAYS = 10
DATASETS = [
    ("bronze", "orders"),
    ("silver", "orders"),
    ("silver", "orders_rejected"),
    ("gold", "daily_summary"),
    ("gold", "category_performance"),
    ("gold", "regional_performance"),
]
PART = re.compile(r"date=(\d{4}-\d{2}-\d{2})/data\.parquet$")


@pytest.fixture
def shop(live_settings: Settings, tmp_path: Path) -> Settings:
    """Ten seeded days through the medallion, one dashboard metrics run and a production
    model; Airflow and the API are given ports where nothing listens."""
    airflow_port, api_port = free_ports(2)
    settings = live_settings.model_copy(
        update={
            "data_dir": tmp_path / "data",
            "registry": "local",
            "airflow_port": airflow_port,
            "api_port": api_port,
        }
    )
    today = dt.datetime.now(dt.UTC).date()
    seed.seed(settings, days=DAYS, orders_per_day=120, seed=11, end_date=today)
    medallion.backfill(settings, today - dt.timedelta(days=DAYS - 1), today)
    dashboard_metrics.MetricsJob(settings).run()
    training.train(settings, config=training.TrainConfig(tune_seconds=0))
    return settings


def minio(settings: Settings) -> Minio:
    return Minio(
        settings.s3_endpoint_url.removeprefix("http://"),
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=False,
    )


def own_freshness(settings: Settings) -> dict[str, tuple[str, int, str]]:
    """ "<bucket>-<name>" -> (latest day, days, its write time in local time), listed here."""
    client = minio(settings)
    out = {}
    for bucket, name in DATASETS:
        days = sorted(
            m.group(1)
            for o in client.list_objects(bucket, prefix=f"{name}/", recursive=True)
            if (m := PART.search(o.object_name or ""))
        )
        stat = client.stat_object(bucket, f"{name}/date={days[-1]}/data.parquet")
        assert stat.last_modified is not None
        out[f"{bucket}-{name}"] = (days[-1], len(days), local(stat.last_modified))
    return out


def snapshot_written(settings: Settings) -> str:
    stat = minio(settings).stat_object("gold", "dashboard/metrics/overall_metrics.parquet")
    assert stat.last_modified is not None
    return local(stat.last_modified)


def local(when: dt.datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def own_model(settings: Settings) -> tuple[str, ModelSummary]:
    """The production version and its summary, read from the local registry's own files."""
    aliases = next((settings.data_path / "registry").rglob("aliases.json"))
    version = json.loads(aliases.read_text())["production"]
    meta = json.loads((aliases.parent / version / "meta.json").read_text())
    return version, ModelSummary.model_validate(meta["summary"])


def by_testid(driver: Any, testid: str) -> Any:
    """An element the page keeps (only its text and visibility change)."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def fresh_cell(driver: Any, key: str, column: str) -> str:
    return text(driver, f'[data-testid="fresh-{key}"] [data-testid="fresh-{column}"]')


def text_of(driver: Any, testid: str, within: str = "") -> str:
    return text(driver, f'{within} [data-testid="{testid}"]'.strip())


def test_pipeline_page_shows_freshness_services_airflow_and_the_model(
    shop: Settings, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    version, summary = own_model(shop)
    extra = {
        "SHOPLAKE_AIRFLOW_PORT": str(shop.airflow_port),
        "SHOPLAKE_API_PORT": str(shop.api_port),
        "SHOPLAKE_REGISTRY": "local",
    }
    with running_dashboard(shop, tmp_path / "dashboard.log", extra) as base:
        browser.get(f"{base}/pipeline")
        WebDriverWait(browser, 20).until(
            lambda d: fresh_cell(d, "bronze-bronze-orders", "day") not in ("", "–")
        )
        for key, (day, days, written) in own_freshness(shop).items():
            layer = key.split("-", 1)[0]
            row_key = f"{layer}-{key}"
            assert fresh_cell(browser, row_key, "day") == day, key
            assert fresh_cell(browser, row_key, "days") == str(days), key
            assert fresh_cell(browser, row_key, "written") == written, key
        assert fresh_cell(browser, "bronze-bronze-orders", "day") == dt.date.today().isoformat()
        dashboard_key = "dashboard-gold-dashboard-metrics"
        assert fresh_cell(browser, dashboard_key, "written") == snapshot_written(shop)

        # services: what this test started answers, Airflow and the API do not
        WebDriverWait(browser, 20).until(lambda d: text_of(d, "services-total"))
        states = {
            name: text_of(browser, f"service-{name}-state")
            for name in ("postgres", "s3", "redis", "airflow", "api")
        }
        assert states == {
            "postgres": "up",
            "s3": "up",
            "redis": "up",
            "airflow": "down",
            "api": "down",
        }
        assert text_of(browser, "services-total") == "3 of 5 answering"

        # Airflow is not running: a notice, no DAG rows
        WebDriverWait(browser, 20).until(lambda d: by_testid(d, "airflow-notice").is_displayed())
        notice = by_testid(browser, "airflow-notice").text
        assert "not running" in notice and f"127.0.0.1:{shop.airflow_port}" in notice

        # the model: the registry's production version (the API is away, and says so)
        WebDriverWait(browser, 20).until(lambda d: text_of(d, "model-version"))
        assert text_of(browser, "model-version") == version
        assert "not running" in by_testid(browser, "model-notice").text
        for method in ("model", "popular", "itemknn"):
            shown = text_of(browser, "method-ndcg", f'[data-testid="method-{method}"]')
            assert shown == summary.scores[method].ndcg.text(), method
        lifts = texts(browser, '[data-testid="model-lift"]')
        if summary.lifts:
            lift = summary.lifts["popular"]
            assert any(
                t.startswith(f"×{lift.value:.2f} [{lift.low:.2f}, {lift.high:.2f}]") for t in lifts
            )
        else:
            assert lifts == [summary.message]
        assert f"{summary.evaluated_customers:,} customers" in text_of(browser, "model-head")
        save_screenshot(browser, "pipeline", tmp_path)

        # a new metrics run shows on the open page, without a reload
        marker = browser.execute_script("window.__same_page = 1; return window.__same_page")
        before = fresh_cell(browser, dashboard_key, "written")
        time.sleep(1.1)  # S3 keeps whole seconds
        dashboard_metrics.MetricsJob(shop).run()
        after = snapshot_written(shop)
        assert after != before
        WebDriverWait(browser, 15, poll_frequency=0.2).until(
            lambda d: fresh_cell(d, dashboard_key, "written") == after
        )
        assert browser.execute_script("return window.__same_page") == marker
