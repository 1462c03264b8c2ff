"""``shoplake up``: the whole platform on this host, until Ctrl-C or SIGTERM.

The dashboard goes live first: PostgreSQL, S3 and Redis start (with ``--full`` also Trino,
Kafka, Kafka Connect and a Flink cluster, then the Debezium connector and the Flink alert
job), the shop is seeded when empty, a first metrics micro-batch is published, and the
dashboard, the simulator and the CDC alerts start. Meanwhile, in the background, Airflow
starts (migrating its database takes a while); once it runs and the dashboard answers, the
lake is caught up to yesterday (the medallion DAG does not catch up by itself), a first model
is trained and the API starts serving it. Until Airflow runs the metrics DAG, ``up`` runs the
micro-batch itself every 30 s; from then on Airflow runs the schedules: the micro-batch, the
daily medallion and the training. "shoplake is up" is printed once all of it is done; a
failure on the way stops everything and is reported as before. The children run in their own
process groups. On a signal everything stops in reverse order and every pid file written here
is removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from jobs.errors import ShoplakeError, UsageError
from jobs.settings import Settings, without_password
from jobs.waiting import settles
from lite.services import proc
from lite.supervisor import ChildUnit, ServiceUnit, Supervisor, Unit, state_path
from lite.up_children import Child

log = logging.getLogger(__name__)

CORE_SERVICES = ["postgres", "s3", "redis", "airflow"]
# started in the background while the dashboard goes live: the slowest to start
BACKGROUND_SERVICES = frozenset({"airflow"})
# children that wait for the lake and the first model (the API serves the model it finds)
AFTER_MODEL_CHILDREN = frozenset({"api"})
METRICS_EVERY_S = 30.0
# how long up's own micro-batch goes on once Airflow answers: its first DAG run comes
# within a scheduling round or two
METRICS_HANDOVER_S = 60.0
FIRST_METRICS_WAIT_S = 20.0
# when one of these restarts, the Debezium connector and the Flink job are set up again
STREAMING_SERVICES = frozenset({"kafka", "connect", "flink-jobmanager", "flink-taskmanager"})


@dataclass(frozen=True)
class UpOptions:
    """What ``shoplake up`` runs besides the core services."""

    simulate: float | None = None  # a flat rate, orders/s
    simulate_speed: float | None = None  # the shop model, times its history's volume
    full: bool = False
    seed_if_empty: bool = False
    catch_up_days: int = 30
    dashboard_port: int | None = None  # None: the settings' (SHOPLAKE_DASHBOARD_PORT)
    api_port: int | None = None  # None: the settings' (SHOPLAKE_API_PORT)
    keep_services: bool = False


def missing_days(
    first: dt.date | None, yesterday: dt.date, have: set[dt.date], window: int
) -> list[dt.date]:
    """Days from the first order (at most ``window`` back) to yesterday without gold output."""
    if first is None or window <= 0:
        return []
    start = max(first, yesterday - dt.timedelta(days=window - 1))
    days = [start + dt.timedelta(days=i) for i in range((yesterday - start).days + 1)]
    return [d for d in days if d not in have]


def catch_up(
    settings: Settings,
    window: int,
    say: Callable[[str], None],
    stop: threading.Event | None = None,
) -> int:
    """Run the medallion for every missing day up to yesterday; returns how many ran.

    ``stop`` ends it between two days (``up`` stopped during its start-up)."""
    from zoneinfo import ZoneInfo

    from jobs import medallion
    from jobs.adapters import source_db
    from jobs.adapters.lake.layout import DAILY_SUMMARY
    from jobs.bootstrap import Resources

    tz = ZoneInfo(settings.timezone)
    yesterday = dt.datetime.now(tz).date() - dt.timedelta(days=1)
    with source_db.session(settings.dsn) as conn:
        source_db.ensure_schema(conn)
        row = conn.execute("SELECT min(order_date) FROM orders").fetchone()
    first = row[0].astimezone(tz).date() if row and row[0] else None
    res = Resources(settings)
    lake = res.lake
    lake.check()
    todo = missing_days(first, yesterday, set(lake.partitions(DAILY_SUMMARY)), window)
    if todo:
        say(f"catching the lake up: {len(todo)} day(s), {todo[0]}..{todo[-1]}")
    done = 0
    with medallion.pipeline(res) as p:
        for day in todo:
            if stop is not None and stop.is_set():
                break
            report = p.run_date(day)
            say(f"  medallion {day}: {report.status}, {report.counts.bronze} rows")
            done += 1
    return done


def seed_if_empty(settings: Settings, say: Callable[[str], None]) -> None:
    """Seed the shop's history when it has no orders yet."""
    from jobs import seed as seed_job

    say(seed_job.seed(settings, if_empty=True).line())


