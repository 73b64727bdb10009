"""SQL identifiers from document field paths: flatten, sanitise, truncate, de-duplicate.

The rule, applied to every table and column name:

1. path segments are joined with ``_`` (``customer.address.city`` → ``customer_address_city``);
2. every character that is not a letter, digit or ``_`` (``.``, ``$``, spaces, characters outside
   the Basic Multilingual Plane, which MySQL rejects) becomes ``_``; letters keep their case
   (identifiers are always quoted in DDL);
3. a name longer than the target's limit (PostgreSQL 63 bytes, MySQL/MariaDB 64 characters) is
   cut at a character boundary and ends in ``_`` + 8 hex digits of the SHA-1 of the full
   original path, so the same path always gets the same name;
4. a name already taken in the same table (compared case-insensitively, as MySQL does) gets the
   same hash suffix; if that still collides, the suffix is taken from the hash of
   ``path#n`` for n = 1, 2, ….

Example:
    >>> names = NameAllocator(max_bytes=63)
    >>> names.allocate("customer.email")
    'customer_email'
    >>> names.allocate("customer_email")
    'customer_email_fdb2f3ad'
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^\w]", re.UNICODE)
POSTGRES_MAX_BYTES = 63
MYSQL_MAX_CHARS = 64


def path_hash(path: str) -> str:
    """8 hex digits of the SHA-1 of ``path`` (stable across runs and machines)."""
    return hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def sanitise(name: str) -> str:
    """Replace characters unsafe in identifiers by ``_`` (see the module docstring)."""
    out = _UNSAFE.sub("_", name)
    out = "".join(c if ord(c) <= 0xFFFF else "_" for c in out)
    return out or "_"


def _cut(name: str, max_bytes: int, max_chars: int) -> str:
    out = name[:max_chars]
    while len(out.encode("utf-8")) > max_bytes:
        out = out[:-1]
    return out


def fit(
    name: str, path: str, max_bytes: int, max_chars: int = 10**6, force_hash: bool = False
) -> str:
    """``name`` within the limits; cut and hash-suffixed when too long or when ``force_hash``."""
    if not force_hash and len(name) <= max_chars and len(name.encode("utf-8")) <= max_bytes:
        return name
    suffix = "_" + path_hash(path)
    return _cut(name, max_bytes - len(suffix), max_chars - len(suffix)) + suffix


class NameAllocator:
    """Collision-safe names within one table (or one schema, for table names)."""

    def __init__(
        self, max_bytes: int = POSTGRES_MAX_BYTES, max_chars: int = MYSQL_MAX_CHARS
    ) -> None:
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self._taken: set[str] = set()

    def reserve(self, name: str) -> None:
        """Mark ``name`` as used."""
        self._taken.add(name.lower())

    def allocate(self, path: str, preferred: str | None = None) -> str:
        """A unique, sanitised, length-safe name for ``path`` (or for ``preferred`` if given)."""
        base = sanitise(preferred if preferred is not None else path.replace(".", "_"))
        name = fit(base, path, self.max_bytes, self.max_chars)
        n = 0
        while name.lower() in self._taken:
            key = path if n == 0 else f"{path}#{n}"
            name = fit(base, key, self.max_bytes, self.max_chars, force_hash=True)
            n += 1
        self._taken.add(name.lower())
        return name
