"""The silver rules as they were before issue 17: the reference the faster form is tested against.

``classify`` ranks every row with the duplicate window and ``clean`` sorts by ``order_id``;
``jobs.domain.silver`` finds repeated ids first and ranks only their rows.
tests/unit/test_silver_equivalence.py checks both give the same rows, reasons and gold.

Silver rules as pure DuckDB SQL over a relation of bronze orders (no I/O).

The same functions run on an in-memory table in the unit tests and on the
bronze Parquet on S3 in the job: they only ever see a ``DuckDBPyRelation``.

Decisions the SPEC leaves open:

* "missing" text means NULL, empty or only spaces.
* ``order_date`` NULL (NULL or +-infinity in the source; such rows are extracted on the day
  of their last change) is ``missing_order_date``: the order's day is unknown, not guessed.
* ``quantity`` NULL is rejected like ``quantity <= 0`` (``invalid_quantity``);
  ``price`` NULL is rejected (``missing_price``) rather than guessed.
* duplicates: among rows sharing a non-missing ``order_id`` the latest
  ``updated_at`` wins (NULLs last; ties broken by every other column, so the
  winner never depends on row order). The latest version is the truth: if it
  breaks a rule, the order is quarantined rather than an older version kept.
* a row breaking several rules lists them all in ``_reject_reasons`` (in the
  order of ``REJECT_RULES``); ``_reject_reason`` is the first of them, so
  counts per reason add up to the number of rejected rows.
* rejected rows are kept exactly as extracted; repairs apply to clean rows only.
* ``total`` becomes ``abs(price) * quantity`` as an exact DECIMAL(22,2) (wide
  enough for any numeric(12,2) x int32); ``_total_mismatch`` says the stored
  total differs from the source total by more than 0.01 (or the source had none).
"""

from __future__ import annotations

from duckdb import DuckDBPyRelation

TOTAL_TYPE = "DECIMAL(22,2)"
# widen before multiplying: DuckDB would otherwise multiply in DECIMAL(18) and overflow
_REPAIRED_TOTAL = f"CAST(abs(price) AS {TOTAL_TYPE}) * quantity"

# Tie-break for duplicates after updated_at: every source column, so the kept
# row is a function of the set of rows, not of their order.
_TIE_BREAK = (
    "created_at DESC NULLS LAST, customer_id, product_id, category, product_name, "
    "price, quantity, total, status, payment_method, region, order_date"
)


def _missing(col: str) -> str:
    return f"({col} IS NULL OR trim({col}) = '')"


# (reason, condition) in priority order; the first matching one is _reject_reason
REJECT_RULES: tuple[tuple[str, str], ...] = (
    ("missing_order_id", _missing("order_id")),
    ("missing_customer_id", _missing("customer_id")),
    ("missing_status", _missing("status")),
    ("missing_order_date", "(order_date IS NULL)"),
    ("invalid_quantity", "(quantity IS NULL OR quantity <= 0)"),
    ("missing_price", "(price IS NULL)"),
    (
        "duplicate_order_id",
        f"(NOT {_missing('order_id')} AND row_number() OVER (PARTITION BY order_id "
        f"ORDER BY updated_at DESC NULLS LAST, {_TIE_BREAK}) > 1)",
    ),
)
REJECT_REASONS = tuple(reason for reason, _ in REJECT_RULES)


def classify(bronze: DuckDBPyRelation) -> DuckDBPyRelation:
    """Bronze rows unchanged plus ``_reject_reasons`` (an empty list for a clean row)."""
    cases = ", ".join(f"CASE WHEN {cond} THEN '{reason}' END" for reason, cond in REJECT_RULES)
    return bronze.query(
        "bronze",
        f"SELECT *, list_filter([{cases}], r -> r IS NOT NULL) AS _reject_reasons FROM bronze",
    )


def clean(classified: DuckDBPyRelation) -> DuckDBPyRelation:
    """Silver rows: clean rows with price and total repaired and flagged, sorted by order_id."""
    return classified.query(
        "classified",
        f"""
        SELECT * EXCLUDE (_reject_reasons) REPLACE (
                   abs(price) AS price,
                   CAST({_REPAIRED_TOTAL} AS {TOTAL_TYPE}) AS total),
               price < 0 AS _price_repaired,
               coalesce(abs(total - {_REPAIRED_TOTAL}) > 0.01, true) AS _total_mismatch
        FROM classified
        WHERE len(_reject_reasons) = 0
        ORDER BY order_id
        """,
    )


def rejected(classified: DuckDBPyRelation) -> DuckDBPyRelation:
    """Quarantine: rejected rows as extracted, with ``_reject_reason`` and all reasons."""
    return classified.query(
        "classified",
        """
        SELECT * EXCLUDE (_reject_reasons),
               _reject_reasons[1] AS _reject_reason,
               _reject_reasons
        FROM classified
        WHERE len(_reject_reasons) > 0
        ORDER BY ALL NULLS LAST
        """,
    )
