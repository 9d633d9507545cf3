"""The storage interface and its factory: the backend comes from settings (a folder path or s3://bucket/prefix)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: datetime


class Storage(Protocol):
    """Immutable blobs by key. `put_file` is atomic: a reader sees the whole blob or nothing."""

    def put_file(self, key: str, path: Path) -> None: ...

    def open(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...

    def describe(self) -> str: ...


def archive_key(sha256: str) -> str:
    # Two-character fan-out keeps folder listings short on a local disk with many packs.
    return f"archives/{sha256[:2]}/{sha256}.zip"


def wheel_key(sha256: str, filename: str) -> str:
    return f"wheels/{sha256[:2]}/{sha256}/{filename}"


def make_storage(url: str) -> Storage:
    """`s3://bucket/prefix` → S3Storage (endpoint and credentials from the AWS environment); else a folder."""
    if url.startswith("s3://"):
        from hearth.registry_server.storage.s3 import S3Storage

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"storage URL {url!r} names no bucket; use s3://BUCKET/PREFIX")
        return S3Storage(bucket, prefix)
    from hearth.registry_server.storage.local import LocalStorage

    return LocalStorage(Path(url.removeprefix("file://")))


def download_to_temp(storage: Storage, key: str, directory: Path, suffix: str = "") -> Path:
    """Copy a blob to a private temporary file (for verification and wheel building)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"blob-{os.getpid()}-", suffix=suffix, dir=directory)
    with os.fdopen(fd, "wb") as out:
        for chunk in storage.open(key):
            out.write(chunk)
    return Path(name)
