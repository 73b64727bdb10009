"""The manifest: one row per source file, stored as Parquet beside the run (read side).

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

The record, its Arrow schema and the loader live here, below every feature, because ``files``
and ``sync`` (a lake path followed by manifest diff) share them; the writers are in
:mod:`lakeshift.files.manifest`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

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
