"""Example transform configs and mappings validate; mapping resolution and DDL."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.errors import ConfigError
from lakeshift.nosql.mapping import MappingSpec, resolve
from lakeshift.nosql.transform import load_config, to_sql_table
from lakeshift.sinks.sql import Dialect

EXAMPLES = Path(__file__).resolve().parents[2] / "conf" / "examples"


@pytest.mark.parametrize(
    "name", sorted(p.name for p in EXAMPLES.glob("transform-*.yaml") if "mapping" not in p.name)
)
def test_example_configs_validate(name: str, monkeypatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "x")
    monkeypatch.setenv("MYSQL_PASSWORD", "x")
    cfg, mapping = load_config(str(EXAMPLES / name))
    assert cfg.target.url and mapping.collections


def test_ddl_has_keys_and_quoted_identifiers() -> None:
    spec = MappingSpec.model_validate(
        {
            "collections": [
                {
                    "source": "s",
                    "table": 'we"ird',
                    "columns": [
                        {"path": "_id", "type": "objectid"},
                        {"path": "p", "type": "decimal", "scale": 4},
                    ],
                    "children": [
                        {"path": "items", "columns": [{"path": "when", "type": "timestamp"}]}
                    ],
                }
            ]
        }
    )
    parent, child = (to_sql_table(t) for t in resolve(spec)[0].tables)
    pg = Dialect("postgres").create_table(child)
    assert pg.startswith('CREATE TABLE "we_ird_items"')  # names are sanitised, then quoted
    assert (
        Dialect("postgres").quote('a"b') == '"a""b"' and Dialect("mysql").quote("a`b") == "`a``b`"
    )
    assert '"_id" CHAR(24) NOT NULL' in pg and '"_ord1" INTEGER NOT NULL' in pg
    assert 'PRIMARY KEY ("_id", "_ord1")' in pg
    assert 'FOREIGN KEY ("_id") REFERENCES "we_ird" ("_id")' in pg
    assert '"when" TIMESTAMP WITH TIME ZONE' in pg
    my = Dialect("mysql").create_table(parent)
    assert "`p` DECIMAL(34, 4)" in my and "PRIMARY KEY (`_id`)" in my and "utf8mb4_bin" in my


def test_key_must_be_a_column() -> None:
    from lakeshift.config.base import validate_model

    with pytest.raises(ConfigError, match="key"):
        validate_model(
            MappingSpec,
            {"collections": [{"source": "s", "columns": [{"path": "a", "type": "int"}]}]},
            "m.yaml",
        )


def test_mysql_values_escape_like_pymysql() -> None:
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa
    from pymysql.converters import escape_item

    from lakeshift.sinks.sql import mysql_values

    strings = [
        "plain",
        "it's",
        'say "hi"',
        "back\\slash",
        "nul\x00byte",
        "nl\nand\rcr",
        "\x1a",
        "é中🙂",
        "",
    ]
    data = {
        "s": [*strings, None],
        "b": [s.encode() for s in strings[:-1]] + [b"\xff\x00'", None],
        "i": [*range(9), None],
        "d": [Decimal("1.50"), Decimal("-0.01")] * 4 + [Decimal("99999.99"), None],
        "t": [dt.datetime(1000 + i * 1000, 1, 2, 3, 4, 5, 678000) for i in range(9)] + [None],
        "f": [True, False] * 4 + [True, None],
    }
    batch = pa.RecordBatch.from_pydict(
        data,
        schema=pa.schema(
            [
                ("s", pa.string()),
                ("b", pa.binary()),
                ("i", pa.int64()),
                ("d", pa.decimal128(34, 2)),
                ("t", pa.timestamp("us", tz="UTC")),
                ("f", pa.bool_()),
            ]
        ),
    )
    rows = [
        "(" + ", ".join(escape_item(data[k][r], "utf8mb4") for k in data) + ")"
        for r in range(batch.num_rows)
    ]
    expected = ",".join(rows).encode("utf-8", "surrogateescape")
    assert mysql_values(batch, 10_000, 1 << 20) == [expected]
    # limits: 3 rows per statement, or a byte budget of about two rows
    assert mysql_values(batch, 3, 1 << 20) == [
        ",".join(rows[i : i + 3]).encode("utf-8", "surrogateescape") for i in range(0, 10, 3)
    ]
    small = mysql_values(batch, 10_000, len(rows[0]) * 2)
    assert small is not None and len(small) >= 4
    assert b",".join(small) == expected
    sliced = ",".join(rows[3:7]).encode("utf-8", "surrogateescape")  # arrays with an offset
    assert mysql_values(batch.slice(3, 4), 10_000, 1 << 20) == [sliced]
    assert mysql_values(pa.RecordBatch.from_pydict({"l": [[1]]}), 10, 100) is None
