"""What every MongoDB reader shares: the document frame and the ``scheme:PATH`` plumbing.

Every reader (``mongodump:``, ``extjson:``, ``mongodb://``) produces the *document frame*
``ns STRING, doc BINARY`` (:data:`DOC_SCHEMA`): one raw BSON document per row, so the mapper
always decodes the exact bytes the server or the file held.

Example:
    >>> @dataclass(frozen=True)  # doctest: +SKIP
    ... class MySource(PathDocumentSource):
    ...     scheme: ClassVar[str] = "mine"
    >>> MySource.register()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from lakeshift.errors import SourceError

if TYPE_CHECKING:
    from typing import Self

    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

DOC_SCHEMA = "ns STRING, doc BINARY"


class DocumentSource:
    """Base of the MongoDB readers: their schema is always the document frame's."""

    def read(self, spark: SparkSession) -> DataFrame:
        """The document frame (each reader implements this)."""
        raise NotImplementedError

    def schema(self, spark: SparkSession) -> StructType:
        """The document frame schema (``ns STRING, doc BINARY``), without any I/O."""
        from pyspark.sql.types import StructType

        schema = StructType.fromDDL(DOC_SCHEMA)
        assert isinstance(schema, StructType)
        return schema


@dataclass(frozen=True)
class PathDocumentSource(DocumentSource):
    """A reader of files: built from ``<scheme>:PATH`` plus options.

    Attributes:
        path: a file, folder or glob on any Hadoop filesystem.
        options: reader options (see each reader).
    """

    path: str
    options: Mapping[str, str] = field(default_factory=dict)
    scheme: ClassVar[str] = ""

    def describe(self) -> str:
        """``<scheme>:<path>``."""
        return f"{self.scheme}:{self.path}"

    @classmethod
    def from_spec(cls, spec: str, options: Mapping[str, str]) -> Self:
        """``<scheme>:PATH`` → a reader.

        Raises:
            SourceError: no path after the scheme.
        """
        _, _, rest = spec.partition(":")
        if not rest:
            raise SourceError(f"{spec!r}: expected {cls.scheme}:PATH")
        return cls(rest, dict(options))

    @classmethod
    def register(cls) -> None:
        """Register ``<scheme>:PATH`` specs with the source factory."""
        from lakeshift.sources.factory import register_scheme

        register_scheme(cls.scheme, cls.from_spec)
