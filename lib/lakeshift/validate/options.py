"""Typed options of a validation: column mapping, normalisation rules, tolerances, thresholds.

Every option has a CLI form and a YAML form (see ``docs/validate.md``). Tolerances are parsed from
short strings so the same text works on the command line and in configs:

* ``abs:0.01`` — numeric, ``|a - b| <= 0.01``;
* ``rel:1e-6`` — numeric, ``|a - b| <= 1e-6 * |b|`` (combined with ``abs``: ``abs + rel * |b|``);
* ``skew:1ms`` — timestamps, ``|a - b| <= 1 ms`` (units ``us``, ``ms``, ``s``, ``m``, ``h``);
* ``trim``, ``casefold``, ``nfc``, ``rtrim`` — string rules applied to both sides before
  fingerprinting (so equal-under-the-rule values also fingerprint equal);
* ``digits:6`` — floats rounded to 6 significant digits on both sides;
* ``set`` / ``unordered`` — arrays compared as sets / as multisets.

Example:
    >>> t = parse_tolerance("abs:0.01")
    >>> t.abs
    0.01
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakeshift.config.base import StrictModel

TimestampPrecision = Literal["seconds", "millis", "micros"]
ArrayMode = Literal["ordered", "unordered", "set"]

PRECISION_MICROS: dict[str, int] = {"seconds": 1_000_000, "millis": 1_000, "micros": 1}
_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|m|h|d)?\s*$")
_UNIT_MICROS = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}


def parse_duration_micros(text: str) -> int:
    """Parse ``1ms``, ``2s``, ``500us`` or a bare number of microseconds into microseconds.

    Raises:
        ValueError: the text is not a duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like 1ms, 2s or 500us, found {text!r}")
    return int(float(match.group("num")) * _UNIT_MICROS[match.group("unit") or "us"])


class ColumnRule(StrictModel):
    """How one column is normalised and compared (all fields optional).

    Attributes:
        abs: absolute numeric tolerance.
        rel: relative numeric tolerance (``|a-b| <= abs + rel*|b|``, ``b`` the right value).
        skew_micros: allowed timestamp difference in microseconds.
        digits: round floats/doubles to this many significant digits on both sides.
        trim: strip leading and trailing whitespace on both sides.
        rtrim: strip trailing spaces (CHAR padding) on both sides.
        casefold: compare strings case-insensitively (``lower`` on both sides).
        nfc: Unicode NFC normalisation on both sides.
        array: ``ordered`` (default), ``unordered`` (multiset) or ``set`` (duplicates dropped).
    """

    abs: float = Field(default=0.0, ge=0)
    rel: float = Field(default=0.0, ge=0)
    skew_micros: int = Field(default=0, ge=0)
    digits: int | None = Field(default=None, ge=1, le=17)
    trim: bool = False
    rtrim: bool = False
    casefold: bool = False
    nfc: bool = False
    array: ArrayMode = "ordered"

    def merged(self, other: ColumnRule) -> ColumnRule:
        """This rule with every field that ``other`` set explicitly taking precedence."""
        data = self.model_dump()
        data.update(other.model_dump(exclude_unset=True))
        return ColumnRule.model_validate(data)

    @property
    def has_tolerance(self) -> bool:
        """True when values may differ and still match (abs/rel/skew)."""
        return self.abs > 0 or self.rel > 0 or self.skew_micros > 0


