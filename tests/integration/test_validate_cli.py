"""`lakeshift validate` / `repair` end to end on real Parquet and Delta tables.

A source table and a Delta target with planted differences (missing, extra, duplicate keys and
changed values in several columns, in other physical types): every report must name exactly the
planted keys and columns.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from lakeshift.cli import main
from lakeshift.validate import compare

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
SRC_SCHEMA = (
    "id int, name string, amount decimal(12,2), qty int, ts timestamp, flag boolean, "
    "tags array<string>"
)
DST_SCHEMA = (
    "id bigint, name string, amount decimal(20,4), qty bigint, ts timestamp, flag boolean, "
    "tags array<string>"
)

EXPECTED = {
    ('{"id":10}', "missing_in_target", None),
    ('{"id":20}', "missing_in_target", None),
    ('{"id":1001}', "extra_in_target", None),
    ('{"id":1002}', "extra_in_target", None),
    ('{"id":30}', "duplicate_key", None),
    ('{"id":40}', "value_mismatch", "name"),
    ('{"id":50}', "value_mismatch", "amount"),
    ('{"id":50}', "value_mismatch", "qty"),
    ('{"id":60}', "value_mismatch", "ts"),
    ('{"id":60}', "value_mismatch", "flag"),
    ('{"id":60}', "value_mismatch", "tags"),
}


def _row(i: int) -> tuple:
    return (
        i,
        f"name {i}",
        Decimal(i) / 4,
        i % 7,
        T0 + dt.timedelta(minutes=i),
        i % 2 == 0,
        [f"t{i % 3}", "x"],
    )


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("validate")
    src_rows = [_row(i) for i in range(1, 201)]
    dst = {r[0]: list(r) for r in src_rows}
    del dst[10], dst[20]
    dst[1001] = list(_row(1001))
    dst[1002] = list(_row(1002))
    dst[40][1] = "name 40 changed"
    dst[50][2] = Decimal("99.99")
    dst[50][3] = 100
    dst[60][4] = T0 + dt.timedelta(minutes=60, seconds=1)
    dst[60][5] = not dst[60][5]
    dst[60][6] = ["x", "t0"]
    dst[70][2] = dst[70][2] + Decimal("0.005")  # within abs:0.01: not a difference
    dst_rows = [tuple(v) for v in dst.values()] + [tuple(dst[30])]
    src = str(base / "src")
    dst_path = str(base / "dst")
    spark.createDataFrame(src_rows, SRC_SCHEMA).write.parquet(src)
    spark.createDataFrame(dst_rows, DST_SCHEMA).coalesce(2).write.format("delta").save(dst_path)
    return base, f"parquet:{src}", f"delta:{dst_path}"


def _found(rows) -> set[tuple]:
    return {(r["key"], r["class"], r["column"]) for r in rows}


def test_cli_reports_exactly_the_planted_differences(spark, tables):
    base, src, dst = tables
    out = base / "out"
    rc = main(
        [
            "validate",
            src,
            dst,
            "--keys",
            "id",
            "--tolerance",
            "amount=abs:0.01",
            "--json",
            str(out / "v.json"),
            "--html",
            str(out / "v.html"),
            "--junit",
            str(out / "v.xml"),
            "--results",
            f"delta:{out / 'results'}",
            "--name",
            "orders",
            "--samples",
            "50",
        ]
    )
    assert rc == 1
    doc = json.loads((out / "v.json").read_text())
    table = doc["tables"][0]
    assert doc["passed"] is False and table["verdict"] == "fail"
    assert table["counts"] == {
        "missing_in_target": 2,
        "extra_in_target": 2,
        "duplicate_key": 1,
        "value_mismatch": 3,
    }
    assert table["column_mismatches"] == {
        "name": 1,
        "amount": 1,
        "qty": 1,
        "ts": 1,
        "flag": 1,
        "tags": 1,
    }
    assert (table["left_rows"], table["right_rows"]) == (200, 201)
    # lossy mapping flags: none here (widening only); amount/qty types differ but are equal
    assert [s for s in table["schema"] if s["severity"] == "error"] == []
    sample_keys = {s["key"] for s in table["samples"]}
    assert sample_keys == {k for k, _, _ in EXPECTED}

    details = spark.read.format("delta").load(str(out / "results" / "details")).collect()
    assert _found(details) == EXPECTED
    by_col = {(r["key"], r["column"]): (r["left_value"], r["right_value"]) for r in details}
    assert by_col[('{"id":50}', "qty")] == ("1", "100")
    assert by_col[('{"id":40}', "name")] == ("name 40", "name 40 changed")
    summary = spark.read.format("delta").load(str(out / "results" / "summary")).collect()
    assert [(r["table_name"], r["verdict"], r["value_mismatch"]) for r in summary] == [
        ("orders", "fail", 3)
    ]

    suite = ET.parse(out / "v.xml").getroot()
    assert suite.get("tests") == "1" and suite.get("failures") == "1"
    assert suite.find("testcase").get("name") == "orders"
    assert suite.find("testcase/failure") is not None

    page = (out / "v.html").read_text()
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "name 40 changed" in page and "FAIL" in page


def test_notebook_api_full_diff(spark, tables):
    _, src, dst = tables
    left = spark.read.parquet(src.split(":", 1)[1])
    right = spark.read.format("delta").load(dst.split(":", 1)[1])
    res = compare(left, right, keys=["id"], tolerances={"amount": "abs:0.01"})
    assert not res.passed
    mm = res.mismatches().collect()
    got = set()
    for r in mm:
        for col in r["columns"] or [None]:
            got.add((r["key"], r["class"], col))
    assert got == EXPECTED
    assert "orders" not in res.summary() and "value_mismatch 3" in res.summary()
    assert "<table>" in res._repr_html_()
    # threshold: 8 differing keys (9 rows incl. the duplicate) of 200 rows = 4.5% deviation
    assert compare(
        left, right, keys=["id"], tolerances={"amount": "abs:0.01"}, threshold=0.05
    ).passed


def test_config_run_many_tables_and_exit_codes(spark, tables, tmp_path):
    _, src, dst = tables
    cfg = tmp_path / "v.yaml"
    cfg.write_text(
        f"""
