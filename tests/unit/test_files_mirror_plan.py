"""Pure mirror planning: the ``--update`` decision table, ``--delete`` and ``--verify`` plans,
the special-file policy. Expected outcomes are written out by hand, case by case."""

from __future__ import annotations

import pytest

from lakeshift.files.plan import delete_plan, verify_plan
from lakeshift.sources.fs import FileEntry, stamp_of
from lakeshift.sources.listing_diff import Diff, diff, special_reason
from lakeshift.sources.manifest import Record


def _src(rel: str = "f", size: int = 10, ctime: int = 7) -> FileEntry:
    return FileEntry(rel, size, 100, ctime_ns=ctime, tag="11")


def _dst(rel: str = "f", size: int = 10, mtime: int = 500, ino: str = "99") -> FileEntry:
    return FileEntry(rel, size, mtime, ctime_ns=mtime, tag=ino)


def _rec(dst: str = "10:500:99:500", ctime: int = 7, status: str = "verified") -> Record:
    return Record("f", 10, 100, checksum="c0ffee", status=status, ctime_ns=ctime, dst=dst)


# (what, target entry, manifest record, checksum_always) -> (unchanged?, adopt, expect)
UPDATE_TABLE = [
    ("target missing", None, _rec(), False, (False, False, "")),
    ("target smaller", _dst(size=4), _rec(), False, (False, False, "")),
    ("target is a folder", FileEntry("f", 0, 0, True), _rec(), False, (False, False, "")),
    ("stamp = manifest, source same", _dst(), _rec(), False, (True, False, "")),
    (
        "stamp = manifest, source ctime moved",
        _dst(),
        _rec(ctime=3),
        False,
        (False, False, "c0ffee"),
    ),
    ("stamp = manifest, --checksum-always", _dst(), _rec(), True, (False, False, "c0ffee")),
    ("target rewritten (mtime)", _dst(mtime=501), _rec(), False, (False, True, "")),
    ("target replaced (inode)", _dst(ino="98"), _rec(), False, (False, True, "")),
    ("no stamp recorded (old manifest)", _dst(), _rec(dst=""), False, (False, True, "")),
    ("not in the manifest", _dst(), None, False, (False, True, "")),
    ("manifest says failed", _dst(), _rec(status="failed"), False, (False, True, "")),
]


@pytest.mark.parametrize(
    ("target", "rec", "always", "expected"),
    [case[1:] for case in UPDATE_TABLE],
    ids=[case[0] for case in UPDATE_TABLE],
)
def test_update_decision_table(
    target: FileEntry | None, rec: Record | None, always: bool, expected: tuple[bool, bool, str]
) -> None:
    listing = {} if target is None else {"f": target}
    manifest = {} if rec is None else {"f": rec}
    d = diff([_src()], manifest, [], [], [], target=listing, checksum_always=always)
    unchanged, adopt, expect = expected
    assert d.unchanged == (["f"] if unchanged else [])
    if not unchanged:
        [f] = d.to_copy
        assert (f.adopt, f.expect) == (adopt, expect)
        assert f.dst == (rec.dst if expect and rec else "")


def test_s3_stamps_ignore_mtime_but_not_the_etag() -> None:
    a = FileEntry("k", 5, 1_000_000_000, tag="etag-1")
    assert stamp_of(a, "s3") == stamp_of(FileEntry("k", 5, 9_000_000_000, tag="etag-1"), "s3")
    assert stamp_of(a, "s3") != stamp_of(FileEntry("k", 5, 1_000_000_000, tag="etag-2"), "s3")
    assert stamp_of(FileEntry("d", 0, 0, True), "local") == ""


def test_default_rerun_rechecks_sources_whose_ctime_moved() -> None:
    rec = _rec()
    assert diff([_src()], {"f": rec}, [], [], []).unchanged == ["f"]
    [f] = diff([_src(ctime=8)], {"f": rec}, [], [], []).to_copy
    assert (f.expect, f.adopt) == ("c0ffee", False)


