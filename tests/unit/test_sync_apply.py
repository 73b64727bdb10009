"""Latest-per-key reduction and the version-guarded Delta MERGE (tiny explicit-schema frames)."""

from __future__ import annotations

import random

import pytest

from lakeshift.changeframe import live_rows
from lakeshift.sinks.delta_merge import merge_changes, prepare_target
from lakeshift.sources.reduce import latest_per_key

SCHEMA = (
    "id BIGINT, name STRING, "
    "_lakeshift_ts BIGINT, _lakeshift_ord STRING, _lakeshift_deleted BOOLEAN"
)


def ev(id_, name, ts, ord_="0", deleted=False):
    return (id_, None if deleted else name, ts, ord_, deleted)


def rows(df):
    return sorted(tuple(r) for r in df.collect())


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # later ts wins regardless of input order
        ([ev(1, "a", 1), ev(1, "b", 3), ev(1, "c", 2)], [(1, "b", 3, "0", False)]),
        # same ts: the ordinal breaks the tie (byte-wise string order)
        ([ev(2, "x", 5, "0a"), ev(2, "y", 5, "0b")], [(2, "y", 5, "0b", False)]),
        # delete then re-insert ends present; insert then delete ends deleted
        ([ev(3, None, 1, deleted=True), ev(3, "back", 2)], [(3, "back", 2, "0", False)]),
        ([ev(4, "gone", 1), ev(4, None, 2, deleted=True)], [(4, None, 2, "0", True)]),
    ],
)
def test_latest_per_key(spark, events, expected):
    df = spark.createDataFrame(events, SCHEMA)
    assert rows(latest_per_key(df, ["id"])) == expected


def _apply(spark, path, events, txn, app="test"):
    batch = latest_per_key(spark.createDataFrame(events, SCHEMA), ["id"])
    return merge_changes(spark, path, batch, ["id"], app_id=app, txn_version=txn)


def test_merge_guarded_idempotent_and_order_free(spark, tmp_path):
    # bulk copy output without hidden columns: its rows are older than every event
    bulk = str(tmp_path / "t")
    spark.createDataFrame(
        [(1, "bulk1"), (2, "bulk2"), (3, "bulk3")], "id BIGINT, name STRING"
    ).write.format("delta").save(bulk)
    prepare_target(spark, bulk)
    events = [
        ev(1, "one-v1", 10, "1"),
        ev(1, "one-v2", 12, "1"),
        ev(2, None, 11, "1", deleted=True),  # delete of a bulk row
        ev(4, "four", 13, "1"),
        ev(4, None, 14, "1", deleted=True),
        ev(4, "four-again", 15, "1"),  # delete then re-insert: present
        ev(5, None, 16, "1", deleted=True),  # delete of a key the target never saw
    ]
    first = _apply(spark, bulk, events[:4], 1)
    assert first.committed
    second = _apply(spark, bulk, events[4:], 2)
    assert second.committed
    expected = [(1, "one-v2"), (3, "bulk3"), (4, "four-again")]
    live = spark.read.format("delta").load(bulk).transform(live_rows)
    assert rows(live) == expected

    # replaying batch 2 with the same txn version: Delta skips the commit
    assert not _apply(spark, bulk, events[4:], 2).committed
    # replaying everything under a new txn version: the version guard changes nothing
    version_before = spark.read.format("delta").load(bulk).count()
    late = [ev(5, "late-old-insert", 3, "1"), *events]  # an old insert must not resurrect key 5
    random.Random(7).shuffle(late)
    res = _apply(spark, bulk, late, 3)
    assert res.updated == 0 and res.inserted == 0
    target = spark.read.format("delta").load(bulk)
    assert target.count() == version_before
    assert rows(target.transform(live_rows)) == expected

    # shuffled events in a fresh target converge to the same live state as the ordered apply
    fresh = str(tmp_path / "fresh")
    spark.createDataFrame(
        [(1, "bulk1"), (2, "bulk2"), (3, "bulk3")], "id BIGINT, name STRING"
    ).write.format("delta").save(fresh)
    prepare_target(spark, fresh)
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    _apply(spark, fresh, shuffled[:3], 1)
    _apply(spark, fresh, shuffled[3:], 2)
    assert rows(spark.read.format("delta").load(fresh).transform(live_rows)) == expected
