"""Configuration: pydantic v2 models loaded from YAML, env secrets and date macros."""

from __future__ import annotations

from lakeshift.config.base import StrictModel, human_bytes, load_model, parse_size
from lakeshift.config.macros import expand_macros, parse_run_date

__all__ = [
    "StrictModel",
    "expand_macros",
    "human_bytes",
    "load_model",
    "parse_run_date",
    "parse_size",
]
