"""The ``shoplake`` command: one entry point for the platform.

The app lives here; each command group is a module of this package that adds its commands
(``register``): ``services`` (and ``status``), ``lake`` (seed, medallion, sql), ``live``
(metrics, simulate, dashboard, up, init), ``reco`` (train, serve), ``alerts``, ``cdc``,
``flink`` and ``docker``. Each command parses its arguments, calls one use case in ``jobs/``
or ``lite/`` and prints the result. Heavy imports happen inside the commands so that
``shoplake --help`` stays instant.
"""

from __future__ import annotations

import logging
import os
import sys

# Plain click-style usage errors (one line) instead of Rich boxes; must precede typer's import.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

# typer's own click; the one usage error that must stay multi-line (the help) is not public
from typer._click.exceptions import NoArgsIsHelpError

from jobs.errors import ShoplakeError
from lite.cli import alerts, cdc, docker, flink, lake, live, reco, services
from lite.cli.lake import MIN_PRODUCTS

__all__ = ["MIN_PRODUCTS", "app", "main"]

app = typer.Typer(
    name="shoplake",
    help="shoplake: PostgreSQL -> Bronze/Silver/Gold lake on MinIO with DuckDB, and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _group in (services, lake, live, reco, alerts, cdc, flink, docker):
    _group.register(app)


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
