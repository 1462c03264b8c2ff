"""Silver rules as pure DuckDB SQL over a relation of bronze orders (no I/O).

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
# abs(price) * quantity, exact. DuckDB multiplies DECIMAL(12,2) by INTEGER in DECIMAL(18,2)
# (64-bit), which overflows above 9.2e16; that is safe while |quantity| < 10^6 (price is at
# most 10^10), so only larger quantities take the wide (128-bit, slower) multiplication.
_SMALL_QUANTITY = "quantity BETWEEN -999999 AND 999999"
_NARROW_TOTAL = "(abs(price) * quantity)"
_WIDE_TOTAL = f"(CAST(abs(price) AS {TOTAL_TYPE}) * quantity)"
_REPAIRED_TOTAL = f"CASE WHEN {_SMALL_QUANTITY} THEN {_NARROW_TOTAL} ELSE {_WIDE_TOTAL} END"
# the repaired total differs from the stored one by more than a cent (or there was none)
_MISMATCH = (
    f"coalesce(CASE WHEN {_SMALL_QUANTITY} THEN abs(total - {_NARROW_TOTAL}) > 0.01"
    f" ELSE abs(total - {_WIDE_TOTAL}) > 0.01 END, true)"
)
# a clean row as silver stores it (after ``SELECT * EXCLUDE (...)``)
_REPAIRS = (
    f"REPLACE (abs(price) AS price, CAST({_REPAIRED_TOTAL} AS {TOTAL_TYPE}) AS total), "
    f"price < 0 AS _price_repaired, {_MISMATCH} AS _total_mismatch"
)

# Tie-break for duplicates after updated_at: every source column, so the kept
# row is a function of the set of rows, not of their order.
_TIE_BREAK = (
    "created_at DESC NULLS LAST, customer_id, product_id, category, product_name, "
    "price, quantity, total, status, payment_method, region, order_date"
)
# a row's place among the versions of its order: 1 is the one kept (``classify`` and ``beaten``)
_RANK = (
    f"row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC NULLS LAST, {_TIE_BREAK})"
)


# The characters ``trim()`` removes: Unicode's space separators (category Zs). Checked in
# tests/unit/test_silver.py against trim() itself.
_TRIMMED_CODEPOINTS = (32, 160, 5760, *range(8192, 8203), 8239, 8287, 12288)


def _missing(col: str) -> str:
    """``col`` IS NULL, empty or only spaces: the same as ``trim(col) = ''``, but ``trim`` (a new
    string per row) runs only for the rare value that starts with a space."""
    spaces = ", ".join(map(str, _TRIMMED_CODEPOINTS))
    return (
        f"(CASE WHEN {col} IS NULL OR {col} = '' THEN true"
        f" WHEN ascii({col}) IN ({spaces}) THEN trim({col}) = '' ELSE false END)"
    )


# (reason, condition) in priority order; the first matching one is _reject_reason.
# duplicate_order_id is the ``_dup`` column that ``classify`` computes (see there).
REJECT_RULES: tuple[tuple[str, str], ...] = (
    ("missing_order_id", _missing("order_id")),
    ("missing_customer_id", _missing("customer_id")),
    ("missing_status", _missing("status")),
    ("missing_order_date", "(order_date IS NULL)"),
    ("invalid_quantity", "(quantity IS NULL OR quantity <= 0)"),
    ("missing_price", "(price IS NULL)"),
    ("duplicate_order_id", "_dup"),
)
REJECT_REASONS = tuple(reason for reason, _ in REJECT_RULES)
# true for a row breaking a rule other than duplicate_order_id (the row alone decides it)
_BROKEN = " OR ".join(cond for reason, cond in REJECT_RULES if reason != "duplicate_order_id")
# true for a row breaking any rule: a cheap boolean filter, the reasons list is built only
# for rejected rows
_REJECTED = " OR ".join(cond for _, cond in REJECT_RULES)
# the reasons a row (with ``_dup``) is rejected, in the order of REJECT_RULES
_REASONS = (
    "list_filter(["
    + ", ".join(f"CASE WHEN {cond} THEN '{reason}' END" for reason, cond in REJECT_RULES)
    + "], r -> r IS NOT NULL)"
)


def classify(bronze: DuckDBPyRelation) -> DuckDBPyRelation:
    """Bronze rows unchanged plus ``_dup``: a later version (or the tie-break) of the same
    non-missing ``order_id`` beats this row.

    Most order ids occur once, so the repeated ones are found first by a hash aggregate on
    ``order_id`` alone and the ranking window (``updated_at`` then ``_TIE_BREAK``) runs over
    their rows only; the other rows pass through an anti-join against that small set. The
    result is the same as ranking every row (``tests/reference_silver.py`` is that old form,
    and tests/integration/test_medallion_equivalence.py compares the two).
    """
    return bronze.query(
        "bronze",
        f"""
        WITH repeated AS (
            SELECT order_id FROM bronze WHERE NOT {_missing("order_id")}
            GROUP BY order_id HAVING count(*) > 1
        )
        SELECT *, false AS _dup FROM bronze ANTI JOIN repeated USING (order_id)
        UNION ALL BY NAME
        SELECT *, {_RANK} > 1 AS _dup
        FROM bronze SEMI JOIN repeated USING (order_id)
        """,
    )


def suspects(bronze: DuckDBPyRelation) -> DuckDBPyRelation:
    """The few bronze rows that may be set aside: they break a rule, or their ``order_id``
    hashes like another row's (so may be repeated). Every row ``rejected`` keeps is here.

    Two cheap scans of the day: the hashes of the ids (one integer per row) and the rule
    columns; the whole row is kept only for what matches. A hash collision only adds a row
    that ``set_aside`` then ranks alone; rows with a missing id are suspects anyway (the
    rule), so their hashes need no filter.
    """
    return bronze.query(
        "bronze",
        f"""
        SELECT * FROM bronze
        WHERE coalesce({_BROKEN}, false)
           OR hash(order_id) IN (SELECT _h FROM (SELECT hash(order_id) AS _h FROM bronze)
                                 GROUP BY _h HAVING count(*) > 1)
        """,
    )


def set_aside(suspects: DuckDBPyRelation, row_id: str) -> DuckDBPyRelation:
    """``_row`` (the ``row_id``) and ``_reasons`` (as ``rejected`` lists them) of every
    suspect that ``rejected`` keeps: it breaks a rule, or is beaten by another version of its
    order (``_RANK`` among the suspects: every row sharing an order id is one). Every other
    bronze row is clean. The rules are evaluated here once per suspect."""
    return suspects.query(
        "suspects",
        f"""
        SELECT _row, _reasons FROM (
            SELECT {row_id} AS _row, {_REASONS} AS _reasons
            FROM (SELECT *,
                         CASE WHEN {_missing("order_id")} THEN false ELSE {_RANK} > 1 END AS _dup
                  FROM suspects))
        WHERE len(_reasons) > 0
        """,
    )


def kept(bronze: DuckDBPyRelation, set_aside_rows: str, row_id: str) -> DuckDBPyRelation:
    """Silver rows (without ``row_id``): the bronze rows not in the table ``set_aside_rows``
    (its ``_row``), repaired: what ``clean`` gives of ``classify``, without evaluating the rules
    again on every row."""
    return bronze.query(
        "bronze",
        f"SELECT * EXCLUDE ({row_id}) {_REPAIRS} FROM bronze"
        f" WHERE {row_id} NOT IN (SELECT _row FROM {set_aside_rows})",
    )


def quarantined(suspects: DuckDBPyRelation, set_aside_rows: str, row_id: str) -> DuckDBPyRelation:
    """The quarantine from the suspects and the table ``set_aside_rows``: what ``rejected``
    gives of ``classify`` (the same columns and order)."""
    return suspects.query(
        "suspects",
        f"""
        SELECT suspects.* EXCLUDE ({row_id}),
               aside._reasons[1] AS _reject_reason,
               aside._reasons AS _reject_reasons
        FROM suspects JOIN {set_aside_rows} AS aside ON suspects.{row_id} = aside._row
        ORDER BY ALL NULLS LAST
        """,
    )


def clean(classified: DuckDBPyRelation) -> DuckDBPyRelation:
    """Silver rows: clean rows with price and total repaired and flagged.

    Not sorted: no reader relies on the order (gold aggregates, training concatenates, the
    SQL views and Trino scan), and sorting the day's rows by ``order_id`` was a large part
    of the step (benchmarks/results/README.md).
    """
    return classified.query(
        "classified",
        f"SELECT * EXCLUDE (_dup) {_REPAIRS}"
        f" FROM classified WHERE NOT coalesce({_REJECTED}, false)",
    )


def rejected(classified: DuckDBPyRelation) -> DuckDBPyRelation:
    """Quarantine: rejected rows as extracted, with ``_reject_reason`` and all reasons."""
    return classified.query(
        "classified",
        f"""
        SELECT * EXCLUDE (_dup, _reasons),
               _reasons[1] AS _reject_reason,
               _reasons AS _reject_reasons
        FROM (SELECT *, {_REASONS} AS _reasons
              FROM classified WHERE coalesce({_REJECTED}, false))
        ORDER BY ALL NULLS LAST
        """,
    )
