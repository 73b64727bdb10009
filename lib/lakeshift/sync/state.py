"""The sync state folder: start point, applied position, the pending batch (atomic JSON files).

A batch is planned (``pending.json``: its id and exact source range) before it is applied, and the
position (``position.json``) is committed only after the apply succeeded. A process killed in
between re-runs exactly the pending batch with the same id: the Delta ``txnVersion`` / SQL batch
id make that replay a no-op if the apply had already committed, and the version guard does too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift.errors import ConfigError

if TYPE_CHECKING:
    from lakeshift.sources.manifest import Record


class SyncState:
    """JSON files under ``<state_dir>/<name>/``."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.dir = Path(state_dir) / name
        self.dir.mkdir(parents=True, exist_ok=True)

    def _read(self, name: str) -> dict[str, Any] | None:
        path = self.dir / name
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: expected a JSON sync state file: {exc}") from exc
        return data if isinstance(data, dict) else None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        path = self.dir / name
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def start_point(self) -> dict[str, Any] | None:
        """The recorded start point, if any."""
        return self._read("start_point.json")

    def save_start_point(self, point: dict[str, Any]) -> None:
        """Record the start point (taken before the bulk copy)."""
        self._write("start_point.json", {**point, "recorded_at": time.time()})

    def reset(self) -> None:
        """Forget the committed position, a pending batch, manifests and the default checkpoint."""
        import shutil

        for name in ("position.json", "pending.json"):
            (self.dir / name).unlink(missing_ok=True)
        for folder in ("manifest", "checkpoint"):
            shutil.rmtree(self.dir / folder, ignore_errors=True)

    def position(self) -> dict[str, Any] | None:
        """The last committed position: ``{"batch_id", "position", "metrics"}``."""
        return self._read("position.json")

    def commit(self, batch_id: int, position: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Commit ``position`` after batch ``batch_id`` applied, and clear the pending batch."""
        self._write(
            "position.json",
            {
                "batch_id": batch_id,
                "position": position,
                "metrics": metrics,
                "committed_at": time.time(),
            },
        )
        (self.dir / "pending.json").unlink(missing_ok=True)

    def pending(self) -> dict[str, Any] | None:
        """The batch planned but not yet committed (after a crash)."""
        return self._read("pending.json")

    def plan(self, batch: dict[str, Any]) -> None:
        """Record the batch about to be applied."""
        self._write("pending.json", batch)

    def journal_dir(self) -> Path:
        """Where live change-stream batches are recorded before they are applied."""
        path = self.dir / "journal"
        path.mkdir(exist_ok=True)
        return path

    def save_manifest(self, batch_id: int, records: dict[str, Record], tag: str = "") -> str:
        """Write the file manifest after batch ``batch_id`` (Parquet); returns its name.

        Lake paths: the files read so far; event folders: the processed-files log (name, size,
        modification time of every applied event file). Written when the batch is planned; it
        becomes the start point of the next diff only when the position naming it is committed,
        i.e. after the apply committed. ``tag`` tells apart manifests of streaming micro-batches
        (which keep the ``--once`` batch id).
        """
        import pyarrow.parquet as pq

        from lakeshift.sources.manifest import to_table

        folder = self.dir / "manifest"
        folder.mkdir(exist_ok=True)
        name = f"manifest-{batch_id:012d}{tag}.parquet"
        tmp = folder / f".{name}.tmp{os.getpid()}"
        pq.write_table(to_table(sorted(records.values(), key=lambda r: r.rel)), tmp)
        os.replace(tmp, folder / name)
        return name

    def load_manifest(self, name: str) -> dict[str, Record]:
        """A manifest written by :meth:`save_manifest` (``rel → Record``)."""
        import pyarrow.parquet as pq

        from lakeshift.sources.manifest import Record

        path = self.dir / "manifest" / name
        try:
            rows = pq.read_table(path).to_pylist()
        except OSError as exc:
            raise ConfigError(f"{path}: expected the sync's stored file manifest: {exc}") from exc
        return {r["rel"]: Record(**r) for r in rows}

    def prune_manifests(self, keep: str) -> None:
        """Remove manifests older than ``keep`` (the committed one; called after a commit)."""
        folder = self.dir / "manifest"
        for path in folder.glob("manifest-*.parquet"):
            if path.name < keep:
                path.unlink(missing_ok=True)
