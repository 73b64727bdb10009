"""Pure planning logic of a copy: globs, chunking, fingerprints, rewrites, file-count estimates.

Nothing here touches Spark or a filesystem, so every rule is unit-testable on plain data.

Example:
    >>> files = [FileEntry(f"/lake/t/dt=1/f{i}", f"dt=1/f{i}", 400) for i in range(5)]
    >>> [c.bytes for c in plan_chunks(files, chunk_size=1000)]
    [800, 400, 800]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from lakeshift.errors import ConfigError


@dataclass(frozen=True, order=True)
class FileEntry:
    """One input file.

    Attributes:
        path: the full URI, as the reader gets it.
        rel: the path relative to the source root, ``/``-separated (``dt=2026-01-01/part-0``).
        size: bytes.
    """

    path: str
    rel: str
    size: int

    @property
    def partition_dir(self) -> str:
        """The relative folder of the file (``dt=2026-01-01/h=3``), ``""`` at the root."""
        head, _, _ = self.rel.rpartition("/")
        return head


def partition_values(rel: str) -> dict[str, str]:
    """Hive-style ``key=value`` folders of a relative path, in order (values URL-unescaped).

    Example:
        >>> partition_values("dt=2026-01-01/city=New%20York/part-0.parquet")
        {'dt': '2026-01-01', 'city': 'New York'}
    """
    out: dict[str, str] = {}
    for part in rel.split("/")[:-1]:
        key, sep, value = part.partition("=")
        if sep and key:
            out[unquote(key)] = unquote(value)
    return out


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a path glob: ``*`` and ``?`` stay within one folder, ``**`` crosses folders.

    ``[abc]``/``[!abc]`` classes and ``{a,b}`` alternatives are supported. A leading ``/`` is
    ignored (globs are relative to the source root).

    Raises:
        ValueError: unbalanced ``[`` or ``{``, or an empty pattern.
    """
    text = pattern.strip().lstrip("/")
    if not text:
        raise ValueError(f"empty glob {pattern!r}")
    out: list[str] = []
    i, depth = 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "*":
            if text.startswith("**", i):
                out.append(".*")
                i += 2
                if text.startswith("/", i):  # "**/" also matches zero folders
                    out[-1] = "(?:.*/)?"
                    i += 1
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = text.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unbalanced '[' in glob {pattern!r}")
            body = text[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end + 1
            continue
        elif ch == "{":
            depth += 1
            out.append("(?:")
        elif ch == "}" and depth:
            depth -= 1
            out.append(")")
        elif ch == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(ch))
        i += 1
    if depth:
        raise ValueError(f"unbalanced '{{' in glob {pattern!r}")
    return re.compile("".join(out).rstrip("/") + "$")


