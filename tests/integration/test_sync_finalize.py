"""``lakeshift sync finalize`` on a Delta target synced from a Delta change feed: before it, the
target holds tombstones and the hidden version columns; after it, exactly the source's columns
and live rows (read back by plain Spark, compared with the source). A sync after it (a
rolled-back cut-over) still applies changes."""

from __future__ import annotations

import json
from pathlib import Path

from delta.tables import DeltaTable

from tests.cli import lakeshift


def _rows(spark, path: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())


def test_finalize_leaves_live_rows_and_source_columns(spark, tmp_path: Path) -> None:
    src, tgt = str(tmp_path / "src"), str(tmp_path / "tgt")
    spark.createDataFrame([(i, f"v{i}") for i in range(1, 7)], "id BIGINT, v STRING").write.format(
        "delta"
    ).option("delta.enableChangeDataFeed", "true").save(src)
    cfg = tmp_path / "sync.yaml"
    cfg.write_text(
        json.dumps(
            {
                "name": "fin",
                "keys": ["id"],
                "state_dir": str(tmp_path / "state"),
                "source": {"kind": "delta_cdf", "path": src},
                "target": {"kind": "delta", "path": tgt},
            }
        )
    )
    lakeshift("sync", "start-point", "--config", str(cfg))
    spark.read.format("delta").load(src).write.format("delta").save(tgt)  # the bulk copy
    table = DeltaTable.forPath(spark, src)
    table.delete("id IN (2, 3)")
    table.update("id = 4", {"v": "'changed'"})
    lakeshift("sync", "--config", str(cfg), "--once")
    before = spark.read.format("delta").load(tgt)
    assert "_lakeshift_deleted" in before.columns
    assert before.where("_lakeshift_deleted").count() == 2  # tombstones of 2 and 3

    out = tmp_path / "fin.json"
    done = lakeshift("sync", "finalize", "--config", str(cfg), "--json", str(out))
    assert "dropped columns: _lakeshift_ts, _lakeshift_ord, _lakeshift_deleted" in done.stdout
    after = spark.read.format("delta").load(tgt)
    assert after.columns == ["id", "v"]
    assert _rows(spark, tgt) == _rows(spark, src)
    assert json.loads(out.read_text())["rows"] == 4

    # a sync after the cut-over was rolled back: the columns come back, changes still apply
    DeltaTable.forPath(spark, src).update("id = 5", {"v": "'again'"})
    lakeshift("sync", "--config", str(cfg), "--once")
    live = spark.read.format("delta").load(tgt).where("NOT coalesce(_lakeshift_deleted, false)")
    assert sorted(tuple(r) for r in live.select("id", "v").collect()) == _rows(spark, src)
