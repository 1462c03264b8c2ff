"""Browser fixtures shared by the dashboard's page tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import chromium_installed, headless_chromium
from tests.support.dashboard_server import LAPTOP_WINDOW


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
