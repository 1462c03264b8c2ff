"""Airflow 3 standalone (API server, scheduler, DAG processor, triggerer) as a native service.

Its metadata lives in a database ``airflow`` on the native PostgreSQL; it runs from
its own virtual environment (``lite.services.airflow.venv``); the API server listens on
127.0.0.1, and so do the log servers, whose host Airflow hard-codes to every interface
(``lite.services.airflow.site`` moves them; ``lite.services.airflow.config`` moves their ports).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import time

import httpx
import psutil
import psycopg
from psycopg import sql

from jobs.adapters.airflow_api import PASSWORD_FILE
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from jobs.waiting import settles
from lite.services import proc
from lite.services.airflow import config as airflow_config
from lite.services.airflow import venv as airflow_venv
from lite.services.base import Service, ServiceStatus

log = logging.getLogger(__name__)

DATABASE = "airflow"
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
# the processes ``airflow standalone`` runs, as its output names them
PROCESSES = ("scheduler", "dag-processor", "api-server", "triggerer")
# tries of a start whose component exited (a port an outgoing connection held for a
# moment, seen in CI): one more, never a loop
START_TRIES = 2
# a component's line that says why it stopped: a logged error or a Python exception
ERROR_LINE = re.compile(r"\[(error|critical)\s*\]|^\S+\s*\|\s*\w+(Error|Exception):")


class ComponentExited(ServiceUnavailable):
    """A component of ``airflow standalone`` exited; standalone runs on without it."""

    def __init__(self, component: str, reason: str, details: str) -> None:
        self.summary = f"airflow: its {component} exited during start-up: {reason}"
        super().__init__(f"{self.summary}; {details}")


def _process_name(cmdline: list[str]) -> str | None:
    """Which component a child of standalone is (the API server retitles itself)."""
    words = " ".join(cmdline).split()
    for name in PROCESSES:
        if name in words or name.replace("-", "_") in words:
            return name
    return None


def components(leader: int) -> dict[str, int]:
    """The live components of the standalone process ``leader``: name -> pid."""
    try:
        children = psutil.Process(leader).children()
    except psutil.Error:
        return {}
    found = {}
    for child in children:
        with contextlib.suppress(psutil.Error):
            # standalone never waits for a component that ended: it stays a zombie
            if child.status() != psutil.STATUS_ZOMBIE and (name := _process_name(child.cmdline())):
                found[name] = child.pid
    return found


def session_members(leader: int) -> list[psutil.Process]:
    """The live processes of the session ``leader`` leads (tasks change group, not session)."""
    members = []
    for p in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getsid(p.pid) == leader and p.status() != psutil.STATUS_ZOMBIE:
                members.append(p)
    return members


def _home_of(pid: int) -> str | None:
    """The AIRFLOW_HOME a process runs with (None: gone or not readable)."""
    try:
        return psutil.Process(pid).environ().get("AIRFLOW_HOME")
    except psutil.Error:
        return None


def _label(p: psutil.Process) -> str:
    try:
        return f"{p.pid} ({' '.join(p.cmdline()[-2:])})"
    except psutil.Error:
        return str(p.pid)


class AirflowService(Service):
    """``airflow standalone`` with AIRFLOW_HOME in ``data/services/airflow``."""

    name = "airflow"
    # migrating a fresh metadata database and starting four components takes a while
    start_timeout = 240.0
    # the scheduler, API server and triggerer exit within seconds of SIGINT; the DAG
    # processor of 3.3.2 sometimes hangs in interpreter shutdown (measured): it is killed
    # after this grace, which costs nothing (it only parses DAG files)
    stop_timeout = 20.0
    # SIGINT to the whole group: standalone then stops its components; SIGTERM to the
    # parent alone would orphan them
    stop_signal = signal.SIGINT

    def __init__(self, settings: Settings, port: int | None = None, database: str = DATABASE):
        super().__init__(settings)
        self.port = port or settings.airflow_port
        self.database = database
        self._leader: int | None = None  # the standalone process this object launched
        self._seen: set[str] = set()  # the components seen running during a start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ports(self) -> list[int]:
        return [self.port, *airflow_config.log_ports(self.port)]

    def env(self) -> dict[str, str]:
        return airflow_config.airflow_env(self.settings, self.home, self.database, self.port)

    def command(self) -> list[str]:
        return [str(airflow_venv.bin_dir() / "airflow"), "standalone"]

    def install(self) -> str:
        """Create Airflow's virtual environment once (``shoplake services install``)."""
        return airflow_venv.ensure()

    def prepare(self) -> None:
        self.install()
        self._create_database()
        self._admin_passwords()
        t0 = time.monotonic()
        with self.log_file.open("ab") as out:
            try:
                subprocess.run(
                    [str(airflow_venv.bin_dir() / "airflow"), "db", "migrate"],
                    env=self.env(),
                    cwd=self.home,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=600,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                tail = proc.log_tail(self.log_file)
                raise ServiceUnavailable(f"airflow db migrate failed ({exc}):\n{tail}") from exc
        log.info("airflow metadata database migrated in %.1f s", time.monotonic() - t0)

    def _admin_passwords(self) -> None:
        """Write the simple auth manager's password file before Airflow does: it prints a
        password it generates into its log; one it finds in the file it does not print."""
        path = self.home / PASSWORD_FILE
        users_spec = self.env().get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
        users = [u.split(":", 1)[0].strip() for u in users_spec.split(",") if u.strip()]
        try:
            known = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            known = {}
        missing = {u: secrets.token_urlsafe(16) for u in users if u not in known}
        if not missing:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(known | missing) + "\n")

    def _create_database(self) -> None:
        dsn = self.settings.dsn
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if not found:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database))
                    )
        except psycopg.Error as exc:
            raise ServiceUnavailable(
                f"airflow needs PostgreSQL for its metadata ({exc.__class__.__name__}): "
                "start it first (`shoplake services start postgres`)"
            ) from None

    def health(self) -> dict[str, str]:
        """Each component's status from the API server's health endpoint (empty: no answer)."""
        try:
            # the API server answers slowly while the machine is busy (seen in CI at 2 s)
            r = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=10)
            body = r.json() if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}
        return {c: str((body.get(c) or {}).get("status")) for c in COMPONENTS}

    def healthy(self) -> bool:
        states = self.health()
        return bool(states) and all(s == "healthy" for s in states.values())

    def pid(self) -> int | None:
        # the command line does not name our folder; the environment does. A leader that
        # died with its components still running keeps its pid file, so stop finds them
        pid = proc.read_pid(self.pid_file)
        if pid is None:
            return None
        if _home_of(pid) == str(self.home) or self._orphaned_session(pid):
            return pid
        log.warning("airflow: removed stale pid file (pid %s is gone or not ours)", pid)
        self.pid_file.unlink(missing_ok=True)
        return None

    def password(self) -> str | None:
        """The admin password the simple auth manager generated, once it has."""
        try:
            users = json.loads((self.home / PASSWORD_FILE).read_text())
        except (OSError, ValueError):
            return None
        return users.get("admin") if isinstance(users, dict) else None

    def describe(self) -> str:
        """Where the UI is and where its login is kept (never the password: this is printed
        by ``up`` and ``services status``, and terminals and CI logs are kept)."""
        where = self.home / PASSWORD_FILE
        login = f"login admin, password in {where}" if self.password() else "login: see the log"
        return f"Airflow {airflow_venv.AIRFLOW_VERSION} UI {self.url}, {login}"

    def start(self) -> ServiceStatus:
        for attempt in range(1, START_TRIES + 1):
            self._leader = None
            try:
                st = super().start()
                break
            except BaseException as exc:
                # the base class signals the leader only; take its components down too
                self._stop_session(self._leader)
                if not isinstance(exc, ComponentExited) or attempt == START_TRIES:
                    raise
                log.warning("%s; starting airflow once more", exc.summary)
        # the login goes where the user looks: the line `services start` prints
        return ServiceStatus(st.name, st.running, st.pid, st.url, f"{st.detail}; {self.describe()}")

    def stop(self) -> ServiceStatus:
        pid = self.pid()
        if pid is None:
            return ServiceStatus(self.name, False, None, self.url, "not running")
        left = self._stop_session(pid)
        self.pid_file.unlink(missing_ok=True)
        detail = f"stopped pid {pid}" + (f"; killed {left} straggler(s)" if left else "")
        return ServiceStatus(self.name, False, None, self.url, detail)

    def _launch(self) -> tuple[int, int]:
        pid, since = super()._launch()
        self._leader = pid
        return pid, since

    def _wait_healthy(self, pid: int, since: int) -> None:
        self._seen = set()
        super()._wait_healthy(pid, since)

    def _check_starting(self, pid: int, since: int) -> None:
        """Standalone does not notice a component that exits (an API server that could
        not bind its port, say): one seen running and gone fails the start at once."""
        super()._check_starting(pid, since)
        running = components(pid)
        self._seen |= running.keys()
        for name in sorted(self._seen - running.keys()):
            own = self._lines_of(name, since)
            errors = [line for line in own if ERROR_LINE.search(line)]
            reason = (errors or own or ["it wrote nothing"])[-1].split("|", 1)[-1].strip()
            lines = "\n".join(own[-15:])
            raise ComponentExited(name, reason, f"log {self.log_file}, its last lines:\n{lines}")

    def _lines_of(self, component: str, since: int) -> list[str]:
        """The lines ``component`` wrote to the log since byte ``since``."""
        text = proc.log_tail(self.log_file, since, lines=1_000_000)
        return [line for line in text.splitlines() if line.split("|", 1)[0].strip() == component]

    def _failure(self, why: str, since: int) -> str:
        states = self.health()
        seen = ", ".join(f"{c} {s}" for c, s in states.items()) or "the API server did not answer"
        return super()._failure(f"{why}; health: {seen}", since)

    def _orphaned_session(self, sid: int) -> bool:
        """True when the session ``sid`` still has our processes (its leader may be dead).

        With the leader gone, any live member counts: Linux does not hand out a PID still
        used as a session id, so they are what our leader left. Their environment cannot
        tell (the components set their process titles over it; seen with the API server
        holding the port after a SIGKILL of ``standalone``, which blocked every restart).
        """
        members = session_members(sid)
        if not proc.alive(sid) and members:
            return True
        return any(_home_of(p.pid) == str(self.home) for p in members)

    def _stop_session(self, pid: int | None) -> int:
        """SIGINT to the group, wait, SIGKILL whatever of the session remains; how many."""
        if pid is None:
            return 0
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, self.stop_signal)

        def gone() -> bool:
            proc.reap(pid, 0.2)  # our child when we started it: collect the zombie
            return not session_members(pid)

        settles(gone, timeout=self.stop_timeout, every=0.3)
        stragglers = session_members(pid)
        labels = [_label(p) for p in stragglers]
        for p in stragglers:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(stragglers, timeout=10)
        if stragglers:
            log.warning(
                "airflow: killed after %.0f s of SIGINT: %s", self.stop_timeout, ", ".join(labels)
            )
        return len(stragglers)
