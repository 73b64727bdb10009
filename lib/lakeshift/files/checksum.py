"""Streaming checksums: CRC32C (default, hardware-accelerated via google-crc32c), MD5, SHA-256.

Example:
    >>> h = new_hasher("crc32c")
    >>> h.update(b"123456789")
    >>> h.hexdigest()
    'e3069283'
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from lakeshift.errors import UsageError

ALGORITHMS = ("crc32c", "md5", "sha256")


class Hasher(Protocol):
    """A streaming checksum."""

    def update(self, data: bytes) -> None:
        """Feed ``data``."""
        ...

    def hexdigest(self) -> str:
        """The checksum of everything fed so far, as lowercase hex."""
        ...


class _Crc32c:
    """CRC32C (Castagnoli) as used by GCS and HDFS's COMPOSITE_CRC."""

    def __init__(self) -> None:
        import google_crc32c

        self._extend = google_crc32c.extend
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = self._extend(self._crc, data)

    def hexdigest(self) -> str:
        return f"{self._crc:08x}"


class _Hashlib:
    def __init__(self, name: str) -> None:
        self._h = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hasher for ``algorithm`` (one of :data:`ALGORITHMS`).

    Raises:
        UsageError: unknown algorithm.
    """
    if algorithm == "crc32c":
        return _Crc32c()
    if algorithm in ("md5", "sha256"):
        return _Hashlib(algorithm)
    raise UsageError(f"--checksum: expected one of {list(ALGORITHMS)}, found {algorithm!r}")
