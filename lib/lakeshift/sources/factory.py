"""Build a :class:`~lakeshift.sources.base.Source` from a one-string spec.

Specs (usable on the CLI and in configs):

* ``delta:/path``, ``parquet:/path``, ``orc:…``, ``csv:…``, ``json:…`` — lake tables on any
  Hadoop filesystem URI (``parquet:s3a://bucket/t``);
* a bare path — the format is guessed (a ``_delta_log`` folder means Delta, else Parquet);
* further schemes (``jdbc:``, ``mongodb:``, …) are registered by their modules with
  :func:`register_scheme`.

Example:
    >>> from_spec("delta:/lake/orders").describe()
    'delta:/lake/orders'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path

from lakeshift.errors import UsageError
from lakeshift.sources.base import Source
from lakeshift.sources.lake import LAKE_FORMATS, LakeSource

SourceFactory = Callable[[str, Mapping[str, str]], Source]

_FACTORIES: dict[str, SourceFactory] = {}

# schemes implemented in other modules, imported on first use: scheme -> module
_LAZY: dict[str, str] = {
    "jdbc": "lakeshift.sources.jdbc",
    "mongodb": "lakeshift.sources.mongo",
    "mongodump": "lakeshift.sources.bson_dump",
    "extjson": "lakeshift.sources.extjson",
}


_FILESYSTEM_SCHEMES = frozenset(
    {"file", "s3", "s3a", "s3n", "hdfs", "abfs", "abfss", "gs", "wasb", "wasbs", "oss", "viewfs"}
)


def register_scheme(scheme: str, factory: SourceFactory) -> None:
    """Register ``factory(spec, options)`` for specs starting with ``scheme:``."""
    _FACTORIES[scheme] = factory


def _guess_format(path: str) -> str:
    local = path[len("file:") :] if path.startswith("file:") else path
    if "://" not in local and (Path(local) / "_delta_log").is_dir():
        return "delta"
    return "parquet"


def from_spec(spec: str, options: Mapping[str, str] | None = None) -> Source:
    """Build a source from ``spec`` (see the module docstring).

    Raises:
        UsageError: the spec is empty or names an unknown scheme.
    """
    opts = dict(options or {})
    if not spec:
        raise UsageError("source spec is empty")
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in LAKE_FORMATS:
        return LakeSource(scheme, rest, opts)
    if sep and scheme not in _FACTORIES and scheme in _LAZY:
        importlib.import_module(_LAZY[scheme])
    if sep and scheme in _FACTORIES:
        return _FACTORIES[scheme](spec, opts)
    filesystem = scheme in _FILESYSTEM_SCHEMES or "/" in scheme or len(scheme) == 1
    if sep and not filesystem:  # a one-letter "scheme" is a Windows drive
        known = sorted({*LAKE_FORMATS, *_FACTORIES, *_LAZY})
        raise UsageError(f"unknown source scheme {scheme!r} in {spec!r}; expected one of {known}")
    return LakeSource(_guess_format(spec), spec, opts)
