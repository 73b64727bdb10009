"""``lakeshift profile`` and ``lakeshift transform`` end to end (SQLite target, in-process CLI)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

USERS = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "datasets"
    / "mongodb-samples"
    / "sample_mflix"
    / "users.json"
)


@pytest.mark.skipif(not USERS.is_file(), reason=f"shared sample {USERS} not found")
def test_profile_then_transform_to_sqlite(spark, tmp_path, capsys) -> None:
    from lakeshift.cli import main

    mapping = tmp_path / "mapping.yaml"
    assert main(["profile", f"extjson:{USERS}", "--out", str(mapping)]) == 0
    profile = json.loads(capsys.readouterr().out)
    users = profile["sample_mflix.users"]
    assert users["documents"] == 185
    assert users["fields"]["email"]["types"] == {"string": 185}
    assert "collections" in mapping.read_text()

    db = tmp_path / "out" / "users.db"
    config = tmp_path / "transform.yaml"
    config.write_text(
        f"source:\n  spec: extjson:{USERS}\nmapping: mapping.yaml\n"
        f"target:\n  url: sqlite:{db}\n  mode: create\nrun_id: ${{env:LAKESHIFT_TEST_RUN}}\n"
    )
    os.environ["LAKESHIFT_TEST_RUN"] = "cli-run"
    assert main(["transform", "--config", str(config)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] and summary["run_id"] == "cli-run"
    assert summary["collections"]["sample_mflix.users"]["rows"] == {"users": 185}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (185,)
    assert {"connect", "handoff", "copy", "commit"} <= set(
        summary["collections"]["sample_mflix.users"]["load_task_seconds"]
    )
    # create mode refuses to overwrite: a load error, exit 1, one line on stderr
    assert main(["transform", "--config", str(config)]) == 1
    assert "already exist" in capsys.readouterr().err
    # replace with the same run id loads again (the old ledger rows are forgotten)
    assert main(["transform", "--config", str(config), "--replace"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ok"] and again["collections"]["sample_mflix.users"]["skipped_partitions"] == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (185,)


def test_bad_config_exits_2(tmp_path, capsys) -> None:
    from lakeshift.cli import main

    config = tmp_path / "bad.yaml"
    config.write_text(
        "source: {spec: 'extjson:/x'}\nmapping: {collections: []}\n"
        "target: {url: 'sqlite:x', mode: merge}\n"
    )
    assert main(["transform", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "target.mode" in err and len(err.strip().splitlines()) == 1
