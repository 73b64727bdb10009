"""Real storage for every lake command: HDFS (Hadoop's mini cluster) and S3 (SeaweedFS).

`copy`, `validate` and `sync` read and write ``hdfs://`` and ``s3a://`` (and ``s3://``, served by
S3A) through Spark; the expected contents are checked with independent clients (hdfs-native,
boto3 + pyarrow), not with lakeshift's own readers. A missing S3 connector is one line, exit 2.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from delta.tables import DeltaTable

from lakeshift.cli import main
from tests.cli import lakeshift
from tests.hadoop_cluster import HadoopCluster, hadoop_cluster  # noqa: F401
from tests.s3_server import S3Server, s3_server  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_spark(spark, s3_server: S3Server, monkeypatch):
    """The test session's S3A client pointed at the S3 server (credentials set at run time)."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    settings = {
        "fs.s3a.endpoint": s3_server.endpoint_url,
        "fs.s3a.endpoint.region": s3_server.region,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.access.key": s3_server.access_key,
        "fs.s3a.secret.key": s3_server.secret_key,
    }
    for key, value in settings.items():
        conf.set(key, value)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return spark


def _s3_parquet_rows(server: S3Server, bucket: str, prefix: str, delta: bool) -> int:
    """Rows in the live files of a Parquet folder / Delta table, read with boto3 + pyarrow."""
    c = server.client()
    keys = server.keys(bucket, prefix)
    if delta:
        live: set[str] = set()
        for key in sorted(k for k in keys if k.endswith(".json") and "/_delta_log/" in k):
            for line in c.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
                action = json.loads(line)
                if "add" in action:
                    live.add(f"{prefix}/{action['add']['path']}")
                if "remove" in action:
                    live.discard(f"{prefix}/{action['remove']['path']}")
        keys = sorted(live)
    rows = 0
    for key in keys:
        if key.endswith(".parquet"):
            body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
            rows += pq.read_metadata(io.BytesIO(body)).num_rows
    return rows


def test_copy_and_validate_hdfs_to_s3(
    s3_spark,
    hadoop_cluster: HadoopCluster,
    s3_server: S3Server,
    capsys,
) -> None:
    spark = s3_spark
    bucket = s3_server.bucket(f"lake-{uuid.uuid4().hex[:8]}")
    src = f"{hadoop_cluster.fs}/raw/events-{uuid.uuid4().hex[:6]}"
    df = spark.range(0, 3000).selectExpr(
        "id", "cast(id % 3 as string) as region", "id * 1.5 as amount"
    )
    df.repartition(6).write.partitionBy("region").parquet(src)
    hdfs = hadoop_cluster.client()
    listed = [s.path for s in hdfs.list_status(src.split(hadoop_cluster.fs, 1)[1])]
    assert sorted(p.rsplit("/", 1)[1] for p in listed if "region=" in p) == [
        "region=0",
        "region=1",
        "region=2",
    ]

    dst = f"s3a://{bucket}/delta/events"
    summary = Path("/tmp") / f"copy-{uuid.uuid4().hex}.json"
    assert main(["copy", f"parquet:{src}", dst, "--no-progress", "--json", str(summary)]) == 0
    totals = json.loads(summary.read_text())["tables"][0]["totals"]
    assert totals["rows_written"] == 3000
    assert _s3_parquet_rows(s3_server, bucket, "delta/events", delta=True) == 3000

    # green across the two stores; s3:// is served by S3A too
    assert (
        main(["validate", f"parquet:{src}", f"delta:s3://{bucket}/delta/events", "--keys", "id"])
        == 0
    )
    assert "PASS" in capsys.readouterr().out

    # a planted difference on the S3 side is found, row for row
    DeltaTable.forPath(spark, dst).update("id = 7", {"amount": "-1.0"})
    DeltaTable.forPath(spark, dst).delete("id = 8")
    report = Path("/tmp") / f"val-{uuid.uuid4().hex}.json"
    code = main(
        ["validate", f"parquet:{src}", f"delta:{dst}", "--keys", "id", "--json", str(report)]
    )
    assert code == 1
    table = json.loads(report.read_text())["tables"][0]
    assert table["counts"] == {
        "missing_in_target": 1,
        "extra_in_target": 0,
        "duplicate_key": 0,
        "value_mismatch": 1,
    }
    assert table["column_mismatches"] == {"amount": 1}
    assert (table["left_rows"], table["right_rows"]) == (3000, 2999)


def test_sync_delta_cdf_between_s3_tables(s3_spark, s3_server: S3Server, tmp_path: Path) -> None:
    spark = s3_spark
    bucket = s3_server.bucket(f"cdf-{uuid.uuid4().hex[:8]}")
    src, tgt = f"s3a://{bucket}/src/orders", f"s3a://{bucket}/tgt/orders"
    spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id BIGINT, name STRING").write.format(
        "delta"
    ).option("delta.enableChangeDataFeed", "true").save(src)
    cfg = tmp_path / "sync.yaml"
    cfg.write_text(
        json.dumps(
            {
                "name": "s3cdf",
                "keys": ["id"],
                "state_dir": str(tmp_path / "state"),
                "source": {"kind": "delta_cdf", "path": src},
                "target": {"kind": "delta", "path": tgt},
            }
        )
    )
    assert main(["sync", "start-point", "--config", str(cfg)]) == 0
    spark.read.format("delta").load(src).write.format("delta").save(tgt)  # the bulk copy
    table = DeltaTable.forPath(spark, src)
    spark.createDataFrame([(4, "d")], "id BIGINT, name STRING").write.format("delta").mode(
        "append"
    ).save(src)
    table.update("id = 2", {"name": "'b2'"})
    table.delete("id = 1")
    assert main(["sync", "--config", str(cfg), "--once"]) == 0
    # read the target back with boto3 + pyarrow (not Spark): the live rows by their Delta log
    c = s3_server.client()
    live: dict[str, None] = {}
    for key in sorted(
        k for k in s3_server.keys(bucket, "tgt/orders/_delta_log/") if k.endswith(".json")
    ):
        for line in c.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = None
            if "remove" in action:
                live.pop(action["remove"]["path"], None)
    rows = []
    for path in live:
        body = c.get_object(Bucket=bucket, Key=f"tgt/orders/{path}")["Body"].read()
        t = pq.read_table(io.BytesIO(body))
        deleted = (
            t.column("_lakeshift_deleted").to_pylist()
            if "_lakeshift_deleted" in t.column_names
            else [False] * t.num_rows
        )
        rows += [
            (i, n)
            for i, n, d in zip(
                t.column("id").to_pylist(), t.column("name").to_pylist(), deleted, strict=True
            )
            if not d  # a delete is kept as a tombstone row (ordering of late events)
        ]
    assert sorted(rows) == [(2, "b2"), (3, "c"), (4, "d")]


def test_missing_s3_connector_is_one_line(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()  # a jar folder without .jars/s3
    out = lakeshift(
        "copy",
        f"parquet:{tmp_path}",
        "s3a://bucket/t",
        env={"LAKESHIFT_JARS_DIR": str(jars)},
        expect=2,
    )
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == [
        "lakeshift copy: error: s3a://bucket/t: the S3A connector (org.apache.hadoop:hadoop-aws, "
        "pom profile s3 in conf/jars/pom.xml) is not installed: run `make setup` (or `--jars "
        "packages`, or put it in the cluster's image)"
    ]
