"""The lake on S3 (MinIO, path-style): buckets bronze/silver/gold on one endpoint."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from jobs.adapters.lake.base import Lake, spill_dir
from jobs.adapters.lake.duck import load_httpfs, sql_literal
from jobs.adapters.lake.layout import STAGING_PREFIX
from jobs.errors import ServiceUnavailable
from jobs.settings import LAKE_BUCKETS, Settings

CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}
TIMEOUT_S = 10


def minio_client(
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
    *,
    timeout: float = TIMEOUT_S,
    retries: int = 2,
) -> Minio:
    """The one MinIO-protocol client (the lake's, and the S3 service's probe and buckets).

    Path-style on ``endpoint_url``, bounded in time so an unreachable endpoint fails in
    seconds, not minutes; ``retries`` retries on 500/502/503 (a probe takes none).
    """
    parsed = urlparse(endpoint_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ServiceUnavailable(f"S3 endpoint '{endpoint_url}' is not an http(s) URL")
    retry = (
        urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503])
        if retries
        else urllib3.Retry(total=0)
    )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(3.0, timeout), read=timeout),
        retries=retry,
        maxsize=8,
    )
    return Minio(
        parsed.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parsed.scheme == "https",
        region=region,
        http_client=http,
    )


class S3Lake(Lake):
    """Objects ``s3://<bucket>/<key>``; each PUT (or completed multipart upload) is atomic."""

    kind = "s3"

    def __init__(
        self, endpoint_url: str, access_key: str, secret_key: str, region: str = "us-east-1"
    ) -> None:
        self.client = minio_client(endpoint_url, access_key, secret_key, region)
        parsed = urlparse(endpoint_url)
        self.endpoint_url = endpoint_url.rstrip("/")
        self.secure = parsed.scheme == "https"
        self.host = parsed.netloc
        self.region = region
        self._access_key = access_key
        self._secret_key = secret_key

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Lake:
        return cls(
            settings.s3_endpoint_url,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_region,
        )

    def __repr__(self) -> str:  # never the secret
        return f"S3Lake({self.endpoint_url!r})"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn transport and credential failures into one clear, secret-free line."""
        try:
            yield
        except S3Error as exc:
            if exc.code in CREDENTIAL_ERRORS:
                raise ServiceUnavailable(
                    f"S3 at {self.endpoint_url} refused the credentials ({exc.code}): "
                    "check SHOPLAKE_S3_ACCESS_KEY / SHOPLAKE_S3_SECRET_KEY"
                ) from None
            if exc.code == "NoSuchBucket":
                raise ServiceUnavailable(
                    f"S3 at {self.endpoint_url} has no bucket '{exc.bucket_name}'"
                ) from None
            raise
        except FileNotFoundError:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ServiceUnavailable(
                f"S3 at {self.endpoint_url} is unreachable ({type(exc).__name__})"
            ) from None

    def uri(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        with self._errors():
            self.client.put_object(bucket, key, io.BytesIO(data), len(data))

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self._errors():
            try:
                resp = self.client.get_object(bucket, key)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    raise FileNotFoundError(f"{bucket}/{key}") from None
                raise
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def exists(self, bucket: str, key: str) -> bool:
        with self._errors():
            try:
                self.client.stat_object(bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return False
                raise
            return True

    def modified(self, bucket: str, key: str) -> dt.datetime | None:
        with self._errors():
            try:
                stat = self.client.stat_object(bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return None
                raise
        when = stat.last_modified
        if when is None:
            return None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        with self._errors():
            objs = self.client.list_objects(bucket, prefix=prefix or None, recursive=True)
            return sorted(o.object_name for o in objs if o.object_name and not o.is_dir)

    def delete(self, bucket: str, key: str) -> None:
        with self._errors():
            self.client.remove_object(bucket, key)

    # a step's outputs are staged on local disk and uploaded once complete (see lake.base)
    def _staged_path(self, bucket: str, staged_key: str) -> Path:
        return Path(spill_dir(), "staging", bucket, staged_key)

    def stage_uri(self, bucket: str, staged_key: str) -> str:
        path = self._staged_path(bucket, staged_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def put_staged(self, bucket: str, staged_key: str, data: bytes) -> None:
        Path(self.stage_uri(bucket, staged_key)).write_bytes(data)

    def publish(self, bucket: str, staged_key: str, key: str) -> None:
        path = self._staged_path(bucket, staged_key)
        with self._errors():
            self.client.fput_object(bucket, key, str(path))
        self.discard(bucket, staged_key)

    def discard(self, bucket: str, staged_key: str) -> None:
        """Remove a staged file and the folders of its run it leaves empty. The folders above
        the runs' stay: another run may be creating its own beneath them."""
        path = self._staged_path(bucket, staged_key)
        path.unlink(missing_ok=True)
        runs = self._staged_path(bucket, STAGING_PREFIX)
        for folder in path.parents:
            if runs not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty (another output of the run), or gone
                break

    def promote(self, bucket: str, src_key: str, dst_key: str) -> None:
        with self._errors():
            # server-side, so the bytes never travel back through this process; the
            # client switches to a multipart copy above S3's 5 GiB single-copy limit
            self.client.copy_object(bucket, dst_key, CopySource(bucket, src_key))
            self.client.remove_object(bucket, src_key)

    def check(self) -> None:
        with self._errors():
            for bucket in LAKE_BUCKETS:
                if not self.client.bucket_exists(bucket):
                    self.client.make_bucket(bucket)

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        load_httpfs(con)
        con.execute(f"SET http_timeout = {TIMEOUT_S}")
        con.execute("SET http_retries = 2")
        # values are escaped literals; the statement itself is never logged
        con.execute(
            "CREATE OR REPLACE SECRET shoplake_lake (TYPE s3, "
            f"KEY_ID '{sql_literal(self._access_key)}', "
            f"SECRET '{sql_literal(self._secret_key)}', "
            f"REGION '{sql_literal(self.region)}', "
            f"ENDPOINT '{sql_literal(self.host)}', "
            f"URL_STYLE 'path', USE_SSL {'true' if self.secure else 'false'})"
        )
