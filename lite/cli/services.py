"""``shoplake services`` (the native services one by one) and ``shoplake status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lite.cli.common import load_settings as _settings

services_app = typer.Typer(help="Native services (PostgreSQL, S3 server) one by one.")


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


def register(app: typer.Typer) -> None:
    """Add the ``services`` group and ``status`` to the ``shoplake`` command."""
    app.add_typer(services_app, name="services")
    app.command("status")(status)
