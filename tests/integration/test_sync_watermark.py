"""Update-time watermark source (no change feed) with deletes by key-set difference → Delta."""

from __future__ import annotations

import datetime as dt

from lakeshift.changeframe import live_rows
from lakeshift.config.base import validate_model
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig

SCHEMA = "id BIGINT, name STRING, updated_at TIMESTAMP"


def ts(minute):
    return dt.datetime(2026, 1, 1, 0, minute)


def test_watermark_sync_with_key_set_deletes(spark, tmp_path):
    src, tgt = str(tmp_path / "src"), str(tmp_path / "tgt")
    before = [(1, "a", ts(1)), (2, "b", ts(2)), (3, "c", ts(3))]
    spark.createDataFrame(before, SCHEMA).write.parquet(src)
    cfg = validate_model(
        SyncConfig,
        {
            "name": "wm",
            "keys": ["id"],
            "state_dir": str(tmp_path / "state"),
            "source": {
                "kind": "watermark",
                "spec": f"parquet:{src}",
                "column": "updated_at",
                "detect_deletes": True,
            },
            "target": {"kind": "delta", "path": tgt},
        },
        "test",
    )
    assert engine.record_start_point(spark, cfg)["high"] == int(
        ts(3).replace(tzinfo=dt.timezone.utc).timestamp() * 1e6
    )
    # bulk copy of the snapshot
    spark.read.parquet(src).write.format("delta").save(tgt)
    # the source changes: 2 updated, 3 deleted, 4 inserted; 1 untouched
    after = [(1, "a", ts(1)), (2, "b2", ts(5)), (4, "d", ts(6))]
    spark.createDataFrame(after, SCHEMA).write.mode("overwrite").parquet(src)
    reports = list(engine.run_once(spark, cfg))
    assert len(reports) == 1 and reports[0].events == 3  # 2 upserts + 1 key-set delete
    got = sorted(
        tuple(r) for r in spark.read.format("delta").load(tgt).transform(live_rows).collect()
    )
    assert got == sorted(after)
