"""Fixtures shared by the integration tests of the lite CDC alerts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs import alert_engines as alerts
from jobs.settings import Settings
from tests.support.alerts_runner import prepare_source


@pytest.fixture
def source(pg_settings: Settings) -> Iterator[Settings]:
    """A fresh database with the shop schema ready for CDC; its slot is dropped afterwards
    (a leftover slot would pin WAL and block DROP DATABASE)."""
    prepare_source(pg_settings)
    yield pg_settings
    alerts.reset(pg_settings)
