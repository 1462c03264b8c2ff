"""Test-data builder: bronze order tables with the extract contract's Arrow schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(12, 2)

# the contract of jobs.adapters.source_db.ORDERS_ARROW_SCHEMA, restated for tests
ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("order_date", TS),
        ("customer_id", pa.string()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("product_name", pa.string()),
        ("price", MONEY),
        ("quantity", pa.int32()),
        ("total", MONEY),
        ("status", pa.string()),
        ("payment_method", pa.string()),
        ("region", pa.string()),
        ("created_at", TS),
        ("updated_at", TS),
    ]
)
DAY = dt.date(2024, 3, 5)
NOON = dt.datetime(2024, 3, 5, 12, 0, tzinfo=UTC)


def order(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """One valid order row; keyword arguments override columns."""
    price = Decimal(overrides.get("price", Decimal("10.00")) or 0)
    qty = overrides.get("quantity", 2) or 0
    row: dict[str, Any] = {
        "order_id": f"ORD-{n:06d}",
        "order_date": NOON + dt.timedelta(minutes=n),
        "customer_id": f"CUST-{n % 7:04d}",
        "product_id": f"PROD-{n % 5:04d}",
        "category": ["Electronics", "Books", "Home"][n % 3],
        "product_name": f"Product {n % 5}",
        "price": Decimal("10.00"),
        "quantity": 2,
        "total": price * qty,
        "status": "completed",
        "payment_method": "card",
        "region": ["North", "South"][n % 2],
        "created_at": NOON + dt.timedelta(minutes=n),
        "updated_at": NOON + dt.timedelta(minutes=n),
    }
    row.update(overrides)
    return row


def orders_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of the contract schema from row dicts."""
    return pa.Table.from_pylist(rows, schema=ORDERS_SCHEMA)


def with_metadata(table: pa.Table, run_id: str = "test-run") -> pa.Table:
    """Add the bronze metadata columns, as extract does."""
    n = table.num_rows
    ts = dt.datetime(2024, 3, 6, 1, 0, tzinfo=UTC)
    return (
        table.append_column("_ingested_at", pa.array([ts] * n, TS))
        .append_column("_run_id", pa.array([run_id] * n, pa.string()))
        .append_column("_source", pa.array(["postgresql:public.orders"] * n, pa.string()))
    )
