"""Pure planning: filter a listing, diff it against the manifest, group files into tasks.

Example:
    >>> tasks = plan_tasks([PlannedFile("a", 10, 0), PlannedFile("b", 10, 0)], slots=1)
    >>> [len(t.files) for t in tasks]
    [2]
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lakeshift.files.manifest import Record
from lakeshift.sources.fs import FileEntry


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A file to copy.

    Attributes:
        rel: path relative to the source root.
        size: listed size.
        mtime_ns: listed modification time.
        adopt: the target may already hold this file from an earlier (killed) run: when its size
            and checksum match the source, it is recorded as verified without copying.
    """

    rel: str
    size: int
    mtime_ns: int
    adopt: bool = False


@dataclass
class Task:
    """A group of files copied by one Spark task (byte-balanced)."""

    task_id: int
    files: list[PlannedFile] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Bytes in this task."""
        return sum(f.size for f in self.files)


@dataclass
class Diff:
    """The outcome of comparing a listing with the manifest.

    Attributes:
        to_copy: files that are new, changed, or not yet verified.
        unchanged: files verified by an earlier run with the same size and mtime (not touched).
        blacklisted: files under a live (blacklisted) folder (skipped, reported).
        excluded: count of files left out by include/exclude globs.
        gone: manifest rows whose file is no longer in the source.
        empty_dirs: source folders without any entry below them.
    """

    to_copy: list[PlannedFile] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    blacklisted: list[str] = field(default_factory=list)
    excluded: int = 0
    gone: list[str] = field(default_factory=list)
    empty_dirs: list[str] = field(default_factory=list)
    source_files: set[str] = field(default_factory=set)


def _match(rel: str, patterns: Iterable[str]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def is_selected(rel: str, include: list[str], exclude: list[str]) -> bool:
    """True when ``rel`` passes the include globs (if any) and no exclude glob."""
    if include and not _match(rel, include):
        return False
    return not (exclude and _match(rel, exclude))


def is_blacklisted(rel: str, blacklist: list[str]) -> bool:
    """True when a folder of ``rel`` (or ``rel`` itself) matches a blacklist glob."""
    if not blacklist:
        return False
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pat) for p in prefixes for pat in blacklist)


def diff(
    entries: Iterable[FileEntry],
    manifest: Mapping[str, Record],
    include: list[str],
    exclude: list[str],
    blacklist: list[str],
    *,
    adopt_all: bool = False,
) -> Diff:
    """Compare a listing with the manifest.

    A file is unchanged (not copied) when the manifest holds it as verified with the same size
    and modification time. Files the manifest has as ``queued`` or ``failed`` (an earlier run
    planned them) are copied with ``adopt`` set; ``adopt_all`` (``--update``) sets it for all.
    """
    out = Diff()
    dirs: set[str] = set()
    parents: set[str] = set()
    for e in entries:
        parent = e.rel.rsplit("/", 1)[0] if "/" in e.rel else ""
        parents.add(parent)
        if e.is_dir:
            dirs.add(e.rel)
            continue
        if not is_selected(e.rel, include, exclude):
            out.excluded += 1
            continue
        if is_blacklisted(e.rel, blacklist):
            out.blacklisted.append(e.rel)
            continue
        out.source_files.add(e.rel)
        rec = manifest.get(e.rel)
        if (
            rec is not None
            and rec.status == "verified"
            and rec.size == e.size
            and rec.mtime_ns == e.mtime_ns
        ):
            out.unchanged.append(e.rel)
            continue
        out.to_copy.append(PlannedFile(e.rel, e.size, e.mtime_ns, adopt_all or rec is not None))
    out.empty_dirs = sorted(
        d for d in dirs - parents if not is_blacklisted(d, blacklist) and d not in parents
    )
    out.gone = sorted(set(manifest) - out.source_files - set(out.blacklisted))
    return out


def plan_tasks(
    files: list[PlannedFile],
    slots: int,
    task_bytes: int = 256 << 20,
    task_files: int = 2000,
    big_file: int = 64 << 20,
) -> list[Task]:
    """Group files into byte-balanced tasks, largest first.

    Files of at least ``big_file`` bytes get a task of their own. Smaller files are grouped in
    path order up to ``task_bytes`` bytes and ``task_files`` files per task; both limits shrink
    so that there are at least ``2 * slots`` small-file tasks when there are enough files.
    """
    big = [f for f in files if f.size >= big_file]
    small = sorted((f for f in files if f.size < big_file), key=lambda f: f.rel)
    tasks: list[list[PlannedFile]] = [[f] for f in sorted(big, key=lambda f: -f.size)]
    if small:
        want = max(1, 2 * slots)
        total = sum(f.size for f in small)
        max_bytes = max(1, min(task_bytes, math.ceil(total / want)))
        max_files = max(1, min(task_files, math.ceil(len(small) / want)))
        cur: list[PlannedFile] = []
        cur_bytes = 0
        for f in small:
            if cur and (cur_bytes + f.size > max_bytes or len(cur) >= max_files):
                tasks.append(cur)
                cur, cur_bytes = [], 0
            cur.append(f)
            cur_bytes += f.size
        if cur:
            tasks.append(cur)
    # longest processing time first: large tasks start early, small ones fill the gaps
    tasks.sort(key=lambda t: -sum(f.size for f in t))
    return [Task(i, t) for i, t in enumerate(tasks)]
