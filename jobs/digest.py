"""Use case: the daily digest, recorded in the alert ledger once the medallion validated a day.

The running alerts process delivers it to its sinks (Telegram, the webhook, or the console)
like any alert: exactly once per day and sink, however often the day is re-run, since the
ledger keys it by the day. Only the latest days get one (yesterday or today in the shop's
time zone): a backfill of last month does not send thirty messages.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from zoneinfo import ZoneInfo

from jobs.adapters.lake import Lake
from jobs.adapters.lake.layout import DAILY_SUMMARY
from jobs.alerts.model import Lost, Refused
from jobs.bootstrap import Resources
from jobs.domain import digest
from jobs.domain.reports import ValidationReport
from jobs.errors import ShoplakeError

log = logging.getLogger(__name__)


def _kpis(lake: Lake, day: dt.date) -> dict[str, object] | None:
    if not lake.has(DAILY_SUMMARY, day):
        return None
    rows = lake.read_table(DAILY_SUMMARY, day).to_pylist()
    return rows[0] if rows else None


def is_recent(day: dt.date, tz: str, now: dt.datetime | None = None) -> bool:
    """Whether ``day`` is yesterday or today in the shop's time zone."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(tz)).date()
    return today - dt.timedelta(days=1) <= day <= today


def record(res: Resources, report: ValidationReport, now: dt.datetime | None = None) -> bool:
    """Record the digest of ``report``'s day for the configured sinks; False when the day is
    not recent, or when it was recorded before (a re-run)."""
    day = dt.date.fromisoformat(report.date)
    if not is_recent(day, res.settings.timezone, now):
        return False
    text = digest.digest_text(
        day, _kpis(res.lake, day), _kpis(res.lake, day - dt.timedelta(days=1)), report
    )
    alert = digest.digest_alert(day, text, now or dt.datetime.now(dt.UTC))
    sinks = res.alert_sinks(threading.Event(), lake=False)
    names = [s.name for s in sinks]
    for sink in sinks:
        sink.close()
    ledger = res.alert_ledger()
    ledger.prepare()
    with ledger.session() as session:
        new = not session.known(alert.alert_id)
        session.record([alert], [], names)
    if new:
        log.info("daily digest of %s recorded for %s", day, ", ".join(names))
    return new


def record_quietly(res: Resources, report: ValidationReport) -> None:
    """The after-validate hook: a ledger that cannot be reached costs the digest, not the run."""
    try:
        record(res, report)
    except (ShoplakeError, Lost, Refused) as exc:
        log.warning("daily digest of %s not recorded: %s", report.date, exc)