def glob_matches(pattern: str, rel: str) -> bool:
    """True if ``pattern`` matches ``rel`` or one of its ancestor folders.

    So ``dt=2026-01-0*`` selects whole partition folders and ``**/*.tmp`` single files.

    Example:
        >>> glob_matches("dt=2026-01-0*", "dt=2026-01-02/h=1/part-0.parquet")
        True
    """
    regex = compile_glob(pattern)
    parts = rel.split("/")
    return any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def select_files(
    files: Iterable[FileEntry], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[FileEntry]:
    """Keep files matched by any ``include`` glob (all when none) and by no ``exclude`` glob.

    The result is sorted by relative path, so plans are deterministic.
    """
    kept = [
        f
        for f in files
        if (not include or any(glob_matches(p, f.rel) for p in include))
        and not any(glob_matches(p, f.rel) for p in exclude)
    ]
    return sorted(kept, key=lambda f: (f.partition_dir, f.rel))


@dataclass(frozen=True)
class Chunk:
    """One unit of work: a run of whole partitions, or a slice of one large partition.

    Attributes:
        index: 0-based position in the plan.
        files: the input files, sorted.
    """

    index: int
    files: tuple[FileEntry, ...]

    @property
    def id(self) -> str:
        """A stable name, ``c00001`` for index 0."""
        return f"c{self.index + 1:05d}"

    @property
    def bytes(self) -> int:
        """Input bytes."""
        return sum(f.size for f in self.files)

    @property
    def partitions(self) -> list[str]:
        """The distinct partition folders the chunk reads, sorted."""
        return sorted({f.partition_dir for f in self.files})


def _split_balanced(files: Sequence[FileEntry], pieces: int) -> list[list[FileEntry]]:
    total = sum(f.size for f in files) or 1
    out: list[list[FileEntry]] = [[] for _ in range(pieces)]
    before = 0
    for f in files:
        # the piece is chosen by the file's midpoint, so pieces hold about total/pieces bytes
        mid = before + f.size / 2
        out[min(pieces - 1, int(mid * pieces / total))].append(f)
        before += f.size
    return [p for p in out if p]


def plan_chunks(
    files: Sequence[FileEntry], chunk_size: int, max_files: int = 50_000
) -> list[Chunk]:
    """Group files into chunks of at most about ``chunk_size`` input bytes.

    Whole partitions (files sharing a folder) are packed together in sorted order; a partition
    larger than ``chunk_size`` (or with more than ``max_files`` files) is split by bytes into
    ``ceil(bytes / chunk_size)`` balanced chunks, so one huge partition never becomes one huge
    task. A single file larger than ``chunk_size`` is a chunk of its own.

    Raises:
        ValueError: ``chunk_size`` or ``max_files`` is not positive.
    """
    if chunk_size <= 0 or max_files <= 0:
        raise ValueError(
            f"chunk_size and max_files must be positive, found {chunk_size}, {max_files}"
        )
    ordered = sorted(files, key=lambda f: (f.partition_dir, f.rel))
    groups: dict[str, list[FileEntry]] = {}
    for f in ordered:
        groups.setdefault(f.partition_dir, []).append(f)
    chunks: list[list[FileEntry]] = []
    current: list[FileEntry] = []
    current_bytes = 0
    for group in groups.values():
        size = sum(f.size for f in group)
        if size > chunk_size or len(group) > max_files:
            if current:
                chunks.append(current)
                current, current_bytes = [], 0
            pieces = max(math.ceil(size / chunk_size), math.ceil(len(group) / max_files))
            chunks.extend(_split_balanced(group, pieces))
            continue
        if current and (current_bytes + size > chunk_size or len(current) + len(group) > max_files):
            chunks.append(current)
            current, current_bytes = [], 0
        current.extend(group)
        current_bytes += size
    if current:
        chunks.append(current)
    return [Chunk(i, tuple(c)) for i, c in enumerate(chunks)]


def plan_fingerprint(chunks: Sequence[Chunk], settings: Mapping[str, Any]) -> str:
    """A digest of the chunk boundaries, every input file and size, and the data settings.

    Two runs with the same fingerprint copy exactly the same rows in the same chunks.
    """
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True, default=str).encode())
    for chunk in chunks:
        digest.update(f"#{chunk.index}\n".encode())
        for f in chunk.files:
            digest.update(f"{f.rel}\t{f.size}\n".encode())
    return digest.hexdigest()[:20]


def rewrite_location(location: str, rules: Sequence[tuple[str, str]]) -> str:
    """Apply the longest matching prefix rule ``(old, new)`` once; unchanged when none match.

    Example:
        >>> rewrite_location("s3://old/t", [("s3://old/", "s3a://new/")])
        's3a://new/t'
    """
    best: tuple[str, str] | None = None
    for old, new in rules:
        if location.startswith(old) and (best is None or len(old) > len(best[0])):
            best = (old, new)
    if best is None:
        return location
    return best[1] + location[len(best[0]) :]


def output_file_count(bytes_in: int, ratio: float, target_file_size: int) -> int:
    """Output files for ``bytes_in`` input bytes: ``ceil(bytes_in * ratio / target)``, at least 1.

    Example:
        >>> output_file_count(1000, 0.5, 128)
        4
    """
    return max(1, math.ceil(bytes_in * ratio / target_file_size))


def partition_file_counts(
    bytes_by_key: Mapping[str, int], ratio: float, target_file_size: int
) -> dict[str, int]:
    """Output files per output partition value, from estimated input bytes per value."""
    return {k: output_file_count(b, ratio, target_file_size) for k, b in bytes_by_key.items()}


def split_bytes(target_file_size: int, ratio: float) -> int:
    """Input bytes per read split so that one split writes about one target-sized file."""
    return max(4096, int(target_file_size / max(ratio, 1e-3)))


