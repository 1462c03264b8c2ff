"""Bad settings and bad command-line values: one line on stderr, exit code 2, nothing written.

The CLI runs in-process through its console entry point (``lite.cli.main``), with the
environment a user would export; every case points the data dir and the lake at a fresh
temporary folder and the source database at a closed loopback port, so "nothing written"
is checked on disk and "refused before any service was asked" by the exit code (an attempt
to connect would end in exit code 3, not 2).
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest

from jobs.settings import Settings, get_settings
from lite import cli


def closed_port() -> int:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``shoplake ARGS`` with extra ``SHOPLAKE_*`` variables: (exit code, stdout, stderr)."""
    for name in list(os.environ):
        if name.startswith("SHOPLAKE_") or name.startswith("TELEGRAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env
    base = {
        "SHOPLAKE_DATA_DIR": str(tmp_path / "data"),
        "SHOPLAKE_LAKE_URI": str(tmp_path / "lake"),
        "SHOPLAKE_SOURCE_DSN": f"postgresql://u:pw@127.0.0.1:{closed_port()}/x?connect_timeout=1",
        "SHOPLAKE_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
    }

    def invoke(capsys: pytest.CaptureFixture[str], *args: str, **env: str) -> tuple[int, str, str]:
        for name, value in {**base, **env}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("sys.argv", ["shoplake", *args])
        get_settings.cache_clear()
        try:
            with pytest.raises(SystemExit) as exit_info:
                cli.main()
        finally:
            get_settings.cache_clear()
        out, err = capsys.readouterr()
        code = exit_info.value.code
        return (code if isinstance(code, int) else 1), out, err

    yield invoke
    # nothing written: no data dir, no lake folder, nothing else beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SHOPLAKE_ALERT_HIGH_VALUE", "nan", "SHOPLAKE_ALERT_HIGH_VALUE"),
        ("SHOPLAKE_ALERT_HIGH_VALUE", "inf", "SHOPLAKE_ALERT_HIGH_VALUE"),
        ("SHOPLAKE_ALERT_HIGH_VALUE", "-1", "SHOPLAKE_ALERT_HIGH_VALUE"),
        ("SHOPLAKE_ALERT_MAX_QUANTITY", "0", "SHOPLAKE_ALERT_MAX_QUANTITY"),
        ("SHOPLAKE_TIMEZONE", "Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        ("SHOPLAKE_TIMEZONE", "../../etc/passwd", "SHOPLAKE_TIMEZONE"),
        ("SHOPLAKE_REJECT_RATE_WARN", "1.5", "SHOPLAKE_REJECT_RATE_WARN"),
        ("SHOPLAKE_REJECT_RATE_WARN", "nan", "SHOPLAKE_REJECT_RATE_WARN"),
        ("SHOPLAKE_REJECT_RATE_FAIL", "-0.1", "SHOPLAKE_REJECT_RATE_FAIL"),
        ("SHOPLAKE_REJECT_RATE_WARN", "0.6", "above SHOPLAKE_REJECT_RATE_FAIL"),
        ("SHOPLAKE_PG_PORT", "70000", "SHOPLAKE_PG_PORT"),
        ("SHOPLAKE_DASHBOARD_PORT", "0", "SHOPLAKE_DASHBOARD_PORT"),
        ("SHOPLAKE_API_PORT", "65536", "SHOPLAKE_API_PORT"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    run, capsys: pytest.CaptureFixture[str], name: str, value: str, expected: str
) -> None:
    code, out, err = run(capsys, "medallion", "run", "--date", "2024-05-01", **{name: value})
    line = one_line(err)
    assert code == 2, err
    assert line.startswith("error: invalid settings: ") and expected in line, line
    assert out == ""


def test_a_bad_secret_setting_never_echoes_its_value(
    run, capsys: pytest.CaptureFixture[str]
) -> None:
    # a bad PG password cannot be "out of range", but a bad port beside it must not print it
    code, _, err = run(
        capsys, "status", SHOPLAKE_PG_PASSWORD="hunter2-secret", SHOPLAKE_S3_PORT="-1"
    )
    assert code == 2 and "hunter2-secret" not in err
    assert "SHOPLAKE_S3_PORT" in one_line(err)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("medallion", "run", "--date", "9999-12-31"), "--date: 9999-12-31 is out of range"),
        (("medallion", "run", "--date", "0001-01-01"), "--date: 0001-01-01 is out of range"),
        (
            ("medallion", "backfill", "--start", "1970-01-01", "--end", "2025-12-31"),
            "days: at most",
        ),
        (("medallion", "backfill", "--start", "2024-01-01", "--end", "9999-12-31"), "--end"),
        (
            (
                "medallion",
                "backfill",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--workers",
                "0",
            ),
            "--workers",
        ),
        (("seed", "--products", "1"), "--products"),
        (("seed", "--customers", "-5"), "--customers"),
        (("seed", "--customers", "0"), "--customers"),
        (("seed", "--days", "10000000"), "--days"),
        (("seed", "--end-date", "9999-12-31"), "--end-date: 9999-12-31 is out of range"),
        (("simulate", "--rate", "nan"), "--rate"),
        (("simulate", "--rate", "inf"), "--rate"),
        (("simulate", "--rate", "0"), "--rate"),
        (("simulate", "--duration", "nan"), "--duration"),
        (("simulate", "--report-every", "0"), "--report-every"),
        (("up", "--simulate", "inf"), "--simulate"),
        (("up", "--simulate", "0x"), "--simulate"),
        (("up", "--simulate", "fast"), "--simulate: 'fast' is neither"),
        (("simulate", "--speed", "0"), "--speed"),
        (("simulate", "--speed", "nan"), "--speed"),
        (("simulate", "--orders-per-day", "-1"), "--orders-per-day"),
        (("metrics", "run", "--every", "nan"), "--every"),
        (("sql", "--engine", "spark", "SELECT 1"), "unknown engine 'spark' (choose duckdb, trino)"),
        (("sql", "--format", "xml", "SELECT 1"), "unknown format 'xml' (choose table, csv, json)"),
        (("sql", "--engine", "DuckDB", "SELECT 1"), "'--engine': unknown engine 'DuckDB'"),
        (("docker", "images", "--profile", "huge"), "unknown profile 'huge' (choose lite, full)"),
    ],
)
def test_an_out_of_range_option_is_one_line_and_exit_2(
    run, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    code, out, err = run(capsys, *args)
    line = one_line(err)
    assert code == 2, err
    assert expected in line, line
    assert "Traceback" not in err and out == ""


def test_settings_objects_refuse_out_of_range_values_too() -> None:
    """Code that builds ``Settings`` directly (the API, the DAGs) gets the same checks."""

    def build(**values: object) -> Settings:
        return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]

    for bad in (math.nan, math.inf, -1.0, 0.0):
        with pytest.raises(ValueError, match="alert_high_value"):
            build(alert_high_value=bad)
    with pytest.raises(ValueError, match="unknown time zone"):
        build(timezone="Nowhere/Atlantis")
    with pytest.raises(ValueError, match="SHOPLAKE_REJECT_RATE_WARN"):
        build(reject_rate_warn=0.6, reject_rate_fail=0.5)
    ok = build(timezone="Europe/Berlin", reject_rate_warn=0.5, reject_rate_fail=0.5)
    assert (ok.timezone, ok.reject_rate_warn) == ("Europe/Berlin", 0.5)


