"""Generic webhook: each alert POSTed as one JSON object (the alert record's fields)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from jobs.alerts.sinks.base import WHERE, Alert, HttpPoster, Sink, url_secrets
from jobs.domain.change_events import to_json


class WebhookSink(Sink):
    name = "webhook"
    max_batch = 1  # one POST per alert, so a failure never resends a neighbour

    def __init__(self, url: str, wait: Callable[[float], Any] | None = None, **retry: Any) -> None:
        self.url = url
        # the URL often is the credential (a Slack-style hook): errors and logs never show it
        self.poster = HttpPoster(url_secrets(url), WHERE["webhook"], wait=wait, **retry)
        self.secrets = self.poster.secrets

    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        for alert in alerts:
            # the key lets a receiver drop the rare resend of an in-doubt delivery
            self.poster.post(
                self.url,
                json.loads(to_json(alert)),
                headers={"Idempotency-Key": str(alert.alert_id)},
            )

    def close(self) -> None:
        self.poster.close()
