"""The lake: one interface, an S3 and a folder implementation, one layout."""

from jobs.adapters.lake.base import Lake, Staging, parquet_bytes
from jobs.adapters.lake.folder import FolderLake
from jobs.adapters.lake.s3 import S3Lake

__all__ = ["FolderLake", "Lake", "S3Lake", "Staging", "parquet_bytes"]
