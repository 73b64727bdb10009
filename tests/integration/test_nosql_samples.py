"""Every shared MongoDB sample dataset → profile → proposed mapping → PostgreSQL and MariaDB.

Expectations come from an independent decoding of the same files in this test (gzip + struct +
pymongo's ``bson`` for the archives, ``bson.json_util`` for Extended JSON), not from lakeshift.
"""

from __future__ import annotations

import datetime as dt
import gzip
import struct
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import json_util

from tests.services import mariadb_server, postgres_server  # noqa: F401

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "mongodb-samples"
ARCHIVES = ["sample_supplies.gz", "sample_weatherdata.gz", "sample_geospatial.gz"]
JSONS = [
    "sample_analytics/accounts.json",
    "sample_analytics/customers.json",
    "sample_mflix/theaters.json",
    "sample_mflix/users.json",
    "sample_mflix/sessions.json",
]

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared sample datasets not found at {SAMPLES.resolve()}"
)


def decode_archive(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Independent reader: magic, prelude, metadata block, then header/docs/terminator blocks."""
    data = gzip.decompress(path.read_bytes())
    assert data[:4] == b"\x6d\xe2\x99\x81"
    pos = 4
    out: dict[str, list[dict[str, Any]]] = {}
    header: dict[str, Any] | None = None
    in_metadata = True
    first = True
    while pos < len(data):
        (n,) = struct.unpack_from("<i", data, pos)
        if n == -1:
            pos += 4
            in_metadata = False
            header = None
            continue
        doc = bson.decode(data[pos : pos + n])
        pos += n
        if first:
            first = False  # the prelude
        elif in_metadata:
            pass
        elif header is None:
            header = doc
        elif not header.get("EOF"):
            out.setdefault(f"{header['db']}.{header['collection']}", []).append(doc)
    return out


@pytest.fixture(scope="module")
def expected() -> dict[str, list[dict[str, Any]]]:
    docs: dict[str, list[dict[str, Any]]] = {}
    for name in ARCHIVES:
        docs.update(decode_archive(SAMPLES / name))
    for name in JSONS:
        db, coll = name[:-5].split("/")
        lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines()
        docs[f"{db}.{coll}"] = [json_util.loads(line) for line in lines if line.strip()]
    return docs


@pytest.fixture(scope="module")
def prepared(spark):
    from pyspark import StorageLevel

    from lakeshift.nosql.profile import profile_documents, propose_mapping
    from lakeshift.sources.factory import from_spec

    docs = (
        from_spec(f"mongodump:{SAMPLES}/*.gz", {"partitions": "2"})
        .read(spark)
        .unionByName(from_spec(f"extjson:{SAMPLES}/sample_*/*.json").read(spark))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    report = profile_documents(spark, docs)
    mapping = propose_mapping(report)
    yield docs, report, mapping
    docs.unpersist()


def test_profile_is_a_full_scan(prepared, expected) -> None:
    _, report, mapping = prepared
    counts = {ns: p.documents for ns, p in report.namespaces.items()}
    assert counts == {ns: len(d) for ns, d in expected.items()}
    sales = report.namespaces["sample_supplies.sales"]
    price = sales.fields[("items", "[]", "price")]
    assert price.types == {
        "decimal": sum(len(d["items"]) for d in expected["sample_supplies.sales"])
    }
    assert price.max_scale == 2
    depth = report.namespaces["sample_geospatial.shipwrecks"].fields[("depth",)]
    assert depth.types == dict(
        Counter(
            type(d["depth"]).__name__.replace("str", "string").replace("float", "double")
            for d in expected["sample_geospatial.shipwrecks"]
            if "depth" in d
        )
    )
    tiers = report.namespaces["sample_analytics.customers"].fields[("tier_and_details",)]
    assert tiers.dynamic > 0
    customers = next(c for c in mapping.collections if c.source == "sample_analytics.customers")
    assert [c.kind for c in customers.children if c.path == "tier_and_details"] == ["map"]


def _fetch(server, sql: str) -> list[tuple]:
    if server.kind == "postgresql":
        import psycopg

        with psycopg.connect(server.dsn) as conn:
            return [tuple(r) for r in conn.execute(sql.replace("`", '"')).fetchall()]

    conn = server.connect_mariadb()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("target", ["postgres_server", "mariadb_server"])
def test_all_samples_migrate_exactly(
    spark, prepared, expected, target, request, monkeypatch
) -> None:
    from lakeshift.nosql.transform import TransformConfig, run_transform

    server = request.getfixturevalue(target)
    docs, _, mapping = prepared
    cfg = TransformConfig(
        source={"spec": "test"},
        mapping=mapping,
        target={"url": server.url, "mode": "replace"},
        run_id=f"samples-{target}",
    )
    summary = run_transform(spark, cfg, mapping, docs=docs, progress=lambda _m: None)

    assert summary["ok"], summary
    assert summary["documents_read"] == sum(len(d) for d in expected.values())
    for ns, docs_ in expected.items():
        result = summary["collections"][ns]
        assert result["documents"] == len(docs_)
        assert result["documents"] == result["loaded"] + result["quarantined"]
        assert result["quarantined"] == 0, ns
    q = _fetch(
        server, f"SELECT count(*) FROM `lakeshift_quarantine` WHERE run_id = 'samples-{target}'"
    )
    assert q == [(0,)]

    sales = expected["sample_supplies.sales"]
    # row counts per table, from the independent decoding
    n_items = sum(len(s["items"]) for s in sales)
    n_tags = sum(len(i["tags"]) for s in sales for i in s["items"])
    assert _fetch(server, "SELECT count(*) FROM `sales`") == [(len(sales),)]
    assert _fetch(server, "SELECT count(*) FROM `sales_items`") == [(n_items,)]
    assert _fetch(server, "SELECT count(*) FROM `sales_items_tags`") == [(n_tags,)]
    customers = expected["sample_analytics.customers"]
    n_tiers = sum(len(c.get("tier_and_details", {})) for c in customers)
    assert _fetch(server, "SELECT count(*) FROM `customers_tier_and_details`") == [(n_tiers,)]
    wrecks = expected["sample_geospatial.shipwrecks"]
    assert _fetch(server, "SELECT count(*) FROM `shipwrecks_coordinates`") == [
        (sum(len(w.get("coordinates", [])) for w in wrecks),)
    ]
    # exact values: Decimal128 prices, dates with milliseconds, nested fields
    got_items = {
        (r[0], r[1]): r[2]
        for r in _fetch(server, "SELECT `_id`, `_ord1`, `price` FROM `sales_items`")
    }
    want_items = {
        (str(s["_id"]), i): Decimal(str(it["price"]))
        for s in sales
        for i, it in enumerate(s["items"])
    }
    assert got_items == want_items
    assert {v.as_tuple().exponent for v in got_items.values()} == {-2}  # NUMERIC(34, 2), exact

    def naive_utc(v):  # PostgreSQL timestamptz comes back aware; MariaDB DATETIME(6) naive UTC
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None) if v.tzinfo else v

    got_sales = {
        r[0]: (naive_utc(r[1]), *r[2:])
        for r in _fetch(
            server, "SELECT `_id`, `saleDate`, `customer_email`, `customer_age` FROM `sales`"
        )
    }
    want_sales = {
        str(s["_id"]): (s["saleDate"], s["customer"]["email"], s["customer"]["age"]) for s in sales
    }
    assert got_sales == want_sales
    assert any(d.microsecond % 1000 == 0 and d.microsecond for d, _, _ in got_sales.values())
    weather = expected["sample_weatherdata.data"]
    got_w = dict(_fetch(server, "SELECT `_id`, `airTemperature_value` FROM `data`"))
    assert got_w == {str(w["_id"]): w["airTemperature"]["value"] for w in weather}
    depth_strings = _fetch(
        server, "SELECT count(*) FROM `shipwrecks` WHERE `depth_string` IS NOT NULL"
    )
    assert depth_strings == [(sum(isinstance(w.get("depth"), str) for w in wrecks),)]
    assert _fetch(server, "SELECT count(*) FROM `users`") == [
        (len(expected["sample_mflix.users"]),)
    ]
    _validate_with_lakeshift(spark, server, target, sales, monkeypatch)


def _validate_with_lakeshift(spark, server, target, sales, monkeypatch) -> None:
    """`lakeshift validate` confirms the source documents and the target tables match.

    The left side is built from the independent pymongo decoding (not from lakeshift's mapper);
    the right side is read back through lakeshift's JDBC source.
    """

    from lakeshift.sources.factory import from_spec
    from lakeshift.validate import compare

    monkeypatch.setenv("LAKESHIFT_JDBC_USER", server.user)
    monkeypatch.setenv("LAKESHIFT_JDBC_PASSWORD", server.password)

    def table(name: str) -> str:
        sep = "&" if "?" in server.jdbc_url else "?"
        qualified = f"public.{name}" if target == "postgres_server" else name
        return f"{server.jdbc_url}{sep}table={qualified}"

    utc = dt.timezone.utc
    parent_rows = [
        (
            str(s["_id"]),
            s["saleDate"].replace(tzinfo=utc),
            s["customer"]["email"],
            s["customer"]["age"],
            s["storeLocation"],
            s["couponUsed"],
        )
        for s in sales
    ]
    parent_cols = ["_id", "saleDate", "customer_email", "customer_age", "storeLocation"]
    parent_cols.append("couponUsed")
    left = spark.createDataFrame(
        parent_rows,
        "_id string, saleDate timestamp, customer_email string, customer_age int, "
        "storeLocation string, couponUsed boolean",
    )
    right = from_spec(table("sales")).read(spark).select(*parent_cols)
    res = compare(left, right, keys=["_id"])
    assert res.passed and res.differing_rows == 0, res.summary()
    assert res.left_rows == res.right_rows == len(sales)

    item_rows = [
        (str(s["_id"]), i, it["name"], Decimal(str(it["price"])), it["quantity"])
        for s in sales
        for i, it in enumerate(s["items"])
    ]
    left = spark.createDataFrame(
        item_rows, "_id string, _ord1 int, name string, price decimal(10,2), quantity int"
    )
    right = from_spec(table("sales_items")).read(spark)
    right = right.select("_id", "_ord1", "name", "price", "quantity")
    res = compare(left, right, keys=["_id", "_ord1"])
    assert res.passed and res.differing_rows == 0, res.summary()
    assert res.left_rows == res.right_rows == len(item_rows)
