"""The Customer page in a real headless Chromium: seeded shop -> medallion -> training -> a
real ``shoplake serve``. The customer's orders match the test's own query of the source; the
recommendations (with their reasons) and similar products match the API's own JSON; with the
API stopped, a look-up says so and still shows the orders."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from jobs import medallion, seed, training
from jobs.settings import Settings
from tests.support.dashboard_server import ROOT, cli_env, running_dashboard, save_screenshot
from tests.support.page_reading import texts
from tests.support.platform_up import free_ports

pytestmark = pytest.mark.e2e

DAYS = 14


@pytest.fixture
def shop(live_settings: Settings, tmp_path: Path) -> Settings:
    """Two weeks of seeded orders through the medallion, and a production model trained on
    them in a local registry."""
    (api_port,) = free_ports(1)
    settings = live_settings.model_copy(
        update={"data_dir": tmp_path / "data", "registry": "local", "api_port": api_port}
    )
    today = dt.datetime.now(dt.UTC).date()
    seed.seed(settings, days=DAYS, orders_per_day=150, seed=7, end_date=today)
    medallion.backfill(settings, today - dt.timedelta(days=DAYS - 1), today)
    result = training.train(settings, config=training.TrainConfig(tune_seconds=0))
    assert result.registration.promoted
    return settings


@contextlib.contextmanager
def serving(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``shoplake serve`` as a child process until it answers /health; stopped on exit."""
    env = cli_env(settings, {"SHOPLAKE_REGISTRY": "local"})
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "lite.cli", "serve", "--port", str(settings.api_port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{settings.api_url}/health", timeout=1).status_code == 200:
                        break
                assert child.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the API did not start in 60 s"
                time.sleep(0.2)
            yield child
        finally:
            stop(child)


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        child.wait(15)


def own_orders(settings: Settings, customer_id: str) -> tuple[list[str], int]:
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT order_id FROM orders WHERE customer_id = %s"
            " ORDER BY order_date DESC NULLS LAST, order_id",
            (customer_id,),
        ).fetchall()
    return [r[0] for r in rows], len(rows)


def busiest_customers(settings: Settings) -> list[str]:
    """The two customers with the most orders."""
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT customer_id FROM orders WHERE customer_id LIKE 'CUST-%%'"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
        ).fetchall()
    assert len(rows) == 2
    return [str(r[0]) for r in rows]


def by_testid(driver: Any, testid: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def cells(driver: Any, table: str, column: str) -> list[str]:
    return texts(driver, f'[data-testid="{table}"] tbody [data-testid$="-{column}"]')


def look_up(driver: Any, field: str, button: str, text: str) -> None:
    box = by_testid(driver, field)  # Quasar hands the attribute to the native <input>
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.CONTROL, "a")  # clear() would bypass Vue's model: select, then type
    box.send_keys(Keys.BACKSPACE, text)
    by_testid(driver, button).click()


def test_customer_page_shows_orders_recommendations_and_similar_products(
    shop: Settings, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    customer, other = busiest_customers(shop)
    order_ids, order_count = own_orders(shop, customer)
    extra = {"SHOPLAKE_API_PORT": str(shop.api_port)}
    with (
        serving(shop, tmp_path / "api.log") as api,
        running_dashboard(shop, tmp_path / "dashboard.log", extra) as base,
    ):
        recos = httpx.get(f"{shop.api_url}/recommend/{customer}", params={"top_n": 10}).json()
        assert recos["strategy"] == "personal"
        browser.get(f"{base}/customer")
        look_up(browser, "customer-input", "customer-lookup", customer)
        WebDriverWait(browser, 15).until(lambda d: cells(d, "customer-orders", "order_id"))

        assert cells(browser, "customer-orders", "order_id") == order_ids[:10]
        assert by_testid(browser, "customer-order-count").text.startswith(f"{order_count:,} orders")
        assert customer in by_testid(browser, "customer-profile").text
        names = [i["product_name"] for i in recos["recommendations"]]
        WebDriverWait(browser, 10).until(lambda d: cells(d, "recommendations", "product_name"))
        assert cells(browser, "recommendations", "product_name") == names
        reasons = cells(browser, "recommendations", "reason")
        for item, reason in zip(recos["recommendations"], reasons, strict=True):
            assert reason == "because you bought " + " and ".join(item["because"])
        assert by_testid(browser, "reco-strategy").text == "personal"
        assert recos["model_version"] in by_testid(browser, "reco-info").text
        assert not by_testid(browser, "api-notice").is_displayed()

        # similar products of the top recommendation, asked by its product id
        top = recos["recommendations"][0]
        similar = httpx.get(
            f"{shop.api_url}/similar/{top['product_name']}", params={"top_n": 10}
        ).json()
        look_up(browser, "product-input", "product-lookup", top["product_id"])
        WebDriverWait(browser, 15).until(lambda d: cells(d, "similar", "product_name"))
        assert cells(browser, "similar", "product_name") == [
            i["product_name"] for i in similar["similar"]
        ]
        assert cells(browser, "similar", "score") == [
            f"{i['similarity']:.3f}" for i in similar["similar"]
        ]
        assert top["product_id"] in by_testid(browser, "product-info").text
        browser.execute_script("window.scrollTo(0, 0)")
        save_screenshot(browser, "customer", tmp_path)

        # the API goes away: a look-up says so at once, and the orders still show
        stop(api)
        t0 = time.monotonic()
        look_up(browser, "customer-input", "customer-lookup", other)
        WebDriverWait(browser, 10).until(lambda d: by_testid(d, "api-notice").is_displayed())
        took = time.monotonic() - t0
        assert "not running" in by_testid(browser, "api-notice").text
        assert shop.api_url in by_testid(browser, "api-notice").text
        assert cells(browser, "customer-orders", "order_id") == own_orders(shop, other)[0][:10]
        assert other in by_testid(browser, "customer-profile").text
        assert cells(browser, "recommendations", "product_name") == []
    print(f"the API's absence was shown {took:.2f}s after the look-up")
