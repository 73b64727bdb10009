"""Every read lives here, behind one small interface built by :func:`from_spec`."""

from __future__ import annotations

from lakeshift.sources.base import MemorySource, Source
from lakeshift.sources.factory import from_spec, register_scheme

__all__ = ["MemorySource", "Source", "from_spec", "register_scheme"]
