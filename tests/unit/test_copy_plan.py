"""Pure planning logic of `lakeshift copy`: chunks, globs, rewrites, macros, estimates."""

from __future__ import annotations

import datetime as dt

import pytest

from lakeshift.config import expand_macros
from lakeshift.copy.plan import (
    FileEntry,
    compile_glob,
    data_bytes,
    default_run_id,
    glob_matches,
    output_file_count,
    output_partition_keys,
    partition_values,
    path_partition_columns,
    plan_chunks,
    plan_fingerprint,
    rewrite_location,
    select_files,
)
from lakeshift.errors import ConfigError


def f(rel: str, size: int) -> FileEntry:
    return FileEntry(f"file:/lake/t/{rel}", rel, size)


def test_small_partitions_are_packed_in_sorted_order() -> None:
    files = [f(f"dt=2026-01-0{d}/part-{i}.parquet", 100) for d in (3, 1, 2) for i in range(3)]
    chunks = plan_chunks(files, chunk_size=650)
    # 300 bytes per partition: two partitions fit in 650, the third starts a new chunk
    assert [c.partitions for c in chunks] == [["dt=2026-01-01", "dt=2026-01-02"], ["dt=2026-01-03"]]
    assert [c.bytes for c in chunks] == [600, 300]
    assert [c.id for c in chunks] == ["c00001", "c00002"]
    assert chunks[0].files[0].rel == "dt=2026-01-01/part-0.parquet"


def test_one_huge_partition_is_split_by_bytes() -> None:
    small = [f("dt=1/a.parquet", 50)]
    huge = [f(f"dt=2/part-{i:03d}.parquet", 100) for i in range(25)]  # 2,500 bytes
    chunks = plan_chunks(small + huge, chunk_size=1000)
    assert [c.bytes for c in chunks] == [50, 800, 900, 800]  # ceil(2500/1000) = 3 balanced slices
    assert [c.partitions for c in chunks][1:] == [["dt=2"]] * 3
    # every file in exactly one chunk
    planned = sorted(x.rel for c in chunks for x in c.files)
    assert planned == sorted(x.rel for x in small + huge)


def test_single_file_larger_than_chunk_is_its_own_chunk() -> None:
    chunks = plan_chunks([f("a", 5000), f("b", 10), f("c", 10)], chunk_size=1000)
    assert [[x.rel for x in c.files] for c in chunks] == [["a"], ["b", "c"]]


def test_max_files_limits_chunks() -> None:
    chunks = plan_chunks([f(f"p=1/{i}", 1) for i in range(10)], chunk_size=10**9, max_files=4)
    assert [len(c.files) for c in chunks] == [3, 4, 3]


def test_plan_is_deterministic_and_fingerprint_tracks_inputs() -> None:
    files = [f(f"p={i % 3}/f{i}", 10 + i) for i in range(30)]
    a = plan_chunks(files, 100)
    b = plan_chunks(list(reversed(files)), 100)
    assert a == b
    settings = {"format": "delta"}
    assert plan_fingerprint(a, settings) == plan_fingerprint(b, settings)
    changed = plan_chunks([*files, f("p=9/new", 1)], 100)
    assert plan_fingerprint(changed, settings) != plan_fingerprint(a, settings)
    assert plan_fingerprint(a, {"format": "parquet"}) != plan_fingerprint(a, settings)


@pytest.mark.parametrize(
    ("pattern", "rel", "expected"),
    [
        ("dt=2026-01-0*", "dt=2026-01-02/h=1/part-0.parquet", True),
        ("dt=2026-01-0*", "dt=2026-01-10/part-0.parquet", False),
        ("dt=*/h=2[0-3]", "dt=x/h=22/part-0", True),
        ("dt=*/h=2[!0-3]", "dt=x/h=22/part-0", False),
        ("*.tmp", "dt=1/a.tmp", False),  # '*' stays in one folder
        ("**/*.tmp", "dt=1/a.tmp", True),
        ("**/*.tmp", "a.tmp", True),
        ("dt={2026-01-01,2026-01-03}", "dt=2026-01-03/f", True),
        ("dt={2026-01-01,2026-01-03}", "dt=2026-01-02/f", False),
        ("/dt=1/", "dt=1/f", True),
        ("dt=1?", "dt=1/f", False),
    ],
)
def test_glob_matches(pattern: str, rel: str, expected: bool) -> None:
    assert glob_matches(pattern, rel) is expected


