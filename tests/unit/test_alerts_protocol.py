"""The exactly-once protocol of the alerts, on the in-memory source and ledger (no database).

Crashes are injected between the steps (evaluate, record, confirm; claim, send, finish), the
process is "restarted" by reopening the source and starting a new deliverer on the same
ledger, and every alert must reach the sink once. The same protocol on PostgreSQL and Kafka
is tested for real in tests/integration (test_alerts_crash.py, test_cdc_rejected.py,
test_dead_letters.py ...) and tests/full/test_alert_delivery.py.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from jobs.alerts import Engine, engine
from jobs.alerts import ledger as ledger_port
from jobs.alerts.delivery import DeliveryWorker
from jobs.alerts.ledger.memory import MemoryLedger
from jobs.alerts.model import Lost, RejectedMessage
from jobs.alerts.sinks import DeliveryError, Sink
from jobs.alerts.sources.memory import MemorySource
from jobs.domain.alert import Alert
from jobs.domain.change_events import envelope
from jobs.domain.rules import alerts_for_change, thresholds
from jobs.errors import ServiceUnavailable

PARAMS = thresholds(alert_high_value=10000, alert_max_quantity=50)
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SINK = "memory"


class Crash(BaseException):
    """The process dies here (nothing in the engine catches it)."""


def change(i: int, quantity: int = 0, **row: Any) -> dict[str, Any]:
    """An order insert; quantity 0 raises INVALID_QUANTITY."""
    after = {"order_id": f"O{i}", "customer_id": "C1", "product_name": "Lamp"}
    after |= {"price": "5.00", "quantity": quantity, "total": "0.00"} | row
    return envelope(
        "c", None, after, lsn=1000 + i, tx_id=i, commit_ts_ms=1_700_000_000_000, db="shop"
    )


def poison(i: int) -> dict[str, Any]:
    """A change the rules trip on (its row is not a row)."""
    return {"op": "c", "before": None, "after": 5, "source": {"lsn": 1000 + i}}


def rules(event: dict[str, Any]) -> list[Alert]:
    return alerts_for_change(event, PARAMS, NOW)


def source(items: Sequence[dict[str, Any]], **kw: Any) -> MemorySource[dict[str, Any]]:
    made = MemorySource(items, rules, **kw)
    made.open()
    return made


def drain(src: MemorySource[Any], ledger: MemoryLedger) -> None:
    """Steps of the engine until the source has nothing more."""
    with ledger.session() as session:
        while src.read < len(src.items):
            engine.step(src, session, [SINK])


class RecordingSink(Sink):
    """Keeps every batch it was handed: (key, alert ids, in doubt)."""

    name = SINK
    max_batch = 3

    def __init__(self, refuse: str | None = None) -> None:
        self.batches: list[tuple[str, list[str], bool]] = []
        self.failures: list[Exception] = []  # raised by the next sends, in order
        self.refuse = refuse  # an alert id refused for good

    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        if self.failures:
            raise self.failures.pop(0)
        if any(a.alert_id == self.refuse for a in alerts):
            raise DeliveryError("HTTP 422: refused", permanent=True)
        self.batches.append((batch_key, [a.alert_id for a in alerts], in_doubt))

    def sent(self) -> collections.Counter[str]:
        return collections.Counter(i for _, ids, _ in self.batches for i in ids)


def deliver(ledger: MemoryLedger, sink: RecordingSink) -> None:
    """One deliverer's life: resend what is in doubt, then every alert due now."""
    worker = DeliveryWorker(ledger, sink, threading.Event(), pause_s=0)
    with ledger.session() as session:
        assert session.hold_sink(sink.name)
        worker.resend_in_doubt(session)
        while worker.deliver_pending(session):
            pass


def expected_ids(items: Sequence[dict[str, Any]]) -> set[str]:
    return {a.alert_id for event in items if isinstance(event["after"], dict) for a in rules(event)}


