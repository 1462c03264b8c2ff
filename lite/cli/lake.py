"""``shoplake seed``, ``shoplake medallion`` and ``shoplake sql``: the shop and its lake."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from lite.cli.common import MAX_BACKFILL_DAYS, choice, date_range, parse_date
from lite.cli.common import load_settings as _settings

# what ``seed`` accepts: the generator needs a product per category; beyond these sizes a
# seed is a typo that would fill the disk
MIN_PRODUCTS = 8  # len(jobs.domain.generator_catalog.CATEGORIES), checked by a unit test
MAX_PRODUCTS = 1_000_000
MAX_CUSTOMERS = 1_000_000
MAX_ORDERS_PER_DAY = 1_000_000
# days a backfill processes at once: medallion.BACKFILL_WORKERS by default (the jobs are
# imported only when a command runs); more than a few only adds memory on a small machine
BACKFILL_WORKERS = 2
MAX_BACKFILL_WORKERS = 8

medallion_app = typer.Typer(help="The Bronze/Silver/Gold pipeline.")


class SqlEngine(StrEnum):
    """Where ``shoplake sql`` runs a query (``jobs.sql.ENGINES``, checked by a unit test)."""

    duckdb = "duckdb"
    trino = "trino"  # the full profile's server


class SqlFormat(StrEnum):
    """How ``shoplake sql`` prints the rows (``jobs.sql.render``)."""

    table = "table"
    csv = "csv"
    json = "json"


def seed(
    days: Annotated[
        int, typer.Option(min=1, max=MAX_BACKFILL_DAYS, help="days of order history")
    ] = 90,
    orders_per_day: Annotated[
        int, typer.Option(min=0, max=MAX_ORDERS_PER_DAY, help="average orders per day")
    ] = 800,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 42,
    end_date: Annotated[str | None, typer.Option(help="last day (default: today)")] = None,
    customers: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_CUSTOMERS, help="customers (default: scaled)"),
    ] = None,
    products: Annotated[
        int | None,
        typer.Option(min=MIN_PRODUCTS, max=MAX_PRODUCTS, help="products (default: 500)"),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="drop existing rows first")] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing when orders exist")
    ] = False,
) -> None:
    """Create the source schema and generate customers, products and order history."""
    from jobs import seed as seed_job

    end = parse_date(end_date, "--end-date") if end_date else None
    result = seed_job.seed(
        _settings(),
        days=days,
        orders_per_day=orders_per_day,
        seed=seed,
        end_date=end,
        n_customers=customers,
        n_products=products,
        reset=reset,
        if_empty=if_empty,
        progress=True,
    )
    print(result.line())


@medallion_app.command("run")
def medallion_run(
    date: Annotated[str, typer.Option("--date", help="the day to process, YYYY-MM-DD")],
) -> None:
    """Extract, clean, aggregate and validate one day (idempotent)."""
    day = parse_date(date)
    from jobs import medallion

    report = medallion.run_date(_settings(), day)
    print(json.dumps(report.as_json()))


@medallion_app.command("backfill")
def medallion_backfill(
    start: Annotated[str, typer.Option("--start", help="first day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--end", help="last day, YYYY-MM-DD")],
    workers: Annotated[
        int, typer.Option(min=1, max=MAX_BACKFILL_WORKERS, help="days processed at once")
    ] = BACKFILL_WORKERS,
) -> None:
    """Run the pipeline for every day from START to END (inclusive), with progress."""
    from jobs import medallion

    d1, d2 = date_range(start, end)
    reports = medallion.backfill(_settings(), d1, d2, progress=True, workers=workers)
    rows = sum(r.counts.bronze for r in reports)
    print(f"backfilled {len(reports)} day(s), {rows} bronze row(s)")


def sql(
    query: Annotated[str, typer.Argument(help="SQL over the lake views")],
    engine: Annotated[
        SqlEngine, typer.Option(**choice(SqlEngine, "engine"), help="trino: full profile")
    ] = SqlEngine.duckdb,
    fmt: Annotated[
        SqlFormat, typer.Option("--format", **choice(SqlFormat, "format"), help="output")
    ] = SqlFormat.table,
    write: Annotated[
        bool, typer.Option("--write", help="allow statements that change the lake or a catalog")
    ] = False,
) -> None:
    """SQL over the lake: views bronze_orders, silver_orders, rejected_orders, daily_summary,
    category_performance, regional_performance."""
    from jobs import sql as sql_job

    result = sql_job.run_sql(_settings(), query, engine=engine.value, write=write)
    print(sql_job.render(result, fmt.value))


def register(app: typer.Typer) -> None:
    """Add ``seed``, the ``medallion`` group and ``sql`` to the ``shoplake`` command."""
    app.command("seed")(seed)
    app.add_typer(medallion_app, name="medallion")
    app.command("sql")(sql)
