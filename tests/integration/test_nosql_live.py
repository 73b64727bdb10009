"""Live MongoDB path: the official Spark connector against FerretDB (SQLite backend).

What FerretDB v1 loses is pinned here (``test_what_ferretdb_lacks``), so a FerretDB upgrade that
changes it fails loudly: it cannot store Decimal128 (so the live documents use every other BSON
type the mapper handles; Decimal128 exactness is covered by the dump and Extended JSON tests),
it returns ``$$ROOT`` as a literal string, and it has no ``$sample`` / ``$bucketAuto``. The
connector itself hands a null and a missing top-level field over alike; lakeshift's ``$type``
markers keep them apart (``test_null_and_missing_stay_apart``).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import bson
import pytest
from bson.int64 import Int64

from tests.mongo_server import ferretdb_server  # noqa: F401

DOCS = [
    {
        "_id": i,
        "name": f"n{i}",
        "big": Int64(2**40 + i),
        "when": dt.datetime(1850 + i, 1, 2, 3, 4, 5, 678000),
        "ratio": i / 4,
        "flag": i % 2 == 0,
        "addr": {"city": "Zürich", "geo": {"lat": 47.37, "lon": 8.54}},
        "lines": [{"sku": f"s{i}-{j}", "qty": j} for j in range(i % 3)],
        "tags": ["a", "b"][: i % 3],
        "blob": bson.Binary(bytes([i, 0, 255])),
    }
    for i in range(40)
]


@pytest.fixture(scope="module")
def server(ferretdb_server):
    import pymongo

    with pymongo.MongoClient(ferretdb_server.uri, serverSelectionTimeoutMS=10_000) as client:
        client.shop.orders.drop()
        client.shop.orders.insert_many([dict(d) for d in DOCS])
    return ferretdb_server


def test_connector_reads_exact_documents_with_the_partitioner_for_the_server(spark, server) -> None:
    from lakeshift.sources.factory import from_spec
    from lakeshift.sources.mongo import choose_partitioner

    source = from_spec(f"{server.uri}shop.orders", {"partitions": "3"})
    facts = source.server_facts()
    assert choose_partitioner(*facts) == "paginate-count"  # FerretDB: no $sample / $bucketAuto
    frame = source.read(spark)
    assert frame.rdd.getNumPartitions() == 3
    rows = frame.collect()  # 40 tiny documents
    assert {r["ns"] for r in rows} == {"shop.orders"}
    decoded = sorted((bson.decode(r["doc"]) for r in rows), key=lambda d: d["_id"])
    assert decoded == [bson.decode(bson.encode(d)) for d in DOCS]  # pymongo's own round trip
    assert isinstance(decoded[0]["big"], Int64)


def test_live_collection_migrates_to_sqlite(spark, server, tmp_path) -> None:
    from lakeshift.nosql.mapping import MappingSpec
    from lakeshift.nosql.transform import TransformConfig, run_transform

    mapping = MappingSpec.model_validate(
        {
            "collections": [
                {
                    "source": "shop.orders",
                    "table": "orders",
                    "columns": [
                        {"path": "_id", "type": "int"},
                        {"path": "big", "type": "long"},
                        {"path": "when", "type": "timestamp"},
                        {"path": "addr.geo.lat", "type": "double"},
                        {"path": "addr.city", "type": "string"},
                    ],
                    "children": [
                        {"path": "lines", "columns": [{"path": "sku", "type": "string"}]},
                        {
                            "path": "tags",
                            "kind": "scalars",
                            "columns": [{"path": "", "type": "string"}],
                        },
                    ],
                    "unmapped": "ignore",
                }
            ]
        }
    )
    db = tmp_path / "live.db"
    cfg = TransformConfig(
        source={"spec": f"{server.uri}shop.orders", "options": {"partitions": "2"}},
        mapping=mapping,
        target={"url": f"sqlite:{db}", "mode": "create"},
        run_id="live",
    )
    summary = run_transform(spark, cfg, mapping, progress=lambda _m: None)
    assert summary["ok"], summary
    result = summary["collections"]["shop.orders"]
    assert (result["documents"], result["loaded"], result["quarantined"]) == (40, 40, 0)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            'SELECT "_id", big, "when", addr_geo_lat, addr_city FROM orders ORDER BY 1'
        ).fetchall()
        lines = conn.execute("SELECT count(*) FROM orders_lines").fetchone()[0]
        tags = conn.execute("SELECT count(*) FROM orders_tags").fetchone()[0]
    assert rows[7] == (7, 2**40 + 7, "1857-01-02T03:04:05.678000", 47.37, "Zürich")
    assert lines == sum(i % 3 for i in range(40))
    assert tags == sum(len(["a", "b"][: i % 3]) for i in range(40))


def test_what_ferretdb_lacks(server) -> None:
    import pymongo
    from pymongo.errors import OperationFailure, PyMongoError

    with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10_000) as client:
        coll = client.shop.orders
        # $$ROOT is not evaluated: the literal string comes back (so document_mode=root is
        # refused for FerretDB and the fields mode is used)
        got = list(coll.aggregate([{"$project": {"_id": 0, "doc": "$$ROOT"}}, {"$limit": 1}]))
        assert got == [{"doc": "$$ROOT"}]
        for stage in ({"$sample": {"size": 1}}, {"$bucketAuto": {"groupBy": "$_id", "buckets": 2}}):
            with pytest.raises(OperationFailure, match="not implemented"):
                list(coll.aggregate([stage]))
        # $type works: lakeshift's null/missing markers rely on it
        kinds = list(coll.aggregate([{"$project": {"t": {"$type": "$nope"}}}, {"$limit": 1}]))
        assert kinds[0]["t"] == "missing"
    with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10_000) as client:
        with pytest.raises(PyMongoError):  # Decimal128 cannot be stored at all
            client.shop.decimals.insert_one({"_id": 1, "price": bson.Decimal128("10.50")})
        assert client.shop.decimals.count_documents({}) == 0


def test_null_and_missing_stay_apart(spark, server) -> None:
    import pymongo

    from lakeshift.errors import SourceError
    from lakeshift.sources.factory import from_spec

    docs = [
        {"_id": 1, "a": None, "n": {"x": None, "y": 1}},
        {"_id": 2, "n": {"y": 2}},
        {"_id": 3, "a": 5, "n": None},
    ]
    with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10_000) as client:
        client.shop.nulls.drop()
        client.shop.nulls.insert_many([dict(d) for d in docs])
    rows = from_spec(f"{server.uri}shop.nulls").read(spark).collect()
    got = sorted((bson.decode(r["doc"]) for r in rows), key=lambda d: d["_id"])
    assert got == docs
    assert "a" in got[0] and "a" not in got[1] and "x" in got[0]["n"] and "x" not in got[1]["n"]
    with pytest.raises(SourceError, match="ROOT"):
        from_spec(f"{server.uri}shop.nulls", {"document_mode": "root"}).read(spark)
