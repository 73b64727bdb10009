"""Multi-table validation configs: ``defaults``, named ``templates`` and a ``tables`` list.

Example (``conf/examples/validate.yaml``)::

    defaults:
      threshold: 0
      timestamp_precision: millis
    templates:
      money:
        columns: {amount: "abs:0.01"}
    outputs:
      json: out/validate.json
      html: out/validate.html
    tables:
      - name: orders
        left: parquet:/landing/orders
        right: delta:/lake/orders
        keys: [order_id]
        template: money

Each table's options are ``defaults`` ← templates (in the order named) ← the table's own fields;
``columns`` maps are merged per column.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import Field

from lakeshift.config.base import StrictModel, load_model, validate_model
from lakeshift.errors import ConfigError
from lakeshift.validate.options import ValidateOptions, parse_tolerance


class Outputs(StrictModel):
    """Report destinations (all optional; CLI flags win)."""

    json_path: str | None = Field(default=None, alias="json")
    html: str | None = None
    junit: str | None = None
    results: str | None = None


class TableSpec(StrictModel):
    """One table to validate: its name, both sides and its resolved options."""

    name: str
    left: str
    right: str
    options: ValidateOptions


class ValidateConfig(StrictModel):
    """The raw file: options are merged and validated per table by :func:`load_config`."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    outputs: Outputs = Field(default_factory=Outputs)
    tables: list[dict[str, Any]] = Field(min_length=1)


def _rule_dict(rule: Any, where: str) -> Any:
    if isinstance(rule, str):
        try:
            return parse_tolerance(rule).model_dump(exclude_unset=True)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return rule


def _merge(base: dict[str, Any], over: dict[str, Any], where: str = "") -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key == "columns" and isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = dict(out[key])
            for col, raw in value.items():
                rule = _rule_dict(raw, f"{where}.columns.{col}")
                merged[col] = _rule_dict(merged.get(col), f"{where}.columns.{col}")
                if isinstance(rule, dict) and isinstance(merged.get(col), dict):
                    merged[col] = {**merged[col], **rule}
                else:
                    merged[col] = rule
            out[key] = merged
        else:
            out[key] = value
    return out


def resolve_tables(config: ValidateConfig, where: str) -> list[TableSpec]:
    """Merge defaults, templates and table fields into one :class:`TableSpec` per table.

    Raises:
        ConfigError: an unknown template, a missing field or an invalid option (the message names
            the file and the table's index).
    """
    specs = []
    names: set[str] = set()
    for i, raw in enumerate(config.tables):
        entry = dict(raw)
        loc = f"{where}: tables[{i}]"
        for req in ("left", "right"):
            if not entry.get(req):
                raise ConfigError(f"{loc}.{req}: field required")
        name = str(entry.pop("name", None) or entry["right"])
        left, right = str(entry.pop("left")), str(entry.pop("right"))
        templates = entry.pop("template", None) or entry.pop("templates", None) or []
        if isinstance(templates, str):
            templates = [templates]
        merged = dict(config.defaults)
        for t in templates:
            if t not in config.templates:
                raise ConfigError(
                    f"{loc}.template: unknown template {t!r}; expected one of "
                    f"{sorted(config.templates)}"
                )
            merged = _merge(merged, config.templates[t], loc)
        merged = _merge(merged, entry, loc)
        options = validate_model(ValidateOptions, merged, loc)
        if name in names:
            raise ConfigError(f"{loc}.name: duplicate table name {name!r}")
        names.add(name)
        specs.append(TableSpec(name=name, left=left, right=right, options=options))
    return specs


def load_config(
    path: str | Path, run_date: dt.date | None = None
) -> tuple[list[TableSpec], Outputs]:
    """Load a validation config file: the resolved tables and the report outputs.

    Raises:
        ConfigError: the file is missing or invalid.
    """
    config = load_model(path, ValidateConfig, run_date=run_date)
    return resolve_tables(config, str(path)), config.outputs
