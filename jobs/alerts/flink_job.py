"""The Flink alert job (full profile): compile it from the rules, submit, cancel, status.

The SQL is compiled here, in shoplake's venv (``jobs.domain.flink_sql``), and handed as a
JSON spec to ``jobs/flink_job/alert_job.py``, which PyFlink's own venv runs to submit it to
the standalone cluster. Pure SQL: the TaskManager runs no Python workers. Status and cancel
use the JobManager's REST API.

Restarts: checkpoints every few seconds commit the Kafka offsets of the job's consumer
group, so a resubmitted job (same name, same group) resumes where the last one committed;
what it re-reads gives the same deterministic ``alert_id``s, which the delivery ledger
drops.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.adapters.rest import Rest, RestError
from jobs.domain import flink_sql
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from jobs.waiting import settles, wait_for


@dataclass(frozen=True)
class FlinkRuntime:
    """Where this host's Flink client and cluster live: the runtime (``lite``) provides it, so
    this module never reaches into how engines are installed
    (``lite.services.flink.service.runtime``)."""

    python: Path  # PyFlink's venv interpreter: it runs the submitting program
    connector_jar: Path  # the Kafka SQL connector the job loads
    java_home: Path  # a JDK Flink supports
    checkpoint_dir: Path  # the JobManager's checkpoints (a cancelled run's folder is removed)


log = logging.getLogger(__name__)

PROGRAM = Path(__file__).resolve().parents[1] / "flink_job" / "alert_job.py"
SUBMIT_TIMEOUT_S = 300.0
# the states in which a job of ours counts as there (submitting again would run it twice)
ACTIVE = {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING", "FAILING"}
CHECKPOINT_INTERVAL = "5 s"
BUFFER_TIMEOUT = "5 ms"
# fixed-delay restarts (a bounded number over the job's life): a broker outage of about
# RESTART_ATTEMPTS x RESTART_DELAY = 10 min is survived; after that, resubmit
RESTART_ATTEMPTS = 120
RESTART_DELAY = "5 s"


@dataclass(frozen=True)
class JobState:
    """One job of ours as the JobManager reports it."""

    job_id: str
    name: str
    state: str
    started_ms: int
    checkpoints: int | None = None

    def line(self) -> str:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_ms / 1000))
        cps = "" if self.checkpoints is None else f", {self.checkpoints} checkpoint(s)"
        return f"{self.name} {self.state} (job {self.job_id}, since {started}{cps})"


def job_name(settings: Settings) -> str:
    """One job per CDC topic prefix: ``shoplake-alerts-<prefix>``."""
    return f"shoplake-alerts-{settings.cdc_topic_prefix}"


def group_id(settings: Settings) -> str:
    """The job's Kafka consumer group: stable, so a resubmitted job resumes its offsets."""
    return f"shoplake-flink-{job_name(settings)}"


def kafka_ends(settings: Settings) -> flink_sql.KafkaEnds:
    return flink_sql.KafkaEnds(
        bootstrap=settings.kafka_bootstrap_servers,
        cdc_topic=settings.cdc_topic,
        alerts_topic=settings.alerts_topic,
        group_id=group_id(settings),
    )


def job_config(settings: Settings, connector_jar: Path) -> dict[str, str]:
    """The Flink configuration the job is submitted with."""
    return {
        "execution.target": "remote",
        "rest.address": settings.flink_host,
        "rest.port": str(settings.flink_port),
        "pipeline.name": job_name(settings),
        "pipeline.jars": connector_jar.as_uri(),
        "parallelism.default": "1",
        # the four rule branches meet in the sink's own task: flush network buffers after
        # a few ms instead of Flink's 100 ms default (alerts are few; latency matters)
        "execution.buffer-timeout.interval": BUFFER_TIMEOUT,
        # rules.iso_ms is UTC: DATE_FORMAT renders in the session zone
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
        # the job keeps no state but its source offsets, which every completed checkpoint
        # also commits to the consumer group (where a resubmitted job starts): a cancelled
        # run's checkpoints would only fill the disk. A failed run's last one is kept.
        "execution.checkpointing.externalized-checkpoint-retention": "DELETE_ON_CANCELLATION",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": str(RESTART_ATTEMPTS),
        "restart-strategy.fixed-delay.delay": RESTART_DELAY,
    }


def job_spec(settings: Settings, connector_jar: Path) -> dict[str, Any]:
    """Everything the PyFlink program needs: configuration, DDL, the INSERT."""
    params = settings.alert_params()
    statements, insert = flink_sql.job_statements(kafka_ends(settings), params)
    return {
        "config": job_config(settings, connector_jar),
        "statements": statements,
        "insert": insert,
    }


# ---------------------------------------------------------------- REST
def _rest(settings: Settings, path: str, method: str = "GET") -> Any:
    """A JobManager REST call; any failure (no answer, an error status) is ServiceUnavailable."""
    rest = Rest(
        "Flink JobManager",
        f"http://{settings.flink_host}:{settings.flink_port}",
        hint="start it with `shoplake services start --full`",
    )
    try:
        return rest.call(method, path)
    except RestError as exc:
        raise ServiceUnavailable(f"{exc} ({method} {path})") from exc


def _checkpoints(settings: Settings, job_id: str) -> int | None:
    try:
        counts = _rest(settings, f"/jobs/{job_id}/checkpoints").get("counts", {})
    except (ServiceUnavailable, AttributeError):
        return None
    return int(counts.get("completed", 0))


