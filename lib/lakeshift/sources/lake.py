"""Lake tables on any Hadoop filesystem URI: Parquet, ORC, CSV, JSON, text and Delta."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeshift.errors import SourceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

LAKE_FORMATS = ("parquet", "orc", "csv", "json", "delta", "text")

# sensible reader defaults per format; caller options win
_DEFAULTS: dict[str, dict[str, str]] = {
    "csv": {"header": "true", "inferSchema": "false"},
    "json": {"mode": "PERMISSIVE"},
}


@dataclass(frozen=True)
class LakeSource:
    """A table stored as files (or a Delta table) under ``path``.

    Hive-style partition folders (``dt=2026-01-01/``) become columns. For file formats,
    ``basePath`` is set to ``path`` so partition columns survive when only some files are read.

    Attributes:
        format: one of :data:`LAKE_FORMATS`.
        path: any Hadoop filesystem URI or local path.
        options: extra reader options (passed to ``DataFrameReader.options``).
        user_schema: an optional DDL schema string for CSV/JSON.
    """

    format: str
    path: str
    options: Mapping[str, str] = field(default_factory=dict)
    user_schema: str | None = None

    def __post_init__(self) -> None:
        if self.format not in LAKE_FORMATS:
            raise SourceError(
                f"{self.path}: unknown source format {self.format!r}; expected one of "
                f"{', '.join(LAKE_FORMATS)}"
            )

    def describe(self) -> str:
        """``format:path``."""
        return f"{self.format}:{self.path}"

    def reader_options(self) -> dict[str, str]:
        """Reader options: format defaults, then the caller's."""
        opts = dict(_DEFAULTS.get(self.format, {}))
        opts.update(self.options)
        return opts

    def read(self, spark: SparkSession) -> DataFrame:
        """Read the whole table."""
        return self.read_files(spark, None)

    def read_files(self, spark: SparkSession, files: list[str] | None) -> DataFrame:
        """Read the table, or only ``files`` of it (file formats), keeping partition columns."""
        from pyspark.errors import AnalysisException

        reader = spark.read.format(self.format).options(**self.reader_options())
        if self.user_schema:
            reader = reader.schema(self.user_schema)
        try:
            if self.format == "delta":
                if files is not None:
                    raise SourceError(f"{self.path}: a Delta source is read whole, not by files")
                return reader.load(self.path)
            if files is None:
                return reader.load(self.path)
            return reader.option("basePath", self.path).load(files)
        except AnalysisException as exc:
            first = str(exc).splitlines()[0]
            raise SourceError(f"{self.describe()}: cannot read: {first}") from exc

    def schema(self, spark: SparkSession) -> StructType:
        """The table schema (file footers / Delta log; no full scan)."""
        return self.read(spark).schema