@pytest.mark.parametrize("bad", ["dt=[0-9", "{a,b", "  "])
def test_bad_globs_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="glob"):
        compile_glob(bad)


def test_select_files_include_then_exclude() -> None:
    files = [f(f"dt=2026-01-0{d}/h={h}/p.parquet", 1) for d in (1, 2, 3) for h in (0, 23)]
    kept = select_files(files, include=["dt=2026-01-0[12]"], exclude=["*/h=23"])
    assert [x.rel for x in kept] == ["dt=2026-01-01/h=0/p.parquet", "dt=2026-01-02/h=0/p.parquet"]
    assert len(select_files(files)) == 6
    assert select_files(files, exclude=["**"]) == []


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://old-bucket/warehouse/t", "s3a://new-bucket/warehouse/t"),
        ("s3://old-bucket/special/t", "hdfs://nn/special/t"),  # longest prefix wins
        ("s3://other/t", "s3://other/t"),
        ("/local/t", "/local/t"),
    ],
)
def test_rewrite_location(location: str, expected: str) -> None:
    rules = [
        ("s3://old-bucket/", "s3a://new-bucket/"),
        ("s3://old-bucket/special/", "hdfs://nn/special/"),
    ]
    assert rewrite_location(location, rules) == expected


def test_date_macros_in_paths_and_globs() -> None:
    day = dt.date(2026, 3, 1)
    assert expand_macros("s3a://lake/t/dt=${ds}", run_date=day) == "s3a://lake/t/dt=2026-03-01"
    glob = expand_macros("day=${ds-1:%Y%m%d}", run_date=day)
    assert glob == "day=20260228"
    assert glob_matches(glob, "day=20260228/part-0.parquet")
    with pytest.raises(ConfigError, match="unknown macro"):
        expand_macros("dt=${dsx}", run_date=day)


def test_partition_values_and_columns() -> None:
    assert partition_values("dt=2026-01-01/city=New%20York/part-0") == {
        "dt": "2026-01-01",
        "city": "New York",
    }
    assert partition_values("part-0") == {}
    assert path_partition_columns([f("a=1/b=2/x", 1), f("a=3/b=4/y", 1)]) == ["a", "b"]
    with pytest.raises(ConfigError, match="inconsistent partition folders"):
        path_partition_columns([f("a=1/x", 1), f("b=1/y", 1)])


def test_output_estimates() -> None:
    assert output_file_count(0, 1.0, 100) == 1
    assert output_file_count(1000, 1.0, 100) == 10
    assert output_file_count(1001, 1.0, 100) == 11
    assert output_file_count(1000, 0.25, 100) == 3
    assert data_bytes(10_000, 10, 600) == 4000
    assert data_bytes(10_000, 100, 600) == 500  # never below 5 %
    by_key = output_partition_keys(
        [f("a=1/b=x/f1", 10), f("a=1/b=x/f2", 5), f("a=2/b=y/f", 7)], ["b"]
    )
    assert by_key == {"x": 15, "y": 7}
    assert output_partition_keys([f("a=1/f", 1)], ["c"]) is None


def test_default_run_id_is_stable() -> None:
    day = dt.date(2026, 1, 2)
    a = default_run_id("parquet:/a", "file:/b", day)
    assert a == default_run_id("parquet:/a", "file:/b", day)
    assert a.startswith("20260102-")
    assert a != default_run_id("parquet:/a", "file:/c", day)
    assert a != default_run_id("parquet:/a", "file:/b", dt.date(2026, 1, 3))


def test_bucket_keys_route_each_bucket_to_its_own_partition() -> None:
    from lakeshift.copy.plan import bucket_keys, bucket_offsets, spark_hash_int

    for n in (1, 2, 7, 64, 500):
        keys = bucket_keys(n)
        assert sorted(spark_hash_int(k) % n for k in keys) == list(range(n))
    assert bucket_offsets({"b": 2, "a": 3, "c": 1}) == {"a": 0, "b": 3, "c": 5}
