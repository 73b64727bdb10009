"""Pure parts of lakeshift files: filters, diff, task planning, checksums, throttle, config."""

from __future__ import annotations

import hashlib
import re
import time

import google_crc32c
import pytest

from lakeshift.errors import UsageError
from lakeshift.files.checksum import combine, crc32c_combine, new_hasher
from lakeshift.files.config import FilesConfig
from lakeshift.files.plan import concat_key, output_name, plan_concat, plan_tasks
from lakeshift.files.throttle import TokenBucket
from lakeshift.sources.fs import FileEntry
from lakeshift.sources.listing_diff import PlannedFile, diff, is_blacklisted, is_selected
from lakeshift.sources.manifest import Record, parse_journal_name


@pytest.mark.parametrize(
    ("algo", "data", "expected"),
    [
        # published check values for the string "123456789"
        ("crc32c", b"123456789", "e3069283"),
        ("md5", b"123456789", "25f9e794323b453885f5181f1b624d0b"),
        ("sha256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ],
)
def test_checksums_match_known_values(algo: str, data: bytes, expected: str) -> None:
    h = new_hasher(algo)
    h.update(data[:4])
    h.update(data[4:])
    assert h.hexdigest() == expected


def test_unknown_checksum_is_usage_error() -> None:
    with pytest.raises(UsageError, match="--checksum"):
        new_hasher("crc64")


@pytest.mark.parametrize(
    ("rel", "include", "exclude", "selected"),
    [
        ("a/b.log", [], [], True),
        ("a/b.log", ["*.log"], [], True),
        ("a/b.txt", ["*.log"], [], False),
        ("a/b.log", [], ["*.log"], False),
        ("a/b.log", ["a/*"], ["*.tmp"], True),
        ("a/c.tmp", ["a/*"], ["*.tmp"], False),
    ],
)
def test_include_exclude(rel: str, include: list[str], exclude: list[str], selected: bool) -> None:
    assert is_selected(rel, include, exclude) is selected


@pytest.mark.parametrize(
    ("rel", "blacklist", "hit"),
    [
        ("live/x.log", ["live"], True),
        ("data/live/x.log", ["*/live"], True),
        ("data/lively/x.log", ["*/live"], False),
        ("x.log", [], False),
    ],
)
def test_blacklist_matches_folders(rel: str, blacklist: list[str], hit: bool) -> None:
    assert is_blacklisted(rel, blacklist) is hit


def _rec(rel: str, size: int, mtime: int, status: str = "verified") -> Record:
    return Record(rel, size, mtime, checksum="00", status=status)


def test_diff_against_manifest() -> None:
    entries = [
        FileEntry("same", 10, 100),
        FileEntry("grown", 11, 100),
        FileEntry("touched", 10, 200),
        FileEntry("new", 5, 1),
        FileEntry("half", 5, 1),
        FileEntry("skip.tmp", 1, 1),
        FileEntry("live/x", 1, 1),
        FileEntry("empty", 0, 0, is_dir=True),
        FileEntry("full", 0, 0, is_dir=True),
        FileEntry("full/f", 3, 3),
    ]
    manifest = {
        "same": _rec("same", 10, 100),
        "grown": _rec("grown", 10, 100),
        "touched": _rec("touched", 10, 100),
        "half": _rec("half", 5, 1, status="queued"),
        "removed": _rec("removed", 1, 1),
    }
    d = diff(entries, manifest, [], ["*.tmp"], ["live"])
    assert d.unchanged == ["same"]
    assert {f.rel: f.adopt for f in d.to_copy} == {
        "grown": True,
        "touched": True,
        "new": False,
        "half": True,
        "full/f": False,
    }
    assert d.excluded == 1
    assert d.blacklisted == ["live/x"]
    assert d.gone == ["removed"]
    assert d.empty_dirs == ["empty"]


def test_diff_update_adopts_everything() -> None:
    d = diff([FileEntry("new", 5, 1)], {}, [], [], [], adopt_all=True)
    assert d.to_copy == [PlannedFile("new", 5, 1, True)]


def test_plan_tasks_big_files_alone_small_grouped_by_bytes() -> None:
    files = [PlannedFile(f"s{i:02d}", 10, 0) for i in range(40)]
    files += [PlannedFile("big1", 1000, 0), PlannedFile("big2", 2000, 0)]
    tasks = plan_tasks(files, slots=1, task_bytes=100, task_files=1000, big_file=500)
    assert [t.files[0].rel for t in tasks[:2]] == ["big2", "big1"]
    assert all(len(t.files) == 1 for t in tasks[:2])
    small = tasks[2:]
    assert sorted(f.rel for t in small for f in t.files) == [f"s{i:02d}" for i in range(40)]
    assert all(t.nbytes <= 100 for t in small)
    assert len(small) == 4
    assert [t.task_id for t in tasks] == list(range(len(tasks)))


def test_plan_tasks_spreads_small_work_over_slots() -> None:
    files = [PlannedFile(f"f{i}", 1, 0) for i in range(100)]
    tasks = plan_tasks(files, slots=4)
    assert len(tasks) == 8
    assert sum(len(t.files) for t in tasks) == 100


def test_plan_tasks_caps_files_per_task() -> None:
    files = [PlannedFile(f"f{i:03d}", 0, 0) for i in range(30)]
    tasks = plan_tasks(files, slots=1, task_files=7)
    assert max(len(t.files) for t in tasks) <= 7
    assert sum(len(t.files) for t in tasks) == 30


def test_journal_name_round_trip() -> None:
    assert parse_journal_name("/x/seg-000001-ab12cd34-00002-n17-b4096.parquet") == (17, 4096)
    assert parse_journal_name("/x/.abc.tmp") is None


def test_token_bucket_caps_rate() -> None:
    bucket = TokenBucket(rate=400_000, burst=50_000)
    start = time.monotonic()
    for _ in range(10):
        bucket.consume(50_000)  # 500 kB at 400 kB/s from an empty bucket: >= 1.25 s
    assert time.monotonic() - start >= 1.2


@pytest.mark.parametrize(
    ("key", "index", "name"),
    [
        ("logs/2026-01-01.log", 0, "logs/2026-01-01-00000.log"),
        ("logs/day", 12, "logs/day-00012"),
        ("day.csv", 1, "day-00001.csv"),
        ("a.b/.hidden", 0, "a.b/.hidden-00000"),
    ],
)
def test_concat_output_names(key: str, index: int, name: str) -> None:
    assert output_name(key, index) == name


def test_concat_key_joins_groups_and_needs_full_match() -> None:
    rx = re.compile(r"logs/(\d{4})-(\d\d)-\d\d/.*\.log")
    assert concat_key("logs/2026-03-01/a.log", rx) == "202603"
    assert concat_key("logs/2026-03-01/a.log.gz", rx) is None


@pytest.mark.parametrize("cut", [0, 1, 4, 9])
def test_crc32c_combine_matches_one_pass(cut: int) -> None:
    data = b"123456789"
    a, b = google_crc32c.value(data[:cut]), google_crc32c.value(data[cut:])
    assert crc32c_combine(a, b, len(data) - cut) == 0xE3069283


def test_combine_md5_parts_is_digest_of_digests() -> None:
    parts = [hashlib.md5(b"ab").hexdigest(), hashlib.md5(b"c").hexdigest()]
    expected = hashlib.md5(hashlib.md5(b"ab").digest() + hashlib.md5(b"c").digest()).hexdigest()
    assert combine("md5", [(parts[0], 2), (parts[1], 1)]) == f"{expected}-2"


def test_crc32c_hasher_takes_reused_buffers() -> None:
    buf = bytearray(b"xx123456789")
    h = new_hasher("crc32c")
    h.update(memoryview(buf)[2:6])
    h.update(memoryview(buf)[6:])
    assert h.hexdigest() == "e3069283"


def test_plan_concat_rewrites_only_changed_outputs() -> None:
    entries = [FileEntry(f"logs/a/{i}.log", 10, 1) for i in range(4)]
    entries += [FileEntry("logs/b/0.log", 10, 1), FileEntry("logs/b/1.log", 10, 2)]
    manifest = {e.rel: _rec(e.rel, 10, 1) for e in entries}
    for i in range(4):
        manifest[f"logs/a/{i}.log"].output = "logs/a-0000" + ("0" if i < 2 else "1")
    manifest["logs/b/0.log"].output = "logs/b-00000"
    manifest["logs/b/1.log"].output = "logs/b-00000"  # its mtime changed: rewrite
    d = diff(entries, manifest, [], [], [])
    plan = plan_concat(d, manifest, r"(logs/[^/]+)/.*\.log", 20)
    assert [(u.rel, [f.rel for f in u.inputs]) for u in plan.units] == [
        ("logs/b-00000", ["logs/b/0.log", "logs/b/1.log"])
    ]
    assert plan.outputs == {"logs/a-00000", "logs/a-00001", "logs/b-00000"}
    assert plan.rewritten_unchanged == 1
    assert d.to_copy == []


@pytest.mark.parametrize(
    ("kw", "master", "expected"),
    [
        ({}, "local", "processes"),
        ({}, "local[2]", "processes"),
        ({}, "local[*]", "processes"),
        ({}, "local[4,2]", "processes"),
        ({}, None, "processes"),
        ({}, "spark://head:7077", "spark"),
        ({}, "yarn", "spark"),
        ({}, "k8s://https://api:6443", "spark"),
        ({"executor": "spark"}, "local[2]", "spark"),
        ({"executor": "threads"}, "yarn", "threads"),
        ({"executor": "processes"}, "yarn", "processes"),
        ({"local": True, "executor": "spark"}, "yarn", "threads"),
    ],
)
def test_executor_choice(kw: dict[str, object], master: str | None, expected: str) -> None:
    from lakeshift.files.runner import resolve_executor

    cfg = FilesConfig(src="/a", dst="/b", **kw)  # type: ignore[arg-type]
    assert resolve_executor(cfg, master) == expected
