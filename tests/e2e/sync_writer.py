"""A writer process for the sync end-to-end tests: changes a source while bulk copy and sync run.

    python tests/e2e/sync_writer.py delta SOURCE_PATH ROUNDS
    python tests/e2e/sync_writer.py mongo EVENT_DIR FILES EVENTS_PER_FILE SEED
    python tests/e2e/sync_writer.py mongo-sql EVENT_DIR FILES EVENTS_PER_FILE SEED OUT_DIR

``delta``: rounds of INSERT / UPDATE / DELETE / MERGE (re-inserts deleted keys) commits on a
CDF-enabled Delta table. ``mongo``: writes change-event files (Extended JSON lines, documented
change-stream shape) one by one, as a change-stream recorder would. ``mongo-sql``: the same, plus
what a MongoDB source would show: after the second file a snapshot of the collection for the
bulk copy (``OUT_DIR/bulk/shop/orders.json``, Extended JSON, while the writer goes on), the
second half of the files only after the test created ``OUT_DIR/go`` and ``OUT_DIR/go2`` (sync
is running and has applied a batch), and at
the end the final documents as the expected parent and child tables
(``OUT_DIR/final/orders.parquet``, ``OUT_DIR/final/orders_items.parquet``), computed by plain
Python replay of the events (independent of lakeshift).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path


def delta_round(spark: object, path: str, k: int) -> None:
    """Round ``k`` of changes to a CDF-enabled Delta table: 4 commits.

    INSERT of new keys, UPDATE of some rows, DELETE of others, and a MERGE that re-inserts (or
    updates) a fixed set of keys, some deleted by the DELETE.
    """
    t = f"delta.`{path}`"
    base = 10_000 + k * 10
    values = ", ".join(f"({i}, 'new{i}', {i % 97}.5D)" for i in range(base, base + 6))
    sql = spark.sql  # type: ignore[attr-defined]
    sql(f"INSERT INTO {t} VALUES {values}")
    sql(
        f"UPDATE {t} SET amount = amount + {k}, name = concat(name, '.u{k}') WHERE id % 7 = {k % 7}"
    )
    sql(f"DELETE FROM {t} WHERE id % 11 = {k % 11}")
    sql(
        f"MERGE INTO {t} t USING (SELECT id, concat('re', id, '.{k}') AS name, "
        f"{k}.25D AS amount "
        f"FROM range(0, 12)) s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )


def delta(path: str, rounds: int) -> None:
    from lakeshift.spark import SparkProfile, get_or_create

    spark, _ = get_or_create(
        SparkProfile(master="local[1]", app_name="sync-writer", shuffle_partitions=2, ui=False)
    )
    for k in range(1, rounds + 1):
        delta_round(spark, path, k)
        print(f"writer: round {k} done", flush=True)
    spark.stop()


def mongo(folder: str, files: int, per_file: int, seed: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.integration.sync_helpers import make_events, write_events

    events = make_events(files * per_file, seed=seed)
    for n in range(1, files):  # file 0 is the pre-start history, written by the test
        write_events(
            Path(folder) / f"events-{n:04d}.jsonl", events[n * per_file : (n + 1) * per_file]
        )
        time.sleep(float(os.environ.get("SYNC_WRITER_PAUSE", "0.7")))
    print("writer: done", flush=True)


def mongo_sql(folder: str, files: int, per_file: int, seed: int, out: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import pyarrow as pa
    import pyarrow.parquet as pq
    from bson import json_util

    from tests.integration.sync_helpers import expected_state, make_events, write_events

    events = make_events(files * per_file, seed=seed)
    pause = float(os.environ.get("SYNC_WRITER_PAUSE", "0.7"))
    # the second half only once sync runs (the test touches "go"), and its rest only after the
    # test saw a sync batch applied ("go2"): sync and the writer really overlap
    gates = {files // 2 + 1: Path(out) / "go", files // 2 + 2: Path(out) / "go2"}
    for n in range(1, files):  # file 0 is the pre-start history, written by the test
        if n in gates:
            deadline = time.monotonic() + 600
            while not gates[n].exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        write_events(
            Path(folder) / f"events-{n:04d}.jsonl", events[n * per_file : (n + 1) * per_file]
        )
        if n == 1:  # the collection as the bulk copy reads it (after the start point)
            bulk = Path(out) / "bulk" / "shop"
            bulk.mkdir(parents=True, exist_ok=True)
            docs = expected_state(events[: (n + 1) * per_file]).values()
            tmp = bulk / "orders.tmp"
            tmp.write_text("".join(json_util.dumps(d) + "\n" for d in docs), encoding="utf-8")
            tmp.rename(bulk / "orders.json")
        time.sleep(pause)
    final = expected_state(events)
    folder_out = Path(out) / "final"
    folder_out.mkdir(parents=True, exist_ok=True)
    utc = pa.timestamp("us", tz="UTC")
    parents = pa.table(
        {
            "_id": pa.array(list(final), pa.string()),
            "customer": pa.array([d["customer"] for d in final.values()], pa.string()),
            "total": pa.array([d["total"] for d in final.values()], pa.float64()),
            "status": pa.array([d["status"] for d in final.values()], pa.string()),
            "updated_at": pa.array(
                [d["updated_at"].replace(tzinfo=dt.timezone.utc) for d in final.values()], utc
            ),
        }
    )
    items = [
        (k, i, it["sku"], it["qty"]) for k, d in final.items() for i, it in enumerate(d["items"])
    ]
    children = pa.table(
        {
            "_id": pa.array([r[0] for r in items], pa.string()),
            "_ord1": pa.array([r[1] for r in items], pa.int32()),
            "sku": pa.array([r[2] for r in items], pa.string()),
            "qty": pa.array([r[3] for r in items], pa.int32()),
        }
    )
    pq.write_table(parents, folder_out / "orders.parquet")
    pq.write_table(children, folder_out / "orders_items.parquet")
    print("writer: done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "delta":
        delta(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "mongo-sql":
        mongo_sql(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        mongo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