def test_delete_plan_files_then_folders_deepest_first() -> None:
    target = {
        r: FileEntry(r, 1, 0, is_dir=not r.endswith(".bin") and not r.endswith(".tmp"))
        for r in [
            "old",
            "old/deep",
            "old/deep/x.bin",
            "keep",
            "keep/y.bin",
            "mixed",
            "mixed/z.tmp",
            "mixed/gone.bin",
            "live",
            "live/now.bin",
            "ghost",
            "ghost/g.bin",
        ]
    }
    d = Diff(source_files={"keep/y.bin"}, source_dirs={"keep"}, protected=["ghost"])
    files, folders = delete_plan(target, d, include=[], exclude=["*.tmp"], blacklist=["live"])
    assert files == ["mixed/gone.bin", "old/deep/x.bin"]
    # mixed holds an excluded file, live is blacklisted, ghost could not be listed
    assert folders == ["old/deep", "old"]


def test_verify_plan_missing_extra_differing() -> None:
    source = [
        FileEntry("same", 3, 1),
        FileEntry("short", 3, 1),
        FileEntry("gone", 3, 1),
        FileEntry("dir", 0, 0, True),
        FileEntry("dir/asfolder", 3, 1),
        FileEntry("lnk", 0, 1, kind="symlink", link="same"),
        FileEntry("empty", 0, 0, True),
    ]
    target = {
        "same": FileEntry("same", 3, 9),
        "short": FileEntry("short", 2, 9),
        "dir": FileEntry("dir", 0, 0, True),
        "dir/asfolder": FileEntry("dir/asfolder", 0, 0, True),
        "lnk": FileEntry("lnk", 0, 9, kind="symlink", link="other"),
        "stray": FileEntry("stray", 1, 9),
        "straydir": FileEntry("straydir", 0, 0, True),
    }
    vp = verify_plan(source, target, [], [], [], symlinks="preserve")
    assert [f.rel for f in vp.compare] == ["same"]
    assert vp.missing == ["empty/", "gone"]
    assert vp.differing == [
        ("short", "size differs (source 3 B, target 2 B)"),
        ("dir/asfolder", "expected a file, found a folder"),
        ("lnk", "symlink -> same expected, found symlink -> other"),
    ]
    assert vp.extra == ["stray", "straydir/"]


@pytest.mark.parametrize(
    ("entry", "symlinks", "links_ok", "expected"),
    [
        (FileEntry("a", 1, 0), "follow", True, None),
        (FileEntry("p", 0, 0, kind="fifo"), "preserve", True, ("skipped", "fifo (never opened)")),
        (
            FileEntry("p", 0, 0, kind="fifo", link="../pipe"),
            "follow",
            True,
            ("skipped", "fifo (never opened) (symlink -> ../pipe)"),
        ),
        (
            FileEntry("d", 0, 0, kind="block device"),
            "follow",
            True,
            ("skipped", "block device (never opened)"),
        ),
        (FileEntry("l", 0, 0, kind="symlink", link="x"), "preserve", True, None),
        (
            FileEntry("l", 0, 0, kind="symlink", link="x"),
            "preserve",
            False,
            ("skipped", "symlink -> x (the target store cannot hold symlinks)"),
        ),
        (
            FileEntry("l", 0, 0, kind="symlink", link="x"),
            "skip",
            True,
            ("skipped", "symlink -> x (--symlinks skip)"),
        ),
        (
            FileEntry("b", 0, 0, kind="broken symlink", link="nowhere"),
            "follow",
            True,
            ("failed", "broken symlink -> nowhere (nothing to follow; see --symlinks)"),
        ),
        (
            FileEntry("u", 0, 0, kind="unlistable", link="permission denied"),
            "follow",
            True,
            ("failed", "cannot list folder: permission denied"),
        ),
    ],
)
def test_special_file_policy(
    entry: FileEntry, symlinks: str, links_ok: bool, expected: tuple[str, str] | None
) -> None:
    assert special_reason(entry, symlinks, links_ok) == expected