def parse_tolerance(text: str) -> ColumnRule:
    """Parse one rule string (``abs:0.01``, ``rel:1e-6``, ``skew:1ms``, ``trim``, ``digits:6``…).

    Several rules may be joined with ``,`` or ``+`` (``abs:0.01+rel:1e-6``).

    Raises:
        ValueError: an unknown rule or a bad value.
    """
    data: dict[str, object] = {}
    for raw in re.split(r"[+,]", text):
        part = raw.strip()
        if not part:
            continue
        name, _, value = part.partition(":")
        name = name.strip().lower()
        try:
            if name in ("abs", "rel"):
                data[name] = float(value)
            elif name == "skew":
                data["skew_micros"] = parse_duration_micros(value)
            elif name == "digits":
                data["digits"] = int(value)
            elif name in ("trim", "rtrim", "casefold", "nfc") and not value:
                data[name] = True
            elif name in ("set", "unordered", "ordered") and not value:
                data["array"] = name
            else:
                raise ValueError(
                    "expected abs:N, rel:N, skew:DURATION, digits:N, trim, rtrim, casefold, nfc, "
                    f"set, unordered or ordered, found {part!r}"
                )
        except ValueError as exc:
            if "expected" in str(exc):
                raise
            raise ValueError(f"bad value in tolerance {part!r}: {exc}") from exc
    return ColumnRule.model_validate(data)


class ValidateOptions(StrictModel):
    """Everything that shapes one table comparison.

    Attributes:
        keys: key columns (target names); empty means keyless (fingerprint + aggregates only, with
            a multiset diff of whole rows).
        rename: left column name -> right column name, applied to the left side first.
        exclude: columns (right names) left out of the comparison on both sides.
        casts: column -> Spark SQL type applied on both sides before normalisation.
        filter: a SQL boolean expression (right names) applied to both sides.
        left_filter: a SQL boolean expression applied to the left side only (after renames).
        right_filter: a SQL boolean expression applied to the right side only.
        columns: per-column rules (tolerances, string rules, array modes).
        default: rule applied to every column before its own rule.
        decimal_scale: the agreed scale of exact numerics; ``None`` takes the larger scale.
        timestamp_precision: timestamps are truncated to this precision on both sides.
        threshold: allowed deviation rate (differing rows / left rows); 0 means none.
        buckets: number of key-hash buckets; ``None`` chooses from the sizes (see docs).
        samples: how many mismatching rows the result carries to the driver.
        aggregates: aggregate pre-check: ``auto`` runs it for keyless tables only.
        aggregate_rel: relative tolerance for approximate distinct counts.
        partition_by: columns whose values get their own fingerprint in the report.
        expectations: path of a great-expectations YAML run on the right (target) table.
    """

    keys: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    exclude: list[str] = Field(default_factory=list)
    casts: dict[str, str] = Field(default_factory=dict)
    filter: str | None = None
    left_filter: str | None = None
    right_filter: str | None = None
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    default: ColumnRule = Field(default_factory=ColumnRule)
    decimal_scale: int | None = Field(default=None, ge=0, le=38)
    timestamp_precision: TimestampPrecision = "micros"
    threshold: float = Field(default=0.0, ge=0, le=1)
    buckets: int | None = Field(default=None, ge=1, le=1 << 20)
    samples: int = Field(default=20, ge=0, le=10_000)
    aggregates: Literal["auto", "on", "off"] = "auto"
    aggregate_rel: float = Field(default=0.05, ge=0)
    partition_by: list[str] = Field(default_factory=list)
    expectations: str | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _parse_rule_strings(cls, value: object) -> object:
        """Accept ``{col: "abs:0.01"}`` as well as ``{col: {abs: 0.01}}``."""
        if isinstance(value, dict):
            return {
                k: parse_tolerance(v).model_dump(exclude_unset=True) if isinstance(v, str) else v
                for k, v in value.items()
            }
        return value

    @field_validator("default", mode="before")
    @classmethod
    def _parse_default(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_tolerance(value).model_dump(exclude_unset=True)
        return value

    @model_validator(mode="after")
    def _check(self) -> ValidateOptions:
        overlap = set(self.keys) & set(self.exclude)
        if overlap:
            raise ValueError(f"key columns cannot be excluded: {sorted(overlap)}")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"key columns repeat: {self.keys}")
        return self

    def rule(self, column: str) -> ColumnRule:
        """The effective rule of ``column`` (default merged with the column's own)."""
        own = self.columns.get(column)
        return self.default if own is None else self.default.merged(own)
