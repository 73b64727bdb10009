"""The scan's pure folds: size buckets, folder stats, profile shares, change rate.

Every expectation is computed by hand in the comments, never with the code under test.
"""

from __future__ import annotations

import pytest

from lakeshift.errors import UsageError
from lakeshift.files.progress import Progress
from lakeshift.ops.scan import (
    BUCKET_LABELS,
    FolderScan,
    FolderStats,
    bucket_of,
    build_profile,
    change_rate,
    diff_digests,
    fold_folder,
)
from lakeshift.sources.fs import FileEntry

KiB, MiB, GiB = 2**10, 2**20, 2**30


@pytest.mark.parametrize(
    ("size", "bucket"),
    [
        (0, 0),
        (1023, 0),
        (1024, 1),  # a lower bound belongs to its bucket
        (64 * KiB - 1, 1),
        (64 * KiB, 2),
        (MiB - 1, 2),
        (MiB, 3),
        (16 * MiB - 1, 3),
        (16 * MiB, 4),
        (128 * MiB, 5),
        (GiB - 1, 5),
        (GiB, 6),
        (10 * GiB - 1, 6),
        (10 * GiB, 7),
        (5 * 2**40, 7),
    ],
)
def test_bucket_edges(size: int, bucket: int) -> None:
    assert bucket_of(size) == bucket


def test_eight_buckets() -> None:
    assert len(BUCKET_LABELS) == 8


def _entries() -> list[FileEntry]:
    return [
        FileEntry("x", 500, 1),
        FileEntry("d", 0, 1, is_dir=True),  # folders do not count
        FileEntry("d/y", 2048, 2),
        FileEntry("d/z", 100 * MiB, 3),
        FileEntry("d/fifo", 0, 4, kind="fifo"),  # neither does anything that is not a file
        FileEntry("d/e/w", 10 * GiB, 5),
    ]


def test_fold_folder_counts() -> None:
    f = fold_folder(_entries(), "t", small_file_size=MiB)
    # 500 + 2048 + 104,857,600 + 10,737,418,240
    assert (f.files, f.bytes) == (4, 10_842_278_388)
    assert f.bucket_files == [1, 1, 0, 0, 1, 0, 0, 1]
    assert f.bucket_bytes == [500, 2048, 0, 0, 104_857_600, 0, 0, 10_737_418_240]
    assert sorted(f.folders) == ["t", "t/d", "t/d/e"]
    t, d, e = f.folders["t"], f.folders["t/d"], f.folders["t/d/e"]
    assert (t.files, t.bytes, t.small_files, t.small_bytes) == (1, 500, 1, 500)
    assert (d.files, d.bytes, d.small_files, d.small_bytes) == (2, 104_859_648, 1, 2048)
    assert (e.files, e.small_files) == (1, 0)
    assert d.entries == {"y": (2048, 2), "z": (100 * MiB, 3)}


def test_fold_root_files_have_no_prefix() -> None:
    f = fold_folder([FileEntry("a", 1, 1), FileEntry("b", 2, 1)], "", small_file_size=10)
    assert list(f.folders) == [""]
    assert f.folders[""].files == 2


def test_entry_caps() -> None:
    many = [FileEntry(f"big/{i}", 1, 1) for i in range(3)] + [FileEntry("ok/a", 1, 1)]
    f = fold_folder(many, "", 10, entries_per_folder=2)
    assert f.folders["big"].entries is None  # over the per-folder cap: digest only
    assert f.folders["big"].files == 3
    assert f.folders["ok"].entries == {"a": (1, 1)}
    g = fold_folder([FileEntry(f"f{i}/a", 1, 1) for i in range(3)], "", 10, entries_per_top=2)
    assert [g.folders[k].entries is None for k in ("f0", "f1", "f2")] == [False, False, True]


def test_digest_is_order_free_and_sees_mtime() -> None:
    a = fold_folder([FileEntry("p", 1, 1), FileEntry("q", 2, 2)], "", 10).folders[""]
    b = fold_folder([FileEntry("q", 2, 2), FileEntry("p", 1, 1)], "", 10).folders[""]
    c = fold_folder([FileEntry("q", 2, 2), FileEntry("p", 1, 9)], "", 10).folders[""]
    assert a.digest == b.digest
    assert a.digest != c.digest


def test_folder_stats_round_trip() -> None:
    st = FolderStats(3, 30, 1, 5, 2**64 - 1, {"a": (5, 7)})
    assert FolderStats.from_json(st.to_json()) == st
    assert st.to_json()[4] == "ffffffffffffffff"


