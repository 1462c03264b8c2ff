"""Debian's headless Chromium through Selenium, for the browser test and the dashboard benchmark."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# without the background-networking flags Chromium keeps dialling out and is refused
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_installed() -> bool:
    """True when Debian's chromium and chromium-driver are installed."""
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


@contextmanager
def headless_chromium(extra_flags: Sequence[str] = ()) -> Iterator[Any]:
    """A Selenium driver on a fresh profile, quit on exit (the system browser, no download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="shoplake-chromium-") as profile:
        for flag in [*CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def tid(name: str) -> str:
    """The CSS selector of an element by its ``data-testid``."""
    return f'[data-testid="{name}"]'


def text(driver: Any, testid: str) -> str:
    """The visible text of the element with that ``data-testid``."""
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, tid(testid)).text)


def wait_for(driver: Any, check: Any, what: str, timeout: float = 10) -> None:
    """Poll ``check(driver)`` until true; a table re-rendered while read is looked at again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    ).until(check, message=what)
