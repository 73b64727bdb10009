"""Sync config rules and the MariaDB connection helpers (pure Python, no Spark)."""

from __future__ import annotations

import pytest

from lakeshift.config.base import validate_model
from lakeshift.errors import ConfigError, SinkError
from lakeshift.sinks.sql_apply import mysql_jdbc
from lakeshift.sources.changes import manifest_diff
from lakeshift.sources.manifest import Record
from lakeshift.sync.config import SyncConfig

LAKE = {"kind": "lake_files", "path": "/lake/in"}
DELTA = {"kind": "delta", "path": "/lake/out"}
MARIA = {"kind": "mariadb", "url": "mysql://u:p@h:3306/db", "table": "t"}


@pytest.mark.parametrize(
    ("keys", "source", "target", "error"),
    [
        ([], LAKE, DELTA, None),  # keyless append of lake files into Delta
        (["id"], LAKE, MARIA, None),
        ([], LAKE, MARIA, "keys"),  # SQL targets need keys
        ([], {"kind": "delta_cdf", "path": "/x"}, DELTA, "keys"),
        (["id"], {"kind": "delta_cdf", "path": "/x"}, {**MARIA, "url": "pg://h/db"}, "url"),
    ],
)
def test_config_rules(keys, source, target, error):
    data = {"name": "s", "keys": keys, "state_dir": "/tmp/s", "source": source, "target": target}
    if error is None:
        assert validate_model(SyncConfig, data, "sync.yaml").target.kind == target["kind"]
    else:
        with pytest.raises(ConfigError, match=error):
            validate_model(SyncConfig, data, "sync.yaml")


def test_mysql_jdbc():
    assert mysql_jdbc("mysql://me:p%40ss@db.local:3307/shop") == (
        "jdbc:mysql://db.local:3307/shop?permitMysqlScheme",
        {"driver": "org.mariadb.jdbc.Driver", "user": "me", "password": "p@ss"},
    )
    with pytest.raises(SinkError, match="expected mysql://"):
        mysql_jdbc("postgresql://h/db")


def test_manifest_diff():
    stored = {
        "a": Record("a", 10, 100, status="verified"),
        "b": Record("b", 10, 100, status="verified"),
        "gone": Record("gone", 1, 1, status="verified"),
    }
    current = {
        "a": Record("a", 10, 100),  # unchanged
        "b": Record("b", 10, 200),  # touched: changed
        "c": Record("c", 5, 300),  # new
    }
    assert manifest_diff(current, stored) == (["b", "c"], ["gone"])


def test_new_start_point_forgets_old_position(tmp_path):
    from lakeshift.sync.state import SyncState

    state = SyncState(str(tmp_path), "s")
    state.commit(7, {"version": 9}, {"events": 1})
    state.plan({"batch_id": 8})
    state.save_manifest(8, {"a": Record("a", 1, 1)})
    (state.dir / "checkpoint" / "offsets").mkdir(parents=True)
    state.reset()
    assert state.position() is None and state.pending() is None
    assert not (state.dir / "manifest").exists() and not (state.dir / "checkpoint").exists()
