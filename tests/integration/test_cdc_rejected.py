"""Changes the alerts cannot evaluate are set aside with their position and reason; the stream
goes on. Real PostgreSQL logical decoding end to end, with values of every orders column type
that Python's own types cannot hold ('infinity', BC dates, year 294276, NaN, ...)."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from jobs import alert_engines as alerts
from jobs.alerts.ledger import postgres as ledger
from jobs.domain.rules import RULES, newly_broken
from tests.conftest import _with_dbname
from tests.support.alerts_runner import (
    MemorySink,
    insert_orders,
    prepare_source,
    running_alerts,
    wait_for,
)

pytestmark = pytest.mark.integration


def alert_pairs(sink: MemorySink, order_id: str) -> set[tuple[str, str]]:
    return {(r["order_id"], r["alert_type"]) for r in sink.records() if r["order_id"] == order_id}


def rejected(settings) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn) as conn:
        if not conn.execute("SELECT to_regclass('shoplake_alerts.rejected_changes')").fetchone()[0]:
            return []
        rows = conn.execute(
            "SELECT source_lsn, xid, table_name, op, raw_values, reason"
            " FROM shoplake_alerts.rejected_changes ORDER BY source_lsn"
        ).fetchall()
    # a SQL_ASCII database hands text over as bytes
    return [tuple(v.decode() if isinstance(v, bytes) else v for v in row) for row in rows]


def test_timestamps_python_cannot_hold_neither_stop_nor_lose_alerts(source):
    """'infinity', a BC date and year 294276 used to raise in the envelope code: the loop died
    and every restart replayed the same transaction. The rules do not read timestamps, so such
    a change is still evaluated (its alert is not lost) and the stream goes on."""
    sink = MemorySink()
    with running_alerts(source, [sink]), psycopg.connect(source.dsn) as conn:
        insert_orders(conn, [{"order_id": "T1", "price": "1.00", "quantity": 1, "total": "1.00"}])
        conn.commit()
        conn.execute("UPDATE orders SET updated_at = 'infinity' WHERE order_id = 'T1'")
        conn.commit()
        conn.execute(
            "UPDATE orders SET order_date = '0044-03-15 12:00:00+00 BC', quantity = 0"
            " WHERE order_id = 'T1'"
        )
        conn.commit()
        conn.execute(
            "INSERT INTO orders (order_id, quantity, created_at, updated_at)"
            " VALUES ('T2', 500, '294276-12-31 23:59:59+00', '-infinity')"
        )
        conn.commit()
        insert_orders(conn, [{"order_id": "T3", "price": "-5.00", "quantity": 1}])
        conn.commit()
        wait_for(lambda: alert_pairs(sink, "T3"), 20, "the alert after the odd values")
    assert alert_pairs(sink, "T1") == {("T1", "INVALID_QUANTITY")}
    assert alert_pairs(sink, "T2") == {("T2", "SUSPICIOUS_QUANTITY")}
    assert alert_pairs(sink, "T3") == {("T3", "NEGATIVE_PRICE")}
    assert rejected(source) == []
    # confirmed: a restart replays nothing
    again = MemorySink()
    with running_alerts(source, [again]), psycopg.connect(source.dsn) as conn:
        insert_orders(conn, [{"order_id": "T4", "quantity": 0}])
        conn.commit()
        wait_for(lambda: alert_pairs(again, "T4"), 20, "the alert after the restart")
    assert {r["order_id"] for r in again.records()} == {"T4"}


@pytest.fixture
def ascii_source(services_settings, pg_settings):
    """A SQL_ASCII database (legacy installations have them): text may hold any byte, and
    pgoutput sends it as it is, so a product name need not be UTF-8."""
    admin = services_settings.dsn
    name = f"a_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0").format(
                sql.Identifier(name)
            )
        )
    settings = pg_settings.model_copy(update={"source_dsn": _with_dbname(admin, name)})
    prepare_source(settings)
    try:
        yield settings
    finally:
        alerts.reset(settings)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_a_change_that_cannot_be_decoded_is_set_aside_and_the_stream_goes_on(ascii_source):
    sink = MemorySink()
    with running_alerts(ascii_source, [sink]), psycopg.connect(ascii_source.dsn) as conn:
        conn.execute(
            "INSERT INTO orders (order_id, product_name, quantity)"
            " VALUES ('BAD', convert_from('\\x4c616d70ff'::bytea, 'SQL_ASCII'), 0)"
        )
        conn.commit()
        insert_orders(conn, [{"order_id": "OK", "quantity": 0}])
        conn.commit()
        wait_for(lambda: alert_pairs(sink, "OK"), 20, "the alert after the bad change")
        wait_for(lambda: rejected(ascii_source), 20, "the rejected change")
    (row,) = rejected(ascii_source)
    lsn, xid, table, op, raw, reason = row
    assert lsn > 0 and xid > 0 and table == "public.orders" and op == "c"
    assert "product_name" in reason and "UTF-8" in reason
    assert raw["order_id"] == "BAD" and raw["product_name"] == "Lamp\\xff"
    assert alert_pairs(sink, "BAD") == set()
    with psycopg.connect(ascii_source.dsn) as conn:
        counts = ledger.status(conn)
    assert counts["rejected_changes"] == 1
    # the slot was confirmed past it: a restart neither replays nor loses it
    again = MemorySink()
    with running_alerts(ascii_source, [again]), psycopg.connect(ascii_source.dsn) as conn:
        insert_orders(conn, [{"order_id": "OK2", "quantity": 0}])
        conn.commit()
        wait_for(lambda: alert_pairs(again, "OK2"), 20, "the alert after the restart")
    assert {r["order_id"] for r in again.records()} == {"OK2"}
    assert len(rejected(ascii_source)) == 1


# ------------------------------------------------------------------ the property
MAX_MONEY = Decimal("9999999999.99")  # numeric(12,2)
TIMESTAMPS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "infinity",
            "-infinity",
            "epoch",
            "4713-01-01 00:00:00+00 BC",
            "0001-01-01 00:00:00+00 BC",
            "0001-01-01 00:00:00+05",
            "9999-12-31 23:59:59-05",
            "10000-01-01 00:00:00+00",
            "294276-12-31 23:59:59+00",
            "1900-01-01 00:00:00+05:53:28",
            "2024-02-29 12:34:56.789012+14",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat() + "+00"),
)
MONEY = st.one_of(
    st.none(),
    st.just("NaN"),
    st.decimals(min_value=-MAX_MONEY, max_value=MAX_MONEY, places=2).map(str),
    st.sampled_from([str(MAX_MONEY), str(-MAX_MONEY), "0", "-0.00", "10000.00", "10000.01"]),
)
QUANTITY = st.one_of(
    st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(-2, 60), st.sampled_from([50, 51])
)
TEXT = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40),
    st.sampled_from(["", " ", "家居 😀", "a\nb\tc", "'; DROP TABLE orders; --", "{total}", "%s"]),
)
ROWS = st.fixed_dictionaries(
    {
        "order_date": TIMESTAMPS,
        "customer_id": TEXT,
        "product_id": TEXT,
        "category": TEXT,
        "product_name": TEXT,
        "price": MONEY,
        "quantity": QUANTITY,
        "total": MONEY,
        "status": TEXT,
        "payment_method": TEXT,
        "region": TEXT,
        "created_at": TIMESTAMPS,
        "updated_at": TIMESTAMPS,
    }
)


def expected_rules(settings, before: dict | None, after: dict, op: str) -> set[str]:
    """The oracle: the rules on the exact values PostgreSQL stored (read back as text)."""
    params = settings.alert_params()
    return {r.name for r in RULES if newly_broken(r, op, before, after, params)}


def stored(conn: psycopg.Connection, order_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT price::text, quantity, total::text FROM orders WHERE order_id = %s", (order_id,)
    ).fetchone()
    assert row is not None
    price, quantity, total = row
    return {
        "price": None if price is None else Decimal(price),
        "quantity": quantity,
        "total": None if total is None else Decimal(total),
    }


def test_every_change_with_arbitrary_values_is_evaluated_or_rejected(source):
    """Each example: an insert with arbitrary values of every column type, then an update that
    newly breaks a rule for sure (so a silently skipped change shows as a missing alert). Each
    change must give exactly the oracle's alerts or be recorded as rejected with a reason."""
    sink = MemorySink()
    ids = itertools.count()
    with running_alerts(source, [sink]), psycopg.connect(source.dsn) as conn:

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(row=ROWS)
        def check(row: dict[str, Any]) -> None:
            oid = f"P{next(ids)}"
            cols = ["order_id", *row]
            conn.execute(
                sql.SQL("INSERT INTO orders ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, cols)),
                    sql.SQL(", ").join(sql.Placeholder() * len(cols)),
                ),
                [oid, *row.values()],
            )
            conn.commit()
            inserted = stored(conn, oid)
            q = inserted["quantity"]
            new_q = 0 if q is None or q > 0 else 1000  # newly breaks a quantity rule
            conn.execute("UPDATE orders SET quantity = %s WHERE order_id = %s", (new_q, oid))
            conn.commit()
            updated = stored(conn, oid)
            want = {(oid, r) for r in expected_rules(source, None, inserted, "c")}
            want_update = {(oid, r) for r in expected_rules(source, inserted, updated, "u")}
            assert want_update, "the update must newly break a rule"

            def accounted() -> bool:
                """Each change alerted (as the oracle says) or set aside; the update always
                alerts unless set aside, so this waits until both were handled."""
                got = alert_pairs(sink, oid)
                ops = {r[3] for r in rejected(source) if r[4].get("order_id") == oid}
                return ("c" in ops or want <= got) and ("u" in ops or want_update <= got)

            wait_for(accounted, 20, f"the alerts of {oid} or its rejection")
            got = alert_pairs(sink, oid)
            sets_aside = [r for r in rejected(source) if r[4].get("order_id") == oid]
            assert all(r[5] for r in sets_aside), "a rejected change without a reason"
            ops = {r[3] for r in sets_aside}
            expected = (set() if "c" in ops else want) | (set() if "u" in ops else want_update)
            assert got == expected  # nothing more either

        check()