# ------------------------------------------------------------------ reading side
@pytest.mark.parametrize("crash_at", ["record", "confirm"])
def test_a_crash_before_the_source_is_confirmed_replays_and_duplicates_nothing(
    crash_at: str,
) -> None:
    items = [change(i) for i in range(7)]
    src, ledger = source(items), MemoryLedger()
    with ledger.session() as session:
        engine.step(src, session, [SINK])  # the first two, confirmed
        (ledger.fail_next if crash_at == "record" else src.fail_next)[crash_at] = Crash()
        with pytest.raises(Crash):
            engine.step(src, session, [SINK])
    recorded = len(ledger.alerts)
    assert recorded == (2 if crash_at == "record" else 4)  # record crashed: nothing of it
    assert src.confirmed == 2  # either way the second batch was not confirmed
    src.close()
    src.open()  # the restart: the source goes on after the last confirmed batch
    drain(src, ledger)
    assert set(ledger.alerts) == expected_ids(items) and len(ledger.alerts) == 7
    assert src.confirmed == 7
    sink = RecordingSink()
    deliver(ledger, sink)
    assert set(sink.sent()) == expected_ids(items) and max(sink.sent().values()) == 1


def test_a_poison_change_is_set_aside_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [change(0), poison(1), change(2, quantity=3), change(3)]
    src, ledger = source(items, batch_size=4), MemoryLedger()
    drain(src, ledger)
    assert src.confirmed == 4  # confirmed past it: a restart neither replays nor loses it
    assert set(ledger.alerts) == expected_ids(items) and len(ledger.alerts) == 2
    (rejected,) = ledger.rejected
    assert isinstance(rejected, RejectedMessage) and rejected.offset == 1
    assert rejected.reason.startswith("evaluating failed: AttributeError")
    assert [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()] == [
        f"alerts: {rejected.line()}"
    ]


def test_a_value_the_ledger_refuses_sets_only_its_change_aside() -> None:
    bad = "nul\x00"
    items = [change(0), change(1, product_name=bad), change(2)]
    src, ledger = source(items, batch_size=3), MemoryLedger(refuses=bad)
    drain(src, ledger)
    assert {a.order_id for a in ledger.alerts.values()} == {"O0", "O2"}
    (rejected,) = ledger.rejected
    assert isinstance(rejected, RejectedMessage) and rejected.offset == 1
    assert rejected.reason.startswith("not storable in the ledger: a value the ledger")
    assert src.confirmed == 3


def test_a_replayed_batch_records_each_alert_and_each_rejection_once() -> None:
    items = [change(0), poison(1)]
    ledger = MemoryLedger()
    for _ in range(3):  # three processes, each crashing before it could confirm
        src = source(items, batch_size=2)
        src.fail_next["confirm"] = Crash()
        with pytest.raises(Crash), ledger.session() as session:
            engine.step(src, session, [SINK])
    assert len(ledger.alerts) == 1 and len(ledger.rejected) == 1
    assert len(ledger.deliveries) == 1  # one per (alert, sink)


# ------------------------------------------------------------------ the loop
def test_the_loop_reopens_a_lost_source_and_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    items = [change(i) for i in range(6)]
    src = MemorySource(items, rules, stop_when_drained=stop)
    src.fail_next["poll"] = Lost("the memory source", "it went away")
    ledger, sink = MemoryLedger(), RecordingSink()
    engine.run(src, ledger, [sink], stop, retry_every=0.01)
    assert src.opened == 2
    assert set(ledger.alerts) == expected_ids(items)
    deliver(ledger, sink)  # what the workers had not sent yet when the run stopped
    assert set(sink.sent()) == expected_ids(items) and max(sink.sent().values()) == 1
    retries = [r for r in caplog.records if "the memory source lost" in r.getMessage()]
    assert [r.levelname for r in retries] == ["WARNING"]
    assert "retrying in" in retries[0].getMessage()


def test_a_loss_without_retries_and_a_loss_at_start_end_the_run() -> None:
    src = MemorySource([change(0)], rules)
    src.fail_next["poll"] = Lost("the memory source", "it went away")
    with pytest.raises(ServiceUnavailable, match="alerts: the memory source lost: it went away"):
        engine.run(src, MemoryLedger(), [RecordingSink()], threading.Event())
    src = MemorySource([change(0)], rules)
    src.fail_next["open"] = Lost("the memory source", "none", at_start="no memory at all")
    with pytest.raises(ServiceUnavailable, match=r"^no memory at all$"):
        engine.run(src, MemoryLedger(), [RecordingSink()], threading.Event(), retry_every=1)


# ------------------------------------------------------------------ delivery side
def recorded(count: int) -> tuple[MemoryLedger, list[Alert]]:
    ledger = MemoryLedger()
    alerts = [a for i in range(count) for a in rules(change(i))]
    with ledger.session() as session:
        session.record(alerts, [], [SINK])
    return ledger, alerts


