"""The chunk ledger: which chunks of a run are committed, stored beside the target.

Layout under ``<target>/_lakeshift/`` (``_``-prefixed, so Spark and Delta readers ignore it)::

    runs/<run_id>/plan.json              fingerprint and chunk list of the run, written once
    runs/<run_id>/ledger/c00001.json     one record per committed chunk (atomic rename)
    runs/<run_id>/ledger/c00002.moving.json   Parquet only: files being moved into place
    staging/<run_id>/c00003/             Parquet only: a chunk being written

A chunk is committed exactly when its ``cNNNNN.json`` exists (or, for Delta, when its
``txnAppId``/``txnVersion`` is in the Delta log: the record is then written on the rerun).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lakeshift.errors import UsageError

if TYPE_CHECKING:
    from lakeshift.sinks.hadoopfs import HadoopFS

META_DIR = "_lakeshift"


class PlanChangedError(UsageError):
    """A rerun found a different plan than the one its run started with. Exit code 2."""


class Ledger:
    """Ledger records of one run of one target.

    Args:
        fs: the filesystem helper.
        target: the (qualified) target location.
        run_id: the run id.
    """

    def __init__(self, fs: HadoopFS, target: str, run_id: str) -> None:
        self.fs = fs
        self.target = target.rstrip("/")
        self.run_id = run_id
        self.root = f"{self.target}/{META_DIR}/runs/{run_id}"
        self.records_dir = f"{self.root}/ledger"
        self.staging_root = f"{self.target}/{META_DIR}/staging/{run_id}"

    def staging(self, chunk_id: str) -> str:
        """The staging folder of a chunk (Parquet targets)."""
        return f"{self.staging_root}/{chunk_id}"

    def load_plan(self) -> dict[str, Any] | None:
        """The stored plan of this run, or ``None`` for a new run."""
        path = f"{self.root}/plan.json"
        if not self.fs.exists(path):
            return None
        data: dict[str, Any] = json.loads(self.fs.read_text(path))
        return data

    def check_or_save_plan(self, plan: dict[str, Any]) -> bool:
        """Store the plan of a new run, or check a rerun's plan against it.

        Returns:
            True when the run already existed (a resume).

        Raises:
            PlanChangedError: the stored fingerprint differs (the inputs or settings changed).
        """
        stored = self.load_plan()
        if stored is None:
            self.fs.write_text(f"{self.root}/plan.json", json.dumps(plan, indent=1, sort_keys=True))
            return False
        if stored.get("fingerprint") != plan["fingerprint"]:
            raise PlanChangedError(
                f"run {self.run_id}: plan changed since the run started (expected fingerprint "
                f"{stored.get('fingerprint')}, found {plan['fingerprint']}: source files or "
                f"settings differ) at {self.root}; pass a new --run-id to copy the current inputs"
            )
        return True

    def entries(self) -> dict[str, dict[str, Any]]:
        """Records by chunk id: committed ones, and ``moving`` ones without a commit."""
        out: dict[str, dict[str, Any]] = {}
        names = self.fs.list_names(self.records_dir)
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            record = json.loads(self.fs.read_text(f"{self.records_dir}/{name}"))
            chunk = str(record["chunk"])
            if name.endswith(".moving.json"):
                out.setdefault(chunk, record)
            else:
                out[chunk] = record
        return out

    def record(self, entry: dict[str, Any]) -> None:
        """Write the committed record of a chunk (and drop its intent record, if any)."""
        self.fs.write_text(f"{self.records_dir}/{entry['chunk']}.json", json.dumps(entry))
        moving = f"{self.records_dir}/{entry['chunk']}.moving.json"
        if entry.get("format") == "parquet":
            self.fs.delete(moving, recursive=False)

    def record_moving(self, entry: dict[str, Any]) -> None:
        """Write the intent record of a Parquet chunk whose staged files are being moved."""
        self.fs.write_text(f"{self.records_dir}/{entry['chunk']}.moving.json", json.dumps(entry))
