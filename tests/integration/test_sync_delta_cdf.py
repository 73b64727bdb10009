"""Delta Change Data Feed → Delta, one commit per ``--once`` batch: every batch reports how far
behind the target still is (commits and change events, from the commit history), the lag in
seconds and the applied version; the target ends equal to the source."""

from __future__ import annotations

import time

from delta.tables import DeltaTable

from lakeshift.changeframe import live_rows
from lakeshift.config.base import validate_model
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig


def test_delta_cdf_batches_report_lag_and_position(spark, tmp_path):
    src, tgt = str(tmp_path / "src"), str(tmp_path / "tgt")
    spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id BIGINT, name STRING").write.format(
        "delta"
    ).option("delta.enableChangeDataFeed", "true").save(src)
    cfg = validate_model(
        SyncConfig,
        {
            "name": "cdf",
            "keys": ["id"],
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "delta_cdf", "path": src, "max_versions_per_batch": 1},
            "target": {"kind": "delta", "path": tgt},
        },
        "test",
    )
    assert engine.record_start_point(spark, cfg)["version"] == 0
    spark.read.format("delta").load(src).write.format("delta").save(tgt)  # the bulk copy
    began = time.time()
    table = DeltaTable.forPath(spark, src)
    spark.createDataFrame([(4, "d"), (5, "e")], "id BIGINT, name STRING").write.format(
        "delta"
    ).mode("append").save(src)  # v1: 2 inserts
    table.update("id = 2", {"name": "'b2'"})  # v2: 1 update
    table.delete("id IN (1, 5)")  # v3: 2 deletes

    reports = list(engine.run_once(spark, cfg))
    assert [r.position for r in reports] == [{"version": 1}, {"version": 2}, {"version": 3}]
    assert [r.events for r in reports] == [2, 1, 2]
    assert [r.behind for r in reports] == [
        {"versions": 2, "events": 3},
        {"versions": 1, "events": 2},
        {"versions": 0, "events": 0},
    ]
    waited = time.time() - began
    assert 0.0 < reports[0].lag_seconds <= waited + 1  # since the oldest unapplied commit
    assert reports[-1].lag_seconds == 0.0
    assert all(r.events_per_second > 0 for r in reports)
    live = spark.read.format("delta").load(tgt).transform(live_rows)
    assert sorted(tuple(r) for r in live.collect()) == [(2, "b2"), (3, "c"), (4, "d")]
