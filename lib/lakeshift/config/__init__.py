"""Configuration: pydantic v2 models loaded from YAML, env secrets and date macros."""

from __future__ import annotations

from lakeshift.config.base import StrictModel, load_model, parse_size
from lakeshift.config.macros import expand_macros, parse_run_date

__all__ = ["StrictModel", "expand_macros", "load_model", "parse_run_date", "parse_size"]
