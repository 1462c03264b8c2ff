"""Trino 476 (full profile): fetched by Maven coordinates, run on Java 24+ on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import shutil
import string
from collections.abc import Mapping
from pathlib import Path

import psutil
import psycopg

from jobs.adapters import trino as client
from jobs.config_files import config_path
from jobs.errors import ServiceUnavailable, ShoplakeError
from lite.services import engines, maven
from lite.services.base import Service
from lite.services.java import JVM_DIRS, find_java_home

log = logging.getLogger(__name__)

VERSION = "476"
# the whole server: the plugin zips are not all served here (trino-postgresql is missing),
# and the tarball holds every plugin; only PLUGINS are kept after unpacking
SERVER = maven.Artifact("io.trino", "trino-server", VERSION, "tar.gz")
# postgresql needs geospatial: it maps PostGIS columns to Trino's Geometry type
PLUGINS = ("hive", "postgresql", "geospatial")
CONFIG_DIR = config_path("trino")
MIN_JAVA = 24
NEWER_JAVA = tuple(range(40, MIN_JAVA - 1, -1))  # the newest installed first


def install_dir() -> Path:
    return maven.engine_dir("trino") / f"trino-server-{VERSION}"


def installed() -> bool:
    stamp = install_dir() / ".complete"
    return stamp.exists() and stamp.read_text().split() == list(PLUGINS)


def install_server() -> str:
    """Fetch and unpack the server once (lib, bin and PLUGINS); say where it is."""
    home = install_dir()
    if installed():
        return f"Trino {VERSION} (cached: {home})"
    archive = maven.fetch(SERVER.coordinate, maven.engine_dir("trino") / "downloads")
    scratch = home.with_name(home.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    # the tarball hard-links jars shared between plugins: unpack whole, then prune
    engines.unpack(archive, scratch, "tar")
    unpacked = scratch / f"trino-server-{VERSION}"
    for plugin in (unpacked / "plugin").iterdir():
        if plugin.name not in PLUGINS:
            shutil.rmtree(plugin)
    shutil.rmtree(home, ignore_errors=True)
    unpacked.replace(home)
    shutil.rmtree(scratch)
    archive.unlink()  # Maven's own local repository keeps a copy for a re-install
    (home / ".complete").write_text("\n".join(PLUGINS) + "\n")
    return f"Trino {VERSION} (fetched {SERVER.coordinate}: {home})"


def java_home() -> Path:
    """A JDK new enough for Trino: SHOPLAKE_TRINO_JAVA_HOME, JAVA_HOME, else the newest one."""
    return find_java_home(
        "trino",
        NEWER_JAVA,
        f"{MIN_JAVA}+ (e.g. SHOPLAKE_TRINO_JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64)",
        JVM_DIRS,
    )


class Trino(Service):
    """One coordinator that also executes, with the catalogs ``lake`` and ``postgres_source``."""

    name = "trino"
    start_timeout = 240.0  # about 20-40 s here; a loaded 2-core CI box is slower
    stop_timeout = 30.0
    engine_pid_files = ("data/var/run/launcher.pid",)

    @property
    def url(self) -> str:
        return client.url(self.settings)

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    def ports(self) -> list[int]:
        return [self.settings.trino_port]

    def install(self) -> str:
        """Obtain the server (once) and say where it came from (``shoplake services install``)."""
        return install_server()

    def prepare(self) -> None:
        install_server()
        java_home()  # fail before launching, with the one-line reason
        shutil.rmtree(self.etc, ignore_errors=True)
        for path in ("data/tmp", "metastore", "etc/catalog"):
            (self.home / path).mkdir(parents=True, exist_ok=True)
        values = self._values()
        for src in CONFIG_DIR.rglob("*"):
            if src.is_file():
                dest = self.etc / src.relative_to(CONFIG_DIR)
                text = string.Template(src.read_text()).substitute(values)
                # catalogs carry credentials: owner-only from the first byte
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(text)

    def _values(self) -> dict[str, str]:
        s = self.settings
        pg = psycopg.conninfo.conninfo_to_dict(s.dsn)
        return {
            "bind_host": s.bind_host,
            "port": str(s.trino_port),
            "heap": client.heap(s),
            "query_memory": _query_memory(client.heap(s)),
            "data_dir": str(self.home / "data"),
            "metastore_dir": str(self.home / "metastore"),
            "plugin_dir": str(install_dir() / "plugin"),
            "s3_endpoint": s.s3_endpoint_url,
            "s3_region": s.s3_region,
            "s3_access_key": s.s3_access_key,
            "s3_secret_key": s.s3_secret_key.get_secret_value(),
            "pg_host": str(pg.get("host") or "127.0.0.1"),
            "pg_port": str(pg.get("port") or 5432),
            "pg_database": str(pg.get("dbname") or ""),
            **self._source_login(pg),
        }

    def _source_login(self, pg: Mapping[str, object]) -> dict[str, str]:
        """Trino's login to the source database: a read-only role of this installation's.

        Created (or its password renewed) through the source DSN; when that user may not
        create roles, the DSN's own user, said in the log.
        """
        import hashlib

        from jobs.adapters import source_db
        from lite import credentials

        role = "shoplake_ro_" + hashlib.sha256(str(self.home).encode()).hexdigest()[:8]
        folder = self.home / "secrets"
        credentials.generate(folder, ("pg_reader_password",))
        password = credentials.secret_file(folder, "pg_reader_password").read_text().strip()
        try:
            source_db.ensure_reader(self.settings.dsn, role, password)
        except ServiceUnavailable as exc:
            log.warning(
                "trino: reads the source database as %s, not a read-only role (%s)",
                pg.get("user"),
                exc,
            )
            return {
                "pg_user": str(pg.get("user") or ""),
                "pg_password": str(pg.get("password") or ""),
            }
        return {"pg_user": role, "pg_password": password}

    def command(self) -> list[str]:
        return [
            str(install_dir() / "bin" / "launcher"),
            "run",
            f"-etc-dir={self.etc}",
            f"-data-dir={self.home / 'data'}",
            f"-jvm-dir={java_home()}",
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "JAVA_HOME": str(java_home())}

    def healthy(self) -> bool:
        if not client.answering(self.settings):  # up and past its start
            return False
        # "SELECT 1" runs on the coordinator alone; a table scan needs the node to have
        # announced itself, else it fails with NO_NODES_AVAILABLE (seen right after start)
        nodes = "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'"
        try:
            rows = client.query(self.settings, nodes, timeout=10)[1]
        except ShoplakeError:
            return False
        return bool(rows) and rows[0][0] >= 1

    def ready(self) -> None:
        """Register the whole lake: partitions written while Trino was down appear now."""
        if self.settings.lake_is_s3:
            from jobs.adapters.trino_tables import register
            from jobs.bootstrap import Resources

            register(self.settings, Resources(self.settings).lake)

    def describe(self) -> str:
        pid = self.pid()
        rss = psutil.Process(pid).memory_info().rss / 2**30 if pid else 0.0
        return f"Trino {VERSION}, RSS {rss:.1f} GB"


def _query_memory(heap: str) -> str:
    """40 % of the heap for one query (Trino refuses more than the heap minus its headroom)."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    size = int(heap[:-1]) * units[heap[-1].upper()] if heap[-1].isalpha() else int(heap)
    return f"{int(size * 0.4) // 2**20}MB"
