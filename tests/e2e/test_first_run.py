"""A user's first run: a clone in a private (0700) folder, ``make install``, ``shoplake up``.

As root the clone sits in a root-owned 0700 folder, the shape of ``/root``: PostgreSQL
must run as its own user without opening that folder to anyone. As an ordinary user the
clone sits in a 0700 home with an empty engine cache (only the MinIO binary is copied in:
building it takes minutes and is not what is tested), so Airflow's venv is installed from
the lock as that user. Each run goes to a live dashboard, then SIGTERM stops everything.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from lite.services import unprivileged
from lite.services.engines import bin_dir as engine_bin_dir
from tests.support.platform_up import (
    assert_nothing_left,
    copy_worktree,
    free_ports,
    kill_platform,
    up_env,
    wait_until_up,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEST_USER = "shoplake-e2e"
# a cold first start installs Airflow's venv, migrates its database, seeds, trains
UP_TIMEOUT_S = 900
INSTALL_TIMEOUT_S = 900
IS_ROOT = os.geteuid() == 0


@dataclass
class User:
    """Whom the first run is for: the OS identity, its environment and its private folder."""

    home: Path  # the 0700 folder the clone goes in
    name: str | None = None  # None: ourselves
    env: dict[str, str] = field(default_factory=dict)

    def popen_args(self) -> dict[str, Any]:
        return unprivileged.identity(self.name)

    def chown(self, path: Path) -> None:
        if self.name is not None:
            unprivileged.chown_tree(path, pwd.getpwnam(self.name))


def clone_worktree(target: Path) -> None:
    """``git clone`` of this checkout, with the working tree's files (committed or not)."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    copy_worktree(ROOT, target)


def modes_above(path: Path, stop: Path) -> dict[Path, int]:
    """The permission bits of ``path`` and its parents up to ``stop``."""
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents] if p >= stop}


@contextlib.contextmanager
def private_root_folder() -> Iterator[User]:
    """A root-owned 0700 folder, like /root."""
    home = Path(tempfile.mkdtemp(prefix="shoplake-root-home-"))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    try:
        yield User(home, env=dict(os.environ))
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def ordinary_user() -> Iterator[User]:
    """An ordinary user with a 0700 home: a new OS user as root, else ourselves elsewhere."""
    base = Path(tempfile.mkdtemp(prefix="shoplake-user-"))
    base.chmod(0o755)
    home = base / "home"
    name: str | None = None
    try:
        if IS_ROOT:
            name = TEST_USER
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                subprocess.run(["userdel", name], check=False, timeout=30)
            subprocess.run(
                [
                    *("useradd", "--user-group", "--create-home", "--home-dir", str(home)),
                    *("--shell", "/bin/sh", name),
                ],
                check=True,
                timeout=30,
            )
        else:
            home.mkdir()
        home.chmod(0o700)
        env = {
            "HOME": str(home),
            "USER": name or pwd.getpwuid(os.getuid()).pw_name,
            "LOGNAME": name or pwd.getpwuid(os.getuid()).pw_name,
            "LANG": "C.UTF-8",
            # no pyenv, Go or certificate variables: what a login shell has
            "PATH": "/usr/local/bin:/usr/bin:/bin",
        }
        user = User(home, name, env)
        seed_minio(user)
        yield user
    finally:
        if name is not None:
            uid = pwd.getpwnam(name).pw_uid
            for p in psutil.process_iter():
                with contextlib.suppress(psutil.Error):
                    if p.uids().real == uid:
                        p.kill()  # only after a failure: a passing run leaves nothing
            subprocess.run(["userdel", name], check=False, timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def seed_minio(user: User) -> None:
    """Copy our MinIO build into the user's engine cache (building it takes minutes)."""
    built = engine_bin_dir()
    if not (built / "minio").exists():
        return  # the SeaweedFS fallback needs no build
    target = user.home / ".cache" / "shoplake" / "bin"
    target.mkdir(parents=True)
    for name in ("minio", "minio.version"):
        shutil.copy2(built / name, target / name)
    user.chown(user.home / ".cache")


def run_as(user: User, cmd: list[str], cwd: Path, log: Path, timeout: float) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=user.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
            **user.popen_args(),
        )
    assert done.returncode == 0, log.read_text()[-4000:]


