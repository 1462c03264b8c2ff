"""CDC on the real PostgreSQL: inserts, updates and deletes give exactly the expected alerts."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from jobs import alert_engines as alerts
from jobs.alerts.sources import pg_slot as cdc_pg
from jobs.settings import Settings
from tests.support.alerts_runner import (
    MemorySink,
    insert_orders,
    running_alerts,
    wait_for,
)

pytestmark = pytest.mark.integration


def order(oid, price="10.00", quantity=1, total=None, customer="C1"):
    total = total if total is not None else str(Decimal(price) * quantity)
    return {
        "order_id": oid,
        "customer_id": customer,
        "product_name": "Thing",
        "price": price,
        "quantity": quantity,
        "total": total,
        "status": "pending",
    }


def pairs(sink):
    return sorted((r["order_id"], r["alert_type"]) for r in sink.records())


def test_changes_in_single_and_multi_row_transactions(source):
    sink = MemorySink()
    with running_alerts(source, [sink], slot=None), psycopg.connect(source.dsn) as conn:
        insert_orders(conn, [order("A", total="10000.00"), order("B", "20000.00", 1)])
        conn.commit()  # A sits exactly at the threshold: nothing; B is high value
        insert_orders(conn, [order("C", "-1.00", 0), order("D", "5.00", 51), order("E")])
        conn.commit()  # one transaction, several orders, C breaks two rules
        conn.execute("UPDATE orders SET quantity = 60 WHERE order_id = 'D'")  # already broken
        conn.execute("UPDATE orders SET quantity = 0 WHERE order_id = 'E'")  # newly broken
        conn.execute("UPDATE orders SET status = 'shipped' WHERE order_id = 'B'")  # unrelated
        conn.commit()
        conn.execute("UPDATE orders SET total = 99999, price = -2 WHERE order_id = 'A'")
        conn.execute("DELETE FROM orders WHERE order_id IN ('C', 'D')")
        conn.commit()
        conn.execute("INSERT INTO orders (order_id, quantity) VALUES ('F', NULL)")  # nulls
        conn.commit()
        expected = sorted(
            [
                ("B", "HIGH_VALUE_ORDER"),
                ("C", "INVALID_QUANTITY"),
                ("C", "NEGATIVE_PRICE"),
                ("D", "SUSPICIOUS_QUANTITY"),
                ("E", "INVALID_QUANTITY"),
                ("A", "HIGH_VALUE_ORDER"),
                ("A", "NEGATIVE_PRICE"),
            ]
        )
        wait_for(lambda: len(sink.records()) >= len(expected), 20, "the alerts")
    assert pairs(sink) == expected
    records = {(r["order_id"], r["alert_type"]): r for r in sink.records()}
    assert records[("B", "HIGH_VALUE_ORDER")]["total"] == "20000.00"  # exact, not base64
    assert records[("C", "NEGATIVE_PRICE")]["price"] == "-1.00"
    assert len({r["alert_id"] for r in sink.records()}) == len(expected)


def test_restart_resumes_without_loss_or_duplicates(source):
    first, second = MemorySink(), MemorySink()
    with running_alerts(source, [first]), psycopg.connect(source.dsn) as conn:
        insert_orders(conn, [order("A1", quantity=0)])
        conn.commit()
        wait_for(lambda: first.records(), 20, "the first alert")
    with psycopg.connect(source.dsn) as conn:  # changes while nobody reads the slot
        insert_orders(conn, [order("A2", quantity=0), order("A3", "1.00", 100)])
        conn.commit()
    with running_alerts(source, [second]):
        wait_for(lambda: len(second.records()) >= 2, 20, "the alerts made while stopped")
    assert pairs(first) == [("A1", "INVALID_QUANTITY")]
    assert pairs(second) == [("A2", "INVALID_QUANTITY"), ("A3", "SUSPICIOUS_QUANTITY")]
    with psycopg.connect(source.dsn) as conn:
        states = conn.execute(
            "SELECT sink, state, count(*) FROM shoplake_alerts.alert_deliveries GROUP BY 1, 2"
        ).fetchall()
    assert states == [("console", "delivered", 3)]


def test_idle_periods_do_not_pin_wal(source):
    with psycopg.connect(source.dsn) as conn:
        conn.execute("CREATE TABLE other (x int)")
        conn.commit()
    with (
        running_alerts(source, [MemorySink()], ping_interval=0.2),
        psycopg.connect(source.dsn, autocommit=True) as conn,
    ):
        for _ in range(20):  # WAL the publication does not cover
            conn.execute("INSERT INTO other SELECT generate_series(1, 1000)")
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        wait_for(
            lambda: conn.execute(
                "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots"
                " WHERE database = current_database()",
                (target,),
            ).fetchone()[0],
            20,
            "the slot to move past unrelated WAL",
        )


def test_setup_is_idempotent_and_reset_drops_everything(source):
    slot = cdc_pg.ensure_slot(source.dsn)
    assert cdc_pg.ensure_slot(source.dsn) == slot
    with psycopg.connect(source.dsn) as conn:
        identity = conn.execute("SELECT relreplident FROM pg_class WHERE relname = 'orders'")
        assert identity.fetchone()[0] == "f"
    assert alerts.reset(source) == [f"slot {slot}", f"publication {cdc_pg.PUBLICATION}"]
    assert alerts.reset(source) == []


def test_ledger_schema_never_shadows_the_source_tables(pg_settings: Settings) -> None:
    """The native role is called shoplake: a schema of that name would come first in
    PostgreSQL's default search_path ("$user", public) and capture CREATE TABLE orders."""
    from jobs.adapters import source_db
    from jobs.alerts.ledger import postgres as ledger

    with psycopg.connect(pg_settings.dsn) as conn:
        ledger.ensure_schema(conn)
        conn.commit()
        source_db.ensure_schema(conn)
        conn.commit()
        user = conn.execute("SELECT current_user").fetchone()
        where = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'orders'"
        ).fetchall()
    assert user is not None
    assert where == [("public",)], f"orders created in {where} for role {user[0]}"
