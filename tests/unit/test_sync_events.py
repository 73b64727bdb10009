"""MongoDB change events → change records, the code-286 advice, config checks, state files.

Pure Python: no Spark. Events are built in the documented change-stream shape.
"""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId, Timestamp
from pymongo.errors import OperationFailure

from lakeshift.config.base import validate_model
from lakeshift.errors import ConfigError
from lakeshift.sources.mongo_events import (
    ChangeStreamHistoryLostError,
    event_to_json_line,
    event_to_record,
    history_lost_advice,
    parse_line,
)
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState

OID = ObjectId("65a000000000000000000001")
NS = {"db": "shop", "coll": "orders"}


def event(op, token, t, i, doc=None, **extra):
    ev = {
        "_id": {"_data": token},
        "operationType": op,
        "clusterTime": Timestamp(t, i),
        "ns": NS,
        "documentKey": {"_id": OID},
    }
    if doc is not None:
        ev["fullDocument"] = doc
    ev.update(extra)
    return ev


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        (
            event(
                "insert",
                "82A1",
                10,
                1,
                {"_id": OID, "n": 1, "at": dt.datetime(2024, 1, 2, 3, 4, 5)},
            ),
            (
                "65a000000000000000000001",
                '{"_id": "65a000000000000000000001", "n": 1, "at": "2024-01-02T03:04:05Z"}',
                False,
                (10 << 32) | 1,
                "82A1",
            ),
        ),
        # update with the looked-up full document; inside a transaction (txnNumber, lsid)
        (
            event("update", "82A2", 10, 2, {"_id": OID, "n": 2}, txnNumber=5, lsid={"id": "s"}),
            (
                "65a000000000000000000001",
                '{"_id": "65a000000000000000000001", "n": 2}',
                False,
                (10 << 32) | 2,
                "82A2",
            ),
        ),
        (
            event("replace", "82A3", 11, 1, {"_id": OID, "m": "x"}),
            (
                "65a000000000000000000001",
                '{"_id": "65a000000000000000000001", "m": "x"}',
                False,
                (11 << 32) | 1,
                "82A3",
            ),
        ),
        # a delete carries only the key: it must become a tombstone, never be dropped
        (
            event("delete", "82A4", 12, 1),
            ("65a000000000000000000001", None, True, (12 << 32) | 1, "82A4"),
        ),
        # an update whose document is gone (its delete follows) changes nothing; so does a drop
        (event("update", "82A5", 12, 2, None), None),
        (event("drop", "82A6", 13, 1), None),
    ],
)
def test_event_to_record(ev, expected):
    record = event_to_record(parse_line(event_to_json_line(ev)))  # through Extended JSON
    if expected is None:
        assert record is None
    else:
        assert tuple(record.values()) == expected


def test_malformed_event_is_a_clear_error():
    with pytest.raises(Exception, match="documented change-stream shape"):
        event_to_record({"operationType": "insert", "_id": {"_data": "1"}})


def test_history_lost_maps_to_advice():
    exc = OperationFailure("Resume of change stream was not possible", code=286)
    mapped = history_lost_advice(exc, "mongodb shop.orders")
    assert isinstance(mapped, ChangeStreamHistoryLostError)
    assert "code 286" in str(mapped) and "start-point" in str(mapped)
    assert history_lost_advice(OperationFailure("other", code=11000), "x") is None


BASE = {
    "name": "orders",
    "keys": ["id"],
    "state_dir": "/tmp/x",
    "source": {"kind": "delta_cdf", "path": "/lake/orders"},
    "target": {"kind": "delta", "path": "/lakehouse/orders"},
}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"source": {"kind": "kafka"}}, "source"),
        ({"source": {"kind": "mongo_events", "path": "/ev"}, "keys": ["_id"]}, "columns"),
        ({"source": {"kind": "mongo_events", "path": "/ev"}, "columns": "_id STRING"}, "keys"),
        ({"trigger_seconds": 0}, "trigger_seconds"),
        ({"extra": 1}, "extra: unknown field"),
    ],
)
def test_config_errors(patch, message):
    with pytest.raises(ConfigError, match=message):
        validate_model(SyncConfig, {**BASE, **patch}, "sync.yaml")


def test_state_commit_clears_pending(tmp_path):
    state = SyncState(str(tmp_path), "orders")
    assert state.position() is None
    state.plan({"batch_id": 1, "start": 3, "end": 4})
    assert state.pending()["end"] == 4
    state.commit(1, {"version": 4}, {"events": 2})
    assert state.pending() is None
    assert state.position()["position"] == {"version": 4}


def test_cli_status_and_config_error(tmp_path, capsys):
    import json

    import yaml

    from lakeshift.cli import main

    cfg = tmp_path / "sync.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "state_dir": str(tmp_path / "state")}))
    SyncState(str(tmp_path / "state"), "orders").save_start_point(
        {"kind": "delta_cdf", "version": 3}
    )
    assert main(["sync", "status", "--config", str(cfg)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["start_point"]["version"] == 3 and out["committed"] is None

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**BASE, "keys": []}))
    assert main(["sync", "--config", str(bad), "--once"]) == 2
    assert "keys" in capsys.readouterr().err
