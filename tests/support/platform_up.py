"""Driving ``shoplake up`` as a user does: free ports, its environment, its "up" line, cleanup."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def copy_worktree(root: Path, target: Path) -> None:
    """Copy the files of ``root``'s working tree that git tracks or would track into ``target``."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    for name in filter(None, names):
        src = root / os.fsdecode(name)
        if src.is_file():
            (target / src.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / src.relative_to(root))


def up_env(data: Path | None, base: dict[str, str] | None = None, **ports: int) -> dict[str, str]:
    """The environment of an ``up`` under test: its data dir and free ports, nothing inherited.

    ``data`` None keeps the default (``.shoplake`` in the folder ``up`` runs in); ``ports``
    are Settings fields ending in ``_port`` (``pg_port=...``); ``redis`` is a URL.
    """
    # PYTEST_* would switch NiceGUI into its own screen-test mode; TELEGRAM_* would send alerts
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("SHOPLAKE_", "PYTEST_", "TELEGRAM_"))
    }
    if data is not None:
        env["SHOPLAKE_DATA_DIR"] = str(data)
    redis = ports.pop("redis", None)
    if redis is not None:
        env["SHOPLAKE_REDIS_URL"] = f"redis://127.0.0.1:{redis}/0"
    env.update({f"SHOPLAKE_{name.upper()}": str(port) for name, port in ports.items()})
    return env


def wait_until_up(up: subprocess.Popen, log: Path, timeout: float) -> str:
    """Wait for ``up``'s "shoplake is up" line; its log so far."""
    deadline = time.monotonic() + timeout
    while "shoplake is up" not in log.read_text():
        assert up.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    return log.read_text()


def assert_nothing_left(doomed: set[int], data: Path) -> None:
    """No process of the platform runs on, and no pid file stays in its data dir."""
    time.sleep(0.5)
    left = [
        p
        for p in doomed
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, [psutil.Process(p).cmdline() for p in left]
    assert not list(data.rglob("*.pid")), list(data.rglob("*.pid"))


def kill_platform(up: subprocess.Popen, data: Path) -> None:
    """After a failed test: SIGKILL ``up``, its children and its services (their own sessions).

    Only what this run started: ``up``'s descendants and the PIDs in its data dir's pid
    files, each with the session it leads (Airflow's components).
    """
    pids = {up.pid}
    with contextlib.suppress(psutil.Error):
        pids |= {p.pid for p in psutil.Process(up.pid).children(recursive=True)}
    for pid_file in data.glob("**/*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pids.add(int(pid_file.read_text().split()[0]))
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getsid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        up.wait(10)


def pg_dsn(data: Path, port: int, dbname: str = "shoplake") -> str:
    """The DSN of an ``up``'s native PostgreSQL, with the password its first start generated."""
    from urllib.parse import quote

    secret = (data / "secrets" / "shoplake_pg_password").read_text().strip()
    return f"postgresql://shoplake:{quote(secret, safe='')}@127.0.0.1:{port}/{dbname}"


# where secrets are kept on purpose (owner-only stores a server must read them from)
SECRET_STORES = (
    "secrets/",
    "services/redis/redis.conf",
    "services/trino/etc/catalog/",
    "services/trino/secrets/",
    "services/connect/secrets/",
    "services/airflow/simple_auth_manager_passwords.json.generated",
)


def installation_secrets(data: Path) -> dict[str, str]:
    """Every secret an ``up`` generated in ``data``: its passwords and Airflow's admin's."""
    import json

    found = {p.name: p.read_text().strip() for p in (data / "secrets").iterdir()}
    airflow = data / "services" / "airflow" / "simple_auth_manager_passwords.json.generated"
    if airflow.exists():
        found |= {f"airflow:{u}": pw for u, pw in json.loads(airflow.read_text()).items()}
    return {k: v for k, v in found.items() if v}


def files_holding(data: Path, texts: list[str], secrets: dict[str, str]) -> list[str]:
    """``name in place`` for each secret found in a file of ``data`` outside SECRET_STORES
    (logs, configs, Kafka topics, checkpoints: everything) or in one of ``texts``."""
    from urllib.parse import quote

    needles = {
        name: {value.encode(), quote(value, safe="").encode()} for name, value in secrets.items()
    }
    hits = []
    for path in sorted(data.rglob("*")):
        rel = path.relative_to(data).as_posix()
        if not path.is_file() or path.is_symlink() or rel.startswith(SECRET_STORES):
            continue
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        hits += [f"{name} in {rel}" for name, vs in needles.items() if any(v in blob for v in vs)]
    for i, text in enumerate(texts):
        hits += [
            f"{name} in output #{i}"
            for name, vs in needles.items()
            if any(v.decode() in text for v in vs)
        ]
    return hits
