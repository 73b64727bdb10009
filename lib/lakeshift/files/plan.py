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
from lakeshift.sources.fs import BROKEN, LOOP, SYMLINK, UNLISTABLE, FileEntry, stamp_of


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A file to copy.

    Attributes:
        rel: path relative to the source root.
        size: listed size.
        mtime_ns: listed modification time.
        adopt: the target may already hold this file from an earlier (killed) run: when its size
            and checksum match the source, it is recorded as verified without copying.
        link: for a symlink copied as a link (``--symlinks preserve``), its text.
        expect: the checksum the target is known to hold (the manifest's, with the target's
            stamp unchanged): the source alone is re-read and compared with it (``checked``
            when equal, nothing written; copied otherwise).
        dst: the target's stamp that goes with ``expect`` (kept in the record when equal).
        why: why the file is planned (``missing from target``, ``size differs``, ...).
    """

    rel: str
    size: int
    mtime_ns: int
    adopt: bool = False
    link: str = ""
    expect: str = ""
    dst: str = ""
    why: str = field(default="", compare=False)


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
        source_files: every selected source name that is copied or kept (files, links).
        source_dirs: every source folder.
        skipped: ``(path, reason)`` of entries the special-file policy does not copy (FIFOs,
            sockets, devices, symlinks under ``skip``, loops; exit code 0).
        failed: ``(path, reason)`` of entries that cannot be copied as listed (broken links
            to follow, folders that cannot be listed; exit code 1).
        protected: folders that could not be listed: nothing below them counts as gone.
    """

    to_copy: list[PlannedFile] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    blacklisted: list[str] = field(default_factory=list)
    excluded: int = 0
    gone: list[str] = field(default_factory=list)
    empty_dirs: list[str] = field(default_factory=list)
    source_files: set[str] = field(default_factory=set)
    source_dirs: set[str] = field(default_factory=set)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)

    def kept(self) -> set[str]:
        """Names a ``--delete`` must keep on the target: copied, skipped or failed entries."""
        return self.source_files | {r for r, _ in self.skipped} | {r for r, _ in self.failed}


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


def is_protected(rel: str, protected: Iterable[str]) -> bool:
    """True when ``rel`` is ``p`` or below ``p`` for a folder ``p`` in ``protected``."""
    return any(rel == p or rel.startswith(p + "/") for p in protected)


def special_reason(e: FileEntry, symlinks: str, links_ok: bool) -> tuple[str, str] | None:
    """How the special-file policy treats entry ``e``: ``("skipped" | "failed", reason)``.

    ``None`` for regular files and for symlinks copied as links (``preserve`` on a store that
    holds links). The policy (distcp/rsync conventions):

    * FIFOs, sockets and devices are never opened: skipped, with their kind;
    * ``--symlinks follow`` (default): a link is copied as what it points to (the listing
      already replaced it); a broken link cannot be followed: failed; a link to a folder above
      it (a loop) is skipped (that folder is copied already);
    * ``--symlinks preserve``: links are copied as links where the target holds them (local);
      on other stores (S3, HDFS through pyarrow) they are skipped with that reason;
    * ``--symlinks skip``: links are skipped;
    * a folder that cannot be listed: failed, with the reason.

    Example:
        >>> special_reason(FileEntry("p", 0, 0, kind="fifo"), "follow", True)
        ('skipped', 'fifo (never opened)')
    """
    if not e.kind:
        return None
    via = f" (symlink -> {e.link})" if e.link and e.kind != SYMLINK else ""
    if e.kind == SYMLINK:
        if symlinks == "skip":
            return "skipped", f"symlink -> {e.link} (--symlinks skip)"
        if not links_ok:
            return "skipped", f"symlink -> {e.link} (the target store cannot hold symlinks)"
        return None
    if e.kind == BROKEN:
        return "failed", f"broken symlink -> {e.link} (nothing to follow; see --symlinks)"
    if e.kind == LOOP:
        return "skipped", f"symlink loop -> {e.link} (its folder is copied above it)"
    if e.kind == UNLISTABLE:
        return "failed", f"cannot list folder: {e.link}"
    return "skipped", f"{e.kind} (never opened){via}"


def _fresh(rec: Record | None, e: FileEntry) -> bool:
    """The manifest proves ``e``'s checksum: verified with the same size and mtime."""
    return (
        rec is not None
        and rec.status == "verified"
        and not rec.link
        and rec.size == e.size
        and rec.mtime_ns == e.mtime_ns
    )


