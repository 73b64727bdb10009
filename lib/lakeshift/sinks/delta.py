"""Delta writes for the table copy: idempotent chunk appends (``txnAppId``/``txnVersion``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeshift.errors import SinkError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class DeltaCommit:
    """What one chunk write did.

    Attributes:
        committed: True when the chunk's commit is the latest one (this call committed it);
            False when Delta skipped the write because the transaction ``(app_id, version)``
            was committed earlier (a rerun after a crash).
        table_version: the Delta version holding the chunk (``None`` if it cannot be found).
        rows: rows written (from the commit's metrics).
        bytes: bytes written.
        files: files written.
    """

    committed: bool
    table_version: int | None
    rows: int | None
    bytes: int | None
    files: int | None


def _metrics(row: object) -> tuple[int | None, int | None, int | None]:
    metrics = getattr(row, "operationMetrics", None) or {}

    def num(key: str) -> int | None:
        value = metrics.get(key)
        return int(value) if value is not None else None

    return num("numOutputRows"), num("numOutputBytes"), num("numFiles")


def write_chunk(
    df: DataFrame,
    location: str,
    *,
    app_id: str,
    txn_version: int,
    tag: str,
    partition_by: list[str],
    overwrite: bool = False,
) -> DeltaCommit:
    """Append (or overwrite with) ``df`` as one idempotent Delta commit.

    The commit carries ``txnAppId=app_id``/``txnVersion=txn_version`` (Delta skips it when that
    transaction is already in the log) and ``userMetadata=tag`` (to find it again).

    Raises:
        SinkError: the write failed.
    """
    from delta.tables import DeltaTable
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    spark = df.sparkSession
    writer = (
        df.write.format("delta")
        .mode("overwrite" if overwrite else "append")
        .option("txnAppId", app_id)
        .option("txnVersion", str(txn_version))
        .option("userMetadata", tag)
    )
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    try:
        writer.save(location)
    except AnalysisException as exc:
        first = str(exc).splitlines()[0]
        raise SinkError(f"delta:{location}: chunk {tag} not written: {first}") from exc
    table = DeltaTable.forPath(spark, location)
    last = table.history(1).first()
    if last is not None and last["userMetadata"] == tag:
        rows, nbytes, files = _metrics(last)
        return DeltaCommit(True, int(last["version"]), rows, nbytes, files)
    # skipped: the transaction was committed by an earlier (crashed) run; find its commit
    found = (
        table.history()
        .where(F.col("userMetadata") == tag)
        .select("version", "operationMetrics")
        .first()
    )
    if found is None:
        return DeltaCommit(False, None, None, None, None)
    rows, nbytes, files = _metrics(found)
    return DeltaCommit(False, int(found["version"]), rows, nbytes, files)
