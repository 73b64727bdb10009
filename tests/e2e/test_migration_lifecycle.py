"""One migration as users run it, under the coordinator with real jobs (spark-submit, local
master): a live Delta table (change data feed) and a file tree walk the whole lifecycle.

* ``orders`` (Delta, CDF on, registered in a Hive metastore on embedded Derby as
  ``sales.orders``): START_POINT → LOADING → CATCHING_UP → VALIDATING (gate: no differing row) →
  READY, waiting for a sign-off. A writer changes the source (inserts, updates, deletes) while
  the bulk load runs, and again while the table waits in READY. The coordinator is SIGKILLed
  mid-run and restarted. After ``lakeshift approve`` the final sync, the final validation, the
  finalize (tombstones and sync bookkeeping columns dropped) and the metastore switch run; an
  unchanged reader job doing ``spark.table("sales.orders")`` then reads the migrated copy, and
  that copy equals the source, the late change included.
* ``logs`` (a file tree, byte copy, a file added while it runs): load → ``files --update``
  catch-up → ``files --verify`` (→ ``--repair`` when the new file came after the catch-up) →
  auto-approved → routed: after the old tree is gone, an unchanged Spark job that reads the *old*
  path with the routing properties the coordinator wrote reads the mirror.

Expectations come from the test's own Spark session and the filesystem, not from lakeshift.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from lakeshift.coordinator.store import StateStore
from lakeshift.spark import SparkProfile, spark_conf
from tests.cli import lakeshift, reader_output, spark_submit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
READER = REPO / "tests" / "integration" / "jobs" / "table_reader.py"


def _states(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return dict(conn.execute("SELECT name, state FROM tables").fetchall())
    except sqlite3.Error:
        return {}


def _wait(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the coordinator ended (exit {proc.returncode}) before {what}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _rows(spark, path: Path) -> list[tuple]:
    df = spark.read.format("delta").load(str(path))
    return sorted(tuple(r) for r in df.select("order_id", "amount", "status").collect())


def test_lake_table_and_file_tree_through_the_whole_lifecycle(spark, tmp_path: Path) -> None:
    from delta.tables import DeltaTable

    src, dst, ms, state = tmp_path / "src", tmp_path / "dst", tmp_path / "ms", tmp_path / "state"
    orders = src / "orders"
    spark.createDataFrame(
        [(i, float(i * 10), "new") for i in range(1, 41)],
        "order_id BIGINT, amount DOUBLE, status STRING",
    ).write.format("delta").option("delta.enableChangeDataFeed", "true").save(str(orders))
    logs = src / "logs"
    expected_lines = 0
    for day in range(3):
        (logs / f"day={day}").mkdir(parents=True)
        for part in range(2):
            lines = [f"d{day} p{part} line {k}" for k in range(5 + day)]
            (logs / f"day={day}" / f"part-{part}.txt").write_text("\n".join(lines) + "\n")
            expected_lines += len(lines)
    lakeshift(
        "catalog", "register", "sales.orders", str(orders), "--format", "delta",
        "--metastore", str(ms),
    )  # fmt: skip

    (tmp_path / "clusters.yaml").write_text(
        json.dumps(
            {
                "clusters": {
                    "local": {
                        "backend": "spark-submit",
                        "master": "local[1]",
                        "capacity": 2,
                        "submit_args": ["--driver-memory", "768m"],
                        "conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"},
                    }
                }
            }
        )
    )
    (tmp_path / "sync_orders.yaml").write_text(
        json.dumps(
            {
                "name": "orders",
                "keys": ["order_id"],
                "state_dir": str(tmp_path / "sync-state"),
                "source": {"kind": "delta_cdf", "path": str(orders)},
                "target": {"kind": "delta", "path": str(dst / "orders")},
            }
        )
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        json.dumps(
            {
                "name": "lifecycle",
                "clusters": "clusters.yaml",
                "validations": {
                    "exact": {"keys": ["order_id"], "max_deviation": 0},
                    # the tree changes under the copy: a file written after the catch-up round
                    # listed the source fails `files --verify` once, and `--repair` copies it
                    "mirror": {"repair_rounds": 2},
                },
                "defaults": {
                    "metastore": str(ms),
                    "retry": {"max_attempts": 2, "backoff_s": 1},
                    "catch_up": {"max_lag_seconds": 86400, "max_lag_events": 0, "interval_s": 1},
                },
                "tables": [
                    {
                        "name": "orders",
                        "source": str(orders),
                        "source_format": "delta",
                        "target": str(dst / "orders"),
                        "keys": ["order_id"],
                        "sync": "sync_orders.yaml",
                        "validation": "exact",
                        "cutover": {"catalog": "sales.orders"},
                    },
                    {
                        "name": "logs",
                        "load": "files",
                        "source": str(logs),
                        "target": str(dst / "logs"),
                        "validation": "mirror",
                        "auto_approve": True,
                        "cutover": {"route": True},
                    },
                ],
            }
        )
    )
    cmd = [sys.executable, "-m", "lakeshift.cli", "run", str(plan), "--state-dir", str(state)]
    cmd += ["--poll", "0.5", "--plain"]
    db = state / "state.db"

    # run 1: the writer changes the source once the start point is recorded; then SIGKILL
    with (tmp_path / "run1.log").open("wb") as log1:
        first = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            _wait(
                lambda: _states(db).get("orders") in ("LOADING", "CATCHING_UP"),
                900,
                "orders past its start point",
                first,
            )
            table = DeltaTable.forPath(spark, str(orders))
            spark.createDataFrame(
                [(i, float(i * 10), "new") for i in range(41, 46)],
                "order_id BIGINT, amount DOUBLE, status STRING",
            ).write.format("delta").mode("append").save(str(orders))
            table.update("order_id <= 5", {"status": "'paid'", "amount": "amount + 1"})
            table.delete("order_id IN (7, 8)")
            (logs / "day=2" / "part-2.txt").write_text("late line\n")
            expected_lines += 1
            _wait(
                lambda: _states(db).get("orders") in ("CATCHING_UP", "VALIDATING", "READY"),
                900,
                "orders catching up",
                first,
            )
        finally:
            first.send_signal(signal.SIGKILL)  # mid-run, no cleanup
            first.wait()
    at_kill = _states(db)

    # run 2 resumes and stops where a sign-off is needed (exit 0, and says what to approve)
    second = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, timeout=1200, check=False
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert _states(db) == {"orders": "READY", "logs": "DONE"}, second.stdout[-3000:]
    assert "lakeshift approve orders --plan" in second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1])["awaiting_approval"] is True

    # a late change while the table waits; the final sync before the switch must carry it
    DeltaTable.forPath(spark, str(orders)).update("order_id = 40", {"status": "'late'"})
    approve = lakeshift(
        "approve", "orders", "--state-dir", str(state), "--by", "tester", "--note", "gate green"
    )
    assert "orders" in approve.stdout
    third = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1200, check=False)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert _states(db) == {"orders": "DONE", "logs": "DONE"}

    # the copy equals the source, every change included (read by the test's own Spark)
    source_rows = _rows(spark, orders)
    assert len(source_rows) == 43 and (40, 400.0, "late") in source_rows
    assert _rows(spark, dst / "orders") == source_rows
    # finalized for readers: no tombstones, no bookkeeping columns
    assert spark.read.format("delta").load(str(dst / "orders")).columns == [
        "order_id",
        "amount",
        "status",
    ]

    store = StateStore.open(db)
    jobs = store.jobs(table="orders")
    ok = Counter(j.kind for j in jobs if j.status == "succeeded")
    assert ok["start_point"] == ok["load"] == ok["validate"] == 1, ok
    assert ok["final_sync"] == ok["final_validate"] == ok["finalize"] == ok["switch"] == 1, ok
    assert ok["catch_up"] >= 1
    start = next(j for j in jobs if j.kind == "start_point" and j.status == "succeeded")
    load = next(j for j in jobs if j.kind == "load" and j.status == "succeeded")
    assert start.finished_at is not None and start.finished_at <= load.submitted_at
    moves = [(a[3], a[4]) for a in store.audit("orders") if a[3] != a[4]]
    path = [m[1] for m in moves]
    for before, after in (
        ("START_POINT", "LOADING"),
        ("LOADING", "CATCHING_UP"),
        ("CATCHING_UP", "VALIDATING"),
        ("VALIDATING", "READY"),
        ("READY", "CUT_OVER"),
        ("CUT_OVER", "DONE"),
    ):
        assert path.index(after) > path.index(before), path
    why = [a[5] for a in store.audit("orders")]
    assert "approved by tester: gate green" in why
    assert store.tables()["orders"].approved_by == "tester"
    store.close()

    # an unchanged reader of the catalog table reads the migrated copy
    conf = spark_conf(SparkProfile(master="local[1]", metastore=str(ms)))
    seen = reader_output(spark_submit(READER, "table", "sales.orders", "status", conf=conf))
    assert seen["count"] == 43 and "late" in seen["values"]
    assert all(str(dst / "orders") in f for f in seen["files"]), seen["files"]

    # an unchanged reader of the old file path, with the routing the coordinator wrote, reads
    # the mirror once the old tree is gone
    routing = state / "routing" / "spark-routing.conf"
    props = dict(line.split(" ", 1) for line in routing.read_text().splitlines() if line)
    shutil.rmtree(logs)
    seen = reader_output(
        spark_submit(READER, "text", str(logs), conf={"spark.master": "local[1]", **props})
    )
    assert seen["count"] == expected_lines
    print(f"states at kill: {at_kill}; catch-up rounds: {ok['catch_up']}")
