"""great-expectations (1.x) suites as optional post-migration gates on the target table.

The suite is a YAML list of expectation configs, run with an ephemeral GX context on the Spark
DataFrame (nothing is written to disk)::

    - type: expect_column_values_to_not_be_null
      kwargs: {column: order_id}
    - type: expect_column_values_to_be_between
      kwargs: {column: amount, min_value: 0}
    - type: expect_table_row_count_to_be_between
      kwargs: {min_value: 1}

``great-expectations`` is an optional dependency (``pip install lakeshift[gx]``).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lakeshift.errors import ConfigError
from lakeshift.validate.result import ExpectationResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


def load_expectations(path: str | Path) -> list[dict[str, Any]]:
    """Read and check the YAML list of ``{type, kwargs}`` expectation configs.

    Raises:
        ConfigError: the file is missing, not YAML or not a list of ``{type, kwargs}`` mappings.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read expectations: {exc}") from exc
    if isinstance(data, dict) and "expectations" in data:
        data = data["expectations"]
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of expectations, found {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ConfigError(f"{path}: [{i}].type: field required")
        extra = set(item) - {"type", "kwargs", "meta"}
        if extra:
            raise ConfigError(f"{path}: [{i}]: unknown field {sorted(extra)[0]!r}")
        kwargs = item.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise ConfigError(f"{path}: [{i}].kwargs: expected a mapping")
        out.append({"type": item["type"], "kwargs": kwargs, "meta": item.get("meta") or {}})
    return out


def run_expectations(df: DataFrame, path: str | Path) -> list[ExpectationResult]:
    """Run the suite in ``path`` on ``df``; one :class:`ExpectationResult` per expectation.

    Raises:
        ConfigError: the suite is invalid or great-expectations is not installed.
    """
    configs = load_expectations(path)
    try:
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )
    except ImportError as exc:
        raise ConfigError(
            f"{path}: great-expectations is not installed (pip install 'lakeshift[gx]')"
        ) from exc
    suffix = uuid.uuid4().hex[:8]
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_spark(name=f"lakeshift_{suffix}")
    asset = source.add_dataframe_asset(name=f"target_{suffix}")
    batch_def = asset.add_batch_definition_whole_dataframe(f"whole_{suffix}")
    suite = gx.ExpectationSuite(name=f"lakeshift_{suffix}")
    for i, cfg in enumerate(configs):
        try:
            suite.add_expectation_configuration(
                ExpectationConfiguration(type=cfg["type"], kwargs=cfg["kwargs"], meta=cfg["meta"])
            )
        except Exception as exc:  # GX raises several unrelated types for a bad config
            raise ConfigError(f"{path}: [{i}] {cfg['type']}: {exc}") from exc
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    outcome = batch.validate(suite)
    results = []
    for r in outcome.results:
        exp = r.expectation_config
        kwargs = {k: v for k, v in ((exp.kwargs if exp else None) or {}).items() if k != "batch_id"}
        observed = r.result or {}
        details = {
            k: observed[k]
            for k in ("observed_value", "unexpected_count", "unexpected_percent", "element_count")
            if k in observed
        }
        if r.exception_info and r.exception_info.get("raised_exception"):
            details["exception"] = str(r.exception_info.get("exception_message"))[:300]
        results.append(
            ExpectationResult(
                expectation=str(exp.type if exp else "?"),
                column=kwargs.get("column"),
                success=bool(r.success),
                details=json.dumps({"kwargs": kwargs, **details}, default=str),
            )
        )
    return results
