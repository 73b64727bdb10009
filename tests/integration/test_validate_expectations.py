"""great-expectations suites as post-migration gates on the target, in the same report."""

from __future__ import annotations

import json

import pytest

from lakeshift.cli import main
from lakeshift.errors import ConfigError
from lakeshift.validate.expectations import load_expectations

pytest.importorskip("great_expectations")


def test_expectations_join_the_report(spark, tmp_path):
    src = tmp_path / "src"
    dst = tmp_path / "dst"
    df = spark.createDataFrame([(1, "a", 5), (2, None, 7)], "id int, name string, qty int")
    df.write.parquet(str(src))
    df.write.format("delta").save(str(dst))
    suite = tmp_path / "gx.yaml"
    suite.write_text(
        """
- type: expect_column_values_to_not_be_null
  kwargs: {column: id}
- type: expect_column_values_to_not_be_null
  kwargs: {column: name}
- type: expect_column_values_to_be_between
  kwargs: {column: qty, min_value: 0, max_value: 10}
"""
    )
    out = tmp_path / "v.json"
    rc = main(
        [
            "validate",
            f"parquet:{src}",
            f"delta:{dst}",
            "--keys",
            "id",
            "--expectations",
            str(suite),
            "--json",
            str(out),
        ]
    )
    table = json.loads(out.read_text())["tables"][0]
    got = [(e["expectation"], e["column"], e["success"]) for e in table["expectations"]]
    assert got == [
        ("expect_column_values_to_not_be_null", "id", True),
        ("expect_column_values_to_not_be_null", "name", False),
        ("expect_column_values_to_be_between", "qty", True),
    ]
    # the data match, but a failing gate fails the table
    assert table["counts"]["value_mismatch"] == 0
    assert table["passed"] is False and rc == 1


def test_bad_suite_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- kwargs: {column: id}\n")
    with pytest.raises(ConfigError, match=r"\[0\]\.type: field required"):
        load_expectations(bad)
