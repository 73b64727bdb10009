"""``lakeshift scan``: one pass over a source tree, folded into a compact JSON profile.

The listing is the one ``lakeshift files`` copies from (:func:`lakeshift.sources.fs.list_tree`),
run once per top-level folder (remote stores: a thread pool; local trees: walked folder by
folder by :func:`fold_local` in worker processes), each folder's result kept in a state folder as
soon as it is finished so a re-run lists only the folders left. Everything between the listing
and the profile is a pure fold:

* :func:`fold_folder` — the entries of one top-level folder into a :class:`FolderScan`
  (files and bytes per size bucket, and per folder: counts, small files, a digest);
* :func:`build_profile` — the folder scans of a whole scan into the profile dict;
* :func:`diff_digests` and :func:`change_rate` — two profiles' digests into the observed
  change rate.

Change detection (``--since``): the profile keeps, per folder (the parent folder of files),
its file count, byte sum and a digest — the sum modulo 2**64 of a 64-bit BLAKE2b of each
file's ``(name, size, mtime)`` (order-free, and unlike XOR two equal terms do not cancel) —
plus the per-file ``[size, mtime_ns]`` entries of folders with at most
:data:`ENTRIES_PER_FOLDER` files, up to :data:`ENTRIES_PER_TOP` entries per top-level folder
and :data:`ENTRIES_TOTAL` per scan (top-level folders finishing past it keep digests only).
A folder whose count, sum and digest are unchanged is unchanged. A changed folder with entries
on both sides is diffed file by file (exact); one without is counted from its count and byte
deltas (a lower bound, reported as ``approximate_folders``).

Example:
    >>> from lakeshift.sources.fs import FileEntry
    >>> f = fold_folder([FileEntry("a/x", 10, 1), FileEntry("a/y", 2048, 1)], "top", 1024)
    >>> f.files, f.bytes, f.bucket_files[:2], f.folders["top/a"].small_files
    (2, 2058, [1, 1], 1)
"""

from __future__ import annotations

import bisect
import hashlib
import json
import multiprocessing
import multiprocessing.context
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lakeshift.errors import SourceError, UsageError
from lakeshift.files.progress import Progress
from lakeshift.sources.fs import (
    FileEntry,
    Location,
    child,
    list_level,
    list_tree,
    local_folders,
    resolve,
    stat,
)

KiB, MiB, GiB = 2**10, 2**20, 2**30
# upper bounds (exclusive) of the first seven buckets; the eighth is >= 10 GiB
BUCKET_EDGES = (KiB, 64 * KiB, MiB, 16 * MiB, 128 * MiB, GiB, 10 * GiB)
BUCKET_LABELS = (
    "<1 KiB",
    "1 KiB-64 KiB",
    "64 KiB-1 MiB",
    "1-16 MiB",
    "16-128 MiB",
    "128 MiB-1 GiB",
    "1-10 GiB",
    ">=10 GiB",
)
ENTRIES_PER_FOLDER = 1000
ENTRIES_PER_TOP = 100_000
ENTRIES_TOTAL = 500_000
TOP_SMALL = 50
PROFILE_VERSION = 1
_MASK = 2**64 - 1


def bucket_of(size: int) -> int:
    """The size bucket (0-7) of a file of ``size`` bytes; a bucket's lower bound is inside it.

    Example:
        >>> bucket_of(1023), bucket_of(1024), bucket_of(10 * 2**30)
        (0, 1, 7)
    """
    return bisect.bisect_right(BUCKET_EDGES, size)


def file_digest(name: str, size: int, mtime_ns: int) -> int:
    """64-bit BLAKE2b of one file's ``(name, size, mtime)``."""
    raw = f"{name}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


