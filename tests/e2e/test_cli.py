"""The shoplake CLI as a user drives it: bad input gives one clear line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def shoplake(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the CLI in a subprocess, as the console script would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLAKE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lite.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def env_for(settings: Settings) -> dict[str, str]:
    """The environment a user would export to point the CLI at these settings."""
    env = {
        "SHOPLAKE_DATA_DIR": str(settings.data_dir),
        "SHOPLAKE_SOURCE_DSN": settings.dsn,
        "SHOPLAKE_LAKE_URI": settings.lake_uri,
        "SHOPLAKE_S3_ACCESS_KEY": settings.s3_access_key,
        "SHOPLAKE_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
    }
    if settings.lake_is_s3:
        env["SHOPLAKE_S3_ENDPOINT"] = settings.s3_endpoint_url
    return env


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The last non-empty stderr line, which must carry the message."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines, f"no error output (stdout: {proc.stdout!r})"
    assert "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


def test_help_lists_commands() -> None:
    proc = shoplake("--help")
    assert proc.returncode == 0
    for cmd in ("seed", "medallion", "sql", "services", "status"):
        assert cmd in proc.stdout


def test_malformed_date_is_one_line() -> None:
    proc = shoplake("medallion", "run", "--date", "2024-13-45")
    assert proc.returncode == 2
    assert error_line(proc) == "error: --date: '2024-13-45' is not a date (expected YYYY-MM-DD)"


def test_backfill_end_before_start() -> None:
    proc = shoplake("medallion", "backfill", "--start", "2024-05-02", "--end", "2024-05-01")
    assert proc.returncode == 2
    assert "before --start" in error_line(proc)


def test_unknown_sql_engine() -> None:
    proc = shoplake("sql", "--engine", "spark", "SELECT 1")
    assert proc.returncode == 2
    assert "unknown engine 'spark'" in error_line(proc)


@pytest.mark.integration
def test_unreachable_database(folder_settings: Settings) -> None:
    env = env_for(folder_settings)
    # port 1 on loopback: nothing listens there
    env["SHOPLAKE_SOURCE_DSN"] = "postgresql://nobody:hunter2@127.0.0.1:1/shop?connect_timeout=2"
    proc = shoplake("medallion", "run", "--date", "2024-05-01", env=env)
    assert proc.returncode != 0
    line = error_line(proc)
    assert line.startswith("error: ") and "127.0.0.1:1" in line
    assert "hunter2" not in proc.stderr + proc.stdout


@pytest.mark.integration
def test_unreachable_s3(pg_settings: Settings) -> None:
    env = env_for(pg_settings)
    env["SHOPLAKE_LAKE_URI"] = "s3://"
    env["SHOPLAKE_S3_ENDPOINT"] = "http://127.0.0.1:1"
    proc = shoplake("seed", "--days", "1", "--orders-per-day", "20", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = shoplake("medallion", "run", "--date", "2024-05-01", env=env)
    assert proc.returncode != 0
    assert error_line(proc).startswith("error: ")


@pytest.mark.integration
def test_wrong_s3_credentials(pg_settings: Settings, s3_settings: Settings) -> None:
    env = env_for(s3_settings)
    env["SHOPLAKE_SOURCE_DSN"] = pg_settings.dsn
    env["SHOPLAKE_S3_SECRET_KEY"] = "definitely-wrong-secret"
    proc = shoplake("seed", "--days", "1", "--orders-per-day", "20", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = shoplake("medallion", "run", "--date", "2024-05-01", env=env)
    assert proc.returncode != 0
    line = error_line(proc)
    assert line.startswith("error: ")
    assert "definitely-wrong-secret" not in proc.stderr + proc.stdout


@pytest.mark.integration
def test_seed_run_and_query_end_to_end(pg_settings: Settings, s3_settings: Settings) -> None:
    env = env_for(s3_settings)
    env["SHOPLAKE_SOURCE_DSN"] = pg_settings.dsn
    proc = shoplake(
        "seed", "--days", "3", "--orders-per-day", "120", "--end-date", "2024-05-03", env=env
    )
    assert proc.returncode == 0, proc.stderr
    proc = shoplake(
        "medallion", "backfill", "--start", "2024-05-01", "--end", "2024-05-03", env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("backfilled 3 day(s)")
    proc = shoplake("sql", "--format", "csv", "SELECT count(*) AS n FROM daily_summary", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "3"
    # a day without orders is not an error: empty partitions, zeros in gold
    proc = shoplake("medallion", "run", "--date", "2024-06-01", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = shoplake(
        "sql",
        "--format",
        "csv",
        "SELECT total_orders FROM daily_summary WHERE date = '2024-06-01'",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0"


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [
        ("seed", "--products", "1"),
        ("seed", "--customers", "-5"),
        ("medallion", "run", "--date", "9999-12-31"),
        ("medallion", "backfill", "--start", "0001-01-01", "--end", "9999-12-31"),
    ],
)
def test_out_of_range_input_writes_nothing(
    pg_settings: Settings, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Refused before any write: no table in the (fresh) database, nothing in the lake."""
    import psycopg

    settings = pg_settings.model_copy(update={"lake_uri": str(tmp_path / "lake")})
    proc = shoplake(*args, env={**env_for(settings), "SHOPLAKE_DATA_DIR": str(tmp_path / "d")})
    assert proc.returncode == 2, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == [error_line(proc)]
    assert error_line(proc).startswith("error: ")
    with psycopg.connect(pg_settings.dsn) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == []
    assert list(tmp_path.iterdir()) == []
