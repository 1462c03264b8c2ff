"""``shoplake alerts``: run the CDC alerts until stopped, see how delivery goes (dead letters,
set-aside changes), retry dead letters, or reset the slot for a clean start."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from jobs.alerts.ledger.postgres import LedgerStatus

from jobs.alerts import Engine

alerts_app = typer.Typer(
    help="CDC of orders -> alert rules -> Telegram, webhook, console (python or Flink engine)."
)


def _old_engine_name(token: str) -> str:
    """``--engine lite`` (the python engine's old name) still works; help shows the new one."""
    return Engine.PYTHON.value if token == "lite" else token


@alerts_app.command("run", context_settings={"token_normalize_func": _old_engine_name})
def run(
    console: Annotated[
        bool,
        typer.Option(
            "--console/--no-console", help="also print alerts (default: only without Telegram)"
        ),
    ] = False,
    fmt: Annotated[
        Literal["text", "json"], typer.Option("--format", help="console lines: text or json")
    ] = "text",
    lake: Annotated[bool, typer.Option("--lake/--no-lake", help="append to gold/alerts")] = True,
    slot: Annotated[str | None, typer.Option(help="replication slot name (python engine)")] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="python: read PostgreSQL's changes and evaluate the rules in this process; "
            "flink: deliver the alerts the Flink SQL job writes to the alerts topic"
        ),
    ] = Engine.PYTHON,
    group: Annotated[
        str | None,
        typer.Option(help="Kafka consumer group (flink engine; default shoplake-alert-delivery)"),
    ] = None,
) -> None:
    """Stream order changes, evaluate the rules, deliver each alert once (Ctrl-C stops)."""
    from jobs import alert_engines as engines
    from jobs.errors import UsageError
    from lite.cli.common import load_settings as _settings

    if engine is Engine.PYTHON and group is not None:
        raise UsageError("--group is for --engine flink (the python engine reads a slot)")
    if engine is Engine.FLINK and slot is not None:
        raise UsageError("--slot is for --engine python (the flink engine reads Kafka)")
    settings = _settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sinks = engines.build_sinks(settings, stop, console=console or None, console_fmt=fmt, lake=lake)
    if engine is Engine.FLINK:
        # kafka-python logs every failed reconnect at ERROR; the delivery says it in one line
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        engines.run_flink(settings, stop, sinks, group=group, retry_every=5.0)
    else:
        engines.run_python(settings, stop, sinks, slot=slot, reconnect_every=5.0)
    print("alerts stopped", flush=True)


@alerts_app.command("reset")
def reset(
    ledger: Annotated[bool, typer.Option("--ledger", help="also forget delivered alerts")] = False,
    slot: Annotated[str | None, typer.Option(help="replication slot name")] = None,
) -> None:
    """Drop the replication slot and publication (and with --ledger the delivery ledger)."""
    from jobs import alert_engines as engines
    from lite.cli.common import load_settings as _settings

    dropped = engines.reset(_settings(), slot, purge_ledger=ledger)
    print("dropped " + ", ".join(dropped) if dropped else "nothing to drop")


@alerts_app.command("status")
def status(
    recent: Annotated[int, typer.Option(help="how many dead letters / rejections to list")] = 5,
) -> None:
    """Deliveries per sink (delivered, pending, dead), dead letters and set-aside changes."""
    import psycopg

    from jobs.alerts.ledger import postgres as ledger
    from lite.cli.common import load_settings as _settings

    settings = _settings()
    ledger.check_database(settings.dsn)
    with psycopg.connect(settings.dsn) as conn:
        summary = ledger.status(conn, recent=recent)
    for line in status_lines(summary):
        print(line)


def status_lines(summary: LedgerStatus) -> list[str]:
    """The status as text; sinks are named by where they are configured, never by URL."""
    from jobs.alerts.model import lsn_text
    from jobs.alerts.sinks.base import WHERE

    if not summary["sinks"] and not summary["rejected_changes"] and not summary["rejected_alerts"]:
        return ["no alerts recorded yet"]
    lines = ["deliveries:"]
    for sink, n in sorted(summary["sinks"].items()):
        oldest = n["oldest_pending"]
        since = f" · oldest pending since {oldest:%Y-%m-%d %H:%M:%S%z}" if oldest else ""
        lines.append(
            f"  {sink} ({WHERE.get(sink, sink)}): delivered {n['delivered']} · pending"
            f" {n['pending']} · sending {n['sending']} · dead {n['dead']}{since}"
        )
    if summary["dead"]:
        lines.append("latest dead letters (`shoplake alerts retry-dead` sends them again):")
        lines += [
            f"  {d['sink']} · order {d['order_id']} · alert {d['alert_id'][:12]}"
            f" · {d['attempts']} attempt(s): {d['reason']}"
            for d in summary["dead"]
        ]
    lines.append(f"rejected changes: {summary['rejected_changes']}")
    lines += [
        f"  {lsn_text(r['source_lsn'])} · xid {r['xid']} · {r['table']} · op {r['op']}:"
        f" {r['reason']}"
        for r in summary["recent_rejected"]
    ]
    if summary["rejected_alerts"]:
        lines.append(f"rejected alert messages (flink engine): {summary['rejected_alerts']}")
    return lines


@alerts_app.command("retry-dead")
def retry_dead(
    sink: Annotated[str | None, typer.Option(help="only this sink (default: all)")] = None,
) -> None:
    """Send dead letters again (e.g. after fixing the chat id or the webhook)."""
    import psycopg

    from jobs.alerts.ledger import postgres as ledger
    from lite.cli.common import load_settings as _settings

    settings = _settings()
    ledger.check_database(settings.dsn)
    with psycopg.connect(settings.dsn) as conn:
        ledger.ensure_schema(conn)
        count = ledger.retry_dead(conn, sink)
    print(f"{count} dead letter(s) queued again; a running `shoplake alerts run` sends them")


def register(app: typer.Typer) -> None:
    """Add the ``alerts`` group to the ``shoplake`` command."""
    app.add_typer(alerts_app, name="alerts")
