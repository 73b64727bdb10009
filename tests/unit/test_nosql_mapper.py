"""The document mapper on hand-made hostile documents (pure Python: no Spark needed).

Expectations are written out by hand from the BSON values, never computed with the mapper.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import bson
import pytest
from bson.binary import Binary
from bson.int64 import Int64

from lakeshift.nosql.bsontypes import ValueIssue, convert, to_decimal
from lakeshift.nosql.mapping import MappingSpec, resolve
from lakeshift.nosql.normalise import DocumentMapper

OID = bson.ObjectId("5bd761ddae323e45a93cd9a5")


def mapper(collection: dict, dialect: str = "postgres") -> DocumentMapper:
    coll = resolve(MappingSpec.model_validate({"collections": [collection]}))[0]
    return DocumentMapper(coll, dialect)


def raw(doc: dict) -> bytes:
    return bson.encode(doc)


BASE = {
    "source": "db.things",
    "table": "things",
    "columns": [
        {"path": "_id", "type": "objectid"},
        {"path": "price", "type": "decimal", "scale": 2},
        {"path": "when", "type": "timestamp"},
        {"path": "who.name", "type": "string"},
        {"path": "n", "type": "long"},
    ],
    "children": [
        {"path": "items", "kind": "documents", "columns": [{"path": "sku", "type": "string"}]},
        {"path": "tags", "kind": "scalars", "columns": [{"path": "", "type": "string"}]},
        {"path": "scores", "kind": "map", "columns": [{"path": "", "type": "double"}]},
    ],
}


def test_a_clean_document_maps_to_parent_and_child_rows() -> None:
    m = mapper(BASE)
    out = m.map_raw(
        raw(
            {
                "_id": OID,
                "price": bson.Decimal128("12.30"),
                "when": dt.datetime(2013, 1, 8, 13, 0, 44, 182000),
                "who": {"name": "Ann"},
                "n": Int64(2**40),
                "items": [{"sku": "a"}, {"sku": "b", "extra": 1}],
                "tags": ["x"],
                "scores": {"3f1a2b3c4d5e6f708192": 1.5},
                "later": True,
            }
        )
    )
    assert out.ok and out.doc_id == str(OID)
    parent, items, tags, scores = out.rows
    assert parent == [
        {
            "_id": str(OID),
            "price": Decimal("12.30"),
            "when": 1357650044182 * 1000,
            "who_name": "Ann",
            "n": 2**40,
            "_extra": '{"later": true}',
        }
    ]
    assert items == [
        {"_id": str(OID), "_ord1": 0, "sku": "a", "_extra": None},
        {"_id": str(OID), "_ord1": 1, "sku": "b", "_extra": '{"extra": 1}'},
    ]
    assert tags == [{"_id": str(OID), "_ord1": 0, "value": "x"}]
    assert scores == [
        {"_id": str(OID), "_key1": "3f1a2b3c4d5e6f708192", "value": 1.5, "_extra": None}
    ]


def test_empty_and_huge_arrays() -> None:
    m = mapper(BASE)
    empty = m.map_raw(raw({"_id": OID, "items": [], "tags": []}))
    assert empty.ok and empty.rows[1] == [] and empty.rows[2] == []
    huge = m.map_raw(raw({"_id": OID, "tags": [f"t{i}" for i in range(50_000)]}))
    assert huge.ok and len(huge.rows[2]) == 50_000
    assert huge.rows[2][-1] == {"_id": str(OID), "_ord1": 49_999, "value": "t49999"}


@pytest.mark.parametrize(
    ("doc", "path", "reason_part"),
    [
        ({"price": bson.Decimal128("1.234")}, "price", "more than 2 fractional digits"),
        ({"price": bson.Decimal128("NaN")}, "price", "NaN cannot be stored"),
        ({"price": bson.Decimal128("-Infinity")}, "price", "-Infinity cannot be stored"),
        ({"price": "abc"}, "price", "not a number"),
        ({"n": 1.5}, "n", "non-integral double"),
        ({"who": {"name": {"first": "x"}}}, "who.name", "found BSON object"),
        ({"items": {"sku": "a"}}, "items", "expected an array"),
        ({"items": ["a"]}, "items.0", "expected a sub-document"),
        ({"who": {"name": "nul\x00byte"}}, "who.name", "U+0000"),
    ],
)
def test_values_that_do_not_fit_quarantine_the_whole_document(doc, path, reason_part) -> None:
    out = mapper(BASE).map_raw(raw({"_id": OID, "tags": ["kept?"], **doc}))
    assert not out.ok
    assert out.rows == []  # nothing of the document reaches any table
    assert [(i[0], i[1]) for i in out.issues] == [(str(OID), path)]
    assert reason_part in out.issues[0][3]


def test_mixed_types_in_one_field_cast_split_json_reject() -> None:
    coll = {
        "source": "t",
        "columns": [
            {"path": "_id", "type": "int"},
            {"path": "v", "type": "string", "name": "v_cast"},
            {
                "path": "v",
                "type": "long",
                "name": "v_num",
                "accept": ["int", "long"],
                "on_mismatch": "null",
            },
            {
                "path": "v",
                "type": "string",
                "name": "v_str",
                "accept": ["string"],
                "on_mismatch": "null",
            },
            {"path": "v", "type": "json", "name": "v_json"},
        ],
    }
    m = mapper(coll)
    rows = [
        m.map_raw(raw({"_id": i, "v": v})).rows[0][0] for i, v in enumerate([7, "seven", Int64(8)])
    ]
    assert [(r["v_cast"], r["v_num"], r["v_str"], r["v_json"]) for r in rows] == [
        ("7", 7, None, "7"),
        ("seven", None, "seven", '"seven"'),
        ("8", 8, None, "8"),
    ]
    reject = mapper(
        {
            **coll,
            "columns": [coll["columns"][0], {"path": "v", "type": "int", "on_mismatch": "reject"}],
        }
    )
    assert reject.map_raw(raw({"_id": 1, "v": 7})).ok
    bad = reject.map_raw(raw({"_id": 2, "v": Int64(7)}))
    assert not bad.ok and "expected int, found BSON long" in bad.issues[0][3]


def test_forty_levels_of_nesting_flatten_and_json() -> None:
    deep: dict = {"leaf": 1}
    for i in range(39, 0, -1):
        deep = {f"l{i}": deep}
    leaf_path = ".".join(f"l{i}" for i in range(1, 40)) + ".leaf"
    m = mapper(
        {
            "source": "t",
            "columns": [
                {"path": "_id", "type": "int"},
                {"path": leaf_path, "type": "int"},
                {"path": "l1", "type": "json", "name": "whole"},
            ],
            "unmapped": "ignore",
        }
    )
    out = m.map_raw(raw({"_id": 1, **deep}))
    assert out.ok
    row = out.rows[0][0]
    leaf_col = next(k for k in row if k.startswith("l1_l2_"))
    assert len(leaf_col.encode()) <= 63 and row[leaf_col] == 1
    assert row["whole"].count("{") == 39


def test_keys_with_dots_dollars_and_unicode() -> None:
    m = mapper(
        {
            "source": "t",
            "columns": [
                {"path": "_id", "type": "int"},
                {"path": ["a.b", "$c"], "type": "string"},
                {"path": "größe", "type": "double"},
            ],
        }
    )
    out = m.map_raw(raw({"_id": 1, "a.b": {"$c": "x"}, "größe": 1.25, "日本": "y"}))
    assert out.ok
    assert out.rows[0][0] == {"_id": 1, "a_b__c": "x", "größe": 1.25, "_extra": '{"日本": "y"}'}


def test_64_character_field_names_colliding_after_truncation_map_to_distinct_columns() -> None:
    a, b = "k" * 63 + "1", "k" * 63 + "2"
    m = mapper(
        {
            "source": "t",
            "columns": [
                {"path": "_id", "type": "int"},
                {"path": a, "type": "int"},
                {"path": b, "type": "int"},
            ],
        }
    )
    row = m.map_raw(raw({"_id": 1, a: 10, b: 20})).rows[0][0]
    names = [k for k in row if k.startswith("k")]
    assert len(names) == 2 and all(len(n) <= 63 for n in names)
    assert sorted(row[n] for n in names) == [10, 20]


def test_invalid_utf8_is_quarantined_with_its_path_and_raw_bytes() -> None:
    good = raw({"_id": 5, "name": "abc"})
    bad = good.replace(b"abc", b"a\xffc")
    out = mapper(
        {
            "source": "t",
            "columns": [{"path": "_id", "type": "int"}, {"path": "name", "type": "string"}],
        }
    ).map_raw(bad)
    assert not out.ok
    doc_id, path, _, reason, document = out.issues[0]
    assert (doc_id, path) == ('{"$numberInt": "5"}', "name")
    assert "invalid UTF-8" in reason and document.startswith("base64:")


@pytest.mark.parametrize(
    ("when", "dialect", "ok"),
    [
        (dt.datetime(1850, 6, 1, 0, 0, 0, 1000), "postgres", True),
        (dt.datetime(1850, 6, 1), "mysql", True),
        (dt.datetime(999, 12, 31), "mysql", False),
        (dt.datetime(1, 1, 1), "postgres", True),
    ],
)
def test_dates_before_1900_and_target_ranges(when, dialect, ok) -> None:
    m = mapper(
        {
            "source": "t",
            "columns": [{"path": "_id", "type": "int"}, {"path": "d", "type": "timestamp"}],
        },
        dialect,
    )
    out = m.map_raw(raw({"_id": 1, "d": when}))
    assert out.ok is ok
    if ok:
        expected = int((when - dt.datetime(1970, 1, 1)).total_seconds() * 1000) * 1000
        assert out.rows[0][0]["d"] == expected


def test_dates_after_9999_fit_postgres_but_not_mariadb() -> None:
    from bson.datetime_ms import DatetimeMS

    year_12000_ms = 316_560_000_000_000  # about 12001-03-08
    coll = {
        "source": "t",
        "columns": [{"path": "_id", "type": "int"}, {"path": "d", "type": "timestamp"}],
    }
    pg = mapper(coll, "postgres").map_raw(raw({"_id": 1, "d": DatetimeMS(year_12000_ms)}))
    assert pg.ok and pg.rows[0][0]["d"] == year_12000_ms * 1000
    my = mapper(coll, "mysql").map_raw(raw({"_id": 1, "d": DatetimeMS(year_12000_ms)}))
    assert not my.ok and "out of range for mysql" in my.issues[0][3]


def test_nonfinite_null_policy_adds_a_flag_column() -> None:
    m = mapper(
        {
            "source": "t",
            "columns": [
                {"path": "_id", "type": "int"},
                {"path": "p", "type": "decimal", "scale": 1, "nonfinite": "null"},
            ],
        }
    )
    out = m.map_raw(raw({"_id": 1, "p": bson.Decimal128("Infinity")}))
    assert out.ok and out.rows[0][0]["p"] is None and out.rows[0][0]["p_nonfinite"] == "Infinity"


def test_binary_and_uuid_subtypes() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    m = mapper(
        {
            "source": "t",
            "columns": [
                {"path": "_id", "type": "int"},
                {"path": "u", "type": "uuid"},
                {"path": "legacy", "type": "uuid"},
                {"path": "b", "type": "binary"},
            ],
        }
    )
    out = m.map_raw(
        raw(
            {
                "_id": 1,
                "u": Binary(u.bytes, 4),
                "legacy": Binary(u.bytes, 3),
                "b": Binary(b"\x00\x01", 0),
            }
        )
    )
    assert out.rows[0][0]["u"] == out.rows[0][0]["legacy"] == str(u)
    assert out.rows[0][0]["b"] == b"\x00\x01"


def test_missing_key_and_required_fields() -> None:
    m = mapper(
        {
            "source": "t",
            "columns": [
                {"path": "_id", "type": "int"},
                {"path": "x", "type": "int", "nullable": False},
            ],
        }
    )
    assert [i[1] for i in m.map_raw(raw({"_id": 1})).issues] == ["x"]
    assert "required field is null" in m.map_raw(raw({"_id": 1, "x": None})).issues[0][3]
    assert [i[1] for i in m.map_raw(raw({"x": 1})).issues] == ["_id"]


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        (
            bson.Decimal128("9999999999999999999999999999999999"),
            0,
            Decimal("9999999999999999999999999999999999"),
        ),
        (bson.Decimal128("0.10"), 3, Decimal("0.100")),
        (bson.Decimal128("-1E+3"), 2, Decimal("-1000.00")),
        (7, 2, Decimal("7.00")),
        (0.1, 1, Decimal("0.1")),
    ],
)
def test_decimals_are_exact(value, scale, expected) -> None:
    got = to_decimal(value, scale)
    assert got == expected and str(got) == str(expected)


def test_decimal_precision_overflow_and_int_ranges_are_issues() -> None:
    with pytest.raises(ValueIssue):
        to_decimal(bson.Decimal128("9999999999999999999999999999999999"), 1)  # 35 digits at scale 1
    with pytest.raises(ValueIssue):
        convert(Int64(2**31), "int", None, cast=True)
    assert convert(Int64(2**31 - 1), "int", None, cast=True) == 2**31 - 1
    with pytest.raises(ValueIssue):
        convert(2**53 + 1, "double", None, cast=True) if False else convert(
            Int64(2**53 + 1), "double", None, cast=True
        )
