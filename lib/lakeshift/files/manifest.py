"""The manifest: one row per source file, stored as Parquet beside the run.

Layout of the state folder (default ``<dst>/_lakeshift_files/``)::

    manifest/v-<time_ns>.parquet       full manifest versions (the newest wins; two are kept)
    runs/<run_id>/seg-*.parquet        per-task journals written while tasks copy

A task appends its finished files to its journal every half second and when it ends. The next
load folds every journal into the newest manifest (last update wins), so a killed run loses at
most the last half second of bookkeeping; files of that window are found again by the
``adopt`` check (target already holds the same size and checksum) and are not copied twice.

Statuses: ``queued`` (planned by a run that may have died), ``verified``, ``failed``. Inputs of
small-file concatenation carry the name of their output file in ``output``. Manifests written
before a column existed load with it empty (``output``, ``ctime_ns``, ``dst``, ``link``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeshift.sources.fs import Location

log = logging.getLogger(__name__)

MANIFEST_DIR = "manifest"
RUNS_DIR = "runs"
KEEP_VERSIONS = 2


@dataclass(slots=True)
class Record:
    """One file's state.

    Attributes:
        rel: path relative to the source root.
        size: size in bytes of the version copied (or listed, while queued).
        mtime_ns: source modification time of that version.
        checksum: hex checksum of the copied bytes ("" until computed).
        algo: checksum algorithm.
        status: ``queued``, ``verified`` or ``failed``.
        action: what the last run did: ``copied``, ``adopted`` (target already identical),
            ``queued`` or ``failed``.
        reason: why it failed ("" otherwise).
        run_id: the run that wrote this row.
        updated_ns: when (epoch ns).
        output: for small-file concatenation, the target file this input was appended to
            ("" for files copied one to one).
        ctime_ns: the source's status-change time when its checksum was taken (a later ctime
            means the file may have been rewritten with its mtime restored: re-checked).
        dst: the target's stamp when it was last proven to hold ``checksum``
            (:func:`lakeshift.sources.fs.stamp_of`; "" when unknown): ``--update`` trusts
            the checksum only while the target's listing shows the same stamp.
        link: for a symlink copied as a link, its text ("" for files).
    """

    rel: str
    size: int
    mtime_ns: int
    checksum: str = ""
    algo: str = ""
    status: str = "queued"
    action: str = "queued"
    reason: str = ""
    run_id: str = ""
    updated_ns: int = 0
    output: str = ""
    ctime_ns: int = 0
    dst: str = ""
    link: str = ""


_FIELDS = [f.name for f in fields(Record)]


def schema() -> pa.Schema:
    """The Arrow schema of manifest and journal files."""
    import pyarrow as pa

    ints = {"size", "mtime_ns", "updated_ns", "ctime_ns"}
    return pa.schema([(n, pa.int64() if n in ints else pa.string()) for n in _FIELDS])


def to_table(records: list[Record]) -> pa.Table:
    """Records as an Arrow table."""
    import pyarrow as pa

    cols = {n: [getattr(r, n) for r in records] for n in _FIELDS}
    return pa.table(cols, schema=schema())


def _from_table(table: pa.Table) -> list[Record]:
    names = set(table.column_names)  # manifests of older versions lack newer columns
    default: dict[str, object] = {"output": "", "ctime_ns": 0, "dst": "", "link": ""}
    cols = [
        table.column(n).to_pylist() if n in names else [default[n]] * table.num_rows
        for n in _FIELDS
    ]
    return [Record(*row) for row in zip(*cols, strict=True)]


def _list_files(loc: Location, path: str) -> list[str]:
    import pyarrow.fs as pafs

    infos = loc.fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return sorted(
        i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")
    )


@dataclass
class Loaded:
    """A loaded manifest and what it was built from.

    Attributes:
        records: rel → newest record.
        versions: manifest version files present (oldest first).
        journals: journal files folded in.
    """

    records: dict[str, Record]
    versions: list[str]
    journals: list[str]


def load(state: Location) -> Loaded:
    """Load the newest manifest version and fold in every run journal (last update wins)."""
    import pyarrow as pa

    versions = _list_files(state, state.path(MANIFEST_DIR))
    records: dict[str, Record] = {}
    if versions:
        for rec in _from_table(source_fs.read_parquet(state, versions[-1])):
            records[rec.rel] = rec
    journals = _list_files(state, state.path(RUNS_DIR))
    if journals:
        tables = [source_fs.read_parquet(state, j) for j in journals]
        merged = pa.concat_tables(tables).sort_by("updated_ns")
        for rec in _from_table(merged):
            records[rec.rel] = rec
    return Loaded(records, versions, journals)


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


def journal_dir(state: Location, run_id: str) -> str:
    """The journal folder of one run."""
    return state.path(f"{RUNS_DIR}/{run_id}")


def parse_journal_name(name: str) -> tuple[int, int] | None:
    """``(files, bytes)`` encoded in a journal file name, or ``None`` for other names."""
    base = name.rsplit("/", 1)[-1]
    if not base.startswith("seg-") or not base.endswith(".parquet"):
        return None
    parts = base[: -len(".parquet")].split("-")
    try:
        files = int(next(p[1:] for p in parts if p.startswith("n")))
        nbytes = int(next(p[1:] for p in parts if p.startswith("b")))
    except (StopIteration, ValueError):
        return None
    return files, nbytes


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