def _decide(
    e: FileEntry,
    rec: Record | None,
    target: Mapping[str, FileEntry] | None,
    store: str,
    *,
    adopt_all: bool,
    checksum_always: bool,
) -> PlannedFile | None:
    """``None`` (unchanged) or how to copy regular file ``e`` (the ``--update`` table)."""
    known = _fresh(rec, e)
    # the source is unchanged since its checksum was taken: same size, mtime and ctime
    same_source = known and not checksum_always and rec is not None and rec.ctime_ns == e.ctime_ns

    def plan(**kw: object) -> PlannedFile:
        return PlannedFile(e.rel, e.size, e.mtime_ns, **kw)  # type: ignore[arg-type]

    if target is None:  # the manifest stands for the target (default incremental run)
        if same_source:
            return None
        if known and rec is not None:
            return plan(expect=rec.checksum, dst=rec.dst, why="source status changed")
        return plan(adopt=adopt_all or rec is not None, why="new" if rec is None else "changed")
    t = target.get(e.rel)  # --update: the target decides
    if t is None:
        return plan(why="missing from target")
    if t.is_dir or t.kind:
        return plan(why=f"target is a {'folder' if t.is_dir else t.kind}")
    if t.size != e.size:
        return plan(why=f"size differs (source {e.size} B, target {t.size} B)")
    same_target = known and rec is not None and bool(rec.dst) and rec.dst == stamp_of(t, store)
    if same_target and same_source:
        return None
    if same_target and rec is not None:
        return plan(expect=rec.checksum, dst=rec.dst, why="source status changed")
    return plan(adopt=True, why="target not proven by the manifest")


def diff(
    entries: Iterable[FileEntry],
    manifest: Mapping[str, Record],
    include: list[str],
    exclude: list[str],
    blacklist: list[str],
    *,
    adopt_all: bool = False,
    target: Mapping[str, FileEntry] | None = None,
    store: str = "local",
    checksum_always: bool = False,
    symlinks: str = "follow",
) -> Diff:
    """Compare a listing with the manifest (and, for ``--update``, with the target's listing).

    Without ``target`` a file is unchanged (not copied) when the manifest holds it as verified
    with the same size, modification time and status-change time (ctime). When only the ctime
    differs (a rewrite with its mtime restored, ``touch -r``, ``rsync -t``) or
    ``checksum_always`` is set, the source is re-read and compared with the manifest's
    checksum. Files the manifest has as ``queued`` or ``failed`` are copied with ``adopt``
    set; ``adopt_all`` sets it for all.

    With ``target`` (``--update``; the target's listing, ``rel`` -> entry, on store kind
    ``store``) the target decides, the manifest is only a cache:

    ============================== ===================================================
    target                          action
    ============================== ===================================================
    missing, not a file             copy
    size differs from the source    copy
    same size, stamp = manifest's   unchanged if the source is unchanged (size, mtime,
    (size, mtime, inode, ctime;     ctime); else re-read the source, compare with the
    S3: size, ETag)                 manifest's checksum (``checked``, or copy)
    same size, stamp unknown or     checksum both sides: equal -> ``adopted``, else copy
    changed
    ============================== ===================================================

    Special entries follow :func:`special_reason`.
    """
    out = Diff()
    dirs: set[str] = set()
    parents: set[str] = set()
    links_ok = store == "local"
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
        special = special_reason(e, symlinks, links_ok)
        if special is not None:
            (out.skipped if special[0] == "skipped" else out.failed).append((e.rel, special[1]))
            if e.kind == UNLISTABLE:
                out.protected.append(e.rel)
                dirs.add(e.rel)
            continue
        out.source_files.add(e.rel)
        rec = manifest.get(e.rel)
        if e.kind == SYMLINK:  # copied as a link
            t = None if target is None else target.get(e.rel)
            same = (
                rec is not None
                and rec.status == "verified"
                and rec.link == e.link
                and (target is None or (t is not None and t.kind == SYMLINK and t.link == e.link))
            )
            if same:
                out.unchanged.append(e.rel)
            else:
                out.to_copy.append(PlannedFile(e.rel, 0, e.mtime_ns, link=e.link, why="symlink"))
            continue
        planned = _decide(
            e, rec, target, store, adopt_all=adopt_all, checksum_always=checksum_always
        )
        if planned is None:
            out.unchanged.append(e.rel)
        else:
            out.to_copy.append(planned)
    out.source_dirs = dirs
    out.empty_dirs = sorted(
        d
        for d in dirs - parents
        if not is_blacklisted(d, blacklist) and not is_protected(d, out.protected)
    )
    out.gone = sorted(
        r
        for r in set(manifest) - out.kept() - set(out.blacklisted)
        if not is_protected(r, out.protected)
    )
    return out


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
