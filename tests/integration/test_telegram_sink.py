"""Telegram delivery against a Bot API stand-in: retries, 429, rate limit, batching, no leaks."""

from __future__ import annotations

import logging
import re
import time

import psycopg
import pytest

from jobs import alert_engines as alerts
from jobs.alerts.sinks import DeliveryError
from jobs.alerts.sinks.telegram import TelegramSink
from jobs.domain.alert import Alert
from tests.support.alerts_runner import insert_orders, prepare_source, running_alerts, wait_for
from tests.support.telegram_standin import TelegramStandIn

pytestmark = pytest.mark.integration
TOKEN = "123456:TEST-token-never-logged"


def alert(i=1):
    return Alert.from_record(
        {
            "alert_id": f"{i:032x}",
            "alert_type": "NEGATIVE_PRICE",
            "severity": "high",
            "order_id": f"O{i}",
            "customer_id": "C",
            "product_name": "P",
            "total": "-1",
            "quantity": 1,
            "price": "-1",
            "message": "Price -1 is negative",
            "source_ts": "2026-01-01T00:00:00+00:00",
            "detected_at": "x",
            "source_lsn": i,
        }
    )


@pytest.fixture
def api():
    with TelegramStandIn(TOKEN) as standin:
        yield standin


def sink_for(api, **kw):
    return TelegramSink(api.url, TOKEN, "4242", **({"min_interval": 0.0, "backoff": 0.05} | kw))


def test_delivers_a_readable_message(api):
    sink_for(api).send([alert()], batch_key="k")
    (sent,) = api.sent
    assert sent.chat_id == "4242" and "NEGATIVE_PRICE" in sent.text and "Order O1" in sent.text


def test_honours_429_retry_after(api):
    api.fail_next(429, retry_after=1)
    started = time.monotonic()
    sink_for(api).send([alert()], batch_key="k")
    assert time.monotonic() - started >= 1.0
    assert api.requests == 2 and len(api.sent) == 1


def test_retries_5xx_with_bounded_backoff_then_gives_up_without_leaking_the_token(api, caplog):
    api.fail_next(500, count=2)
    sink_for(api).send([alert()], batch_key="k")
    assert api.requests == 3 and len(api.sent) == 1

    caplog.set_level(logging.DEBUG)
    api.fail_next(502, count=10)
    with pytest.raises(DeliveryError) as err:
        sink_for(api, attempts=4).send([alert(2)], batch_key="k")
    assert api.requests == 3 + 4 and len(api.sent) == 1  # bounded: exactly 4 attempts
    assert "HTTP 502" in str(err.value) and TOKEN not in str(err.value)
    assert "httpx" in caplog.text and TOKEN not in caplog.text  # httpx logs the URL: redacted


def test_a_wrong_token_fails_at_once(api):
    with pytest.raises(DeliveryError, match="HTTP 401") as err:
        TelegramSink(api.url, "999:wrong", "4242", min_interval=0).send([alert()], batch_key="k")
    assert "999:wrong" not in str(err.value) and api.requests == 1


def test_keeps_the_per_chat_rate(api):
    sink = sink_for(api, min_interval=0.4)
    for i in range(3):
        sink.send([alert(i)], batch_key=str(i))
    gaps = [b.at - a.at for a, b in zip(api.sent, api.sent[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.39


def test_a_burst_is_batched_delivered_once_and_survives_an_outage(pg_settings, api):
    prepare_source(pg_settings)
    sink = sink_for(api, min_interval=0.5)
    api.fail_next(500, count=3)
    api.fail_next(429, retry_after=0.5)
    try:
        with running_alerts(pg_settings, [sink]), psycopg.connect(pg_settings.dsn) as conn:
            for batch in range(6):  # 120 alerting orders in six quick transactions
                insert_orders(
                    conn,
                    [
                        {
                            "order_id": f"B{batch}-{i}",
                            "customer_id": "C",
                            "price": "-1.00",
                            "quantity": 1,
                            "total": "-1.00",
                        }
                        for i in range(20)
                    ],
                )
                conn.commit()
            wait_for(
                lambda: (
                    sum("NEGATIVE_PRICE" in t for t in api.texts())
                    and len(re.findall(r"order B\d-\d+ ", "\n".join(api.texts()))) >= 120
                ),
                60,
                "every alert in Telegram",
            )
    finally:
        alerts.reset(pg_settings)
    orders = re.findall(r"order (B\d-\d+) ", "\n".join(api.texts()))
    assert sorted(orders) == sorted(f"B{b}-{i}" for b in range(6) for i in range(20))
    assert len(api.sent) <= 12  # batched, not 120 messages
    gaps = [b.at - a.at for a, b in zip(api.sent, api.sent[1:], strict=False)]
    assert min(gaps) >= 0.49
