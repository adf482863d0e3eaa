"""The blob store on any S3-compatible server (AWS S3, MinIO, Ceph, ...), same interface as a folder.

`EYES_STORAGE_URL=s3://bucket/prefix`. The endpoint and credentials come from boto3's usual
environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`).
Uploads and downloads stream in parts: a large photo is never copied whole into memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from eyes.errors import NotFound, ServiceUnavailable

PART = 8 * 1024 * 1024


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client(
            "s3",
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
        )
        from boto3.s3.transfer import TransferConfig

        self.transfer = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, use_threads=False)

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ValueError(f"EYES_STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
        return cls(bucket, prefix)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(f"blob {args[-1] if args else ''} is missing from the store") from None
            raise ServiceUnavailable(f"the photo store answered with an error ({code}); try again") from None
        except BotoCoreError as exc:
            raise ServiceUnavailable(
                f"the photo store cannot be reached ({exc}); try again shortly"
            ) from None

    def put_file(self, key: str, path: Path) -> None:
        # upload_file streams the file in parts; S3 makes an object visible only once complete.
        self._call(self.client.upload_file, str(path), self.bucket, self._key(key), Config=self.transfer)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data)

    def open(self, key: str) -> BinaryIO:
        response = self._call(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return cast(BinaryIO, _Stream(response["Body"]))

    def exists(self, key: str) -> bool:
        try:
            self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            return False
        return True

    def modified_at(self, key: str) -> float:
        head = self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        return float(head["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self._call(
            lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)))
        ):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]


class _Stream(io.RawIOBase):
    """A file-like view of an S3 response body, read in chunks as the caller asks."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()