@dataclass
class FolderStats:
    """One folder's own files (not its subfolders').

    Attributes:
        files: files directly in the folder.
        bytes: their bytes.
        small_files: those smaller than the small-file size.
        small_bytes: their bytes.
        digest: sum modulo 2**64 of :func:`file_digest` over the files.
        entries: ``name -> (size, mtime_ns)``, or ``None`` once past the caps.
    """

    files: int = 0
    bytes: int = 0
    small_files: int = 0
    small_bytes: int = 0
    digest: int = 0
    entries: dict[str, tuple[int, int]] | None = field(default_factory=dict)

    def to_json(self) -> list[Any]:
        """Compact form: ``[files, bytes, small_files, small_bytes, digest_hex, entries]``.

        The entries are the dict itself, ``name -> (size, mtime_ns)`` (JSON writes the tuples
        as ``[size, mtime_ns]``; nothing is copied per file).
        """
        return [
            self.files,
            self.bytes,
            self.small_files,
            self.small_bytes,
            f"{self.digest:016x}",
            self.entries,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> FolderStats:
        """Inverse of :meth:`to_json`."""
        files, nbytes, small, small_bytes, digest, entries = row
        return cls(
            files,
            nbytes,
            small,
            small_bytes,
            int(digest, 16),
            None if entries is None else {k: (int(v[0]), int(v[1])) for k, v in entries.items()},
        )


@dataclass
class FolderScan:
    """The scan of one top-level folder (``name``; ``""`` for the files at the root itself).

    Attributes:
        name: the top-level folder below the source root.
        files: files below it (all depths).
        bytes: their bytes.
        bucket_files: files per size bucket (:data:`BUCKET_LABELS`).
        bucket_bytes: bytes per size bucket.
        folders: per folder holding files (path below the source root) its :class:`FolderStats`.
        started_at: when its listing started (seconds since the epoch).
        seconds: how long listing and folding took.
    """

    name: str
    files: int = 0
    bytes: int = 0
    bucket_files: list[int] = field(default_factory=lambda: [0] * len(BUCKET_LABELS))
    bucket_bytes: list[int] = field(default_factory=lambda: [0] * len(BUCKET_LABELS))
    folders: dict[str, FolderStats] = field(default_factory=dict)
    started_at: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The state-file form."""
        return {
            "name": self.name,
            "files": self.files,
            "bytes": self.bytes,
            "bucket_files": self.bucket_files,
            "bucket_bytes": self.bucket_bytes,
            "folders": {k: v.to_json() for k, v in sorted(self.folders.items())},
            "started_at": self.started_at,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FolderScan:
        """Inverse of :meth:`to_json`."""
        return cls(
            name=data["name"],
            files=int(data["files"]),
            bytes=int(data["bytes"]),
            bucket_files=[int(x) for x in data["bucket_files"]],
            bucket_bytes=[int(x) for x in data["bucket_bytes"]],
            folders={k: FolderStats.from_json(v) for k, v in data["folders"].items()},
            started_at=float(data["started_at"]),
            seconds=float(data["seconds"]),
        )


def entry_count(scan: FolderScan) -> int:
    """Per-file entries a folder scan keeps."""
    return sum(len(st.entries) for st in scan.folders.values() if st.entries is not None)


def drop_entries(scan: FolderScan) -> None:
    """Keep digests only (past the scan's entry budget)."""
    for st in scan.folders.values():
        st.entries = None


def fold_folder(
    entries: Iterable[FileEntry],
    name: str,
    small_file_size: int,
    *,
    entries_per_folder: int = ENTRIES_PER_FOLDER,
    entries_per_top: int = ENTRIES_PER_TOP,
) -> FolderScan:
    """Fold the listing of top-level folder ``name`` (entries relative to it) into a scan.

    Folders are skipped (only files count); ``name=""`` folds files relative to the root.
    Memory is bounded by the number of folders plus ``entries_per_top`` entries.
    """
    out = FolderScan(name)
    kept = 0
    for e in entries:
        if e.is_dir or e.kind:
            continue
        parent, _, base = e.rel.rpartition("/")
        key = "/".join(p for p in (name, parent) if p)
        st = out.folders.get(key)
        if st is None:
            st = out.folders[key] = FolderStats()
        b = bucket_of(e.size)
        out.files += 1
        out.bytes += e.size
        out.bucket_files[b] += 1
        out.bucket_bytes[b] += e.size
        st.files += 1
        st.bytes += e.size
        if e.size < small_file_size:
            st.small_files += 1
            st.small_bytes += e.size
        st.digest = (st.digest + file_digest(base, e.size, e.mtime_ns)) & _MASK
        if st.entries is not None:
            if len(st.entries) >= entries_per_folder or kept >= entries_per_top:
                kept -= len(st.entries)
                st.entries = None
            else:
                st.entries[base] = (e.size, e.mtime_ns)
                kept += 1
    return out


def fold_local(
    root: str,
    name: str,
    small_file_size: int,
    *,
    entries_per_folder: int = ENTRIES_PER_FOLDER,
    entries_per_top: int = ENTRIES_PER_TOP,
) -> FolderScan:
    """:func:`fold_folder` of local folder ``root/name``, walked folder by folder.

    The same scan as ``fold_folder(list_tree(...), name, ...)`` (the per-folder figures and
    digests are equal; entries are kept for whole folders, in walk order, while the top-level
    folder's budget lasts), about twice as fast: :func:`lakeshift.sources.fs.local_folders`
    yields each folder's files at once, so the per-file work is one ``stat`` and a few
    additions.
    """
    out = FolderScan(name)
    bucket_files, bucket_bytes = out.bucket_files, out.bucket_bytes
    edges, bisect_right = BUCKET_EDGES, bisect.bisect_right
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    kept = 0
    folder_root = os.path.join(root, name) if name else root
    for rel, files in local_folders(folder_root):
        if not files:
            continue
        digest = nbytes = small = small_bytes = 0
        for fname, size, mtime_ns in files:
            b = bisect_right(edges, size)
            bucket_files[b] += 1
            bucket_bytes[b] += size
            nbytes += size
            if size < small_file_size:
                small += 1
                small_bytes += size
            raw = f"{fname}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape")
            digest += from_bytes(blake2b(raw, digest_size=8).digest(), "big")
        n = len(files)
        entries: dict[str, tuple[int, int]] | None = None
        if n <= entries_per_folder and kept + n <= entries_per_top:
            entries = {f: (sz, mt) for f, sz, mt in files}
            kept += n
        key = f"{name}/{rel}" if name and rel else name or rel
        out.folders[key] = FolderStats(n, nbytes, small, small_bytes, digest & _MASK, entries)
        out.files += n
        out.bytes += nbytes
    return out


# ---- change rate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeCounts:
    """What changed between two scans' folder digests.

    Attributes:
        new_files: files present now, not before (bytes: their size now).
        changed_files: files present in both with another size or mtime (bytes: size now).
        deleted_files: files present before, gone now (bytes: their size before).
        changed_sizes: sizes now of the new and changed files known file by file.
        approximate_folders: changed folders counted from their count/byte deltas only.
    """

    new_files: int = 0
    new_bytes: int = 0
    changed_files: int = 0
    changed_bytes: int = 0
    deleted_files: int = 0
    deleted_bytes: int = 0
    changed_sizes: tuple[int, ...] = ()
    approximate_folders: int = 0


def diff_digests(
    before: Mapping[str, FolderStats], after: Mapping[str, FolderStats]
) -> ChangeCounts:
    """Compare two scans' folders (see the module docstring for exact vs approximate)."""
    new = new_b = chg = chg_b = dele = dele_b = approx = 0
    sizes: list[int] = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if (
            a is not None
            and b is not None
            and (a.files, a.bytes, a.digest)
            == (
                b.files,
                b.bytes,
                b.digest,
            )
        ):
            continue
        if a is None and b is not None:  # a new folder: all its files are new
            new += b.files
            new_b += b.bytes
            if b.entries is not None:
                sizes += [s for s, _ in b.entries.values()]
            else:
                approx += 1
            continue
        if b is None and a is not None:
            dele += a.files
            dele_b += a.bytes
            continue
        assert a is not None and b is not None
        if a.entries is not None and b.entries is not None:
            for fname, (size, mtime) in b.entries.items():
                old = a.entries.get(fname)
                if old is None:
                    new += 1
                    new_b += size
                    sizes.append(size)
                elif old != (size, mtime):
                    chg += 1
                    chg_b += size
                    sizes.append(size)
            for fname, (size, _) in a.entries.items():
                if fname not in b.entries:
                    dele += 1
                    dele_b += size
            continue
        approx += 1
        dn, db = b.files - a.files, b.bytes - a.bytes
        if dn > 0:
            new, new_b = new + dn, new_b + max(db, 0)
        elif dn < 0:
            dele, dele_b = dele - dn, dele_b + max(-db, 0)
        else:  # same count, other bytes or digest: at least one file rewritten
            chg, chg_b = chg + 1, chg_b + max(abs(db), b.bytes // max(b.files, 1))
    return ChangeCounts(new, new_b, chg, chg_b, dele, dele_b, tuple(sizes), approx)


def change_rate(counts: ChangeCounts, seconds: float) -> dict[str, Any]:
    """The observed change rate over ``seconds`` between two scans.

    ``events_per_s`` counts files to copy again (new + changed) and ``deletes_per_s`` files
    to remove; ``bytes_per_s`` is the bytes to copy again per second. ``median_changed_size``
    is over the new and changed files known file by file (``None`` when none).

    Raises:
        UsageError: ``seconds`` is not positive (the earlier profile is not earlier).
    """
    if seconds <= 0:
        raise UsageError(
            f"--since: expected a profile scanned before this one, found {seconds:.0f} s later"
        )
    copied = counts.new_files + counts.changed_files
    copied_b = counts.new_bytes + counts.changed_bytes
    return {
        "seconds": seconds,
        "new_files": counts.new_files,
        "new_bytes": counts.new_bytes,
        "changed_files": counts.changed_files,
        "changed_bytes": counts.changed_bytes,
        "deleted_files": counts.deleted_files,
        "deleted_bytes": counts.deleted_bytes,
        "events_per_s": copied / seconds,
        "deletes_per_s": counts.deleted_files / seconds,
        "bytes_per_s": copied_b / seconds,
        "deleted_bytes_per_s": counts.deleted_bytes / seconds,
        "median_changed_size": (
            statistics.median(counts.changed_sizes) if counts.changed_sizes else None
        ),
        "approximate_folders": counts.approximate_folders,
    }


# ---- the profile ----------------------------------------------------------------------------


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def unit_label(source: str, name: str, multi: bool) -> str:
    """How a top-level prefix is named in the profile (``""`` is the root's own files)."""
    if not multi:
        return name
    return source.rstrip("/") + ("/" + name if name else "")


def build_profile(
    scans: Mapping[str, list[FolderScan]],
    *,
    small_file_size: int,
    finished_at: float,
    since: Mapping[str, Any] | None = None,
    top_small: int = TOP_SMALL,
) -> dict[str, Any]:
    """The profile of a scan: ``scans`` maps each source URI to its folder scans.

    ``scanned_at`` is when the earliest folder's listing started (a resumed scan keeps the
    times of the folders it took from its state). ``since``: an earlier profile; adds
    ``change``.
    """
    multi = len(scans) > 1
    n = len(BUCKET_LABELS)
    bfiles, bbytes = [0] * n, [0] * n
    prefixes: list[dict[str, Any]] = []
    small: list[tuple[int, int, str, int]] = []
    digests: dict[str, dict[str, Any]] = {}
    starts: list[float] = []
    for source, units in scans.items():
        digests[source] = {}
        for u in units:
            starts.append(u.started_at)
            for i in range(n):
                bfiles[i] += u.bucket_files[i]
                bbytes[i] += u.bucket_bytes[i]
            if u.files:  # an empty folder is no prefix (and does not exist on S3)
                prefixes.append(
                    {
                        "prefix": unit_label(source, u.name, multi),
                        "files": u.files,
                        "bytes": u.bytes,
                    }
                )
            for key, st in u.folders.items():
                digests[source][key] = st.to_json()
                if st.small_files:
                    small.append(
                        (st.small_files, st.small_bytes, unit_label(source, key, multi), st.files)
                    )
    total_f, total_b = sum(bfiles), sum(bbytes)
    buckets = [
        {
            "label": BUCKET_LABELS[i],
            "min": 0 if i == 0 else BUCKET_EDGES[i - 1],
            "max": BUCKET_EDGES[i] if i < len(BUCKET_EDGES) else None,
            "files": bfiles[i],
            "bytes": bbytes[i],
            "files_share": _share(bfiles[i], total_f),
            "bytes_share": _share(bbytes[i], total_b),
        }
        for i in range(n)
    ]
    prefixes.sort(key=lambda p: (-p["files"], p["prefix"]))
    small.sort(key=lambda s: (-s[0], -s[1], s[2]))
    scanned_at = min(starts) if starts else finished_at
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "sources": list(scans),
        "scanned_at": _iso(scanned_at),
        "scanned_at_epoch": scanned_at,
        "finished_at": _iso(finished_at),
        "small_file_size": small_file_size,
        "totals": {
            "files": total_f,
            "bytes": total_b,
            "folders": sum(len(d) for d in digests.values()),
            "prefixes": len(prefixes),
            "max_prefix_files": prefixes[0]["files"] if prefixes else 0,
        },
        "buckets": buckets,
        "small_files": {
            "threshold": small_file_size,
            "files": sum(s[0] for s in small),
            "bytes": sum(s[1] for s in small),
            "top_folders": [
                {"folder": f, "small_files": c, "small_bytes": b, "files": t}
                for c, b, f, t in small[:top_small]
            ],
        },
        "prefixes": prefixes,
    }
    if since is not None:
        profile["change"] = compare(since, profile, digests)
    profile["digests"] = digests
    return profile


def compare(
    before: Mapping[str, Any], after: Mapping[str, Any], digests: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``change`` section: ``after``'s folders against profile ``before``'s."""
    then = float(before["scanned_at_epoch"])
    now = float(after["scanned_at_epoch"])
    cur = digests if digests is not None else after["digests"]
    prev = before.get("digests", {})
    a = {f"{s}\n{k}": FolderStats.from_json(v) for s, d in prev.items() for k, v in d.items()}
    b = {f"{s}\n{k}": FolderStats.from_json(v) for s, d in cur.items() for k, v in d.items()}
    out = change_rate(diff_digests(a, b), now - then)
    out["since"] = before["scanned_at"]
    return out


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def load_profile(path: str, what: str = "--since") -> dict[str, Any]:
    """Read a profile file written by ``lakeshift scan``.

    Raises:
        UsageError: missing, not JSON, or not a scan profile.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{what}: no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what}: not a JSON scan profile ({exc}): {path}") from exc
    if not isinstance(data, dict) or data.get("version") != PROFILE_VERSION or "totals" not in data:
        raise UsageError(
            f"{what}: not a lakeshift scan profile (version {PROFILE_VERSION}): {path}"
        )
    return data


# ---- the scan itself (I/O) -----------------------------------------------------------------


@dataclass
class ScanResult:
    """What :func:`run_scan` did.

    Attributes:
        profile: the profile (``None`` when ``max_folders`` left folders to do).
        listed: top-level folders listed by this run (``SOURCE/NAME``).
        resumed: top-level folders taken from the state folder.
        left: folders still to list (``max_folders`` reached).
    """

    profile: dict[str, Any] | None
    listed: list[str]
    resumed: list[str]
    left: int = 0


class ScanState:
    """A folder of finished top-level folder scans, one JSON file each (atomic writes)."""

    def __init__(self, path: str, params: Mapping[str, Any]) -> None:
        self.path = path
        self.units = os.path.join(path, "folders")
        os.makedirs(self.units, exist_ok=True)
        meta = os.path.join(path, "scan.json")
        if os.path.exists(meta):
            with open(meta, encoding="utf-8") as f:
                old = json.load(f)
            if old != dict(params):
                raise UsageError(
                    f"--state: {path} holds a scan of {old.get('sources')} with small-file size "
                    f"{old.get('small_file_size')}; use another folder (or delete it)"
                )
        else:
            self._write(meta, dict(params))

    @staticmethod
    def file_name(source: str, name: str) -> str:
        """The state file of one top-level folder."""
        return hashlib.sha1(f"{source}\n{name}".encode()).hexdigest()[:20] + ".json"

    def load(self, source: str, name: str) -> FolderScan | None:
        """The finished scan of a folder, or ``None``."""
        try:
            with open(
                os.path.join(self.units, self.file_name(source, name)), encoding="utf-8"
            ) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a torn file cannot exist (atomic rename); anything else: list again
        return FolderScan.from_json(data) if data.get("source") == source else None

    def save(self, source: str, scan: FolderScan) -> None:
        """Keep a finished folder."""
        self._write(
            os.path.join(self.units, self.file_name(source, scan.name)),
            {"source": source, **scan.to_json()},
        )

    @staticmethod
    def _write(path: str, data: Mapping[str, Any]) -> None:
        tmp = f"{path}.tmp{threading.get_ident()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)


def _top_level(loc: Location) -> tuple[list[str], list[FileEntry]]:
    try:
        level = list(list_level(loc))
    except SourceError as exc:  # the source named on the command line is wrong
        raise UsageError(str(exc)) from exc
    return [e.rel for e in level if e.is_dir], [e for e in level if not e.is_dir]


def _fork_context() -> multiprocessing.context.BaseContext:
    """``fork`` where it exists (workers start at once, nothing re-imported); else the default."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return multiprocessing.get_context()


def _scan_local(root: str, name: str, small_file_size: int) -> FolderScan:
    """Fold local top-level folder ``root/name`` (run in a worker process or a thread)."""
    started = time.time()
    t0 = time.monotonic()
    try:
        scan = fold_local(root, name, small_file_size)
    except SourceError:
        if os.path.lexists(os.path.join(root, name)):
            raise
        scan = FolderScan(name)  # removed since the top level was listed: nothing there
    scan.started_at, scan.seconds = started, time.monotonic() - t0
    return scan


def run_scan(
    sources: list[str],
    *,
    small_file_size: int = 32 * MiB,
    state: str | None = None,
    since: Mapping[str, Any] | None = None,
    threads: int = 8,
    max_folders: int | None = None,
    resolve_source: Callable[[str], Location] = resolve,
    progress: bool = False,
    progress_every_s: float = 5.0,
    entries_total: int = ENTRIES_TOTAL,
) -> ScanResult:
    """Scan ``sources``: list each top-level folder once (``threads`` at a time) and fold.

    Args:
        sources: URIs or local paths.
        small_file_size: files below this size count as small.
        state: a local folder keeping finished folders; a re-run skips them.
        since: an earlier profile, for the change rate.
        threads: folders listed at once.
        max_folders: list at most this many folders in this run (the rest stays to do).
        resolve_source: URI -> location (S3 options bound by the caller).
        progress: show progress on stderr (folders done, bytes so far, ETA).
        progress_every_s: seconds between plain progress lines (stderr not a terminal).
        entries_total: per-file entries kept in all (top-level folders finishing past it keep
            digests only; the state keeps what each folder had).

    Raises:
        UsageError: a source is missing or has no filesystem; the state folder belongs to
            another scan.
        SourceError: a folder could not be listed (after every other folder was listed and,
            with ``state``, kept).
    """
    locs = {s: resolve_source(s) for s in sources}
    tops = {s: _top_level(loc) for s, loc in locs.items()}
    store = (
        ScanState(state, {"sources": sources, "small_file_size": small_file_size})
        if state
        else None
    )
    scans: dict[str, list[FolderScan]] = {s: [] for s in sources}
    todo: list[tuple[str, str]] = []
    resumed: list[str] = []
    budget = [entries_total]

    def keep(source: str, scan: FolderScan) -> None:
        n = entry_count(scan)
        if n > budget[0]:
            drop_entries(scan)
        else:
            budget[0] -= n
        scans[source].append(scan)

    for s, (dirs, files) in tops.items():
        if files:  # the root's own files: already listed
            root = fold_folder(files, "", small_file_size)
            root.started_at = time.time()
            keep(s, root)
        for d in dirs:
            done = store.load(s, d) if store else None
            if done is not None:
                keep(s, done)
                resumed.append(unit_label(s, d, True))
            else:
                todo.append((s, d))
    total = len(resumed) + len(todo)
    left = 0
    if max_folders is not None and len(todo) > max_folders:
        todo, left = todo[:max_folders], len(todo) - max_folders
    lock = threading.Lock()
    counters = [len(resumed), sum(u.bytes for us in scans.values() for u in us)]

    def finished_one(source: str, scan: FolderScan) -> FolderScan:
        if store:
            store.save(source, scan)
        with lock:
            counters[0] += 1
            counters[1] += scan.bytes
        return scan

    def one(source: str, name: str) -> FolderScan:
        loc = locs[source]
        if loc.kind == "local":
            return finished_one(source, _scan_local(loc.root, name, small_file_size))
        started = time.time()
        t0 = time.monotonic()
        try:
            scan = fold_folder(list_tree(child(loc, name)), name, small_file_size)
        except SourceError:
            if stat(loc, name) is not None:
                raise
            scan = FolderScan(name)  # removed since the top level was listed: nothing there
        scan.started_at, scan.seconds = started, time.monotonic() - t0
        return finished_one(source, scan)

    def poll() -> tuple[int, int]:
        with lock:
            return counters[0], counters[1]

    bar = Progress(
        total, 0, enabled=progress, every_s=progress_every_s, label="lakeshift scan", unit="folders"
    )
    finished = threading.Event()
    t_start = time.monotonic()
    drawer = threading.Thread(target=bar.follow, args=(poll, finished), daemon=True)
    listed: list[str] = []
    failed: list[SourceError] = []
    # local folders are folded in processes (the walk and the fold are Python: one core each);
    # remote listings wait on the network and share threads
    local = [(s, d) for s, d in todo if locs[s].kind == "local"]
    procs = min(max(1, threads), os.cpu_count() or 1, len(local))
    if procs < 2:
        local = []
    in_procs = set(local)
    remote = [u for u in todo if u not in in_procs]
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="scan")
    ppool = ProcessPoolExecutor(procs, mp_context=_fork_context()) if local else None
    try:
        futures: dict[Future[FolderScan], tuple[str, str, bool]] = {}
        if ppool is not None:  # submitted first: the workers fork before any thread starts
            for s, d in local:
                f = ppool.submit(_scan_local, locs[s].root, d, small_file_size)
                futures[f] = (s, d, True)
        drawer.start()
        for s, d in remote:
            futures[pool.submit(one, s, d)] = (s, d, False)
        for fut in as_completed(futures):
            s, d, in_process = futures[fut]
            try:
                scan = fut.result()
                keep(s, finished_one(s, scan) if in_process else scan)
            except SourceError as exc:  # keep going: every other folder is still worth having
                failed.append(exc)
                continue
            listed.append(unit_label(s, d, True))
    finally:  # on an error or Ctrl-C: finish the folders being listed (kept), drop the rest
        pool.shutdown(wait=True, cancel_futures=True)
        if ppool is not None:
            ppool.shutdown(wait=True, cancel_futures=True)
        finished.set()
        if drawer.ident is not None:
            drawer.join()
        if bar.enabled and not sys.stderr.isatty():  # the last line, however short the scan
            done_n, done_b = poll()
            print(
                f"{bar.label}: " + bar.line(done_n, done_b, time.monotonic() - t_start),
                file=sys.stderr,
            )
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise SourceError(f"{len(failed)} folders could not be listed; the first: {failed[0]}")
    if left:
        return ScanResult(None, sorted(listed), sorted(resumed), left)
    for units in scans.values():
        units.sort(key=lambda u: u.name)
    profile = build_profile(
        scans, small_file_size=small_file_size, finished_at=time.time(), since=since
    )
    return ScanResult(profile, sorted(listed), sorted(resumed))


def summary_lines(profile: Mapping[str, Any], top: int = 5) -> list[str]:
    """A short human summary of a profile."""
    from lakeshift.config import human_bytes

    t = profile["totals"]
    lines = [
        f"scanned {', '.join(profile['sources'])} at {profile['scanned_at']}: "
        f"{t['files']} files, {human_bytes(t['bytes'])} in {t['folders']} folders, "
        f"{t['prefixes']} top-level prefixes",
        f"  {'size':<14} {'files':>10} {'files%':>7} {'bytes':>11} {'bytes%':>7}",
    ]
    for b in profile["buckets"]:
        lines.append(
            f"  {b['label']:<14} {b['files']:>10} {100 * b['files_share']:>6.1f}% "
            f"{human_bytes(b['bytes']):>11} {100 * b['bytes_share']:>6.1f}%"
        )
    sm = profile["small_files"]
    lines.append(
        f"small files (< {human_bytes(sm['threshold'])}): {sm['files']} "
        f"({human_bytes(sm['bytes'])}); most in:"
    )
    for f in sm["top_folders"][:top]:
        lines.append(f"  {f['folder'] or '(top level)'}: {f['small_files']} of {f['files']} files")
    lines.append("objects per top-level prefix (busiest first):")
    for p in profile["prefixes"][:top]:
        lines.append(f"  {p['prefix'] or '(top level)'}: {p['files']} ({human_bytes(p['bytes'])})")
    ch = profile.get("change")
    if ch:
        median = ch["median_changed_size"]
        lines.append(
            f"change since {ch['since']} ({ch['seconds']:.0f} s): {ch['new_files']} new, "
            f"{ch['changed_files']} changed, {ch['deleted_files']} deleted; "
            f"{ch['events_per_s']:.3g} files/s, {human_bytes(ch['bytes_per_s'])}/s, median "
            f"changed size {human_bytes(median) if median is not None else '-'}"
            + (
                f" ({ch['approximate_folders']} folders approximate)"
                if ch["approximate_folders"]
                else ""
            )
        )
    return lines
