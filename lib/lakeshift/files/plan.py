"""Pure planning: verify and delete plans, byte-balanced tasks, small-file concatenation.

The listing diff they start from is :mod:`lakeshift.sources.listing_diff`.

Example:
    >>> tasks = plan_tasks([PlannedFile("a", 10, 0), PlannedFile("b", 10, 0)], slots=1)
    >>> [len(t.files) for t in tasks]
    [2]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from lakeshift.errors import UsageError
from lakeshift.sources.fs import SYMLINK, FileEntry
from lakeshift.sources.listing_diff import (
    Diff,
    PlannedFile,
    diff,
    is_blacklisted,
    is_protected,
    is_selected,
)
from lakeshift.sources.manifest import Record


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
class VerifyPlan:
    """A finished mirror compared by listings; equal-sized files still need their checksums.

    Attributes:
        compare: files of the same size on both sides (their checksums decide).
        missing: source files and empty folders absent from the target (folders end in
            ``/``; a folder with files is missing when they are).
        differing: ``(path, reason)`` known from the listings (size, kind, link text).
        extra: target files and folders absent from the source (folders end in ``/``).
        skipped: source entries the special-file policy leaves out.
        failed: source entries that cannot be checked (broken links, unlistable folders).
    """

    compare: list[PlannedFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    differing: list[tuple[str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def verify_plan(
    entries: Iterable[FileEntry],
    target: Mapping[str, FileEntry],
    include: list[str],
    exclude: list[str],
    blacklist: list[str],
    *,
    store: str = "local",
    symlinks: str = "follow",
    keep: Iterable[str] = (),
) -> VerifyPlan:
    """Compare a source listing with a target listing (``--verify``); pure.

    ``keep`` names target files that are not extra although the source does not list them
    (concatenation outputs).
    """
    d = diff(entries, {}, include, exclude, blacklist, store=store, symlinks=symlinks)
    out = VerifyPlan(skipped=d.skipped, failed=d.failed)
    for f in d.to_copy:
        t = target.get(f.rel)
        if t is None:
            out.missing.append(f.rel)
        elif f.link:
            if t.kind != SYMLINK or t.link != f.link:
                found = f"symlink -> {t.link}" if t.kind == SYMLINK else (t.kind or "a file")
                out.differing.append((f.rel, f"symlink -> {f.link} expected, found {found}"))
        elif t.is_dir or t.kind:
            kind = "a folder" if t.is_dir else f"a {t.kind}"
            out.differing.append((f.rel, f"expected a file, found {kind}"))
        elif t.size != f.size:
            out.differing.append((f.rel, f"size differs (source {f.size} B, target {t.size} B)"))
        else:
            out.compare.append(f)
    dirs = {r for r, e in target.items() if e.is_dir}
    # folders holding files exist with them (and on S3 only so); empty ones must be there
    out.missing += [f"{r}/" for r in d.empty_dirs if r not in dirs]
    out.missing.sort()
    kept = d.kept() | set(keep)
    out.extra = sorted(
        [
            r
            for r, e in target.items()
            if not e.is_dir
            and r not in kept
            and is_selected(r, include, exclude)
            and not is_blacklisted(r, blacklist)
            and not is_protected(r, d.protected)
        ]
        + [
            f"{r}/"
            for r in dirs - d.source_dirs - kept  # a folder named like a file: differing
            if not is_blacklisted(r, blacklist) and not is_protected(r, d.protected)
        ]
    )
    return out


def delete_plan(
    target: Mapping[str, FileEntry],
    d: Diff,
    *,
    include: list[str],
    exclude: list[str],
    blacklist: list[str],
    keep: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """``(files, folders)`` of the target that ``--delete`` removes; pure.

    Files: target entries (files, links, special files) the source does not have (``d.kept()``
    plus ``keep``), selected by the globs and not blacklisted. Folders: target folders the
    source does not have whose every entry below is removed too (a folder holding an excluded
    or blacklisted file stays). Nothing below a source folder that could not be listed is
    removed. Folders come deepest first (the order to remove them in).

    Example:
        >>> t = {"old": FileEntry("old", 0, 0, True), "old/x": FileEntry("old/x", 1, 0)}
        >>> delete_plan(t, Diff(), include=[], exclude=[], blacklist=[])
        (['old/x'], ['old'])
    """
    kept = d.kept() | set(keep)
    files = sorted(
        r
        for r, e in target.items()
        if not e.is_dir
        and r not in kept
        and is_selected(r, include, exclude)
        and not is_blacklisted(r, blacklist)
        and not is_protected(r, d.protected)
    )
    candidates = {
        r
        for r, e in target.items()
        if e.is_dir
        and r not in d.source_dirs
        and r not in kept  # the source has a file of that name: never removed for it
        and not is_blacklisted(r, blacklist)
        and not is_protected(r, d.protected)
    }
    gone = set(files) | candidates
    stays: set[str] = set()  # folders that keep something below them
    for r in target:
        if r not in gone:
            parts = r.split("/")
            stays.update("/".join(parts[:k]) for k in range(1, len(parts)))
    folders = sorted(candidates - stays)
    folders.sort(key=lambda r: (-r.count("/"), r))
    return files, folders


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
