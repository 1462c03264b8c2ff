"""Helpers every ``shoplake`` command group shares: settings and argument parsing."""

from __future__ import annotations

import datetime as dt

from jobs.errors import UsageError
from jobs.settings import Settings, get_settings


def load_settings() -> Settings:
    """The process settings, or a one-line usage error when the environment is invalid."""
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UsageError(f"invalid settings: {exc}") from exc


def parse_date(value: str, option: str = "--date") -> dt.date:
    """Parse an ISO date, or raise a one-line usage error."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: '{value}' is not a date (expected YYYY-MM-DD)") from None
