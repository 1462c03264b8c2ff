"""Helpers every ``shoplake`` command group shares: settings and argument parsing.

Every value a command takes is range-checked here before anything is read or written:
a bad value is one ``UsageError`` line (exit code 2), never a traceback hours later.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from jobs.errors import UsageError
from jobs.settings import Settings, get_settings

# the days a command may name: the epoch up to a year ahead (a shop's future orders are
# test data at most); beyond that, date arithmetic overflows (9999-12-31 + 1 day)
FIRST_DAY = dt.date(1970, 1, 1)
DAYS_AHEAD = 366
# a longer backfill is a typo (a wrong year), not a plan: it would run for days
MAX_BACKFILL_DAYS = 3660

E = TypeVar("E", bound=Enum)


def load_settings() -> Settings:
    """The process settings, or a one-line usage error when the environment is invalid."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise UsageError(f"invalid settings: {settings_errors(exc)}") from None
    except ValueError as exc:
        raise UsageError(f"invalid settings: {' '.join(str(exc).split())}") from None


def settings_errors(exc: ValidationError) -> str:
    """pydantic's errors as one line naming the variables; the rejected values are left out
    (one of them may be a password)."""
    parts = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in err["loc"]).upper()
        if field and not field.startswith(("SHOPLAKE_", "WANDB_", "TELEGRAM_")):
            field = f"SHOPLAKE_{field}"  # an alias (WANDB_API_KEY) is already the variable
        parts.append(f"{field}: {msg}" if field else msg)
    return "; ".join(parts)


def last_day() -> dt.date:
    """The latest day a command accepts (a year from today)."""
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=DAYS_AHEAD)


def parse_date(value: str, option: str = "--date") -> dt.date:
    """Parse an ISO date between ``FIRST_DAY`` and a year ahead, or raise a one-line error."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: '{value}' is not a date (expected YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= last_day():
        raise UsageError(f"{option}: {day} is out of range ({FIRST_DAY} .. {last_day()})")
    return day


def date_range(start: str, end: str) -> tuple[dt.date, dt.date]:
    """``--start`` and ``--end`` of a backfill: in order, and not absurdly far apart."""
    d1, d2 = parse_date(start, "--start"), parse_date(end, "--end")
    if d2 < d1:
        raise UsageError(f"--end {d2} is before --start {d1}")
    days = (d2 - d1).days + 1
    if days > MAX_BACKFILL_DAYS:
        raise UsageError(
            f"--start {d1} .. --end {d2} spans {days} days: "
            f"at most {MAX_BACKFILL_DAYS} per backfill"
        )
    return d1, d2


def in_range(
    option: str, value: float, low: float, high: float, *, low_open: bool = False
) -> float:
    """``value`` when finite and within [low, high] (or (low, high]), else a one-line error."""
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or too_low or value > high:
        bracket = "(" if low_open else "["
        raise UsageError(f"{option}: {value} is out of range {bracket}{low:g}, {high:g}]")
    return value


def choice(kind: type[E], noun: str) -> dict[str, Any]:
    """``typer.Option`` arguments for an option whose values are the members of ``kind``.

    A value outside them is one line naming the choices (``--engine: unknown engine 'spark'
    (choose duckdb, trino)``), exit code 2; ``--help`` lists them.
    """
    names = [str(member.value) for member in kind]

    def parse(value: str | E) -> E:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except ValueError:
            raise typer.BadParameter(
                f"unknown {noun} '{value}' (choose {', '.join(names)})"
            ) from None

    parser: Callable[[str], E] = parse
    return {"parser": parser, "metavar": f"[{'|'.join(names)}]"}
