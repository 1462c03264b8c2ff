"""Console/log sink: one line per alert on a stream (readable text or JSON lines)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Literal, TextIO

from jobs.alerts.sinks.base import Alert, Sink
from jobs.domain.alert_format import compact_line
from jobs.domain.change_events import to_json
from jobs.domain.digest import DIGEST_TYPE


class ConsoleSink(Sink):
    name = "console"
    max_batch = 1000

    def __init__(self, stream: TextIO | None = None, fmt: Literal["text", "json"] = "text") -> None:
        self.stream = stream or sys.stdout
        self.fmt = fmt

    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        if self.fmt == "json":
            lines = [to_json({**a, "delivered_at": now}) for a in alerts]
        else:
            lines = [
                str(a.message)
                if a.alert_type == DIGEST_TYPE
                else f"ALERT {compact_line(a)} · {a.message}"
                for a in alerts
            ]
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
