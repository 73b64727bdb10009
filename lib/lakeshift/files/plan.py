"""Pure planning: filter a listing, diff it against the manifest, group files into tasks.

Example:
    >>> tasks = plan_tasks([PlannedFile("a", 10, 0), PlannedFile("b", 10, 0)], slots=1)
    >>> [len(t.files) for t in tasks]
    [2]
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from lakeshift.errors import UsageError
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


@dataclass(frozen=True, slots=True)
class ConcatUnit:
    """One output file of small-file concatenation and its inputs, in order.

    Attributes:
        rel: the output's path relative to the target root.
        inputs: the source files appended, in path order.
    """

    rel: str
    inputs: tuple[PlannedFile, ...]

    @property
    def size(self) -> int:
        """Bytes of the inputs (the output may add one newline per input)."""
        return sum(f.size for f in self.inputs)


Unit = PlannedFile | ConcatUnit


@dataclass
class Task:
    """A group of files (or concatenation outputs) copied by one Spark task (byte-balanced)."""

    task_id: int
    files: list[Unit] = field(default_factory=list)

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


T = TypeVar("T", PlannedFile, Unit)


def _pack(items: Iterable[T], max_bytes: int, max_files: int | None = None) -> list[list[T]]:
    """Cut ``items`` (in order) into runs of at most ``max_bytes`` / ``max_files`` each.

    An item larger than ``max_bytes`` forms a run alone.
    """
    out: list[list[T]] = []
    cur: list[T] = []
    size = 0
    for item in items:
        full = max_files is not None and len(cur) >= max_files
        if cur and (size + item.size > max_bytes or full):
            out.append(cur)
            cur, size = [], 0
        cur.append(item)
        size += item.size
    if cur:
        out.append(cur)
    return out


def plan_tasks(
    files: Sequence[Unit],
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
    tasks: list[list[Unit]] = [[f] for f in sorted(big, key=lambda f: -f.size)]
    if small:
        want = max(1, 2 * slots)
        total = sum(f.size for f in small)
        max_bytes = max(1, min(task_bytes, math.ceil(total / want)))
        max_files = max(1, min(task_files, math.ceil(len(small) / want)))
        tasks += _pack(small, max_bytes, max_files)
    # longest processing time first: large tasks start early, small ones fill the gaps
    tasks.sort(key=lambda t: -sum(f.size for f in t))
    return [Task(i, t) for i, t in enumerate(tasks)]


@dataclass
class ConcatPlan:
    """Small-file concatenation planned against the manifest.

    Attributes:
        units: outputs to (re)write, each with its inputs.
        outputs: every output of the current listing (written now or unchanged).
        inputs: source files that go into outputs.
        rewritten_unchanged: inputs verified before that are rewritten because their output's
            set of inputs changed.
    """

    units: list[ConcatUnit] = field(default_factory=list)
    outputs: set[str] = field(default_factory=set)
    inputs: set[str] = field(default_factory=set)
    rewritten_unchanged: int = 0


def concat_key(rel: str, pattern: re.Pattern[str]) -> str | None:
    """The group key of ``rel``: its capture groups joined, or ``None`` when it does not match.

    Example:
        >>> concat_key("logs/2026-01-01/a.log", re.compile(r"(logs/[^/]+)/.*[.]log"))
        'logs/2026-01-01'
    """
    m = pattern.fullmatch(rel)
    if m is None:
        return None
    return "".join(g for g in m.groups() if g) or None


def output_name(key: str, index: int) -> str:
    """The deterministic name of output ``index`` of group ``key``.

    The 5-digit index goes before the extension of the key's last component.

    Example:
        >>> output_name("logs/2026-01-01.log", 0), output_name("logs/day", 2)
        ('logs/2026-01-01-00000.log', 'logs/day-00002')
    """
    head, _, last = key.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    if not dot or not stem:
        stem, ext = last, ""
    name = f"{stem}-{index:05d}" + (f".{ext}" if ext else "")
    return f"{head}/{name}" if head else name


def plan_concat(d: Diff, manifest: Mapping[str, Record], pattern: str, target: int) -> ConcatPlan:
    """Group matching files into outputs of about ``target`` bytes; remove them from ``d.to_copy``.

    Files whose relative path fully matches ``pattern`` (a regex with at least one capture
    group) are grouped by their key (:func:`concat_key`); each group, in path order, is packed
    into outputs of at most ``target`` bytes (a larger file forms an output alone), named by
    :func:`output_name`. An output is unchanged (not rewritten) when every input is verified
    with the listed size and mtime and the manifest records exactly these inputs for it.

    Raises:
        UsageError: the pattern is not a regex with a capture group, or an output name equals a
            file copied one to one.
    """
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"--concat: expected a regular expression, found {pattern!r}: {exc}"
        ) from exc
    if rx.groups < 1:
        raise UsageError(f"--concat: expected at least one (capture group), found {pattern!r}")
    plan = ConcatPlan()
    pending = {f.rel for f in d.to_copy}
    groups: dict[str, list[PlannedFile]] = {}
    for f in d.to_copy:
        key = concat_key(f.rel, rx)
        if key is not None:
            groups.setdefault(key, []).append(f)
    unchanged = set()
    for rel in d.unchanged:
        key = concat_key(rel, rx)
        if key is not None:
            rec = manifest[rel]
            groups.setdefault(key, []).append(PlannedFile(rel, rec.size, rec.mtime_ns))
            unchanged.add(rel)
    previous: dict[str, set[str]] = {}
    for rec in manifest.values():
        if rec.output:
            previous.setdefault(rec.output, set()).add(rec.rel)
    concat_inputs: set[str] = set()
    for key in sorted(groups):
        for i, chunk in enumerate(_pack(sorted(groups[key], key=lambda f: f.rel), target)):
            out = output_name(key, i)
            plan.outputs.add(out)
            rels = {f.rel for f in chunk}
            concat_inputs |= rels
            if rels & pending or previous.get(out) != rels:
                plan.units.append(ConcatUnit(out, tuple(chunk)))
                plan.rewritten_unchanged += len(rels & unchanged)
    plan.inputs = concat_inputs
    clash = sorted(plan.outputs & (d.source_files - concat_inputs))
    if clash:
        raise UsageError(
            f"--concat: output {clash[0]!r} has the name of a source file copied as is"
        )
    d.to_copy = [f for f in d.to_copy if f.rel not in concat_inputs]
    return plan


def release_concatenated(d: Diff, manifest: Mapping[str, Record], inputs: set[str]) -> int:
    """Copy one to one the files an earlier run concatenated that are no longer concat inputs.

    Such files are verified in the manifest (as inputs of an output), so :func:`diff` counts
    them unchanged; they move to ``d.to_copy``. Returns how many moved.
    """
    moved = [rel for rel in d.unchanged if manifest[rel].output and rel not in inputs]
    if moved:
        gone = set(moved)
        d.unchanged = [rel for rel in d.unchanged if rel not in gone]
        for rel in moved:
            rec = manifest[rel]
            d.to_copy.append(PlannedFile(rel, rec.size, rec.mtime_ns))
    return len(moved)
