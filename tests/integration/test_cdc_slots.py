"""``shoplake status``'s slot lines on a real PostgreSQL: a kept slot says what WAL it pins."""

from __future__ import annotations

import pytest

from jobs.adapters import cdc_slots, source_db
from jobs.alerts.sources import pg_slot as cdc_pg
from jobs.settings import Settings

pytestmark = pytest.mark.integration


def test_an_idle_kept_slot_reports_the_wal_it_pins(pg_settings: Settings) -> None:
    with source_db.session(pg_settings.dsn) as conn:
        source_db.ensure_schema(conn)
        conn.commit()
    slot = cdc_pg.ensure_slot(
        pg_settings.dsn, "shoplake_test_" + pg_settings.dsn.rsplit("/", 1)[-1].split("?")[0]
    )
    try:
        with source_db.session(pg_settings.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO orders (order_id, product_name) "
                "SELECT 'S-' || i, repeat('x', 500) FROM generate_series(1, 2000) i"
            )
            before = {s.name: s for s in cdc_slots.slots(conn)}[slot]
        assert before.active is False and before.wal_status in {"reserved", "extended"}
        assert before.pinned_bytes is not None and before.pinned_bytes > 1_000_000
        # config/postgres/shoplake.conf bounds it at 2 GB (counted from the last checkpoint)
        assert before.safe_bytes is not None and 0 < before.safe_bytes < 3 << 30
        (line,) = [x for x in cdc_slots.slot_lines(pg_settings.dsn) if slot in x]
        assert "idle (kept for the next start), pins " in line and "MB of WAL" in line
        assert "more before it is invalidated" in line
    finally:
        cdc_pg.drop_slot(pg_settings.dsn, slot)


def test_a_lost_slot_says_what_to_do() -> None:
    lost = cdc_slots.SlotState("shoplake_dbz_cdc", False, None, "lost", None)
    assert "LOST" in lost.line() and "shoplake cdc unregister" in lost.line()


def test_no_lines_when_postgres_is_down() -> None:
    assert cdc_slots.slot_lines("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=1") == []
