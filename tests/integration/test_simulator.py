"""The live simulator against the real PostgreSQL, on a fake clock: the history's volume,
the model's rhythm, status changes, and a restart that picks up the live orders' plans."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from jobs import seed as seed_job
from jobs.adapters import source_db
from jobs.domain import generator
from jobs.settings import Settings
from jobs.simulator import Simulator, history_volume

pytestmark = pytest.mark.integration

PER_DAY = 400
DAYS = 14


def test_the_live_shop_runs_at_the_seeded_volume_and_moves_its_orders(
    pg_settings: Settings,
) -> None:
    tz = pg_settings.timezone
    today = dt.datetime.now(ZoneInfo(tz)).date()
    yesterday = today - dt.timedelta(days=1)
    seed_job.seed(pg_settings, days=DAYS, orders_per_day=PER_DAY, seed=3, end_date=yesterday)

    # the simulator measures the history's volume: 14 full days, weekday-corrected
    with source_db.session(pg_settings.dsn) as conn:
        volume = history_volume(conn, tz, today)
    assert volume is not None
    assert abs(volume - PER_DAY) < 4.5 * np.sqrt(PER_DAY * DAYS) / DAYS, volume

    # six hours from local 08:00 today in one-minute ticks (a fake clock, no sleeping)
    start = generator.day_window(today, tz)[0] + dt.timedelta(hours=8)
    end = start + dt.timedelta(hours=6)
    sim = Simulator(pg_settings, seed=3)
    with source_db.session(pg_settings.dsn) as conn:
        since = start
        while since < end:
            now = since + dt.timedelta(minutes=1)
            sim.tick(conn, since, now)
            since = now
        shop = sim.shop(conn, start)
        expected = generator.expected_orders(shop.orders_per_day, start, end, tz)
        live = conn.execute(
            "SELECT status, count(*) FROM orders WHERE order_date >= %s GROUP BY 1", (start,)
        ).fetchall()
    counts = dict(live)
    placed = sum(counts.values())
    assert placed == sim.stats.inserted
    assert abs(placed - expected) < 4.5 * np.sqrt(expected), (placed, expected)
    assert "1x its history's volume" in sim.describe()
    # most orders were paid within minutes; some have completed, a few were cancelled
    assert counts.get("processing", 0) > 0.6 * placed
    assert sim.stats.moves["pending->processing"] > 0.6 * placed
    assert counts.get("completed", 0) > 0 and counts.get("pending", 0) < 0.3 * placed

    # a restarted simulator finds the live orders (not the seeded ones) and their plans:
    # eleven days later every plan has run and nothing moved a seeded order
    with source_db.session(pg_settings.dsn) as conn:
        seeded_before = conn.execute(
            "SELECT status, count(*) FROM orders WHERE order_date < %s GROUP BY 1", (start,)
        ).fetchall()
        again = Simulator(pg_settings, seed=3)
        later = end + dt.timedelta(days=11)
        assert len(again.shop(conn, end + dt.timedelta(hours=1)).schedule) > 0
        again._live_moves(conn, later)
        conn.commit()
        final = dict(
            conn.execute(
                "SELECT status, count(*) FROM orders WHERE order_date >= %s GROUP BY 1", (start,)
            ).fetchall()
        )
        seeded_after = conn.execute(
            "SELECT status, count(*) FROM orders WHERE order_date < %s GROUP BY 1", (start,)
        ).fetchall()
    assert dict(seeded_after) == dict(seeded_before)
    assert final.get("processing", 0) < counts.get("processing", 0)
    assert final.get("completed", 0) > 0.6 * placed and final.get("returned", 0) > 0


def test_run_in_real_time_says_what_it_simulates(pg_settings: Settings) -> None:
    import threading

    tz = pg_settings.timezone
    today = dt.datetime.now(ZoneInfo(tz)).date()
    seed_job.seed(pg_settings, days=3, orders_per_day=PER_DAY, seed=3, end_date=today)
    with source_db.session(pg_settings.dsn) as conn:
        before = conn.execute("SELECT count(*) FROM orders").fetchone()
    lines: list[str] = []
    sim = Simulator(pg_settings, seed=3, speed=1000)
    stats = sim.run(threading.Event(), duration=2.0, every=0.5, on_start=lines.append)
    with source_db.session(pg_settings.dsn) as conn:
        after = conn.execute("SELECT count(*) FROM orders").fetchone()
    assert lines and lines[0].startswith("the shop model at 1000x its history's volume")
    assert stats.seconds >= 2.0
    assert before is not None and after is not None and after[0] - before[0] == stats.inserted
