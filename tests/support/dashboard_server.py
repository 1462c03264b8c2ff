"""Start ``shoplake dashboard`` as a child process on given settings, for browser tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from jobs.settings import Settings
from tests.support.platform_up import free_ports

ROOT = Path(__file__).resolve().parents[2]
# a laptop's screen: every page must be usable at this width
LAPTOP_WINDOW = "--window-size=1366,860"


def cli_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment for ``settings`` (PYTEST_* would switch NiceGUI to its test mode)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPLAKE_", "PYTEST_"))}
    env.update(
        {
            "SHOPLAKE_DATA_DIR": str(settings.data_dir),
            "SHOPLAKE_SOURCE_DSN": settings.dsn,
            "SHOPLAKE_LAKE_URI": settings.lake_uri,
            "SHOPLAKE_S3_ENDPOINT": settings.s3_endpoint_url,
            "SHOPLAKE_S3_ACCESS_KEY": settings.s3_access_key,
            "SHOPLAKE_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
            "SHOPLAKE_REDIS_URL": settings.redis_url,
            "SHOPLAKE_TIMEZONE": settings.timezone,
        }
    )
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running_dashboard(
    settings: Settings, log_path: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``shoplake dashboard`` on a free loopback port until exit; yields its base URL."""
    (port,) = free_ports(1)
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "lite.cli", "dashboard", "--port", str(port)],
            cwd=ROOT,
            env=cli_env(settings, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60  # a cold machine imports NiceGUI slowly
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert child.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the dashboard did not start in 60 s"
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            child.wait(15)


def save_screenshot(driver: Any, name: str, fallback_dir: Path) -> Path:
    """Save the window as ``<name>.png``: into ``SHOPLAKE_SCREENSHOT_DIR`` when set (the
    README's pictures are made this way), else into ``fallback_dir``."""
    folder = Path(os.environ.get("SHOPLAKE_SCREENSHOT_DIR") or fallback_dir)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{name}.png"
    assert driver.save_screenshot(str(shot)), f"could not save {shot}"
    assert shot.stat().st_size > 10_000, f"{shot} is nearly empty"
    return shot
