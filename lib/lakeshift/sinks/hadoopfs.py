"""Small Hadoop FileSystem helpers through the JVM (any Hadoop URI: file:, hdfs:, s3a:, ...).

Used for the copy ledger (small JSON files) and for moving staged chunk files into place.
Each call is a few py4j round trips, so this is for metadata-sized work, never for data.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from lakeshift.errors import SinkError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class HadoopFS:
    """Filesystem operations on any Hadoop URI, through the session's Hadoop configuration.

    Example:
        >>> fs = HadoopFS(spark)  # doctest: +SKIP
        >>> fs.write_text("s3a://b/t/_lakeshift/x.json", "{}")  # doctest: +SKIP
    """

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark._jvm
        self._conf: Any = spark._jsc.hadoopConfiguration()

    def _path(self, location: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(location)
        return path, path.getFileSystem(self._conf)

    def qualify(self, location: str) -> str:
        """The fully qualified URI (``/tmp/t`` → ``file:/tmp/t``), without a trailing slash."""
        path, fs = self._path(location)
        return str(fs.makeQualified(path).toString()).rstrip("/")

    def exists(self, location: str) -> bool:
        """Whether the path exists."""
        path, fs = self._path(location)
        return bool(fs.exists(path))

    def list_names(self, folder: str) -> list[str]:
        """Names of the direct children of ``folder`` (empty when it does not exist), sorted."""
        path, fs = self._path(folder)
        if not fs.exists(path):
            return []
        return sorted(str(st.getPath().getName()) for st in fs.listStatus(path))

    def list_files(self, folder: str) -> list[tuple[str, int]]:
        """Every file under ``folder`` recursively as ``(uri, size)``, sorted (missing → [])."""
        path, fs = self._path(folder)
        if not fs.exists(path):
            return []
        out = []
        it = fs.listFiles(path, True)
        while it.hasNext():
            st = it.next()
            out.append((str(st.getPath().toString()), int(st.getLen())))
        return sorted(out)

    def read_text(self, location: str) -> str:
        """The whole file as UTF-8 text."""
        path, fs = self._path(location)
        stream = fs.open(path)
        try:
            scanner = self._jvm.java.util.Scanner(stream, "UTF-8").useDelimiter("\\A")
            return str(scanner.next()) if scanner.hasNext() else ""
        finally:
            stream.close()

    def write_text(self, location: str, text: str) -> None:
        """Write ``text`` atomically: a hidden temporary file renamed into place.

        Raises:
            SinkError: the rename failed (e.g. the file already exists).
        """
        path, fs = self._path(location)
        tmp = self._jvm.org.apache.hadoop.fs.Path(
            path.getParent(), f".{path.getName()}.{uuid.uuid4().hex}.tmp"
        )
        out = fs.create(tmp, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        if not fs.rename(tmp, path):
            fs.delete(tmp, False)
            raise SinkError(f"{location}: cannot move temporary file into place (exists already?)")

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``, creating the destination folder.

        Raises:
            SinkError: the filesystem refused the rename.
        """
        spath, fs = self._path(src)
        dpath = self._jvm.org.apache.hadoop.fs.Path(dst)
        fs.mkdirs(dpath.getParent())
        if not fs.rename(spath, dpath):
            raise SinkError(f"cannot rename {src} to {dst}")

    def delete(self, location: str, recursive: bool = True) -> None:
        """Delete a file or folder (no error when missing)."""
        path, fs = self._path(location)
        fs.delete(path, recursive)
