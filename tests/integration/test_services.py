"""The native service manager against the real PostgreSQL and S3 servers."""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import psutil
import psycopg
import pytest
from minio.error import S3Error
from pydantic import SecretStr

from jobs.errors import ServiceUnavailable, UsageError
from jobs.settings import LAKE_BUCKETS, Settings, without_password
from lite.services import manager, proc
from lite.services.postgres import Postgres
from lite.services.s3 import client
from tests.conftest import USE_DOCKER, settings_for_tests

pytestmark = pytest.mark.integration
native_only = pytest.mark.skipif(USE_DOCKER, reason="manages native services")
# the lite data services; Airflow has its own test (tests/integration/test_airflow_service.py)
CORE = ["postgres", "s3", "redis"]


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Settings]:
    """A private pair of services (own data dir and ports), stopped whatever happens."""
    # a short path: the PostgreSQL socket lives in the data dir
    pg_port, s3_port, console_port, redis_port = _free_ports(4)
    settings = settings_for_tests(
        data_dir=Path(f"/tmp/slt-{os.getpid()}-{tmp_path.name[-6:]}"),
        pg_port=pg_port,
        s3_port=s3_port,
        s3_console_port=console_port,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
    )
    yield settings
    manager.stop(settings, None)
    shutil.rmtree(settings.data_dir, ignore_errors=True)


def _free_ports(n: int) -> list[int]:
    """Ports free right now, so parallel runs of this file do not collide."""
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def _pids(statuses: list[manager.ServiceStatus]) -> dict[str, int]:
    return {st.name: st.pid for st in statuses if st.pid}


@native_only
def test_start_status_restart_stop(own: Settings) -> None:
    started = manager.start(own, CORE)
    assert [st.name for st in started] == CORE
    assert all(st.running for st in started), [st.line() for st in started]
    pids = _pids(started)
    assert set(pids) == set(CORE)
    if os.geteuid() == 0:  # PostgreSQL refuses root: it must run as the service user
        assert psutil.Process(pids["postgres"]).username() == "shoplake"

    status = manager.status(own, CORE)
    assert _pids(status) == pids and all(st.running for st in status)
    assert "wal_level=logical" in status[0].detail

    again = manager.start(own, CORE)  # idempotent: same processes, nothing new
    assert _pids(again) == pids and all("already running" in st.detail for st in again)

    stopped = manager.stop(own, None)
    assert not any(st.running for st in stopped)
    for pid in pids.values():
        assert not proc.alive(pid), f"pid {pid} still running after stop"
    assert not proc.port_open("127.0.0.1", own.pg_port)
    assert not proc.port_open("127.0.0.1", own.s3_port)
    assert not any(st.running for st in manager.status(own, CORE))
    assert all("not running" in st.detail for st in manager.stop(own, None))


