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
    assert '"when" TIMESTAMP(3) WITHOUT TIME ZONE' in pg
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
