"""``shoplake metrics run``, ``simulate``, ``dashboard`` and ``up``: the live side."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

DAY_S = 86400.0
metrics_app = typer.Typer(help="The dashboard micro-batch (today's KPIs -> lake -> Redis).")


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, so loops finish their step and exit cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@metrics_app.command("run")
def metrics_run(
    every: Annotated[
        float | None,
        typer.Option(help="repeat every N seconds until stopped (default: run once)"),
    ] = None,
) -> None:
    """Compute today's dashboard metrics, write them to the lake, announce them on Redis."""
    from jobs import dashboard_metrics
    from lite.cli.common import in_range
    from lite.cli.common import load_settings as _settings

    if every is not None:
        in_range("--every", every, 1.0, DAY_S)

    settings = _settings()
    if every is None:
        print(dashboard_metrics.run_once(settings).line())
        return
    stop = _stop_on_signals()
    dashboard_metrics.run_every(settings, every, stop, on_run=lambda r: print(r.line(), flush=True))
    print("metrics stopped", flush=True)


def simulate(
    rate: Annotated[
        float | None,
        typer.Option(help="a flat RATE new orders per second instead of the shop's rhythm"),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="times the seeded history's volume (same daily rhythm)")
    ] = 1.0,
    orders_per_day: Annotated[
        float | None,
        typer.Option(help="the average day's orders at speed 1 (default: the history's)"),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="stop after S seconds (default: until Ctrl-C)")
    ] = None,
    seed: Annotated[int, typer.Option(help="the seed the shop was generated with")] = 42,
    report_every: Annotated[float, typer.Option(help="seconds between progress lines")] = 10.0,
) -> None:
    """Run the shop live: new orders with its daily rhythm and volume, and their status changes."""
    from jobs.simulator import MAX_RATE, MAX_SPEED, Simulator
    from lite.cli.common import in_range
    from lite.cli.common import load_settings as _settings

    if rate is not None:
        in_range("--rate", rate, 0.0, MAX_RATE, low_open=True)
    in_range("--speed", speed, 0.0, MAX_SPEED, low_open=True)
    if orders_per_day is not None:
        in_range("--orders-per-day", orders_per_day, 0.0, MAX_RATE * DAY_S, low_open=True)
    if duration is not None:
        in_range("--duration", duration, 1.0, 366 * DAY_S)
    in_range("--report-every", report_every, 0.1, DAY_S)
    stop = _stop_on_signals()
    sim = Simulator(_settings(), rate, seed=seed, speed=speed, orders_per_day=orders_per_day)
    stats = sim.run(
        stop,
        duration=duration,
        report_every=report_every,
        on_report=lambda s: print(s.line(), flush=True),
        on_start=lambda line: print(f"simulating {line}", flush=True),
    )
    print(f"simulator stopped: {stats.line()}", flush=True)


def simulate_option(value: str) -> tuple[float | None, float | None]:
    """``--simulate``: ``R`` is a flat R orders/s, ``Nx`` the shop at N times its volume."""
    from jobs.errors import UsageError
    from jobs.simulator import MAX_RATE, MAX_SPEED
    from lite.cli.common import in_range

    text = value.strip().lower()
    times = text.endswith("x")
    try:
        number = float(text[:-1] if times else text)
    except ValueError:
        raise UsageError(
            f"--simulate: '{value}' is neither orders/s (5) nor a speed-up (1x, 10x)"
        ) from None
    if times:
        return None, in_range("--simulate", number, 0.0, MAX_SPEED, low_open=True)
    return in_range("--simulate", number, 0.0, MAX_RATE, low_open=True), None


def dashboard(
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="port (SHOPLAKE_DASHBOARD_PORT, 8501)")
    ] = None,
    poll: Annotated[
        float, typer.Option(min=0.5, help="seconds between lake polls while Redis is unreachable")
    ] = 5.0,
    lake_refresh: Annotated[
        float,
        typer.Option(
            min=1.0,
            envvar="SHOPLAKE_DASHBOARD_LAKE_REFRESH",
            help="seconds between the History and Data quality pages' reads of the lake",
        ),
    ] = 60.0,
) -> None:
    """Serve the live NiceGUI dashboard."""
    from lite.cli.common import load_settings as _settings
    from web.app import serve

    settings = _settings()
    serve(
        settings,
        host=host,
        port=port or settings.dashboard_port,
        poll_s=poll,
        lake_refresh_s=lake_refresh,
    )


SeedIfEmpty = Annotated[
    bool, typer.Option("--seed-if-empty", help="seed 90 days of history when orders is empty")
]
CatchUpDays = Annotated[
    int, typer.Option(min=0, help="backfill missing lake days among the last N (0: none)")
]


def init(seed_if_empty: SeedIfEmpty = False, catch_up_days: CatchUpDays = 30) -> None:
    """Prepare running services' data as ``up`` does: seed, catch the lake up, a first model."""
    from lite.cli.common import load_settings as _settings
    from lite.up import init_data

    init_data(_settings(), seed_if_empty, catch_up_days, lambda s: print(s, flush=True))


def up(
    simulate: Annotated[
        str | None,
        typer.Option(
            "--simulate",
            help="also run the simulator: 1x is the shop at its history's volume and "
            "rhythm (10x: ten times busier), a plain number a flat RATE orders/s",
        ),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="also the full-profile services")] = False,
    seed_if_empty: SeedIfEmpty = False,
    catch_up_days: CatchUpDays = 30,
    dashboard_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="dashboard port (SHOPLAKE_DASHBOARD_PORT, 8501)"),
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="API port (SHOPLAKE_API_PORT, 8000)")
    ] = None,
    keep_services: Annotated[
        bool,
        typer.Option(
            "--keep-services", help="leave the services (PostgreSQL, S3, Redis, Airflow) running"
        ),
    ] = False,
) -> None:
    """Start the platform on this host and keep it running until Ctrl-C or SIGTERM."""
    from lite.cli.common import load_settings as _settings
    from lite.up import UpOptions, run_up

    rate, speed = simulate_option(simulate) if simulate is not None else (None, None)
    options = UpOptions(
        simulate=rate,
        simulate_speed=speed,
        full=full,
        seed_if_empty=seed_if_empty,
        catch_up_days=catch_up_days,
        dashboard_port=dashboard_port,
        api_port=api_port,
        keep_services=keep_services,
    )
    raise typer.Exit(run_up(_settings(), options, print_line=lambda s: print(s, flush=True)))


def register(app: typer.Typer) -> None:
    """Add ``metrics``, ``simulate``, ``dashboard`` and ``up`` to the ``shoplake`` command."""
    app.add_typer(metrics_app, name="metrics")
    app.command("simulate")(simulate)
    app.command("dashboard")(dashboard)
    app.command("up")(up)
    app.command("init")(init)
