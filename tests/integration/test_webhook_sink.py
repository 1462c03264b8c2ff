"""The webhook sink against a real local HTTP receiver: one JSON object per alert, retried."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobs.alerts.sinks.webhook import WebhookSink
from jobs.domain.rules import ALERT_FIELDS, alerts_for_change
from jobs.settings import Settings

PARAMS = Settings(alert_high_value=10000, alert_max_quantity=50).alert_params()


class Receiver:
    """Records every POST (body and Idempotency-Key); answers 500 to the first ``fail`` calls."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls = 0
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls += 1
                if outer.calls <= outer.fail:
                    self.send_response(500)
                else:
                    outer.received.append((self.headers.get("Idempotency-Key"), json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_each_alert_is_one_json_object_and_5xx_is_retried() -> None:
    after = {
        "order_id": "ORD-1",
        "customer_id": "C1",
        "product_name": "Lamp",
        "price": Decimal("-20000.50"),
        "quantity": 60,
        "total": Decimal("-1230030.00"),
    }
    event = {
        "op": "c",
        "before": None,
        "after": after,
        "source": {"lsn": 4242, "ts_ms": 1_700_000_000_000},
    }
    alerts = alerts_for_change(event, PARAMS, dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    assert {a["alert_type"] for a in alerts} == {"NEGATIVE_PRICE", "SUSPICIOUS_QUANTITY"}

    receiver = Receiver(fail=2)
    sink = WebhookSink(receiver.url, wait=lambda _s: None)
    try:
        sink.send(alerts, batch_key="b1")
    finally:
        sink.close()
        receiver.close()

    assert receiver.calls == len(alerts) + 2  # the two 500s were retried, nothing else repeated
    got = {body["alert_id"]: (key, body) for key, body in receiver.received}
    assert set(got) == {a["alert_id"] for a in alerts}
    for alert in alerts:
        key, body = got[alert["alert_id"]]
        assert key == alert["alert_id"]
        assert set(ALERT_FIELDS) <= set(body)
        assert body["price"] == "-20000.50" and body["quantity"] == 60  # exact, never floats