defaults: {{keys: [id]}}
templates:
  money: {{columns: {{amount: "abs:0.01"}}}}
outputs: {{junit: {tmp_path / "j.xml"}}}
tables:
  - {{name: same, left: "{src}", right: "{src}"}}
  - {{name: migrated, left: "{src}", right: "{dst}", template: money}}
"""
    )
    assert main(["validate", "--config", str(cfg)]) == 1
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert [c.get("name") for c in suite.findall("testcase")] == ["same", "migrated"]
    assert suite.get("failures") == "1"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables: [{left: a, right: b, threshold: 7}]")
    assert main(["validate", "--config", str(bad)]) == 2
    assert main(["validate", src]) == 2
    assert main(["validate", src, dst, "--tolerance", "amount=wobble"]) == 2


def test_repair_makes_target_equal(spark, tables, tmp_path):
    _, src, dst = tables
    target = tmp_path / "repair_target"
    spark.read.format("delta").load(dst.split(":", 1)[1]).write.format("delta").save(str(target))
    rc = main(["repair", src, f"delta:{target}", "--keys", "id", "--tolerance", "amount=abs:0.01"])
    assert rc == 0
    # one atomic commit: the initial write (version 0) plus exactly one MERGE
    history = spark.sql(f"DESCRIBE HISTORY delta.`{target}`").select("version", "operation")
    assert sorted(tuple(r) for r in history.collect()) == [(0, "WRITE"), (1, "MERGE")]
    left = spark.read.parquet(src.split(":", 1)[1])
    repaired = spark.read.format("delta").load(str(target))
    assert repaired.count() == 200
    assert compare(left, repaired, keys=["id"], tolerances={"amount": "abs:0.01"}).passed
    # the within-tolerance change of id 70 was not a difference, so repair left it alone
    exact = compare(left, repaired, keys=["id"])
    assert [r["key"] for r in exact.mismatches().collect()] == ['{"id":70}']