def ensure_model(settings: Settings, say: Callable[[str], None]) -> None:
    """Train a first model when the registry has none, so the API starts serving it."""
    from jobs import training

    try:
        result = training.ensure_model(settings)
    except ShoplakeError as exc:  # e.g. too few orders yet: the API serves popular items
        say(f"no model trained yet: {exc}")
        return
    if result is not None:
        say(result.line())


def init_data(settings: Settings, seed: bool, window: int, say: Callable[[str], None]) -> None:
    """What ``up`` does before its children start, for running services elsewhere (compose)."""
    if seed:
        seed_if_empty(settings, say)
    catch_up(settings, window, say)
    ensure_model(settings, say)


class Platform:
    """The running platform: services started and children to stop."""

    def __init__(self, settings: Settings, options: UpOptions, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.options = options
        self.say = say
        self.home: Path = settings.data_path / "up"
        self.pid_file = self.home / "up.pid"
        self.stop = threading.Event()
        self.children: list[Child] = []
        self.services: list[str] = []
        self.units: list[Unit] = []  # what the supervisor watches: services, then children
        self.supervisor: Supervisor | None = None
        self.streaming = False
        self._units_lock = threading.Lock()
        self.workers: list[threading.Thread] = []  # start-up work in the background
        self.failure: BaseException | None = None  # the first a worker met: up reports it
        self.metrics_stop = threading.Event()  # ends up's own micro-batch (Airflow took over)
        self.services_up = threading.Event()  # every service started, Airflow included

    # ---- start ----
    def claim(self) -> None:
        """One ``up`` per data dir: refuse a second, clear a stale pid file."""
        from lite import credentials

        credentials.private_data_dir(self.settings)  # its logs and secrets are nobody else's
        self.home.mkdir(parents=True, exist_ok=True)
        other = proc.read_pid(self.pid_file)
        if other is not None and other != os.getpid() and proc.is_ours(other, "up"):
            where = self.settings.data_path
            raise UsageError(f"shoplake up already runs (pid {other}) for {where}")
        proc.write_pid(self.pid_file, os.getpid())

    def service_names(self) -> list[str]:
        """Every service ``up`` runs, in start order (what it stops at the end)."""
        from lite.services import manager

        names = [*CORE_SERVICES]
        if self.full:
            names += [n for n, e in manager.REGISTRY.items() if e.full_only]
        return [n for n in manager.REGISTRY if n in names]

    def start_services(self, background: bool = False) -> None:
        """The services the dashboard needs (or, ``background``, the others), one by one."""
        from lite.services import manager

        self.services = self.service_names()
        names = [n for n in self.services if (n in BACKGROUND_SERVICES) == background]
        for svc in manager.services(self.settings, names, full=self.options.full, starting=True):
            if self.stop.is_set():
                return
            st = svc.start()
            self.say(st.line())
            if st.pid is not None:  # an external server is not ours to restart
                again = self.resume_streaming if svc.name in STREAMING_SERVICES else None
                self.watch(ServiceUnit(svc, st.pid, again))

    def watch(self, unit: Unit) -> None:
        """Supervise ``unit`` from now on (also once the supervisor runs)."""
        with self._units_lock:
            self.units.append(unit)
            if self.supervisor is not None:
                self.supervisor.add(unit)

    def in_background(self, name: str, work: Callable[[], object]) -> None:
        """Run ``work`` in a thread; its failure stops ``up``, which then reports it."""

        def run() -> None:
            try:
                work()
            except BaseException as exc:
                if self.failure is None:
                    self.failure = exc
                self.stop.set()

        thread = threading.Thread(target=run, name=f"up-{name}", daemon=True)
        self.workers.append(thread)
        thread.start()

    def start_background_services(self) -> None:
        """Airflow (and anything slow to start), then hand the micro-batch over to it."""
        self.start_services(background=True)
        self.services_up.set()

        def hand_over() -> None:
            # Airflow's scheduler runs the metrics DAG from its first rounds on
            self.stop.wait(METRICS_HANDOVER_S)
            self.metrics_stop.set()

        self.in_background("handover", hand_over)

    def publish_metrics(self) -> None:
        """Today's metrics now, then every 30 s until Airflow's DAG takes over."""
        from jobs import dashboard_metrics

        first = threading.Event()

        def on_run(run: dashboard_metrics.MetricsRun) -> None:
            if not first.is_set():
                self.say(run.line())
                first.set()

        thread = threading.Thread(
            target=dashboard_metrics.run_every,
            args=(self.settings, METRICS_EVERY_S, self.metrics_stop, on_run),
            name="up-metrics",
            daemon=True,
        )
        self.workers.append(thread)
        thread.start()
        # the dashboard reads the latest metrics when it starts; a failed run is logged and
        # the dashboard starts anyway (it shows the metrics once a run publishes them)
        settles(first.is_set, timeout=FIRST_METRICS_WAIT_S, every=0.1, stop=self.stop)

    def finish_start(self) -> None:
        """Once Airflow runs: the lake caught up, a first model, then the API that serves it.

        After Airflow, not beside it: on two cores a catch-up and a training beside its first
        start make it answer its API slowly when ``up`` says it is up (and then the catch-up
        runs beside the medallion DAG's first run as it always did)."""
        while not self.services_up.wait(0.5):
            if self.stop.is_set():
                return
        days = catch_up(self.settings, self.options.catch_up_days, self.say, self.stop)
        if self.stop.is_set():
            return
        self.say(f"lake caught up: {days} day(s) run")
        ensure_model(self.settings, self.say)
        if self.stop.is_set():
            return
        self.start_children(after_model=True)
        # "shoplake is up" means the API answers too, as it did when it started beside the
        # dashboard
        answers = self.wait_for_health(self.api_port, healthy=False)
        if not answers and not self.stop.is_set():
            self.say(f"api did not answer; log {self.home / 'logs/api.log'}")

    @property
    def dashboard_port(self) -> int:
        return self.options.dashboard_port or self.settings.dashboard_port

    @property
    def api_port(self) -> int:
        return self.options.api_port or self.settings.api_port

    @property
    def full(self) -> bool:
        return self.options.full or self.settings.profile == "full"

    def start_streaming(self) -> None:
        """Full profile: register the Debezium connector and submit the Flink alert job."""
        from jobs.adapters import debezium, source_db
        from jobs.alerts import flink_job
        from lite.services.flink.service import runtime as flink_runtime

        with source_db.session(self.settings.dsn) as conn:
            source_db.ensure_schema(conn)  # the connector needs the orders table
        debezium.register(self.settings)
        self.streaming = True
        self.say(f"debezium  streaming orders to {self.settings.cdc_topic}")
        job, submitted = flink_job.submit(self.settings, flink_runtime(self.settings))
        verb = "submitted" if submitted else "already running"
        self.say(f"flink     alert job {job.job_id} {verb} -> {self.settings.alerts_topic}")

    def resume_streaming(self) -> None:
        """After a streaming engine restarted: the connector and the job again (idempotent).

        A restarted JobManager has lost its jobs (no HA store); Connect restarts the connector
        from its stored config by itself, but registering again also waits until it streams.
        """
        if not self.streaming or self.stop.is_set():
            return
        from jobs.adapters import debezium
        from jobs.alerts import flink_job
        from lite.services.flink.service import runtime as flink_runtime

        debezium.register(self.settings)
        job, submitted = flink_job.submit(self.settings, flink_runtime(self.settings))
        if submitted:
            self.say(f"flink     alert job {job.job_id} submitted again after a restart")

    def stop_streaming(self) -> None:
        """Cancel the job (its offsets stay committed); keep the connector and its slot.

        The slot holds every change made while the platform is stopped, and the connector
        resumes from its committed offset at the next start: nothing is lost, and a change
        replayed twice gives the same ``alert_id``, which the ledger stores once. The WAL the
        slot may pin is bounded by ``max_slot_wal_keep_size``; ``shoplake status`` shows it,
        and ``shoplake cdc unregister`` releases it.
        """
        from jobs.adapters import debezium
        from jobs.alerts import flink_job
        from lite.services.flink.service import runtime as flink_runtime

        try:
            for job_id in flink_job.cancel(self.settings, flink_runtime(self.settings)):
                self.say(f"flink     alert job {job_id} cancelled")
        except ShoplakeError as exc:
            self.say(f"flink     could not cancel the alert job: {exc}")
        self.say(
            f"debezium  connector kept: slot {debezium.slot_name(self.settings)} holds the "
            "changes until the next start (shoplake cdc unregister releases it)"
        )

    def seed(self) -> None:
        seed_if_empty(self.settings, self.say)

    def start_children(self, after_model: bool = False) -> None:
        """The dashboard, simulator and alerts; with ``after_model``, the API."""
        o = self.options
        wanted: list[tuple[str, list[str]]] = [
            ("dashboard", ["dashboard", "--port", str(self.dashboard_port)])
        ]
        if o.simulate:
            wanted.append(("simulator", ["simulate", "--rate", str(o.simulate)]))
        elif o.simulate_speed:
            wanted.append(("simulator", ["simulate", "--speed", str(o.simulate_speed)]))
        # full: the Flink job evaluates the rules; this process only delivers its alerts
        engine = ["--engine", "flink"] if self.full else []
        wanted.append(("alerts", ["alerts", "run", *engine]))
        wanted.append(("api", ["serve", "--port", str(self.api_port)]))
        for name, args in wanted:
            if (name in AFTER_MODEL_CHILDREN) != after_model:
                continue
            child = Child(name, args, self.home)
            self.children.append(child)
            self.say(f"{name:<9} started  pid {child.start():<7} log {child.log_file}")
            self.watch(ChildUnit(child))

    def wait_for_dashboard(self, timeout: float = 180.0) -> bool:
        return self.wait_for_health(self.dashboard_port, timeout)

    def wait_for_health(self, port: int, timeout: float = 180.0, healthy: bool = True) -> bool:
        """Until ``/health`` answers 200 (``healthy=False``: answers at all, e.g. the API's
        503 while it has no model); a first start on a new machine imports cold."""
        url = f"http://127.0.0.1:{port}/health"

        def answers() -> bool:
            try:
                status = httpx.get(url, timeout=1.0).status_code
            except httpx.HTTPError:
                return False
            return status == 200 or not healthy

        return settles(answers, timeout=timeout, every=0.3, stop=self.stop)

    def urls(self) -> list[str]:
        s = self.settings
        names = {c.name for c in self.children}
        lines = [f"dashboard  http://127.0.0.1:{self.dashboard_port}"]
        if "api" in names:
            lines.append(f"API        http://127.0.0.1:{self.api_port}  (docs: /openapi.json)")
        if s.native_s3:
            lines.append(f"S3 console http://127.0.0.1:{s.s3_console_port}")
        if "airflow" in self.services:
            from lite.services.airflow.service import AirflowService

            lines.append(AirflowService(s).describe())
        # never a password: the services print where they run, not how to log in
        lines += [
            f"PostgreSQL {without_password(s.dsn.split('?')[0])}",
            f"Redis      {without_password(s.redis_url)}",
        ]
        if self.streaming:
            lines += [
                f"Flink UI   http://127.0.0.1:{s.flink_port}",
                f"Kafka      {s.kafka_bootstrap_servers}  (topics {s.cdc_topic}, {s.alerts_topic})",
                f"Connect    http://127.0.0.1:{s.connect_port}/connectors",
            ]
        if "trino" in self.services:
            lines.append(f"Trino      http://127.0.0.1:{s.trino_port}")
        return lines

    # ---- run and stop ----
    def supervise(self) -> None:
        """From now until a signal: restart a service or child that died, with back-off."""
        with self._units_lock:
            supervisor = Supervisor(list(self.units), state_path(self.settings), self.say)
            self.supervisor = supervisor
        self.in_background("supervisor", lambda: supervisor.run(self.stop))

    def starting(self) -> bool:
        """Whether start-up work still runs in the background (the supervisor aside)."""
        return any(t.is_alive() for t in self.workers if t.name in ("up-finish", "up-services"))

    def shutdown(self) -> None:
        self.stop.set()
        self.metrics_stop.set()
        for worker in self.workers:
            # a service or child being started is finished first, so it is stopped below
            worker.join(timeout=900)
        if self.supervisor is not None:
            # first: nothing may be restarted while we stop it, and a restart in flight
            # finishes so its process is stopped below rather than left behind
            self.supervisor.close()
        for child in reversed(self.children):
            child.stop()
            self.say(f"{child.name:<9} stopped")
        if self.streaming and not self.options.keep_services:
            self.stop_streaming()
        if self.services and not self.options.keep_services:
            from lite.services import manager

            for st in manager.stop(self.settings, self.services):
                self.say(st.line())
        if self.supervisor is not None:
            self.supervisor.remove_state()
        if proc.read_pid(self.pid_file) == os.getpid():
            self.pid_file.unlink(missing_ok=True)


def run_up(settings: Settings, options: UpOptions, print_line: Callable[[str], None]) -> int:
    """Start everything, wait for Ctrl-C or SIGTERM, stop everything; the exit code."""
    platform = Platform(settings, options, print_line)
    previous = {
        sig: signal.signal(sig, lambda *_: platform.stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    platform.claim()
    try:
        return start_and_run(platform, print_line)
    finally:
        platform.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_and_run(platform: Platform, print_line: Callable[[str], None]) -> int:
    """The dashboard live first, the rest in the background, then supervise until a signal."""
    steps: list[Callable[[], object]] = [platform.start_services]
    if platform.options.seed_if_empty:
        steps.append(platform.seed)
    if platform.full:
        steps.append(platform.start_streaming)
    steps.append(lambda: platform.in_background("services", platform.start_background_services))
    steps += [platform.publish_metrics, platform.start_children, platform.supervise]
    for step in steps:
        if platform.stop.is_set():
            break
        step()
    if not platform.stop.is_set():
        url = f"http://127.0.0.1:{platform.dashboard_port}"
        if platform.wait_for_dashboard():
            print_line(
                f"dashboard live at {url}; Airflow, then the lake's catch-up, a first "
                "model and the API follow in the background"
            )
        elif not platform.stop.is_set():
            print_line(f"dashboard did not answer; log {platform.home / 'logs/dashboard.log'}")
        platform.in_background("finish", platform.finish_start)
    while platform.starting() and not platform.stop.wait(0.5):
        pass
    if platform.failure is not None:
        raise platform.failure
    if platform.stop.is_set():
        return 130
    print_line("shoplake is up:")
    for line in platform.urls():
        print_line(f"  {line}")
    print_line("Ctrl-C stops everything")
    while not platform.stop.wait(1.0):
        pass
    if platform.failure is not None:
        raise platform.failure
    print_line("stopping...")
    return 0
