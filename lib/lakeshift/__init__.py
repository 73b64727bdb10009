"""lakeshift: migrate data at petabyte scale with Spark, without downtime, and prove it correct."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
