"""Lake tables on any Hadoop filesystem URI: Parquet, ORC, CSV, JSON, text and Delta."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

    def list_files(self, spark: SparkSession) -> list[tuple[str, int]]:
        """Every data file of the table as ``(uri, bytes)``, sorted.

        File formats: a recursive listing through Spark's Hadoop file index (any Hadoop URI,
        parallel for large trees; hidden ``_``/``.`` files and folders skipped, as Spark's readers
        do; globs in the path allowed). Delta: the files of the current snapshot
        (``DataFrame.inputFiles()``), sized from the same listing.

        Raises:
            SourceError: the path does not exist or cannot be listed.
        """
        from pyspark.errors import AnalysisException

        try:
            listing = (
                spark.read.format("binaryFile")
                .option("recursiveFileLookup", "true")
                .load(self.path)
                .select("path", "length")
                .collect()  # metadata only: one small row per file
            )
            sizes = {str(r["path"]): int(r["length"]) for r in listing}
            if self.format != "delta":
                return sorted(sizes.items())
            files = self.read(spark).inputFiles()
        except AnalysisException as exc:
            first = str(exc).splitlines()[0]
            raise SourceError(f"{self.describe()}: cannot list files: {first}") from exc
        out = []
        for uri in files:
            size = sizes.get(uri)
            if size is None:
                raise SourceError(f"{self.describe()}: snapshot file {uri} not found by listing")
            out.append((uri, size))
        return sorted(out)

    def delta_version(self, spark: SparkSession) -> int:
        """The current version of a Delta table (to pin a snapshot with ``versionAsOf``).

        Raises:
            SourceError: the path is not a Delta table.
        """
        from delta.tables import DeltaTable
        from pyspark.errors import AnalysisException

        try:
            last = DeltaTable.forPath(spark, self.path).history(1).first()
        except AnalysisException as exc:
            first = str(exc).splitlines()[0]
            raise SourceError(f"{self.describe()}: not a readable Delta table: {first}") from exc
        if last is None:
            raise SourceError(f"{self.describe()}: Delta table has no history")
        return int(last["version"])

    def read_chunk(
        self, spark: SparkSession, base: str, files: list[str], schema: StructType | None
    ) -> DataFrame:
        """Read only ``files`` (URIs from :meth:`list_files`) with the table's schema.

        File formats read the files with ``basePath=base`` (Hive partition columns kept) and the
        given schema, so every chunk has the same columns and types. Delta reads the snapshot
        (deletion vectors and column mapping honoured) restricted to the files by
        ``_metadata.file_path``.
        """
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        try:
            if self.format == "delta":
                return self.read(spark).where(F.col("_metadata.file_path").isin(files))
            reader = spark.read.format(self.format).options(**self.reader_options())
            if schema is not None:
                reader = reader.schema(schema)
            elif self.user_schema:
                reader = reader.schema(self.user_schema)
            return reader.option("basePath", base).load(files)
        except AnalysisException as exc:
            first = str(exc).splitlines()[0]
            raise SourceError(f"{self.describe()}: cannot read chunk: {first}") from exc


def parquet_metadata_bytes(spark: SparkSession, files: list[tuple[str, int]]) -> int | None:
    """Average bytes of Parquet metadata (footer + magic) per file over ``files`` (a sample).

    Reads only the last 8 bytes of each file (footer length + ``PAR1``). Lakes of thousands of
    tiny files are mostly footers; this tells how much of the input bytes is data.

    Returns:
        The average, or ``None`` when no file is readable Parquet.
    """
    jvm: Any = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    sizes = []
    for uri, size in files:
        if size < 12:
            continue
        path = jvm.org.apache.hadoop.fs.Path(uri)
        stream = path.getFileSystem(conf).open(path)
        try:
            stream.seek(size - 8)
            footer = int(stream.readInt()) & 0xFFFFFFFF
            magic = int(stream.readInt()) & 0xFFFFFFFF
        finally:
            stream.close()
        if magic != 0x50415231:  # "PAR1"
            continue
        sizes.append(int.from_bytes(footer.to_bytes(4, "big"), "little") + 12)
    return sum(sizes) // len(sizes) if sizes else None
