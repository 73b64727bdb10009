"""Hostile documents through a ``.bson`` dump into PostgreSQL and MariaDB; retry safety.

The documents are written here with pymongo's ``bson``; expected rows and quarantine reasons are
spelled out by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import bson
import pytest
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from tests.services import mariadb_server, postgres_server  # noqa: F401

LONG_A, LONG_B = "k" * 63 + "A", "k" * 63 + "B"
DEEP: dict = {"leaf": "bottom"}
for level in range(39, 0, -1):
    DEEP = {f"d{level}": DEEP}
YEAR_12000 = DatetimeMS(316_560_000_000_000)

DOCS = [
    {
        "_id": 1,
        "v": 5,
        "when": dt.datetime(1850, 6, 1, 12, 0, 0, 250000),
        "a.b": {"$c": "dots"},
        "größe": "groß",
        LONG_A: 1,
        LONG_B: 2,
        "tags": [],
        "nest": DEEP,
    },
    {
        "_id": 2,
        "v": "five",
        "when": dt.datetime(1899, 12, 31, 23, 59, 59, 999000),
        "tags": [f"t{i}" for i in range(10_000)],
    },
    {"_id": 3, "v": Int64(2**40), "when": YEAR_12000},  # PostgreSQL yes, MariaDB: quarantined
    {"_id": 4, "v": 1.5, "price": bson.Decimal128("1.005")},  # 3 decimals for scale 2: quarantined
    {"_id": 5, "price": bson.Decimal128("NaN")},  # quarantined (nonfinite: quarantine)
    {"_id": 6, "v": {"x": 1}},  # object where the mapping wants long/string/json
]
BAD_UTF8 = bson.encode({"_id": 7, "v": "abc"}).replace(b"abc", b"a\xffc")

MAPPING = {
    "collections": [
        {
            "source": "hostile.docs",
            "table": "docs",
            "columns": [
                {"path": "_id", "type": "int"},
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
                {
                    "path": "v",
                    "type": "double",
                    "name": "v_dbl",
                    "accept": ["double"],
                    "on_mismatch": "null",
                },
                {"path": "v", "type": "json", "name": "v_any"},
                {"path": "when", "type": "timestamp"},
                {"path": ["a.b", "$c"], "type": "string"},
                {"path": "größe", "type": "string"},
                {"path": LONG_A, "type": "int"},
                {"path": LONG_B, "type": "int"},
                {"path": "price", "type": "decimal", "scale": 2},
                {"path": "nest", "type": "json"},
            ],
            "children": [
                {"path": "tags", "kind": "scalars", "columns": [{"path": "", "type": "string"}]}
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dump") / "hostile"
    folder.mkdir()
    (folder / "docs.bson").write_bytes(b"".join(bson.encode(d) for d in DOCS) + BAD_UTF8)
    (folder / "docs.metadata.json").write_text("{}")
    return folder


def cid(i: int) -> str:
    """Quarantine doc ids are canonical Extended JSON for non-ObjectId, non-string ids."""
    return f'{{"$numberInt": "{i}"}}'


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
def test_hostile_documents(spark, dump, target, request) -> None:
    from lakeshift.nosql.mapping import MappingSpec
    from lakeshift.nosql.transform import TransformConfig, run_transform

    server = request.getfixturevalue(target)
    mapping = MappingSpec.model_validate(MAPPING)
    cfg = TransformConfig(
        source={"spec": f"mongodump:{dump}", "options": {"partitions": "2"}},
        mapping=mapping,
        target={"url": server.url, "mode": "replace"},
        run_id=f"hostile-{target}",
    )
    summary = run_transform(spark, cfg, mapping, progress=lambda _m: None)
    pg = server.kind == "postgresql"
    result = summary["collections"]["hostile.docs"]
    assert summary["ok"] and result["invariant"], summary
    loaded = [1, 2, 3, 6] if pg else [1, 2, 6]
    assert (result["documents"], result["loaded"], result["quarantined"]) == (
        7,
        len(loaded),
        7 - len(loaded),
    )
    assert [r[0] for r in _fetch(server, "SELECT `_id` FROM `docs` ORDER BY 1")] == loaded

    quarantine = _fetch(
        server,
        f"SELECT doc_id, field_path, reason FROM `lakeshift_quarantine` "
        f"WHERE run_id = 'hostile-{target}' ORDER BY doc_id",
    )
    by_id = {r[0]: (r[1], r[2]) for r in quarantine}
    assert by_id[cid(4)][0] == "price" and "more than 2 fractional digits" in by_id[cid(4)][1]
    assert by_id[cid(5)][0] == "price" and "NaN" in by_id[cid(5)][1]
    assert by_id[cid(7)][0] == "v" and "invalid UTF-8" in by_id[cid(7)][1]
    if not pg:
        assert by_id[cid(3)][0] == "when" and "out of range for mysql" in by_id[cid(3)][1]

    cols = "`_id`, `v_num`, `v_str`, `v_dbl`, `v_any`, `when`, `a_b__c`, `größe`"
    rows = {r[0]: r[1:] for r in _fetch(server, f"SELECT {cols} FROM `docs` WHERE `_id` <> 3")}
    assert rows[1][:3] == (5, None, None) and rows[2][:3] == (None, "five", None)
    # BSON dates are UTC instants: PostgreSQL timestamptz reads back as one, MariaDB's
    # DATETIME(6) holds the UTC wall clock
    utc = dt.timezone.utc if pg else None
    assert rows[1][4] == dt.datetime(1850, 6, 1, 12, 0, 0, 250000, tzinfo=utc)
    assert rows[2][4] == dt.datetime(1899, 12, 31, 23, 59, 59, 999000, tzinfo=utc)
    assert rows[1][5:] == ("dots", "groß")
    assert rows[6][:3] == (None, None, None)
    v_any = rows[6][3]
    assert (json.loads(v_any) if isinstance(v_any, str) else v_any) == {"x": 1}
    if pg:
        assert _fetch(server, "SELECT `v_num` FROM `docs` WHERE `_id` = 3") == [(2**40,)]
        when = _fetch(server, "SELECT `when`::text FROM `docs` WHERE `_id` = 3")[0][0]
        assert when.startswith("12001-")  # after 9999: PostgreSQL stores it
    long_cols = [
        r[0]
        for r in _fetch(
            server,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'docs' AND column_name LIKE 'kkkk%'",
        )
    ]
    assert len(long_cols) == 2 and all(len(c) <= 63 for c in long_cols)
    assert _fetch(server, "SELECT count(*) FROM `docs_tags` WHERE `_id` = 2") == [(10_000,)]
    assert _fetch(server, "SELECT count(*) FROM `docs_tags` WHERE `_id` = 1") == [(0,)]
    nest = _fetch(server, "SELECT `nest` FROM `docs` WHERE `_id` = 1")[0][0]
    assert str(nest).count("{") == 40 and "bottom" in str(nest)

    if pg:  # a re-run of the same run id loads nothing twice
        again = run_transform(spark, cfg, mapping, mode="append", progress=lambda _m: None)
        res = again["collections"]["hostile.docs"]
        assert again["ok"] and res["skipped_partitions"] == res["partitions"] == 2
        assert res["rows"] == result["rows"]
        assert _fetch(server, "SELECT count(*) FROM `docs`") == [(len(loaded),)]


def test_concurrent_attempts_of_one_partition_load_it_once(postgres_server) -> None:
    import pyarrow as pa

    from lakeshift.sinks.sql import (
        Connection,
        SqlColumn,
        SqlSink,
        SqlTable,
        flat_splitter,
        partition_loader,
    )

    conn = Connection("postgres", postgres_server.url)
    table = SqlTable(
        "retry_t", (SqlColumn("id", "long", nullable=False), SqlColumn("v", "string")), ("id",)
    )
    SqlSink(conn).prepare([table], "replace")
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array(range(50_000), pa.int64()), "v": [f"v{i}" for i in range(50_000)]}
    )
    outcomes: list[dict] = []

    def attempt() -> None:
        fn = partition_loader(conn, "run-1", "retry_t", [table], flat_splitter)
        out = next(iter(fn(iter([batch])))).to_pydict()
        outcomes.append(
            dict(zip(out["name"], zip(out["rows"], out["fresh"], strict=True), strict=True))
        )

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o["inserted:retry_t"][1] for o in outcomes) == [False, False, True]
    assert all(
        o["inserted:retry_t"][0] == 50_000 for o in outcomes
    )  # skipped ones report the ledger
    assert SqlSink(conn).count_rows("retry_t") == 50_000
