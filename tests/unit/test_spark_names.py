"""Quoting of column names: :func:`lakeshift.spark.sql_name` and :func:`lakeshift.spark.col`."""

from __future__ import annotations

import pytest

from lakeshift.spark import col, sql_name


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("plain", "`plain`"),
        ("a.b", "`a.b`"),
        ("sp ace", "`sp ace`"),
        ("we`ird", "`we``ird`"),
        ("``", "``````"),
        ("", "``"),
    ],
)
def test_sql_name_doubles_backticks(name: str, quoted: str) -> None:
    assert sql_name(name) == quoted


NAMES = ["we`ird", "a.b", "sp ace", "`", "x``y"]


def test_col_selects_top_level_columns_whatever_their_names(spark) -> None:
    from pyspark.sql import Row

    # a struct "a" with a field "b" next to a column "a.b": col("a.b") must pick the column
    schema = "`we``ird` int, `a.b` int, `sp ace` int, ```` int, `x````y` int, a struct<b: int>"
    df = spark.createDataFrame([(0, 1, 2, 3, 4, (99,))], schema)
    assert df.columns == [*NAMES, "a"]
    row = df.select(*[col(n).alias(f"c{i}") for i, n in enumerate(NAMES)]).first()
    assert row == Row(c0=0, c1=1, c2=2, c3=3, c4=4)
    assert df.select(col("a", "b").alias("v")).first()["v"] == 99


def test_col_with_several_parts_reaches_struct_fields(spark) -> None:
    df = spark.sql("SELECT named_struct('x`y', 1, 'p.q', 2) AS `s t`")
    row = df.select(col("s t", "x`y").alias("a"), col("s t", "p.q").alias("b")).first()
    assert (row["a"], row["b"]) == (1, 2)
