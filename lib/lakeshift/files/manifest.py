"""Manifest writers: new manifest versions and per-task run journals.

The record, schema and loader are in :mod:`lakeshift.sources.manifest` (shared with ``sync``).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING

from lakeshift.sinks import fs as sink_fs
from lakeshift.sources.manifest import (
    KEEP_VERSIONS,
    MANIFEST_DIR,
    Loaded,
    Record,
    journal_dir,
    to_table,
)

if TYPE_CHECKING:
    from lakeshift.sources.fs import Location


def save(state: Location, records: dict[str, Record], loaded: Loaded) -> str:
    """Write a new manifest version, then drop the journals it folded in and old versions."""
    path = state.path(f"{MANIFEST_DIR}/v-{time.time_ns():020d}.parquet")
    rows = sorted(records.values(), key=lambda r: r.rel)
    sink_fs.write_parquet(state, path, to_table(rows))
    run_dirs = {j.rsplit("/", 1)[0] for j in loaded.journals}
    for run_dir in sorted(run_dirs):
        sink_fs.remove_dir(state, run_dir)
    for old in [*loaded.versions, path][:-KEEP_VERSIONS]:
        sink_fs.remove(state, old)
    return path


class JournalWriter:
    """Appends finished records of one task to its run journal (thread-safe).

    Args:
        state: the state location.
        run_id: the run.
        task_id: the task.
        every_s: flush when this many seconds passed since the last flush.
    """

    def __init__(self, state: Location, run_id: str, task_id: int, every_s: float = 0.5) -> None:
        self._state = state
        self._dir = journal_dir(state, run_id)
        self._prefix = f"seg-{task_id:06d}-{uuid.uuid4().hex[:8]}"
        self._every = every_s
        self._pending: list[Record] = []
        self._seq = 0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def add(self, record: Record) -> None:
        """Queue ``record``; flush when the interval passed."""
        with self._lock:
            self._pending.append(record)
            due = time.monotonic() - self._last >= self._every
        if due:
            self.flush()

    def flush(self) -> None:
        """Write queued records as one journal file."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._last = time.monotonic()
            if not batch:
                return
            self._seq += 1
            seq = self._seq
        nbytes = sum(r.size for r in batch)
        name = f"{self._prefix}-{seq:05d}-n{len(batch)}-b{nbytes}.parquet"
        sink_fs.write_parquet(self._state, f"{self._dir}/{name}", to_table(batch))
