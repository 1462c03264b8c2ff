"""The native S3 server: MinIO (built once from source), or SeaweedFS as the fallback."""

from __future__ import annotations

from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from jobs.errors import ServiceUnavailable
from jobs.settings import LAKE_BUCKETS, Settings
from lite.services.base import Service

# S3 error codes that mean "wrong credentials", not "not up yet"
AUTH_ERRORS = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}


def client(settings: Settings, timeout: float = 5.0) -> Minio:
    """A MinIO-protocol client for the configured endpoint, with bounded timeouts, no retries."""
    url = urlparse(settings.s3_endpoint_url)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(2.0, timeout), read=timeout),
        retries=urllib3.Retry(total=0),
    )
    return Minio(
        url.netloc,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=url.scheme == "https",
        region=settings.s3_region,
        http_client=http,
    )


def ensure_buckets(settings: Settings) -> None:
    """Create the lake buckets that do not exist yet (idempotent)."""
    s3 = client(settings, timeout=15)
    for bucket in LAKE_BUCKETS:
        if not s3.bucket_exists(bucket):
            s3.make_bucket(bucket)


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
            if exc.code in AUTH_ERRORS:
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
