"""Streaming checksums: CRC32C (default, hardware-accelerated via google-crc32c), MD5, SHA-256.

Hashers take any bytes-like object, including a ``memoryview`` of a reused ``bytearray`` (the
copy loop reads into one buffer per thread and never allocates per chunk). CRC32C calls the
SSE4.2 routine of the ``libcrc32c`` that google-crc32c ships through :mod:`ctypes`, which
releases the GIL and needs no copy of the buffer; where that library cannot be found it falls
back to ``google_crc32c.extend`` (one copy per chunk).

Range-split copies hash each part separately; :func:`crc32c_combine` turns the parts' CRCs into
the whole file's CRC32C (the same value as one pass over the file), and :func:`composite` gives
MD5 / SHA-256 copies a deterministic "digest of the parts' digests".

Example:
    >>> h = new_hasher("crc32c")
    >>> h.update(b"123456789")
    >>> h.hexdigest()
    'e3069283'
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import os
from collections.abc import Callable
from typing import Protocol

from lakeshift.errors import UsageError

ALGORITHMS = ("crc32c", "md5", "sha256")

Buffer = bytes | bytearray | memoryview


class Hasher(Protocol):
    """A streaming checksum."""

    def update(self, data: Buffer) -> None:
        """Feed ``data``."""
        ...

    def hexdigest(self) -> str:
        """The checksum of everything fed so far, as lowercase hex."""
        ...


_NATIVE: Callable[[int, object, int], int] | None = None
_NATIVE_TRIED = False


def _native() -> Callable[[int, object, int], int] | None:
    """``crc32c_extend(crc, pointer, n)`` from google-crc32c's bundled library, or ``None``."""
    global _NATIVE, _NATIVE_TRIED  # noqa: PLW0603
    if _NATIVE_TRIED:
        return _NATIVE
    _NATIVE_TRIED = True
    try:
        import google_crc32c

        base = os.path.dirname(os.path.dirname(google_crc32c.__file__))
        pattern = os.path.join(base, "google_crc32c.libs", "libcrc32c*.so*")
        for path in sorted(glob.glob(pattern)):
            fn = ctypes.CDLL(path).crc32c_extend
            fn.restype = ctypes.c_uint32
            fn.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
            if fn(0, b"123456789", 9) == 0xE3069283:
                _NATIVE = fn
                break
    except (ImportError, OSError, AttributeError):
        _NATIVE = None
    return _NATIVE


class _Crc32c:
    """CRC32C (Castagnoli) as used by GCS and HDFS's COMPOSITE_CRC."""

    def __init__(self) -> None:
        import google_crc32c

        self._extend = google_crc32c.extend
        self._native = _native()
        self._crc = 0

    def update(self, data: Buffer) -> None:
        if isinstance(data, bytes):
            self._crc = self._extend(self._crc, data)
            return
        n = memoryview(data).nbytes
        if not n:
            return
        if self._native is not None and not memoryview(data).readonly:
            ptr = (ctypes.c_char * n).from_buffer(data)
            self._crc = self._native(self._crc, ptr, n)
        else:
            self._crc = self._extend(self._crc, bytes(data))

    @property
    def value(self) -> int:
        """The CRC so far as an integer."""
        return self._crc

    def hexdigest(self) -> str:
        return f"{self._crc:08x}"


class _Hashlib:
    def __init__(self, name: str) -> None:
        self._h = hashlib.new(name)

    def update(self, data: Buffer) -> None:
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


_POLY = 0x82F63B78  # CRC32C, reflected


def _gf2_times(mat: list[int], vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC32C of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)`` (zlib's method).

    Example:
        >>> a, b = new_hasher("crc32c"), new_hasher("crc32c")
        >>> a.update(b"12345"); b.update(b"6789")
        >>> f"{crc32c_combine(int(a.hexdigest(), 16), int(b.hexdigest(), 16), 4):08x}"
        'e3069283'
    """
    if len2 <= 0:
        return crc1
    op = [_POLY] + [1 << n for n in range(31)]  # the operator for one zero bit
    op = _gf2_square(_gf2_square(op))  # four zero bits
    while len2:  # apply len(B) zero bytes to crc(A), one bit of len(B) at a time
        op = _gf2_square(op)  # 1, 2, 4, ... zero bytes
        if len2 & 1:
            crc1 = _gf2_times(op, crc1)
        len2 >>= 1
    return crc1 ^ crc2


def combine(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """The file checksum from its parts' ``(hexdigest, length)`` in order.

    CRC32C parts combine to the exact whole-file CRC32C. MD5 and SHA-256 cannot be combined:
    their file checksum becomes ``<hash of the concatenated part digests>-<parts>`` (the shape
    of S3's multipart ETag), still deterministic for a given part size.
    """
    if len(parts) == 1:
        return parts[0][0]
    if algorithm == "crc32c":
        crc = int(parts[0][0], 16)
        for digest, length in parts[1:]:
            crc = crc32c_combine(crc, int(digest, 16), length)
        return f"{crc:08x}"
    h = hashlib.new(algorithm)
    for digest, _ in parts:
        h.update(bytes.fromhex(digest))
    return f"{h.hexdigest()}-{len(parts)}"
