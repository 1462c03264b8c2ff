"""The native S3 server: MinIO (built once from source), or SeaweedFS as the fallback."""

from __future__ import annotations

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from jobs.adapters.lake.s3 import CREDENTIAL_ERRORS, S3Lake, minio_client
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from lite.services.base import Service


def client(settings: Settings, timeout: float = 5.0) -> Minio:
    """The lake's MinIO client for the configured endpoint, without retries (a probe)."""
    return minio_client(
        settings.s3_endpoint_url,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        settings.s3_region,
        timeout=timeout,
        retries=0,
    )


def ensure_buckets(settings: Settings) -> None:
    """Create the lake buckets that do not exist yet (idempotent): the lake's own check."""
    S3Lake.from_settings(settings).check()


class S3Service(Service):
    """What every S3 server shares: the endpoint, the health probe, the buckets."""

    name = "s3"
    server = "?"
    why = ""  # why this server was chosen over MinIO, for install()

    @property
    def url(self) -> str:
        return self.settings.s3_endpoint_url

    @property
    def external(self) -> bool:
        return not self.settings.native_s3

    @property
    def marker(self) -> str:
        return (self.home / "server").read_text().strip() if (self.home / "server").exists() else ""

    def prepare(self) -> None:
        self.install()
        (self.home / "server").write_text(self.server + "\n")

    def install(self) -> str:
        """Obtain the binary (once) and say where it came from."""
        raise NotImplementedError

    def healthy(self) -> bool:
        try:
            client(self.settings, timeout=2).list_buckets()
        except S3Error as exc:
            if exc.code in CREDENTIAL_ERRORS:  # wrong credentials, not "not up yet"
                raise ServiceUnavailable(
                    f"S3 at {self.url} refuses the configured credentials ({exc.code}): "
                    "check SHOPLAKE_S3_ACCESS_KEY / SHOPLAKE_S3_SECRET_KEY"
                ) from exc
            return False
        except (MinioException, urllib3.exceptions.HTTPError, OSError):
            return False
        return True

    def ready(self) -> None:
        ensure_buckets(self.settings)

    def describe(self) -> str:
        return self.marker or self.server
