"""Pitfall corpus: tiny explicit-schema table pairs with the verdict a correct validator must give.

Equal data in different physical types must pass; true differences that naive tools miss must
fail. Each case states the expected verdict and, for failures, the expected difference classes
and differing columns, known independently of the code under test.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from lakeshift.validate import compare

# executors must run this interpreter (pyarrow for the NFC step); PySpark reads the variable when
# the context starts

UTC = dt.timezone.utc
CET = dt.timezone(dt.timedelta(hours=1))
NFC = unicodedata.normalize("NFC", "Café")
NFD = unicodedata.normalize("NFD", "Café")


@dataclass
class Case:
    id: str
    left_schema: str
    left: list[tuple[Any, ...]]
    right_schema: str
    right: list[tuple[Any, ...]]
    passed: bool
    keys: list[str] = field(default_factory=lambda: ["k"])
    opts: dict[str, Any] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)  # expected non-zero counts
    columns: set[str] = field(default_factory=set)  # expected differing columns


T0 = dt.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

CASES = [
    # --- equal data, different physical types: no false mismatch -----------------------------
    Case(
        "decimal_scale_widened",
        "k int, v decimal(10,2)",
        [(1, Decimal("1.23")), (2, None)],
        "k int, v decimal(20,4)",
        [(1, Decimal("1.2300")), (2, None)],
        True,
    ),
    Case(
        "int_vs_bigint",
        "k int, v int",
        [(1, 7), (2, -2147483648)],
        "k bigint, v bigint",
        [(1, 7), (2, -2147483648)],
        True,
    ),
    Case(
        "bigint_vs_decimal0",
        "k int, v bigint",
        [(1, 9223372036854775807)],
        "k int, v decimal(20,0)",
        [(1, Decimal("9223372036854775807"))],
        True,
    ),
    Case(
        "float_widened_within_tolerance",
        "k int, v float",
        [(1, 0.1), (2, 3.3)],
        "k int, v double",
        [(1, 0.1), (2, 3.3)],
        True,
        opts={"tolerances": {"v": "rel:1e-6"}},
    ),
    Case(
        "float_widened_digits",
        "k int, v float",
        [(1, 0.1), (2, 3.3)],
        "k int, v double",
        [(1, 0.1), (2, 3.3)],
        True,
        opts={"tolerances": {"v": "digits:6"}},
    ),
    Case(
        "timestamps_other_zone_same_instant",
        "k int, t timestamp",
        [(1, T0)],
        "k int, t timestamp",
        [(1, T0.astimezone(CET))],
        True,
    ),
    Case(
        "timestamp_vs_ntz_utc_wall_clock",
        "k int, t timestamp",
        [(1, T0)],
        "k int, t timestamp_ntz",
        [(1, T0.replace(tzinfo=None))],
        True,
    ),
    Case(
        "timestamp_precision_millis",
        "k int, t timestamp",
        [(1, T0)],
        "k int, t timestamp",
        [(1, T0.replace(microsecond=123000))],
        True,
        opts={"timestamp_precision": "millis"},
    ),
    Case(
        "timestamp_skew",
        "k int, t timestamp",
        [(1, T0)],
        "k int, t timestamp",
        [(1, T0 + dt.timedelta(microseconds=900))],
        True,
        opts={"tolerances": {"t": "skew:1ms"}},
    ),
    Case("negative_zero", "k int, v double", [(1, -0.0)], "k int, v double", [(1, 0.0)], True),
    Case(
        "nan_equals_nan",
        "k int, v double",
        [(1, math.nan)],
        "k int, v float",
        [(1, math.nan)],
        True,
    ),
    Case(
        "nfc_vs_nfd_with_nfc",
        "k int, s string",
        [(1, NFC)],
        "k int, s string",
        [(1, NFD)],
        True,
        opts={"tolerances": {"s": "nfc"}},
    ),
    Case(
        "casefold_trim",
        "k int, s string",
        [(1, " Hello ")],
        "k int, s string",
        [(1, "hello")],
        True,
        opts={"tolerances": {"s": "trim+casefold"}},
    ),
    Case(
        "map_key_order",
        "k int, m map<string,int>",
        [(1, {"a": 1, "b": 2})],
        "k int, m map<string,bigint>",
        [(1, {"b": 2, "a": 1})],
        True,
    ),
    Case(
        "array_as_set",
        "k int, a array<int>",
        [(1, [3, 1, 2, 1])],
        "k int, a array<int>",
        [(1, [1, 2, 3])],
        True,
        opts={"tolerances": {"a": "set"}},
    ),
    Case(
        # arrays of maps of arrays inside a struct: every nesting level has its own lambda
        "deep_nesting_equal",
        "k int, n struct<`a b`:array<map<string,array<int>>>,t:timestamp>",
        [(1, ([{"x": [1, 2]}, {"y": [3], "z": None}], T0)), (2, (None, None))],
        "k int, n struct<t:timestamp,`a b`:array<map<string,array<bigint>>>>",
        [(1, (T0.astimezone(CET), [{"x": [1, 2]}, {"z": None, "y": [3]}])), (2, (None, None))],
        True,
    ),
    Case(
        "deep_nesting_one_element_differs",
        "k int, n struct<`a b`:array<map<string,array<int>>>,t:timestamp>",
        [(1, ([{"x": [1, 2]}, {"y": [3]}], T0)), (2, ([{"x": [5]}], T0))],
        "k int, n struct<`a b`:array<map<string,array<int>>>,t:timestamp>",
        [(1, ([{"x": [1, 2]}, {"y": [4]}], T0)), (2, ([{"x": [5]}], T0))],
        False,
        classes={"value_mismatch": 1},
        columns={"n"},
    ),
    Case(
        "struct_nested_decimals",
        "k int, s struct<x:decimal(10,2),y:string>",
        [(1, (Decimal("1.50"), "a"))],
        "k int, s struct<y:string,x:decimal(12,3)>",
        [(1, ("a", Decimal("1.500")))],
        True,
    ),
    Case(
        "date_equal",
        "k int, d date",
        [(1, dt.date(1969, 12, 31))],
        "k int, d date",
        [(1, dt.date(1969, 12, 31))],
        True,
    ),
    Case(
        "keyless_same_multiset_other_order",
        "a string, b int",
        [("x", 1), ("x", 1), ("y", 2)],
        "a string, b bigint",
        [("y", 2), ("x", 1), ("x", 1)],
        True,
        keys=[],
    ),
    Case(
        "excluded_and_renamed",
        "k int, old string, junk int",
        [(1, "v", 5)],
        "k int, new string",
        [(1, "v")],
        True,
        opts={"rename": {"old": "new"}, "exclude": ["junk"]},
    ),
    # --- true differences that naive tools miss: no false match ------------------------------
    Case(
        "concat_ambiguity_keyless",
        "a string, b string",
        [("ab", "c")],
        "a string, b string",
        [("a", "bc")],
        False,
        keys=[],
        classes={"missing_in_target": 1, "extra_in_target": 1},
    ),
    Case(
        "concat_ambiguity_keyed",
        "k int, a string, b string",
        [(1, "ab", "c")],
        "k int, a string, b string",
        [(1, "a", "bc")],
        False,
        classes={"value_mismatch": 1},
        columns={"a", "b"},
    ),
    Case(
        "duplicates_xxy_vs_y",
        "a string",
        [("x",), ("x",), ("y",)],
        "a string",
        [("y",)],
        False,
        keys=[],
        classes={"missing_in_target": 1},
    ),
    Case(
        "duplicates_xxy_vs_xy",
        "a string",
        [("x",), ("x",), ("y",)],
        "a string",
        [("x",), ("y",)],
        False,
        keys=[],
        classes={"missing_in_target": 1},
    ),
    Case(
        "duplicate_key",
        "k int, v string",
        [(1, "a"), (1, "a")],
        "k int, v string",
        [(1, "a")],
        False,
        classes={"duplicate_key": 1},
    ),
    Case(
        "null_vs_empty_string",
        "k int, s string",
        [(1, None)],
        "k int, s string",
        [(1, "")],
        False,
        classes={"value_mismatch": 1},
        columns={"s"},
    ),
    Case(
        "null_position_swap_keyless",
        "a string, b string",
        [(None, "a")],
        "a string, b string",
        [("a", None)],
        False,
        keys=[],
        classes={"missing_in_target": 1, "extra_in_target": 1},
    ),
    Case(
        "null_vs_missing_column",
        "k int, s string",
        [(1, None)],
        "k int",
        [(1,)],
        False,
        classes={"value_mismatch": 1},
        columns={"s"},
    ),
    Case(
        "empty_vs_missing_column",
        "k int",
        [(1,)],
        "k int, s string",
        [(1, "")],
        False,
        classes={"value_mismatch": 1},
        columns={"s"},
    ),
    Case(
        "whitespace_change",
        "k int, s string",
        [(1, "a b"), (2, "x")],
        "k int, s string",
        [(1, "a  b"), (2, "x ")],
        False,
        classes={"value_mismatch": 2},
        columns={"s"},
    ),
    Case(
        "case_change",
        "k int, s string",
        [(1, "Abc")],
        "k int, s string",
        [(1, "abc")],
        False,
        classes={"value_mismatch": 1},
        columns={"s"},
    ),
    Case(
        "nfc_vs_nfd_default",
        "k int, s string",
        [(1, NFC)],
        "k int, s string",
        [(1, NFD)],
        False,
        classes={"value_mismatch": 1},
        columns={"s"},
    ),
    Case(
        "near_int64_overflow",
        "k int, v bigint",
        [(1, 9223372036854775807)],
        "k int, v bigint",
        [(1, 9223372036854775806)],
        False,
        classes={"value_mismatch": 1},
        columns={"v"},
    ),
    Case(
        "near_int64_overflow_decimal",
        "k int, v bigint",
        [(1, 9223372036854775807)],
        "k int, v decimal(20,0)",
        [(1, Decimal("9223372036854775806"))],
        False,
        classes={"value_mismatch": 1},
        columns={"v"},
    ),
    Case(
        "decimal_scale_lost",
        "k int, v decimal(10,4)",
        [(1, Decimal("1.2345"))],
        "k int, v decimal(10,2)",
        [(1, Decimal("1.23"))],
        False,
        classes={"value_mismatch": 1},
        columns={"v"},
    ),
    Case(
        "float_widened_no_tolerance",
        "k int, v float",
        [(1, 0.1)],
        "k int, v double",
        [(1, 0.1)],
        False,
        classes={"value_mismatch": 1},
        columns={"v"},
    ),
    Case(
        "timestamp_one_micro",
        "k int, t timestamp",
        [(1, T0)],
        "k int, t timestamp",
        [(1, T0 + dt.timedelta(microseconds=1))],
        False,
        classes={"value_mismatch": 1},
        columns={"t"},
    ),
    Case(
        "nan_vs_null",
        "k int, v double",
        [(1, math.nan)],
        "k int, v double",
        [(1, None)],
        False,
        classes={"value_mismatch": 1},
        columns={"v"},
    ),
    Case(
        "array_order",
        "k int, a array<string>",
        [(1, ["a", None])],
        "k int, a array<string>",
        [(1, [None, "a"])],
        False,
        classes={"value_mismatch": 1},
        columns={"a"},
    ),
    Case(
        "struct_null_swap",
        "k int, s struct<x:string,y:string>",
        [(1, (None, "v"))],
        "k int, s struct<x:string,y:string>",
        [(1, ("v", None))],
        False,
        classes={"value_mismatch": 1},
        columns={"s"},
    ),
    Case(
        "map_extra_null_entry",
        "k int, m map<string,int>",
        [(1, {"a": 1})],
        "k int, m map<string,int>",
        [(1, {"a": 1, "b": None})],
        False,
        classes={"value_mismatch": 1},
        columns={"m"},
    ),
    Case(
        "tolerance_exceeded",
        "k int, v double",
        [(1, 100.0)],
        "k int, v double",
        [(1, 100.02)],
        False,
        opts={"tolerances": {"v": "abs:0.01"}},
        classes={"value_mismatch": 1},
        columns={"v"},
    ),
    Case(
        "missing_and_extra",
        "k int, v int",
        [(1, 1), (2, 2)],
        "k int, v int",
        [(2, 2), (3, 3)],
        False,
        classes={"missing_in_target": 1, "extra_in_target": 1},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pitfall(spark, case: Case) -> None:
    left = spark.createDataFrame(case.left, case.left_schema)
    right = spark.createDataFrame(case.right, case.right_schema)
    opts = dict(case.opts)
    tolerances = opts.pop("tolerances", None)
    result = compare(left, right, keys=case.keys, tolerances=tolerances, samples=0, **opts)
    assert result.passed is case.passed, result.summary()
    nonzero = {k: v for k, v in result.counts.items() if v}
    if not case.passed:
        assert nonzero == case.classes, result.summary()
        assert set(result.column_mismatches) == case.columns, result.summary()
    else:
        assert nonzero == {}, result.summary()


def test_one_row_changed_among_many_in_one_bucket(spark) -> None:
    rows = [(i, f"name-{i}", i * 1.5) for i in range(2000)]
    changed = list(rows)
    changed[1234] = (1234, "name-1234", 1234 * 1.5 + 1e-9)
    left = spark.createDataFrame(rows, "k int, s string, v double")
    right = spark.createDataFrame(changed, "k int, s string, v double")
    result = compare(left, right, keys=["k"], buckets=1)
    assert not result.passed
    assert result.counts["value_mismatch"] == 1
    assert result.column_mismatches == {"v": 1}
    keys = [r["key"] for r in result.mismatches().collect()]
    assert keys == ['{"k":1234}']


def test_partition_fingerprints_and_aggregates(spark) -> None:
    left = spark.createDataFrame([("a", 1), ("a", 2), ("b", 3)], "p string, v int")
    right = spark.createDataFrame([("a", 2), ("a", 1), ("b", 4)], "p string, v bigint")
    result = compare(left, right, partition_by=["p"], aggregates="on")
    assert not result.passed
    assert [(p["partition"], p["match"]) for p in result.partitions] == [
        ({"p": "a"}, True),
        ({"p": "b"}, False),
    ]
    failed = {(a.column, a.metric) for a in result.aggregates if not a.passed}
    assert failed == {("v", "sum"), ("v", "max")}


def test_partition_null_and_empty_string_stay_apart(spark) -> None:
    """A NULL partition value and an empty-string one are different partitions on both sides."""
    left = spark.createDataFrame([(None, 1), ("", 2), ("x", 3)], "p string, v int")
    right = spark.createDataFrame([(None, 1), ("", 5), ("x", 3)], "p string, v int")
    result = compare(left, right, partition_by=["p"])
    assert not result.passed
    assert sorted(
        (
            (p["partition"]["p"], p["left_rows"], p["right_rows"], p["match"])
            for p in result.partitions
        ),
        key=repr,
    ) == [("", 1, 1, False), ("x", 1, 1, True), (None, 1, 1, True)]


def test_awkward_column_names_and_null_keys_in_the_diff(spark) -> None:
    """Names with quotes, backslashes and unicode survive the diff; a NULL key is a key."""
    odd, key = 'it\'s a \\ "col" ü', "k'ey"
    schema = f"`{key}` int, `{odd}` string, v double"
    left = spark.createDataFrame([(1, "a", 1.0), (None, "n", 2.0), (3, "c", 3.0)], schema)
    right = spark.createDataFrame([(1, "A", 1.0), (None, "n", 2.5), (4, "d", 4.0)], schema)
    result = compare(left, right, keys=[key], tolerances={"v": "abs:0.1"})
    got = {
        r["key"]: (r["class"], sorted(r["columns"]), r["left"], r["right"])
        for r in result.mismatches().collect()
    }
    assert got == {
        '{"k\'ey":1}': ("value_mismatch", [odd], {odd: "a"}, {odd: "A"}),
        "{}": ("value_mismatch", ["v"], {"v": "2.0"}, {"v": "2.5"}),
        '{"k\'ey":3}': ("missing_in_target", [], {odd: "c", "v": "3.0"}, None),
        '{"k\'ey":4}': ("extra_in_target", [], None, {odd: "d", "v": "4.0"}),
    }
    assert result.column_mismatches == {odd: 1, "v": 1}


def test_backticks_in_column_and_field_names(spark) -> None:
    """A backtick in a column or struct field name is quoted, not cut: the difference is found."""
    col, schema = "a`b", "k int, `a``b` int, s struct<`x``y`:int, z:string>"
    left = spark.createDataFrame([(1, 10, (1, "p")), (2, 20, (2, "q"))], schema)
    right = spark.createDataFrame([(1, 10, (1, "p")), (2, 21, (3, "q"))], schema)
    result = compare(left, right, keys=["k"])
    rows = result.mismatches().collect()
    assert [(r["key"], r["class"], sorted(r["columns"])) for r in rows] == [
        ('{"k":2}', "value_mismatch", sorted([col, "s"]))
    ]
    assert rows[0]["left"][col] == "20" and rows[0]["right"][col] == "21"


def test_column_missing_on_one_side_is_shown_as_missing(spark) -> None:
    """A column only on the left differs on every row: NULL and value vs the missing column."""
    left = spark.createDataFrame([(1, "a", 1.5), (2, "b", None)], "k int, s string, x double")
    right = spark.createDataFrame([(1, "a"), (2, "B")], "k int, s string")
    result = compare(left, right, keys=["k"])
    got = {
        r["key"]: (r["class"], sorted(r["columns"]), r["left"], r["right"])
        for r in result.mismatches().collect()
    }
    assert got == {
        '{"k":1}': ("value_mismatch", ["x"], {"x": "1.5"}, {"x": "<missing column>"}),
        '{"k":2}': (
            "value_mismatch",
            ["s", "x"],
            {"s": "b", "x": None},
            {"s": "B", "x": "<missing column>"},
        ),
    }
