"""``shoplake flink``: submit, cancel and inspect the Flink alert job (full profile)."""

from __future__ import annotations

import typer

flink_app = typer.Typer(help="The Flink alert job: cdc.public.orders -> rules -> flink-alerts.")


@flink_app.command("submit")
def submit() -> None:
    """Submit the alert job and wait until it runs (does nothing when it already runs)."""
    from jobs.alerts import flink_job as flink_alerts
    from lite.cli.common import load_settings as _settings
    from lite.services.flink.service import runtime as flink_runtime

    settings = _settings()
    job, submitted = flink_alerts.submit(settings, flink_runtime(settings))
    if submitted:
        print(
            f"submitted {job.name} (job {job.job_id}): {settings.cdc_topic} -> "
            f"{settings.alerts_topic}"
        )
    else:
        print(f"already running, nothing submitted: {job.line()}")


@flink_app.command("cancel")
def cancel() -> None:
    """Cancel the alert job (its Kafka offsets stay committed; its checkpoints are deleted)."""
    from jobs.alerts import flink_job as flink_alerts
    from lite.cli.common import load_settings as _settings
    from lite.services.flink.service import runtime as flink_runtime

    settings = _settings()
    cancelled = flink_alerts.cancel(settings, flink_runtime(settings))
    print("cancelled job " + ", ".join(cancelled) if cancelled else "no alert job running")


@flink_app.command("status")
def status() -> None:
    """The alert job's runs on the cluster, newest first, with their checkpoints."""
    from jobs.alerts import flink_job as flink_alerts
    from lite.cli.common import load_settings as _settings

    settings = _settings()
    runs = flink_alerts.status(settings)
    if not runs:
        print(f"no {flink_alerts.job_name(settings)} job on the cluster")
    for run in runs:
        print(run.line())


def register(app: typer.Typer) -> None:
    """Add the ``flink`` group to the ``shoplake`` command."""
    app.add_typer(flink_app, name="flink")
