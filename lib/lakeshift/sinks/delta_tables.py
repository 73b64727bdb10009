"""Normalised tables as Delta tables under one folder (the lake alternative to a SQL target).

Each table is ``<root>/<table name>``. Writes are idempotent with Delta's ``txnAppId`` /
``txnVersion``: the app id is ``lakeshift-transform:<run id>:<table>``, so a retried write of the
same run and table is skipped by Delta itself. Keys and foreign keys are not enforced (Delta has
none); the column types are the same Spark types the SQL targets receive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeshift.errors import SinkError
from lakeshift.sinks.sql import LoadResult, Mode, SqlTable, TableLoad

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import DataFrame


@dataclass
class DeltaTablesSink:
    """Writes each table to ``root/<name>`` as Delta.

    Example:
        >>> DeltaTablesSink("/lake/shop").describe()
        'delta:/lake/shop'
    """

    root: str
    _mode: Mode = "create"

    def describe(self) -> str:
        """``delta:<root>``."""
        return f"delta:{self.root}"

    def path(self, table: str) -> str:
        """The folder of one table."""
        return f"{self.root.rstrip('/')}/{table}"

    def prepare(
        self,
        tables: list[SqlTable],
        mode: Mode,
        keep: list[SqlTable] | None = None,
        labels: list[str] | None = None,
    ) -> None:
        """Remember the mode; ``create`` fails later if a table folder already holds Delta.

        ``keep`` and ``labels`` are accepted for the SQL sink's signature (no ledger here).
        """
        self._mode = mode

    def load(
        self, df: DataFrame, table: SqlTable, run_id: str, ledger_name: str | None = None
    ) -> LoadResult:
        """Write ``df`` as the Delta table ``table.name`` (idempotent per run and table).

        Raises:
            SinkError: the write failed (or ``create`` and the table exists).
        """
        started = time.monotonic()
        label = ledger_name or table.name
        quarantine = ledger_name is not None
        mode = (
            "append"
            if quarantine or self._mode == "append"
            else ("overwrite" if self._mode == "replace" else "errorifexists")
        )
        try:
            (
                df.write.format("delta")
                .mode(mode)
                .option("txnAppId", f"lakeshift-transform:{run_id}:{label}")
                .option("txnVersion", 0)
                .option("overwriteSchema", "true" if mode == "overwrite" else "false")
                .save(self.path(table.name))
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SinkError(f"{self.path(table.name)}: Delta write failed: {first}") from exc
        rows = df.count()
        return LoadResult(table.name, rows, 1, 0, round(time.monotonic() - started, 3))

    def load_wide(
        self,
        wide: DataFrame,
        loads: list[TableLoad],
        run_id: str,
        label: str,
        count: Callable[..., dict[str, int]] | None = None,
    ) -> tuple[dict[str, int], int, int]:
        """Write each table of a nosql wide frame (``_ok``, ``_q``, ``tN``) as its own Delta table.

        Returns the same ``(totals, partitions, skipped)`` shape as the SQL sink; the counters
        come from one aggregation over the persisted wide frame.
        """
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        wide = wide.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            exprs = [
                F.count(F.lit(1)).alias("#documents"),
                F.sum(F.col("_ok").cast("long")).alias("#ok"),
                F.sum(F.size("_q")).alias("#issues"),
            ] + [F.sum(F.size(ld.column)).alias(f"sent:{ld.table.name}") for ld in loads]
            row = wide.agg(*exprs).first()
            assert row is not None
            totals = {k: int(row[k] or 0) for k in row.asDict()}
            totals["#quarantined"] = totals["#documents"] - totals["#ok"]
            for ld in loads:
                consts = [F.lit(v).alias(k) for k, v in ld.constants]
                frame = wide.select(*consts, F.inline(F.col(ld.column)))
                quarantine = bool(ld.constants)
                res = self.load(
                    frame, ld.table, run_id, f"{label}/{ld.table.name}" if quarantine else None
                )
                totals[f"inserted:{ld.table.name}"] = res.rows
        finally:
            wide.unpersist()
        return totals, 1, 0
