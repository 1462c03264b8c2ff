"""A Docker engine for the compose files: one that runs already, or a dockerd of our own.

Where none answers (the machines shoplake is developed on have Debian's ``docker.io`` but
no running engine), root starts ``dockerd`` with its own data root (kept in the engine
cache, so images survive between runs), socket and pid file, and stops it by PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx

from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from lite.services.base import Service
from lite.services.engines import cache_dir

SYSTEM_SOCKET = Path("/var/run/docker.sock")


def ping(socket: Path) -> bool:
    """True when a Docker engine answers on ``socket``."""
    try:
        transport = httpx.HTTPTransport(uds=str(socket))
        with httpx.Client(transport=transport, timeout=3) as client:
            return client.get("http://docker/_ping").text == "OK"
    except (httpx.HTTPError, OSError):
        return False


def running_engine() -> str | None:
    """``DOCKER_HOST`` of an engine that answers already (a laptop's Docker), if any."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        if host.startswith("unix://"):
            return host if ping(Path(host.removeprefix("unix://"))) else None
        return host  # tcp:// or ssh://: trusted as the user set it
    if SYSTEM_SOCKET.exists() and ping(SYSTEM_SOCKET):
        return f"unix://{SYSTEM_SOCKET}"
    return None


@contextlib.contextmanager
def engine_for(settings: Settings) -> Iterator[str]:
    """DOCKER_HOST of an engine while the block runs: one that answers, else our own dockerd.

    Ours is started here (root only; ServiceUnavailable otherwise) and stopped by PID after.
    """
    found = running_engine()
    if found:
        yield found
        return
    own = DockerEngine(settings)
    own.start()
    try:
        yield own.url
    finally:
        own.stop()


class DockerEngine(Service):
    """``dockerd`` on a socket of its own (root only)."""

    name = "docker"
    start_timeout = 60.0
    engine_pid_files = ("dockerd.pid",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # a socket path must stay short (sun_path): a folder of its own under /run
        key = hashlib.sha256(str(settings.data_path).encode()).hexdigest()[:8]
        self.run_dir = Path("/run") / f"shoplake-docker-{key}"
        self.socket = self.run_dir / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def marker(self) -> str:
        return str(self.socket)

    def data_root(self) -> Path:
        return cache_dir() / "docker"

    def command(self) -> list[str]:
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        return [
            dockerd,
            *("--data-root", str(self.data_root())),
            *("--exec-root", str(self.run_dir / "exec")),
            *("--pidfile", str(self.home / "dockerd.pid")),
            *("--host", self.url),
        ]

    def prepare(self) -> None:
        if os.geteuid() != 0:
            raise ServiceUnavailable(
                "starting a Docker engine needs root; start Docker yourself (or join the "
                "docker group) and set DOCKER_HOST"
            )
        if not (shutil.which("dockerd") or Path("/usr/sbin/dockerd").exists()):
            raise ServiceUnavailable("no dockerd: apt-get install docker.io (make system-deps)")
        self.run_dir.mkdir(mode=0o700, exist_ok=True)
        self.data_root().mkdir(parents=True, exist_ok=True)

    def healthy(self) -> bool:
        return ping(self.socket)

    def describe(self) -> str:
        return f"dockerd, data root {self.data_root()}"
