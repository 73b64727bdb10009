"""A writer process for the sync end-to-end tests: changes a source while bulk copy and sync run.

    python tests/e2e/sync_writer.py delta SOURCE_PATH ROUNDS
    python tests/e2e/sync_writer.py mongo EVENT_DIR FILES EVENTS_PER_FILE SEED

``delta``: rounds of INSERT / UPDATE / DELETE / MERGE (re-inserts deleted keys) commits on a
CDF-enabled Delta table. ``mongo``: writes change-event files (Extended JSON lines, documented
change-stream shape) one by one, as a change-stream recorder would.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def delta(path: str, rounds: int) -> None:
    from lakeshift.spark import SparkProfile, get_or_create

    spark, _ = get_or_create(
        SparkProfile(master="local[1]", app_name="sync-writer", shuffle_partitions=2, ui=False)
    )
    t = f"delta.`{path}`"
    for k in range(1, rounds + 1):
        base = 10_000 + k * 10
        values = ", ".join(f"({i}, 'new{i}', {i % 97}.5D)" for i in range(base, base + 6))
        spark.sql(f"INSERT INTO {t} VALUES {values}")
        spark.sql(
            f"UPDATE {t} SET amount = amount + {k}, name = concat(name, '.u{k}') "
            f"WHERE id % 7 = {k % 7}"
        )
        spark.sql(f"DELETE FROM {t} WHERE id % 11 = {k % 11}")
        # re-insert (or update) a fixed set of keys: some were deleted by an earlier round
        spark.sql(
            f"MERGE INTO {t} t USING (SELECT id, concat('re', id, '.{k}') AS name, "
            f"{k}.25D AS amount "
            f"FROM range(0, 12)) s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
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


if __name__ == "__main__":
    if sys.argv[1] == "delta":
        delta(sys.argv[2], int(sys.argv[3]))
    else:
        mongo(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