def test_profile_shares_prefixes_and_small_folders() -> None:
    # source S: top folder "a" (3 files: 100 B, 100 B, 2 MiB), "b" (1 file 8 MiB), root file 1 KiB
    a = fold_folder(
        [FileEntry("p/1", 100, 1), FileEntry("p/2", 100, 1), FileEntry("3", 2 * MiB, 1)], "a", MiB
    )
    b = fold_folder([FileEntry("x", 8 * MiB, 1)], "b", MiB)
    root = fold_folder([FileEntry("r", KiB, 1)], "", MiB)
    for i, u in enumerate((root, a, b)):
        u.started_at = 1000.0 + i
    p = build_profile({"S": [root, a, b]}, small_file_size=MiB, finished_at=2000.0)
    t = p["totals"]
    # files 5; bytes 1024 + 200 + 2,097,152 + 8,388,608 = 10,486,984
    assert (t["files"], t["bytes"], t["prefixes"], t["max_prefix_files"]) == (5, 10_486_984, 3, 3)
    assert t["folders"] == 4  # "", "a", "a/p", "b"
    shares = {x["label"]: (x["files"], x["files_share"], x["bytes_share"]) for x in p["buckets"]}
    assert shares["<1 KiB"] == (2, 0.4, pytest.approx(200 / 10_486_984))
    assert shares["1 KiB-64 KiB"] == (1, 0.2, pytest.approx(1024 / 10_486_984))
    assert shares["1-16 MiB"] == (2, 0.4, pytest.approx(10_485_760 / 10_486_984))
    assert sum(x["files_share"] for x in p["buckets"]) == pytest.approx(1.0)
    assert [(x["prefix"], x["files"]) for x in p["prefixes"]] == [("a", 3), ("", 1), ("b", 1)]
    small = p["small_files"]
    assert (small["files"], small["bytes"]) == (3, 1224)  # 100 + 100 + 1024 (under 1 MiB)
    assert small["top_folders"][0] == {
        "folder": "a/p",
        "small_files": 2,
        "small_bytes": 200,
        "files": 2,
    }
    assert [f["folder"] for f in small["top_folders"]] == ["a/p", ""]
    assert p["scanned_at_epoch"] == 1000.0
    assert p["scanned_at"] == "1970-01-01T00:16:40+00:00"


def _stats(*files: tuple[str, int, int]) -> FolderStats:
    return fold_folder([FileEntry(n, s, m) for n, s, m in files], "", 10**12).folders[""]


def test_change_exact_per_file() -> None:
    before = {"f": _stats(("a", 10, 1), ("b", 20, 1), ("c", 30, 1))}
    after = {"f": _stats(("a", 10, 1), ("b", 25, 2), ("d", 40, 3))}
    c = diff_digests(before, after)
    assert (c.new_files, c.new_bytes) == (1, 40)
    assert (c.changed_files, c.changed_bytes) == (1, 25)
    assert (c.deleted_files, c.deleted_bytes) == (1, 30)
    assert sorted(c.changed_sizes) == [25, 40]
    assert c.approximate_folders == 0
    r = change_rate(c, 10.0)
    assert r["events_per_s"] == pytest.approx(0.2)  # (1 new + 1 changed) / 10 s
    assert r["bytes_per_s"] == pytest.approx(6.5)  # (40 + 25) / 10
    assert r["deletes_per_s"] == pytest.approx(0.1)
    assert r["deleted_bytes_per_s"] == pytest.approx(3.0)
    assert r["median_changed_size"] == 32.5  # median of 25 and 40


def test_change_mtime_only_counts_as_changed() -> None:
    c = diff_digests({"f": _stats(("a", 10, 1))}, {"f": _stats(("a", 10, 2))})
    assert (c.new_files, c.changed_files, c.deleted_files, c.changed_bytes) == (0, 1, 0, 10)


def test_change_unchanged_folder() -> None:
    same = {"f": _stats(("a", 10, 1)), "g": FolderStats(5, 50, 0, 0, 123, None)}
    again = {"f": _stats(("a", 10, 1)), "g": FolderStats(5, 50, 0, 0, 123, None)}
    assert diff_digests(same, again).new_files == 0
    assert change_rate(diff_digests(same, again), 5.0)["median_changed_size"] is None


def test_change_new_and_deleted_folders() -> None:
    before = {"old": _stats(("a", 7, 1), ("b", 8, 1))}
    after = {"new": _stats(("c", 100, 1), ("d", 300, 1), ("e", 200, 1))}
    c = diff_digests(before, after)
    assert (c.new_files, c.new_bytes, c.deleted_files, c.deleted_bytes) == (3, 600, 2, 15)
    assert change_rate(c, 60.0)["median_changed_size"] == 200


def test_change_approximate_without_entries() -> None:
    # digests only (folders past the entry caps): counted from the count and byte deltas
    before = {"g": FolderStats(10, 1000, 0, 0, 1, None), "h": FolderStats(4, 400, 0, 0, 1, None)}
    after = {"g": FolderStats(12, 1300, 0, 0, 2, None), "h": FolderStats(4, 400, 0, 0, 3, None)}
    c = diff_digests(before, after)
    assert (c.new_files, c.new_bytes) == (2, 300)  # g grew by 2 files, 300 bytes
    assert (c.changed_files, c.changed_bytes) == (1, 100)  # h rewritten: 1 file of mean 100 B
    assert c.approximate_folders == 2
    assert c.changed_sizes == ()


def test_change_needs_a_later_scan() -> None:
    with pytest.raises(UsageError, match="before this one"):
        change_rate(diff_digests({}, {}), 0.0)


def test_progress_line_without_byte_total() -> None:
    bar = Progress(10, 0, label="lakeshift scan", unit="folders")
    # 4 of 10 folders in 8 s: 0.5 folders/s -> 6 left take 12 s; 2 MiB in 8 s = 256 KiB/s
    assert bar.line(4, 2 * MiB, 8.0) == "folders 4/10  bytes 2.0 MiB  256.0 KiB/s  ETA 12s"
    files = Progress(10, 100)
    assert files.line(5, 50, 10.0).startswith("files 5/10  bytes 50.0 B/100.0 B")


def test_folder_scan_round_trip() -> None:
    f = fold_folder(_entries(), "t", MiB)
    f.started_at, f.seconds = 12.5, 0.25
    assert FolderScan.from_json(f.to_json()) == f
