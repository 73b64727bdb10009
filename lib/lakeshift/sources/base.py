"""The source interface and an in-memory fake for unit tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


@runtime_checkable
class Source(Protocol):
    """Anything lakeshift reads a DataFrame from.

    Implementations are cheap to construct (no I/O in ``__init__``); ``read`` is lazy in Spark's
    sense (it builds a plan, it does not scan).
    """

    def describe(self) -> str:
        """A short, secret-free description for logs and reports (e.g. ``delta:/lake/t``)."""
        ...

    def read(self, spark: SparkSession) -> DataFrame:
        """Return the source as a DataFrame."""
        ...

    def schema(self, spark: SparkSession) -> StructType:
        """Return the source's schema without scanning the data where the format allows."""
        ...


class MemorySource:
    """A source over an existing DataFrame (unit tests, notebooks).

    Example:
        >>> src = MemorySource(df, name="orders")  # doctest: +SKIP
        >>> src.read(spark) is df  # doctest: +SKIP
        True
    """

    def __init__(self, df: DataFrame, name: str = "memory") -> None:
        self._df = df
        self._name = name

    def describe(self) -> str:
        """``memory:<name>``."""
        return f"memory:{self._name}"

    def read(self, spark: SparkSession) -> DataFrame:
        """The wrapped DataFrame."""
        return self._df

    def schema(self, spark: SparkSession) -> StructType:
        """The wrapped DataFrame's schema."""
        return self._df.schema