def first_run(user: User, log: Path) -> None:
    """Clone, ``make install``, ``shoplake up`` to a live dashboard, SIGTERM, nothing left."""
    clone = user.home / "shoplake"
    clone_worktree(clone)
    user.chown(clone)
    modes_before = modes_above(clone, user.home)
    t0 = time.monotonic()
    run_as(user, ["make", "install"], clone, log, INSTALL_TIMEOUT_S)
    installed_s = time.monotonic() - t0

    pg, s3, console, redis_port, dash, api, airflow = free_ports(7)
    env = up_env(
        None,  # the default data dir: .shoplake inside the private clone
        base=user.env,
        pg_port=pg,
        s3_port=s3,
        s3_console_port=console,
        redis=redis_port,
        airflow_port=airflow,
    )
    with log.open("ab") as out:
        up = subprocess.Popen(
            [
                *(str(clone / ".venv" / "bin" / "shoplake"), "up", "--seed-if-empty"),
                *("--catch-up-days", "10", "--dashboard-port", str(dash), "--api-port", str(api)),
            ],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **user.popen_args(),
        )
    data = clone / ".shoplake"
    try:
        wait_until_up(up, log, UP_TIMEOUT_S)
        up_s = time.monotonic() - t0 - installed_s
        print(f"first run: make install {installed_s:.0f} s, up {up_s:.0f} s")
        # live: the dashboard has received today's metrics through Redis pub/sub
        deadline = time.monotonic() + 180
        while (health := httpx.get(f"http://127.0.0.1:{dash}/health", timeout=10).json())[
            "version"
        ] < 1:
            assert time.monotonic() < deadline, health
            time.sleep(1)
        assert health["status"] == "ok" and health["mode"] == "live", health
        recommended = httpx.get(f"http://127.0.0.1:{api}/health", timeout=10)
        assert recommended.status_code == 200, recommended.text

        postmaster = int((data / "services" / "postgres" / "postgres.pid").read_text())
        check_server_identity(postmaster, user)
        me = psutil.Process(up.pid)
        doomed = {p.pid for p in me.children(recursive=True)}
        doomed |= {int(p.read_text()) for p in (data / "services").glob("*/*.pid")}
        up.send_signal(signal.SIGTERM)
        assert up.wait(180) == 0, log.read_text()[-4000:]
    finally:
        if up.poll() is None:
            kill_platform(up, data)
    assert_nothing_left(doomed, data)
    # nothing of the private folder was opened to others on the way
    assert modes_above(clone, user.home) == modes_before
    assert stat.S_IMODE(user.home.stat().st_mode) == 0o700


def check_server_identity(postmaster: int, user: User) -> None:
    """PostgreSQL runs as the user, or as its own user and group when root runs ``up``."""
    status = Path(f"/proc/{postmaster}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uids, gids = set(fields["Uid"].split()), set(fields["Gid"].split())
    runner = pwd.getpwnam(user.name) if user.name else pwd.getpwuid(os.getuid())
    if runner.pw_uid != 0:
        assert uids == {str(runner.pw_uid)}, fields["Uid"]
        return
    service = pwd.getpwnam(unprivileged.SERVICE_USER)
    assert uids == {str(service.pw_uid)}, fields["Uid"]
    assert gids == {str(service.pw_gid)} and service.pw_gid != 0, fields["Gid"]
    assert fields["Groups"].split() == [], fields["Groups"]
    data = Path(psutil.Process(postmaster).cmdline()[2])
    assert not data.is_relative_to(user.home), data


@pytest.mark.skipif(not IS_ROOT, reason="a root-owned 0700 folder needs root")
def test_first_run_as_root_from_a_private_folder(tmp_path: Path) -> None:
    with private_root_folder() as user:
        first_run(user, tmp_path / "first-run.log")


def test_first_run_as_an_ordinary_user_with_a_private_home(tmp_path: Path) -> None:
    log = tmp_path / "first-run.log"
    with ordinary_user() as user:
        first_run(user, log)