@native_only
def test_data_survives_restart(own: Settings) -> None:
    manager.start(own, ["postgres", "s3"])
    with psycopg.connect(own.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    client(own).put_object("bronze", "kept/one.txt", io.BytesIO(b"hello"), 5)
    manager.stop(own, None)

    manager.start(own, ["postgres", "s3"])
    with psycopg.connect(own.dsn) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    assert client(own).get_object("bronze", "kept/one.txt").read() == b"hello"


@native_only
def test_stale_pid_files_are_detected(own: Settings) -> None:
    pg = Postgres(own)
    pg.home.mkdir(parents=True, exist_ok=True)
    dead = psutil.Popen(["true"])
    dead.wait()
    pg.pid_file.write_text(f"{dead.pid}\n")  # a dead PID
    assert not manager.status(own, ["postgres"])[0].running
    assert not pg.pid_file.exists()

    pg.pid_file.write_text(f"{os.getpid()}\n")  # a live PID that is not our server
    st = manager.status(own, ["postgres"])[0]
    assert not st.running and "stale" in st.detail
    assert manager.start(own, ["postgres"])[0].running


@native_only
def test_failed_start_shows_the_log_tail(own: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Postgres.command
    monkeypatch.setattr(
        Postgres, "command", lambda self: [*original(self), "-c", "shared_buffers=nonsense"]
    )
    with pytest.raises(ServiceUnavailable, match="exited during start-up") as err:
        manager.start(own, ["postgres"])
    assert "shared_buffers" in str(err.value)  # the server's own complaint, from its log
    assert not Postgres(own).pid_file.exists()


@native_only
def test_busy_port_is_a_clear_error(own: Settings) -> None:
    with socket.socket() as squatter:
        # earlier tests leave TIME_WAIT connections on this port
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", own.pg_port))
        squatter.listen()
        with pytest.raises(ServiceUnavailable, match="already in use"):
            manager.start(own, ["postgres"])


def test_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown service"):
        manager.start(settings_for_tests(data_dir=tmp_path), ["postgres", "nosuch"])


def test_external_servers_are_not_managed(tmp_path: Path) -> None:
    settings = settings_for_tests(
        data_dir=tmp_path,
        source_dsn="postgresql://u@127.0.0.1:1/x",
        s3_endpoint="http://127.0.0.1:1",
        redis_url="redis://redis.invalid:6379/0",
    )
    for st in manager.start(settings, CORE):
        assert st.detail == "external" and st.pid is None and not st.running
    assert not (tmp_path / "services").exists()


def test_services_fixture_has_logical_wal_and_buckets(services_settings: Settings) -> None:
    with psycopg.connect(services_settings.dsn) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        slots = conn.execute("SHOW max_replication_slots").fetchone()
        assert slots is not None and int(slots[0]) >= 10
    buckets = {b.name for b in client(services_settings).list_buckets()}
    assert set(LAKE_BUCKETS) <= buckets


def test_wrong_s3_secret_is_refused(services_settings: Settings) -> None:
    wrong = services_settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    with pytest.raises(S3Error) as err:
        client(wrong).list_buckets()
    assert err.value.code in {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}
    if not USE_DOCKER:
        # the running server is found by PID; the health probe names the real problem
        with pytest.raises(ServiceUnavailable, match="refuses the configured credentials"):
            manager.start(wrong, ["s3"])
        assert manager.status(services_settings, ["s3"])[0].running  # and it was left alone


def test_pg_settings_gives_a_fresh_database(pg_settings: Settings) -> None:
    with psycopg.connect(pg_settings.dsn) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert name is not None and name[0].startswith("t_")
        assert tables.fetchone() == (0,)


def test_s3_settings_empties_the_buckets(s3_settings: Settings) -> None:
    for bucket in LAKE_BUCKETS:
        assert not list(client(s3_settings).list_objects(bucket, recursive=True))


def _refused_without_password(settings: Settings) -> None:
    import redis

    for host in ("127.0.0.1", str(settings.data_path / "services" / "postgres" / "data")):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(
                host=host,
                port=settings.pg_port,
                user="shoplake",
                dbname="postgres",
                connect_timeout=3,
            ).close()
    bare = redis.Redis(host="127.0.0.1", port=urlparse(settings.redis_url).port or 6379)
    with pytest.raises(redis.AuthenticationError):
        bare.ping()
    bare.close()


@native_only
def test_local_servers_require_the_installation_passwords(own: Settings) -> None:
    """Any local user could enter a trust-authenticated superuser server (COPY ... TO PROGRAM)
    or a password-less Redis: both now need per-installation secrets, kept owner-only."""
    started = manager.start(own, ["postgres", "redis"])
    if os.geteuid() == 0:  # as root, neither server runs as root
        import pwd

        service_uid = pwd.getpwnam("shoplake").pw_uid
        for st in started:
            assert st.pid and psutil.Process(st.pid).uids().effective == service_uid, st.name
    secrets = own.data_path / "secrets"
    assert secrets.stat().st_mode & 0o777 == 0o700
    for name in ("shoplake_pg_password", "shoplake_redis_password"):
        assert (secrets / name).stat().st_mode & 0o777 == 0o600
    _refused_without_password(own)
    # the settings every later process builds read the same secrets
    again = settings_for_tests(
        data_dir=own.data_dir, pg_port=own.pg_port, redis_url=without_password(own.redis_url)
    )
    with psycopg.connect(again.dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("shoplake",)
    import redis

    assert redis.Redis.from_url(again.redis_url).ping()


@native_only
def test_an_old_trust_cluster_gets_passwords_at_its_next_start(own: Settings) -> None:
    manager.start(own, ["postgres"])
    manager.stop(own, ["postgres"])
    data = own.data_path / "services" / "postgres" / "data"
    hba = data / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))  # as shoplake < 0.14
    (own.data_path / "secrets" / "shoplake_pg_password").unlink()
    fresh = settings_for_tests(data_dir=own.data_dir, pg_port=own.pg_port, redis_url=own.redis_url)
    assert fresh.pg_password is None
    manager.start(fresh, ["postgres"])
    assert fresh.pg_password is not None  # generated, and set in the cluster
    with psycopg.connect(fresh.dsn) as conn:
        conn.execute("SELECT 1")
    assert "trust" not in "".join(
        line.split()[-1]
        for line in hba.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    _refused_postgres = own.model_copy(update={"pg_password": None})
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(_refused_postgres.dsn, connect_timeout=3).close()


@native_only
def test_the_data_dir_is_private(own: Settings) -> None:
    """Logs, configs and secrets live in the data dir: nobody else may even traverse it."""
    own.data_path.mkdir(mode=0o755)
    own.data_path.chmod(0o755)  # as an earlier shoplake left it (default umask)
    manager.start(own, ["redis"])
    assert own.data_path.stat().st_mode & 0o777 == 0o700


def test_duckdb_spills_to_a_private_folder_of_its_own() -> None:
    from jobs.adapters.lake.base import spill_dir

    path = Path(spill_dir())
    assert path.stat().st_mode & 0o777 == 0o700 and path.owner() == Path.home().owner()
    assert path.name.startswith("shoplake-duckdb-") and path.name != "shoplake-duckdb"