def jobs(settings: Settings, active_only: bool = False) -> list[JobState]:
    """Our jobs (by name) on the cluster, newest first."""
    listing = _rest(settings, "/jobs/overview").get("jobs", [])
    found = [
        JobState(j["jid"], j["name"], j["state"], int(j.get("start-time", 0)))
        for j in listing
        if j.get("name") == job_name(settings) and (not active_only or j["state"] in ACTIVE)
    ]
    return sorted(found, key=lambda j: j.started_ms, reverse=True)


def status(settings: Settings) -> list[JobState]:
    """Our jobs with their completed checkpoint counts (newest first)."""
    return [
        JobState(j.job_id, j.name, j.state, j.started_ms, _checkpoints(settings, j.job_id))
        for j in jobs(settings)
    ]


def _ensure_topics(settings: Settings) -> None:
    # both topics exist before the job starts: the source then sees its partitions at once
    from jobs.adapters import kafka_io

    for topic in (settings.cdc_topic, settings.alerts_topic):
        kafka_io.ensure_topic(settings, topic)


def submit(settings: Settings, runtime: FlinkRuntime) -> tuple[JobState, bool]:
    """Submit the job unless one of that name is active, then wait until its tasks run (its
    source then reads); returns (the job, True when submitted now)."""
    work = settings.data_path / "flink-jobs"
    work.mkdir(parents=True, exist_ok=True)
    with (work / f".{job_name(settings)}.lock").open("w") as lock:
        # two `submit`s at once (up and a user) would otherwise both see no job and both submit
        fcntl.flock(lock, fcntl.LOCK_EX)
        active = jobs(settings, active_only=True)
        job_id = active[0].job_id if active else _submit(settings, runtime, work)
    running = wait_running(settings, job_id)
    return (active[0], False) if active else (running, True)


def _submit(settings: Settings, runtime: FlinkRuntime, work: Path) -> str:
    jar = runtime.connector_jar
    _ensure_topics(settings)
    spec_file = work / f"{job_name(settings)}.json"
    spec_file.write_text(json.dumps(job_spec(settings, jar), indent=2))
    env = {
        **os.environ,
        "JAVA_HOME": str(runtime.java_home),
        "FLINK_LOG_DIR": str(work),  # the client's log, not inside the venv
        # else PyFlink starts its loopback Python worker server on [::]:0 (all interfaces)
        # for nothing: the job has no Python functions
        "_python_worker_execution_mode": "process",
    }
    cmd = [str(runtime.python), str(PROGRAM), str(spec_file)]
    t0 = time.monotonic()
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=SUBMIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(f"submitting the Flink job failed: {exc}") from exc
    if done.returncode != 0:
        why = _why(done.stderr or done.stdout)
        raise ServiceUnavailable(f"submitting the Flink job failed (spec {spec_file}):\n{why}")
    job_id = str(json.loads(done.stdout.strip().splitlines()[-1])["job_id"])
    log.info("submitted %s as %s in %.1f s", job_name(settings), job_id, time.monotonic() - t0)
    return job_id


def _why(output: str, lines: int = 6) -> str:
    """The messages of a Java/Python trace without its stack frames (the causes come last)."""
    kept = [
        ln
        for ln in output.strip().splitlines()
        if set(ln.strip()) - set("^~")  # not blank, not a caret marker line
        and not ln.lstrip().startswith(("at ", "... ", "File ", "raise "))
    ]
    return "\n".join(kept[-lines:])


def wait_running(settings: Settings, job_id: str, timeout: float = 120.0) -> JobState:
    """Wait until the job's tasks all run (its source then reads), or say why not."""
    last: dict[str, Any] = {}

    def running() -> JobState | None:
        detail = _rest(settings, f"/jobs/{job_id}")
        last.update(detail)
        vertices = detail.get("vertices", [])
        if detail.get("state") == "RUNNING" and all(v["status"] == "RUNNING" for v in vertices):
            return JobState(job_id, detail["name"], "RUNNING", int(detail.get("start-time", 0)))
        if detail.get("state") in ("FAILED", "CANCELED", "FINISHED"):
            raise ServiceUnavailable(f"Flink job {job_id} is {detail['state']}")
        return None

    def late(_: str) -> ServiceUnavailable:
        state = last.get("state")
        return ServiceUnavailable(f"Flink job {job_id} not running after {timeout:.0f} s ({state})")

    found = wait_for(running, timeout=timeout, every=0.5, error=late)
    assert found is not None  # wait_for returns a truthy result (no stop event given)
    return found


def cancel(settings: Settings, runtime: FlinkRuntime, timeout: float = 60.0) -> list[str]:
    """Cancel our active jobs (Flink deletes their checkpoints); the ids cancelled."""
    doomed = [j.job_id for j in jobs(settings, active_only=True)]
    for job_id in doomed:
        _rest(settings, f"/jobs/{job_id}?mode=cancel", method="PATCH")
    if doomed:
        wait_for(
            lambda: not any(j.job_id in doomed for j in jobs(settings, active_only=True)),
            timeout=timeout,
            every=0.5,
            error=lambda _: ServiceUnavailable(
                f"Flink job(s) {doomed} not cancelled after {timeout:.0f} s"
            ),
        )
    for job_id in doomed:
        _remove_run_dir(runtime.checkpoint_dir / job_id)
    return doomed


def _remove_run_dir(run_dir: Path, wait_s: float = 10.0) -> None:
    """Flink deletes a cancelled run's checkpoints (after the job ends) but leaves their empty
    folders behind: remove them. A folder still holding files is left alone."""
    settles(lambda: not any(run_dir.glob("chk-*")), timeout=wait_s, every=0.2)
    for folder in [*sorted(run_dir.rglob("*"), reverse=True), run_dir]:
        if folder.is_dir():
            with suppress(OSError):  # not empty
                folder.rmdir()