def test_seed_accepts_the_smallest_shop_the_generator_builds() -> None:
    from jobs.domain import generator

    assert len(generator.CATEGORIES) == cli.MIN_PRODUCTS
    model = generator.build_model(1, n_customers=1, n_products=cli.MIN_PRODUCTS)
    assert model.products.num_rows == cli.MIN_PRODUCTS


def test_the_sql_engines_the_cli_offers_are_the_ones_jobs_runs() -> None:
    from jobs import sql as sql_job
    from lite.cli.lake import SqlEngine

    assert tuple(SqlEngine) == sql_job.ENGINES


def test_a_choice_option_takes_each_of_its_values() -> None:
    from lite.cli.common import choice
    from lite.cli.docker import Profile
    from lite.cli.lake import SqlFormat

    for kind in (Profile, SqlFormat):
        parse = choice(kind, "thing")["parser"]
        assert [parse(str(member)) for member in kind] == list(kind)
        assert parse(next(iter(kind))) is next(iter(kind))  # a default is passed through
    assert choice(SqlFormat, "format")["metavar"] == "[table|csv|json]"


def test_simulate_option_is_a_rate_or_a_speed_up() -> None:
    from lite.cli.live import simulate_option

    assert simulate_option("5") == (5.0, None)  # the original meaning: orders/s
    assert simulate_option("1x") == (None, 1.0)  # the shop at its history's volume
    assert simulate_option(" 10X ") == (None, 10.0)


def test_the_backfill_command_defaults_to_the_jobs_workers():
    from jobs import medallion
    from lite.cli import lake

    assert lake.BACKFILL_WORKERS == medallion.BACKFILL_WORKERS
