"""One bad alert must not block a sink: permanent refusals become dead letters at once,
transient failures are retried with back-off a bounded number of times, every other alert is
delivered exactly once, and no delivery error shows a secret (logs, ledger, ``alerts status``).
Telegram and the webhook are local stand-ins speaking their real wire protocols."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jobs.alerts.ledger import postgres as ledger
from jobs.alerts.sinks.telegram import TelegramSink
from jobs.alerts.sinks.webhook import WebhookSink
from jobs.domain.alert_format import TELEGRAM_LIMIT
from tests.support.alerts_runner import insert_orders, running_alerts, wait_for
from tests.support.telegram_standin import TelegramStandIn
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "424242:dead-letter-secret-token"
SECRET_PATH = "/services/T0SHOP/B0LAKE/xoxb-webhook-secret-path"


def alerting(order_id: str, **extra: Any) -> dict[str, Any]:
    """An order that breaks exactly one rule (INVALID_QUANTITY)."""
    return {"order_id": order_id, "customer_id": "C", "quantity": 0, "price": "1.00"} | extra


def deliveries(settings, sink: str) -> dict[str, tuple[str, int, str | None]]:
    """order_id -> (state, attempts, last_error) of each delivery to ``sink``."""
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT a.record->>'order_id', d.state, d.attempts, d.last_error"
            " FROM shoplake_alerts.alert_deliveries d JOIN shoplake_alerts.alerts a"
            " USING (alert_id) WHERE d.sink = %s",
            (sink,),
        ).fetchall()
    return {oid: (state, n, err) for oid, state, n, err in rows}


def alert_id_of(settings, order_id: str) -> str:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(
            "SELECT alert_id FROM shoplake_alerts.alerts WHERE record->>'order_id' = %s",
            (order_id,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def webhook_sink(hook: WebhookReceiver, **retry: Any) -> WebhookSink:
    return WebhookSink(hook.url, **({"backoff": 0.01, "attempts": 2} | retry))


@pytest.mark.parametrize("status", [413, 422, 302])
def test_a_refused_webhook_alert_is_a_dead_letter_and_the_next_ones_flow(source, status):
    with WebhookReceiver() as hook:
        hook.refuse(status, when=lambda body: body["order_id"] == "BAD")
        with running_alerts(source, [webhook_sink(hook)]), psycopg.connect(source.dsn) as conn:
            insert_orders(conn, [alerting("BAD")])
            conn.commit()
            insert_orders(conn, [alerting("G1"), alerting("G2")])
            conn.commit()
            wait_for(lambda: len(hook.hooks()) >= 2, 20, "the alerts behind the refused one")
            wait_for(
                lambda: deliveries(source, "webhook").get("BAD", ("",))[0] == "dead",
                20,
                "the dead letter",
            )
        state, attempts, error = deliveries(source, "webhook")["BAD"]
    assert (state, attempts) == ("dead", 1)  # permanent: not retried
    assert f"HTTP {status}" in (error or "")
    assert sum(hook.attempts.values()) == 3  # the refused one was tried once
    assert sorted(h.body["order_id"] for h in hook.hooks()) == ["G1", "G2"]  # each once
    assert {o: d[0] for o, d in deliveries(source, "webhook").items()} == {
        "BAD": "dead",
        "G1": "delivered",
        "G2": "delivered",
    }


def test_transient_failures_back_off_and_end_as_dead_letters_after_bounded_tries(
    source, monkeypatch
):
    monkeypatch.setattr(ledger, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(ledger, "BACKOFF_S", 0.3)
    with WebhookReceiver() as hook:
        hook.refuse(503, when=lambda body: body["order_id"] == "DOWN")
        with running_alerts(source, [webhook_sink(hook)]), psycopg.connect(source.dsn) as conn:
            insert_orders(conn, [alerting("DOWN")])
            conn.commit()
            hook.fail_next(500, count=2)  # the next alert heals after two failures
            insert_orders(conn, [alerting("FLAKY")])
            conn.commit()
            insert_orders(conn, [alerting("OK")])
            conn.commit()
            wait_for(
                lambda: (
                    {d[0] for d in deliveries(source, "webhook").values()} == {"dead", "delivered"}
                ),
                40,
                "every delivery settled",
            )
        final = deliveries(source, "webhook")
    assert final["DOWN"][:2] == ("dead", 3)
    assert "gave up after 3 attempts" in (final["DOWN"][2] or "")
    assert "HTTP 503" in (final["DOWN"][2] or "")
    assert final["FLAKY"][0] == final["OK"][0] == "delivered"
    # 2 attempts per hand-over (the poster's own retry) x 3 hand-overs, and no more
    assert hook.attempts[alert_id_of(source, "DOWN")] == 6
    received = sorted(h.body["order_id"] for h in hook.hooks())
    assert received == ["FLAKY", "OK"]  # exactly once each, the failing one never


def test_a_long_retry_after_is_kept_by_the_ledger_and_the_next_alerts_go_on(source):
    """A 429 asking for more than the poster waits in-line: the delivery stays pending until
    then (not a dead letter, not a busy thread), and later alerts are delivered meanwhile."""
    with WebhookReceiver() as hook:
        hook.fail_next(429, retry_after=120)
        sink = webhook_sink(hook, max_retry_after=1.0)
        with running_alerts(source, [sink]), psycopg.connect(source.dsn) as conn:
            insert_orders(conn, [alerting("SLOW")])
            conn.commit()
            wait_for(lambda: hook.attempts, 20, "the rate-limited attempt")
            insert_orders(conn, [alerting("NEXT")])
            conn.commit()
            wait_for(lambda: hook.hooks(), 20, "the next alert")
            wait_for(
                lambda: deliveries(source, "webhook")["SLOW"][0] == "pending", 20, "the back-off"
            )
            wait_ahead = conn.execute(
                "SELECT extract(epoch FROM d.not_before - now())"
                " FROM shoplake_alerts.alert_deliveries d JOIN shoplake_alerts.alerts a"
                " USING (alert_id) WHERE a.record->>'order_id' = 'SLOW'"
            ).fetchone()[0]
    assert [h.body["order_id"] for h in hook.hooks()] == ["NEXT"]
    assert 100 < wait_ahead <= 120
    state, attempts, error = deliveries(source, "webhook")["SLOW"]
    assert (state, attempts) == ("pending", 1) and "HTTP 429" in (error or "")


def test_a_long_product_name_reaches_telegram_within_its_limit(source):
    name = "Lamp\n🛑 FAKE ALERT\x07 " + "x" * 10_000
    with TelegramStandIn(TOKEN) as api:
        sink = TelegramSink(api.url, TOKEN, "4242", min_interval=0.0, backoff=0.01, attempts=2)
        with running_alerts(source, [sink]), psycopg.connect(source.dsn) as conn:
            insert_orders(conn, [alerting("LONG", product_name=name)])
            conn.commit()
            wait_for(lambda: api.sent, 20, "the message")
        (sent,) = api.sent
    assert len(sent.text) <= TELEGRAM_LIMIT
    assert len(sent.text.encode("utf-16-le")) // 2 <= TELEGRAM_LIMIT
    assert "Order LONG" in sent.text and "Product: Lamp" in sent.text
    assert "\n🛑 FAKE ALERT" not in sent.text and "\x07" not in sent.text  # no forged lines
    assert deliveries(source, "telegram")["LONG"][0] == "delivered"


def test_a_refused_telegram_message_is_a_dead_letter_and_the_next_goes_through(source):
    with TelegramStandIn(TOKEN) as api:
        api.fail_next(400)
        sink = TelegramSink(api.url, TOKEN, "4242", min_interval=0.0, backoff=0.01, attempts=2)
        with running_alerts(source, [sink]), psycopg.connect(source.dsn) as conn:
            insert_orders(conn, [alerting("T1")])
            conn.commit()
            wait_for(lambda: deliveries(source, "telegram").get("T1"), 20, "the first alert")
            wait_for(lambda: api.requests >= 1, 20, "the refused message")
            insert_orders(conn, [alerting("T2")])
            conn.commit()
            wait_for(lambda: api.sent, 20, "the second message")
        final = deliveries(source, "telegram")
        texts = api.texts()
    assert final["T1"][:2] == ("dead", 1) and "HTTP 400" in (final["T1"][2] or "")
    assert final["T2"][0] == "delivered"
    assert len(texts) == 1 and "Order T2" in texts[0]


# ------------------------------------------------------------------ secrets and status
def cli(settings, *args: str, env: dict[str, str] | None = None, **kw: Any) -> Any:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLAKE_")}
    base.pop("TELEGRAM_BOT_TOKEN", None)
    base.update({"SHOPLAKE_SOURCE_DSN": settings.dsn} | (env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "lite.cli", "alerts", *args], cwd=ROOT, env=base, **kw
    )


def status_text(settings) -> str:
    proc = cli(settings, "status", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def ledger_dump(settings) -> str:
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT d::text FROM shoplake_alerts.alert_deliveries d"
            " UNION ALL SELECT a::text FROM shoplake_alerts.alerts a"
            " UNION ALL SELECT r::text FROM shoplake_alerts.rejected_changes r"
        ).fetchall()
    return "\n".join(r[0] for r in rows)


def test_failing_deliveries_never_show_the_webhook_url_or_the_bot_token(source, tmp_path):
    """`shoplake alerts run` delivering to a failing webhook (secret path) and Telegram: the
    log, the ledger and `shoplake alerts status` say where the secret is kept, never what."""
    log = tmp_path / "alerts.log"
    with TelegramStandIn(TOKEN) as api, WebhookReceiver(SECRET_PATH) as hook:
        hook.refuse(422, when=lambda body: body["order_id"] == "S1")
        hook.fail_next(500, count=3)
        api.fail_next(400)
        api.fail_next(502, count=3)
        secrets = [TOKEN, hook.url, SECRET_PATH, hook.url.split("://", 1)[1]]
        env = {
            "SHOPLAKE_TELEGRAM_BOT_TOKEN": TOKEN,
            "SHOPLAKE_TELEGRAM_CHAT_ID": "4242",
            "SHOPLAKE_TELEGRAM_API_URL": api.url,
            "SHOPLAKE_ALERT_WEBHOOK_URL": hook.url,
        }
        with log.open("w") as out:
            proc = cli(source, "run", "--no-lake", env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "reading slot" in log.read_text(), 60, "the alerts service")
            with psycopg.connect(source.dsn) as conn:
                insert_orders(conn, [alerting("S1")])
                conn.commit()
                wait_for(lambda: api.requests and hook.attempts, 30, "the first attempts")
                insert_orders(conn, [alerting("S2")])
                conn.commit()
            wait_for(
                lambda: (
                    deliveries(source, "webhook").get("S1", ("",))[0] == "dead"
                    and deliveries(source, "telegram").get("S1", ("",))[0] == "dead"
                    and deliveries(source, "webhook").get("S2", ("",))[0] == "delivered"
                    and deliveries(source, "telegram").get("S2", ("",))[0] == "delivered"
                ),
                90,
                "dead letters and deliveries",
            )
        finally:
            proc.terminate()
            proc.wait(30)
        logged = log.read_text()
        status = status_text(source)
        stored = ledger_dump(source)
    assert "HTTP 500" in logged and "HTTP 502" in logged  # the transient failures were logged
    assert "HTTP 422" in stored and "HTTP 400" in stored
    for text, where in ((logged, "log"), (stored, "ledger"), (status, "alerts status")):
        for secret in secrets:
            assert secret not in text, f"a secret in the {where}"
    assert "SHOPLAKE_ALERT_WEBHOOK_URL" in status and "SHOPLAKE_TELEGRAM_BOT_TOKEN" in status
    assert "webhook" in status and "dead 1" in status and "delivered 1" in status


def test_status_counts_dead_letters_and_set_aside_changes(source, caplog):
    caplog.set_level(logging.INFO)
    with psycopg.connect(source.dsn) as conn:
        ledger.ensure_schema(conn)
        with conn.transaction():
            ledger.record_alerts(
                conn,
                [{"alert_id": f"a{i}", "source_lsn": i, "order_id": f"O{i}"} for i in range(3)],
                ["webhook"],
            )
            ledger.record_rejected_changes(
                conn, [(99, 7, "public.orders", "u", {"order_id": "X"}, "column x: bad")]
            )
        ledger.claim(conn, "webhook", ["a0"])
        ledger.fail(conn, "webhook", ["a0"], "HTTP 422: no", permanent=True)
        ledger.claim(conn, "webhook", ["a1"])
        ledger.finish(conn, "webhook", ["a1"], ok=True)
        summary = ledger.status(conn)
        assert ledger.trouble_count(conn) == 2
    assert summary["sinks"]["webhook"] | {"oldest_pending": None} == {
        "delivered": 1,
        "pending": 1,
        "sending": 0,
        "dead": 1,
        "oldest_pending": None,
    }
    assert summary["dead"] == [
        {
            "sink": "webhook",
            "alert_id": "a0",
            "order_id": "O0",
            "attempts": 1,
            "reason": "HTTP 422: no",
        }
    ]
    assert summary["rejected_changes"] == 1
    out = status_text(source)
    assert "rejected changes: 1" in out and "column x: bad" in out and "0/63" in out
    with psycopg.connect(source.dsn) as conn:
        assert ledger.retry_dead(conn, "webhook") == 1
        assert ledger.status(conn)["sinks"]["webhook"]["pending"] == 2
