"""Look-ups in the source database for the dashboard: a customer and their latest orders, a
product's name. Read-only; ``ServiceUnavailable`` (one line) when the database is away."""

from __future__ import annotations

from jobs.adapters import source_db
from jobs.domain.reco_view import Customer, CustomerHistory, OrderLine


def customer_history(dsn: str, customer_id: str, limit: int = 10) -> CustomerHistory:
    """The customer's row (None when the source has none) and latest ``limit`` orders."""
    with source_db.session(dsn) as conn:
        row = conn.execute(
            "SELECT customer_id, customer_name, customer_segment, city, country,"
            " registration_date FROM customers WHERE customer_id = %s",
            (customer_id,),
        ).fetchone()
        count = conn.execute(
            "SELECT count(*) FROM orders WHERE customer_id = %s", (customer_id,)
        ).fetchone()
        orders = conn.execute(
            "SELECT order_id, order_date, product_name, category, quantity, total, status"
            " FROM orders WHERE customer_id = %s ORDER BY order_date DESC NULLS LAST, order_id"
            " LIMIT %s",
            (customer_id, limit),
        ).fetchall()
    return CustomerHistory(
        customer_id=customer_id,
        customer=Customer(*row) if row else None,
        orders=[OrderLine(*o) for o in orders],
        order_count=int(count[0]) if count else 0,
    )


def product_name(dsn: str, id_or_name: str) -> str:
    """The product's name when ``id_or_name`` is a product id, else ``id_or_name`` as given
    (the API looks products up by name)."""
    with source_db.session(dsn) as conn:
        row = conn.execute(
            "SELECT product_name FROM products WHERE product_id = %s", (id_or_name,)
        ).fetchone()
    return str(row[0]) if row and row[0] else id_or_name
