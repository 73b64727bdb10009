"""Shipping the lakeshift zip and job files to where a remote cluster reads them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` → ``("bucket", "prefix/")``.

    Example:
        >>> split_s3("s3://b/code/x.zip")
        ('b', 'code/x.zip')
    """
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


class Shipper:
    """Copies files once per run to ``code_uri`` (``s3://…`` via boto3, or a local folder)."""

    def __init__(self, code_uri: str, s3_client: Any | None = None) -> None:
        self.base = code_uri.rstrip("/") + "/"
        self.s3 = s3_client
        self.done: dict[Path, str] = {}

    def ship(self, path: Path, name: str | None = None) -> str:
        """Upload ``path`` (once) and return its URI on the cluster side."""
        if path in self.done:
            return self.done[path]
        uri = self.base + (name or path.name)
        if uri.startswith(("s3://", "s3a://")):
            if self.s3 is None:
                import boto3

                self.s3 = boto3.session.Session().client("s3")
            bucket, key = split_s3(uri)
            self.s3.upload_file(str(path), bucket, key)
            uri = "s3://" + uri.split("://", 1)[1]
        elif "://" not in uri or uri.startswith("file://"):
            target = Path(uri.removeprefix("file://"))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        self.done[path] = uri
        return uri
