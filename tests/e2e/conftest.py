"""Browser fixtures shared by the dashboard's page tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.settings import Settings
from tests.support.browser import chromium_installed, headless_chromium
from tests.support.dashboard_server import LAPTOP_WINDOW, running_dashboard


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's headless Chromium at a laptop's window size (skipped without it)."""
    if not chromium_installed():
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install -y chromium "
            "chromium-driver)"
        )
    with headless_chromium([LAPTOP_WINDOW]) as driver:
        yield driver


@pytest.fixture
def settings(live_settings: Settings) -> Settings:
    """A fresh source database with the schema, the emptied S3 lake and the test Redis."""
    return live_settings


@pytest.fixture
def dashboard_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """``shoplake dashboard`` on ``settings``: the Today page's URL."""
    with running_dashboard(settings, tmp_path / "dashboard.log") as base:
        yield f"{base}/"