def data_bytes(size: int, files: int, metadata_per_file: int) -> int:
    """Input bytes that are data: ``size`` less per-file metadata (at least 5 % of ``size``).

    Example:
        >>> data_bytes(10_000, 10, 600)
        4000
    """
    return max(size // 20, size - files * metadata_per_file, 1)


def sample_evenly(items: Sequence[Any], n: int) -> list[Any]:
    """Up to ``n`` items spread evenly over ``items`` (deterministic)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def learned_ratio(bytes_in: int, bytes_out: int, fallback: float) -> float:
    """Output/input byte ratio from a written chunk, clamped to a sane range."""
    if bytes_in <= 0 or bytes_out <= 0:
        return fallback
    return min(20.0, max(0.01, bytes_out / bytes_in))


def initial_ratio(source_format: str) -> float:
    """The output/input byte ratio assumed before one is learned: columnar ~1, text ~0.25."""
    return 1.0 if source_format in ("parquet", "orc", "delta") else 0.25


def default_run_id(source: str, target: str, run_date: dt.date) -> str:
    """A run id stable for the same source, target and run date (so reruns resume).

    Example:
        >>> default_run_id("/a", "/b", dt.date(2026, 1, 2)).startswith("20260102-")
        True
    """
    digest = hashlib.sha1(f"{source}\n{target}".encode(), usedforsecurity=False).hexdigest()
    return f"{run_date:%Y%m%d}-{digest[:10]}"


def output_partition_keys(
    files: Iterable[FileEntry], partition_by: Sequence[str]
) -> dict[str, int] | None:
    r"""Input bytes per output partition value when every output column is a path partition.

    Keys join the values with ``\x01``. ``None`` when a column is not in the paths (the values
    then come from the data).
    """
    out: dict[str, int] = {}
    for f in files:
        values = partition_values(f.rel)
        if any(c not in values for c in partition_by):
            return None
        key = "\x01".join(values[c] for c in partition_by)
        out[key] = out.get(key, 0) + f.size
    return out


def path_partition_columns(files: Sequence[FileEntry]) -> list[str]:
    """Hive partition columns found in the paths, in folder order.

    Raises:
        ConfigError: files disagree on the partition columns.
    """
    columns: list[str] | None = None
    for f in files:
        keys = list(partition_values(f.rel))
        if columns is None:
            columns = keys
        elif keys != columns:
            raise ConfigError(
                f"inconsistent partition folders: expected {columns}, found {keys} in {f.rel}"
            )
    return columns or []


@dataclass
class CopyPlan:
    """The chunks of one table copy and the facts the run needs.

    Attributes:
        source: the source description (``parquet:/lake/t``).
        target: the target location (after rewrites).
        base: the source root the relative paths start from.
        chunks: the chunks, in commit order.
        source_partitions: Hive partition columns of the source.
        partition_by: target partition columns.
        fingerprint: see :func:`plan_fingerprint`.
        settings: the data-affecting settings included in the fingerprint.
    """

    source: str
    target: str
    base: str
    chunks: list[Chunk]
    source_partitions: list[str]
    partition_by: list[str]
    fingerprint: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> int:
        """Input file count."""
        return sum(len(c.files) for c in self.chunks)

    @property
    def bytes(self) -> int:
        """Input bytes."""
        return sum(c.bytes for c in self.chunks)

    def describe(self, limit: int = 50) -> str:
        """A human-readable plan (the dry-run output)."""
        lines = [
            f"plan {self.fingerprint}: {self.source} -> {self.target}",
            f"  {len(self.chunks)} chunks, {self.files} files, {self.bytes} bytes; "
            f"partition_by={self.partition_by or '[]'} settings={json.dumps(self.settings)}",
        ]
        for chunk in self.chunks[:limit]:
            parts = chunk.partitions
            shown = ", ".join(p or "<root>" for p in parts[:3]) + (" ..." if len(parts) > 3 else "")
            lines.append(
                f"  {chunk.id}: {len(chunk.files)} files, {chunk.bytes} bytes, "
                f"{len(parts)} partitions [{shown}]"
            )
        if len(self.chunks) > limit:
            lines.append(f"  ... {len(self.chunks) - limit} more chunks")
        return "\n".join(lines)


_M32 = 0xFFFFFFFF


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def spark_hash_int(value: int, seed: int = 42) -> int:
    """Spark's ``hash()`` of an INT (Murmur3 x86_32, seed 42), as a signed 32-bit int.

    Spark's hash partitioning sends a row to ``pmod(hash(key), n)``; knowing the hash lets a
    copy pick, for each output bucket, an INT key that lands in exactly that shuffle partition.

    Example:
        >>> spark_hash_int(1)
        -559580957
    """
    k1 = (value & _M32) * 0xCC9E2D51 & _M32
    k1 = _rotl32(k1, 15) * 0x1B873593 & _M32
    h1 = (seed & _M32) ^ k1
    h1 = (_rotl32(h1, 13) * 5 + 0xE6546B64) & _M32
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & _M32
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & _M32
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def bucket_keys(buckets: int) -> list[int]:
    """For each shuffle partition ``j < buckets`` the smallest INT key hashing to ``j``.

    Example:
        >>> keys = bucket_keys(4)
        >>> [spark_hash_int(k) % 4 for k in keys]
        [0, 1, 2, 3]
    """
    keys: list[int | None] = [None] * buckets
    missing, value = buckets, 0
    while missing:
        j = spark_hash_int(value) % buckets
        if keys[j] is None:
            keys[j] = value
            missing -= 1
        value += 1
    return [k for k in keys if k is not None]


def bucket_offsets(counts: Mapping[str, int]) -> dict[str, int]:
    """First bucket of each output partition value when value ``k`` owns ``counts[k]`` buckets."""
    out, offset = {}, 0
    for key in sorted(counts):
        out[key] = offset
        offset += counts[key]
    return out