def test_a_crash_between_send_and_finish_resends_that_batch_alone_as_in_doubt() -> None:
    ledger, alerts = recorded(5)
    sink = RecordingSink()
    ledger.fail_next["finish"] = Crash()
    with pytest.raises(Crash):
        deliver(ledger, sink)
    assert ledger.state(SINK)[alerts[0].alert_id] == "sending"
    deliver(ledger, sink)  # the next process
    (key, first, doubt), (again, resent, in_doubt), *rest = sink.batches
    assert (again, resent) == (key, first) and not doubt and in_doubt  # same key: idempotent
    assert [i for _, ids, _ in rest for i in ids] == [a.alert_id for a in alerts[3:]]
    assert set(ledger.state(SINK).values()) == {"delivered"}


def test_a_crash_between_claim_and_send_sends_the_batch_once() -> None:
    ledger, alerts = recorded(2)
    ledger.fail_next["claim"] = Crash()
    sink = RecordingSink()
    with pytest.raises(Crash):
        deliver(ledger, sink)
    deliver(ledger, sink)
    assert sink.sent() == collections.Counter(a.alert_id for a in alerts)


def test_a_transient_failure_is_retried_after_a_back_off_and_delivered_once() -> None:
    ledger, alerts = recorded(3)
    sink = RecordingSink()
    sink.failures.append(DeliveryError("HTTP 503: busy"))
    deliver(ledger, sink)
    assert sink.batches == [] and set(ledger.state(SINK).values()) == {"pending"}
    assert {d.last_error for d in ledger.deliveries.values()} == {"HTTP 503: busy"}
    ledger.clock += ledger_port.BACKOFF_S  # the back-off passes
    deliver(ledger, sink)
    assert sink.sent() == collections.Counter(a.alert_id for a in alerts)
    assert set(ledger.state(SINK).values()) == {"delivered"}


def test_a_sink_failing_until_the_last_attempt_makes_a_dead_letter_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_port, "MAX_ATTEMPTS", 3)
    ledger, alerts = recorded(1)
    sink = RecordingSink()
    sink.failures += [DeliveryError("HTTP 503: busy")] * 3
    for _ in range(3):
        deliver(ledger, sink)
        ledger.clock += ledger_port.MAX_BACKOFF_S
    (delivery,) = ledger.deliveries.values()
    assert delivery.state == "dead" and delivery.attempts == 3
    assert delivery.last_error == "gave up after 3 attempts: HTTP 503: busy"
    with ledger.session() as session:  # the stream goes on behind the dead letter
        session.record(rules(change(9)), [], [SINK])
    deliver(ledger, sink)
    assert list(sink.sent()) == [a.alert_id for a in rules(change(9))]
    assert alerts[0].alert_id not in sink.sent()


def test_a_permanently_refused_alert_in_a_batch_is_the_only_dead_letter() -> None:
    ledger, alerts = recorded(3)
    sink = RecordingSink(refuse=alerts[1].alert_id)
    deliver(ledger, sink)
    states = ledger.state(SINK)
    assert states == {
        alerts[0].alert_id: "delivered",
        alerts[1].alert_id: "dead",
        alerts[2].alert_id: "delivered",
    }
    assert sink.sent() == collections.Counter([alerts[0].alert_id, alerts[2].alert_id])


def test_one_deliverer_per_sink_and_ledger() -> None:
    ledger = MemoryLedger()
    with ledger.session() as first:
        assert first.hold_sink(SINK)
        with ledger.session() as second:
            assert not second.hold_sink(SINK)
            assert second.hold_sink("other")
    with ledger.session() as third:  # the first one's session ended: its hold with it
        assert third.hold_sink(SINK)


# ------------------------------------------------------------------ engine names
def test_the_engines_are_named_for_where_the_rules_run_and_lite_still_means_python() -> None:
    assert [e.value for e in Engine] == ["python", "flink"]
    assert Engine("lite") is Engine.PYTHON


def test_the_cli_takes_the_old_engine_name_and_shows_only_the_new_ones() -> None:
    from typer.testing import CliRunner

    from jobs.errors import UsageError
    from lite.cli.alerts import alerts_app

    runner = CliRunner()
    shown = runner.invoke(alerts_app, ["run", "--help"])
    assert shown.exit_code == 0 and "python|flink" in shown.output and "lite" not in shown.output
    # validated before anything starts: the old name is the python engine, so --group is wrong
    old = runner.invoke(alerts_app, ["run", "--engine", "lite", "--group", "g"])
    assert isinstance(old.exception, UsageError)
    assert "--group is for --engine flink" in str(old.exception)
