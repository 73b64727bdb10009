"""Base model, YAML loading and value parsers shared by every config."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from lakeshift.config.macros import expand_macros
from lakeshift.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_SIZE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def parse_size(value: str | int | float) -> int:
    """Parse a byte size such as ``128MB``, ``1g``, ``512KiB`` or ``1048576`` into bytes.

    Units are binary (``MB`` = ``MiB`` = 2**20), as in Spark's own size settings.

    Example:
        >>> parse_size("128MB")
        134217728

    Raises:
        ValueError: the value is not a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 128MB, found {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"size must be positive, found {value!r}")
        return int(value)
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"expected a size like 128MB or 1GB, found {value!r}")
    unit = (match.group("unit") or "").lower().rstrip("b").rstrip("i")
    size = int(float(match.group("num")) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"size must be positive, found {value!r}")
    return size


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style size.

    Example:
        >>> human_bytes(1536)
        '1.5 KiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line naming ``where`` and the field path of the first error (plus how many more)."""
    errors = exc.errors()
    first = errors[0]
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "missing":
        msg = "field required"
    found = first.get("input")
    shown = (
        f" (found {found!r})"
        if first["type"] not in ("missing", "extra_forbidden")
        and isinstance(found, str | int | float | bool)
        else ""
    )
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {_field_path(tuple(first['loc']))}: {msg}{shown}{more}"


def validate_model(model: type[M], data: Any, where: str) -> M:
    """Validate ``data`` against ``model``; errors become a one-line :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from exc


def load_model(
    path: str | Path,
    model: type[M],
    run_date: dt.date | None = None,
    section: str | None = None,
) -> M:
    """Load a YAML file, expand macros and ``${env:…}`` secrets, and validate it.

    Args:
        path: the YAML file.
        model: the pydantic model class.
        run_date: date used for ``${ds}`` macros (default: today, UTC).
        section: validate only this top-level key of the file.

    Raises:
        ConfigError: the file is missing, not YAML, or does not match the model; the message names
            the file and the field path.
    """
    p = Path(path)
    name = str(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read config file: {exc.strerror or exc}") from exc
    text = expand_macros(raw, run_date=run_date, where=name)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{name}:{line}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}: expected a mapping at the top level, found {type(data).__name__}"
        )
    if section is not None:
        if section not in data:
            raise ConfigError(f"{name}: {section}: field required")
        data = data[section]
    return validate_model(model, data, name)
