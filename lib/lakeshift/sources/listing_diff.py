"""A listing compared with the manifest: which files to copy, keep, skip or forget.

The selection globs (include/exclude, blacklisted folders), the special-file policy and the
``--update`` table live here, below every feature: ``files`` plans its copy with them and
``sync`` follows a lake path by the same manifest diff.

Example:
    >>> d = diff([FileEntry("a.csv", 3, 1)], {}, include=[], exclude=["*.tmp"], blacklist=[])
    >>> [f.rel for f in d.to_copy], d.gone
    (['a.csv'], [])
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lakeshift.sources.fs import BROKEN, LOOP, SYMLINK, UNLISTABLE, FileEntry, stamp_of
from lakeshift.sources.manifest import Record


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
