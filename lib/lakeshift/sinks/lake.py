"""Parquet writes for the table copy: chunks staged, then moved into place.

A chunk is written by Spark into its own staging folder (``_``-prefixed, so readers ignore it),
then its files are renamed into the target folder. File names carry the write job's uuid, so
chunks never collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeshift.errors import SinkError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakeshift.sinks.hadoopfs import HadoopFS


def _hidden(rel: str) -> bool:
    return any(
        (part.startswith("_") and "=" not in part) or part.startswith(".")
        for part in rel.split("/")
    )


def write_staged(df: DataFrame, staging: str, partition_by: list[str]) -> None:
    """Write ``df`` as Parquet into the folder ``staging`` (replacing what is there).

    Raises:
        SinkError: the write failed.
    """
    from pyspark.errors import AnalysisException

    writer = df.write.mode("overwrite").format("parquet")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    try:
        writer.save(staging)
    except AnalysisException as exc:
        first = str(exc).splitlines()[0]
        raise SinkError(f"parquet:{staging}: staged write failed: {first}") from exc


def staged_files(fs: HadoopFS, staging: str) -> list[tuple[str, int]]:
    """The data files of a staging folder as ``(relative path, bytes)``, sorted."""
    root = fs.qualify(staging)
    out = []
    for uri, size in fs.list_files(root):
        rel = uri[len(root) + 1 :]
        if not _hidden(rel):
            out.append((rel, size))
    return out


def promote(fs: HadoopFS, staging: str, target: str, rels: list[str]) -> None:
    """Move staged files ``rels`` into ``target`` (same relative paths); idempotent.

    A file already moved (rerun after a crash mid-move) is skipped.

    Raises:
        SinkError: a file is neither staged nor in place.
    """
    for rel in rels:
        src, dst = f"{staging}/{rel}", f"{target}/{rel}"
        if fs.exists(src):
            fs.rename(src, dst)
        elif not fs.exists(dst):
            raise SinkError(
                f"parquet:{target}: staged file {rel} is lost (neither staged nor moved)"
            )


def clear_target(fs: HadoopFS, target: str, keep: str) -> None:
    """Delete every child of ``target`` except ``keep`` (overwrite mode, before the first chunk)."""
    for name in fs.list_names(target):
        if name != keep:
            fs.delete(f"{target}/{name}")
