"""S3-compatible storage through boto3; endpoint and credentials come from the standard AWS environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from hearth.registry_server.storage.services import BlobInfo


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", client=None):  # noqa: ANN001
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # AWS_ENDPOINT_URL is read by boto3 itself (>= 1.28); passing it explicitly also covers older setups.
        self.client = client or boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put_file(self, key: str, path: Path) -> None:
        # A single PUT (or a multipart upload completed at the end) is atomic in S3: readers never see a part.
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def open(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for obj in page.get("Contents", []):
                yield BlobInfo(obj["Key"][len(self.prefix):], obj["Size"], obj["LastModified"])

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
