"""The ``shoplake`` command: one entry point for the platform.

Each command parses its arguments, calls one use case in ``jobs/`` or ``lite/``
and prints the result. Heavy imports happen inside the commands so that
``shoplake --help`` stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

# Plain click-style usage errors (one line) instead of Rich boxes; must precede typer's import.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

# typer's own click; the one usage error that must stay multi-line (the help) is not public
from typer._click.exceptions import NoArgsIsHelpError

from jobs.errors import ShoplakeError, UsageError
from lite.cli_common import MAX_BACKFILL_DAYS, date_range, parse_date
from lite.cli_common import load_settings as _settings

# what ``seed`` accepts: the generator needs a product per category; beyond these sizes a
# seed is a typo that would fill the disk
MIN_PRODUCTS = 8  # len(jobs.domain.generator_catalog.CATEGORIES), checked by a unit test
MAX_PRODUCTS = 1_000_000
MAX_CUSTOMERS = 1_000_000
MAX_ORDERS_PER_DAY = 1_000_000

app = typer.Typer(
    name="shoplake",
    help="shoplake: PostgreSQL -> Bronze/Silver/Gold lake on MinIO with DuckDB, and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(help="Native services (PostgreSQL, S3 server) one by one.")
medallion_app = typer.Typer(help="The Bronze/Silver/Gold pipeline.")
app.add_typer(services_app, name="services")
app.add_typer(medallion_app, name="medallion")


# ---------------------------------------------------------------- services
@services_app.command("install")
def services_install(
    full: Annotated[bool, typer.Option("--full", help="also the full-profile engines")] = False,
) -> None:
    """Fetch or build the native engines once (cached outside the repository)."""
    from lite.services import manager

    for line in manager.install(_settings(), full=full):
        print(line)


@services_app.command("start")
def services_start(
    names: Annotated[list[str] | None, typer.Argument(help="postgres, s3 (default: all)")] = None,
    full: Annotated[bool, typer.Option("--full", help="also the full-profile services")] = False,
) -> None:
    """Start native services (idempotent) and wait until they are healthy."""
    from lite.services import manager

    for st in manager.start(_settings(), names or None, full=full):
        print(st.line())


@services_app.command("stop")
def services_stop(
    names: Annotated[list[str] | None, typer.Argument(help="default: all")] = None,
) -> None:
    """Stop native services by their PID files."""
    from lite.services import manager

    for st in manager.stop(_settings(), names or None):
        print(st.line())


@services_app.command("run")
def services_run(
    name: Annotated[str, typer.Argument(help="one service, e.g. postgres")],
) -> None:
    """Run one native service in the foreground until SIGTERM (a container's command)."""
    from lite.services import manager

    code = manager.run_foreground(_settings(), name)
    raise typer.Exit(code)


@services_app.command("secrets")
def services_secrets(
    folder: Annotated[Path, typer.Argument(help="where to keep them (SHOPLAKE_SECRETS_DIR)")],
) -> None:
    """Generate this installation's service passwords once, into owner-only files."""
    from lite import credentials

    written = credentials.generate(folder)
    kept = ", ".join(s for s in credentials.GENERATED if s not in written) or "none"
    print(f"secrets in {folder}: generated {', '.join(written) or 'none'}; kept {kept}")


@services_app.command("check")
def services_check(
    name: Annotated[str, typer.Argument(help="one service, e.g. postgres")],
) -> None:
    """Exit 0 when the service answers, 1 when not (a container's healthcheck)."""
    from lite.services import manager

    raise typer.Exit(0 if manager.answers(_settings(), name) else 1)


@services_app.command("status")
def services_status(
    names: Annotated[list[str] | None, typer.Argument(help="default: all")] = None,
) -> None:
    """Show which native services run, where, and their PIDs."""
    from lite.services import manager

    for st in manager.status(_settings(), names or None):
        print(st.line())


# ---------------------------------------------------------------- seed
@app.command()
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


# ---------------------------------------------------------------- medallion
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
) -> None:
    """Run the pipeline for every day from START to END (inclusive), with progress."""
    from jobs import medallion

    d1, d2 = date_range(start, end)
    reports = medallion.backfill(_settings(), d1, d2, progress=True)
    rows = sum(r.counts.bronze for r in reports)
    print(f"backfilled {len(reports)} day(s), {rows} bronze row(s)")


# ---------------------------------------------------------------- sql
@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL over the lake views")],
    engine: Annotated[str, typer.Option(help="duckdb (trino: full profile)")] = "duckdb",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    write: Annotated[
        bool, typer.Option("--write", help="allow statements that change the lake or a catalog")
    ] = False,
) -> None:
    """SQL over the lake: views bronze_orders, silver_orders, rejected_orders, daily_summary,
    category_performance, regional_performance."""
    from jobs import sql as sql_job

    if engine not in sql_job.ENGINES:
        choices = ", ".join(sql_job.ENGINES)
        raise UsageError(f"--engine: unknown engine '{engine}' (choose {choices})")
    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format: unknown format '{fmt}' (choose table, csv, json)")
    result = sql_job.run_sql(_settings(), query, engine=engine, write=write)
    print(sql_job.render(result, fmt))


@app.command()
def status() -> None:
    """What runs, where, what ``up`` restarted, and how fresh the lake is."""
    from jobs import medallion
    from jobs.adapters import cdc_slots
    from lite import supervisor
    from lite.services import manager

    settings = _settings()
    for st in manager.status(settings, None):
        print(st.line())
    state = supervisor.read_state(supervisor.state_path(settings))
    if state is not None:
        for line in supervisor.status_lines(state):
            print(line)
    print(medallion.freshness_line(settings))
    for line in cdc_slots.slot_lines(settings.dsn):
        print(line)


# ---------------------------------------------------------------- feature command groups
from lite import cli_alerts, cli_cdc, cli_docker, cli_flink, cli_live, cli_reco  # noqa: E402

for _feature in (cli_live, cli_reco, cli_alerts, cli_cdc, cli_flink, cli_docker):
    _feature.register(app)


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        # not standalone: click's usage errors come back here to be printed as one line
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()  # bare `shoplake` or a bare group: its help
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # a bad option value, an unknown command
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"error: {' '.join(exc.format_message().split())}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except ShoplakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
