"""Dashboard messages are untrusted input: parsed into a typed model, bad ones ignored and logged.

Anyone who can reach Redis can publish on ``dashboard:updates`` or overwrite
``dashboard:latest_metrics``; a malformed message must never crash the dashboard, and
freshness is decided by instants, not by comparing ISO strings.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from typing import Any

import pytest

from jobs import dashboard_metrics
from jobs.domain import dashboard
from tests.unit.test_dashboard_metrics import LATER, ROWS, metrics
from web.state import LiveState


def published(run_id: str = "run-1") -> dict[str, Any]:
    """The message the publisher builds from real metric tables."""
    payload = dashboard.payload_metrics(metrics(ROWS), LATER.date(), "UTC", run_id)
    return dashboard.dump_update(dashboard_metrics.update_message(LATER, run_id, payload))


def at(stamp: str) -> dict[str, Any]:
    message = published()
    message["metrics"]["overall_metrics"]["last_updated"] = stamp
    return message


def test_the_publishers_message_parses_unchanged() -> None:
    message = published()
    parsed = dashboard.parse_update(message)
    assert parsed is not None
    # the dashboard shows what was published: same JSON after parsing and dumping
    assert json.loads(json.dumps(dashboard.dump_update(parsed))) == message


def test_freshness_compares_instants_not_strings() -> None:
    state = LiveState()
    assert state.accept(at("2024-03-05T12:00:00+00:00"))
    # 13:30 at +02:00 is 11:30 UTC: older, although its string sorts after "12:00"
    assert not state.accept(at("2024-03-05T13:30:00+02:00"))
    assert state.view().message is not None
    shown = dashboard.dump_update(state.view().message)["metrics"]["overall_metrics"][
        "last_updated"
    ]  # type: ignore[arg-type]
    assert shown == "2024-03-05T12:00:00+00:00"
    # 11:00 at -02:00 is 13:00 UTC: newer, although its string sorts before "12:00"
    assert state.accept(at("2024-03-05T11:00:00-02:00"))
    assert state.view().version == 2


def _spoil(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    message = copy.deepcopy(published())
    target: Any = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return message


BAD: dict[str, Any] = {
    "not an object": [1, 2, 3],
    "metrics a list": {"event": "metrics_updated", "metrics": []},
    "metrics a string": {"metrics": "hello"},
    "no overall": _spoil(("metrics", "overall_metrics"), None),
    "stamp not a time": _spoil(("metrics", "overall_metrics", "last_updated"), "yesterday"),
    "naive stamp": _spoil(("metrics", "overall_metrics", "last_updated"), "2024-03-05T12:00:00"),
    "stamp a number": _spoil(("metrics", "overall_metrics", "last_updated"), 1709640000),
    "NaN revenue": _spoil(("metrics", "overall_metrics", "total_revenue"), math.nan),
    "negative orders": _spoil(("metrics", "overall_metrics", "total_orders"), -3),
    "revenue text": _spoil(("metrics", "overall_metrics", "total_revenue"), "lots"),
    "top products not a list": _spoil(("metrics", "top_products"), {"a": 1}),
    "product without revenue": _spoil(("metrics", "top_products"), [{"product_name": "Lamp"}]),
    "hour 25": _spoil(("metrics", "hourly_stats"), [{"hour": 25, "order_count": 1}]),
    "other event": _spoil(("event",), "something_else"),
}


@pytest.mark.parametrize("name", BAD, ids=list(BAD))
def test_a_malformed_message_is_ignored_and_logged(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = LiveState()
    assert state.accept(published())
    with caplog.at_level(logging.WARNING):
        assert not state.accept(BAD[name])
    assert "ignored a malformed dashboard message" in caplog.text
    view = state.view()
    assert view.message is not None
    assert view.version == 1 and dashboard.dump_update(view.message) == published()
