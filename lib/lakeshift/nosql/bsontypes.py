"""Exact conversion of BSON values to column values, per logical column type and SQL dialect.

Every function here is pure Python on one decoded value; it runs on executors inside
``mapInArrow`` (see :mod:`lakeshift.nosql.normalise`). A value that cannot be stored exactly
raises :class:`ValueIssue` and the document goes to quarantine; nothing is rounded silently.

Conversions (``cast`` policy; ``reject`` accepts only the native BSON types):

=========  ======================  =================================================
type       native BSON types       also cast (exact only)
=========  ======================  =================================================
objectid   objectId                string of 24 hex digits
string     string, symbol          objectId, int, long, double, decimal, bool, date
int        int                     long / double / decimal with an int32 value, string
long       int, long               double / decimal with an integral int64 value, string
double     double, int, long       long only when exactly representable
decimal    decimal                 int, long, double (shortest repr), string
boolean    bool                    int 0/1, string "true"/"false"
timestamp  date                    BSON timestamp (seconds)
binary     binData                 (none)
uuid       binData subtypes 3, 4   string in UUID form
json       anything                (always stored)
=========  ======================  =================================================
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from dataclasses import dataclass
from typing import Any

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
EPOCH = dt.datetime(1970, 1, 1)


def _ms(year: int, month: int, day: int, end: bool = False) -> int:
    base = int((dt.datetime(year, month, day) - EPOCH).total_seconds()) * 1000
    return base + 86_400_000 - 1 if end else base


# inclusive BSON date bounds (milliseconds since the epoch) each target can store
DATE_RANGE_MS: dict[str, tuple[int, int]] = {
    # PostgreSQL: 4714-11-24 BC .. 294276-12-31 AD (Julian day 0 .. end of 294276)
    "postgres": (-2_440_588 * 86_400_000, (109_203_489 - 2_440_588) * 86_400_000 - 1),
    "mysql": (_ms(1000, 1, 1), _ms(9999, 12, 31, end=True)),
    "sqlite": (_ms(1, 1, 1), _ms(9999, 12, 31, end=True)),
    "delta": (_ms(1, 1, 1), _ms(9999, 12, 31, end=True)),
}
# targets whose DOUBLE column stores NaN and ±Infinity
NONFINITE_DOUBLE_OK = {"postgres", "delta"}
# targets whose text columns cannot hold U+0000
NO_NUL = {"postgres"}


class ValueIssue(Exception):
    """A value that does not fit its column; carries the reason for the quarantine table."""


@dataclass(frozen=True)
class Nonfinite:
    """A NaN/±Infinity stored as NULL plus a flag (``nonfinite: null``)."""

    label: str


def bson_type(value: Any) -> str:
    """The BSON type alias (as in ``$type``) of a decoded value."""
    import bson
    from bson.binary import Binary
    from bson.datetime_ms import DatetimeMS
    from bson.int64 import Int64

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bson.ObjectId):
        return "objectId"
    if isinstance(value, bson.Decimal128):
        return "decimal"
    if isinstance(value, DatetimeMS | dt.datetime):
        return "date"
    if isinstance(value, bytes | Binary | uuid.UUID):
        return "binData"
    if isinstance(value, bson.Regex):
        return "regex"
    if isinstance(value, bson.Timestamp):
        return "timestamp"
    if isinstance(value, bson.Code):
        return "javascript" if value.scope is None else "javascriptWithScope"
    if isinstance(value, bson.MinKey):
        return "minKey"
    if isinstance(value, bson.MaxKey):
        return "maxKey"
    if isinstance(value, bson.DBRef):
        return "object"
    return type(value).__name__


def date_ms(value: Any) -> int:
    """Milliseconds since the epoch of a decoded BSON date."""
    from bson.datetime_ms import DatetimeMS

    if isinstance(value, DatetimeMS):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    raise ValueIssue(f"expected a date, found {bson_type(value)}")


def ms_to_iso(ms: int) -> str:
    """ISO-8601 UTC text for milliseconds since the epoch (years 1..9999)."""
    when = EPOCH + dt.timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _mismatch(value: Any, target: str) -> ValueIssue:
    return ValueIssue(f"expected {target}, found BSON {bson_type(value)}")


def _integral(value: Any, bounds: tuple[int, int], target: str) -> int:
    import bson

    if isinstance(value, bool):
        raise _mismatch(value, target)
    if isinstance(value, int):
        out = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueIssue(f"expected {target}, found non-integral double {value!r}")
        out = int(value)
    elif isinstance(value, bson.Decimal128):
        d = value.to_decimal()
        if not d.is_finite() or d != d.to_integral_value():
            raise ValueIssue(f"expected {target}, found non-integral decimal {d}")
        out = int(d)
    elif isinstance(value, str):
        try:
            out = int(value.strip())
        except ValueError as exc:
            raise ValueIssue(f"expected {target}, found string that is not an integer") from exc
    else:
        raise _mismatch(value, target)
    if not bounds[0] <= out <= bounds[1]:
        raise ValueIssue(f"value {out} out of range for {target}")
    return out


def to_decimal(value: Any, scale: int, precision: int = 34) -> decimal.Decimal | Nonfinite:
    """An exact ``NUMERIC(precision, scale)`` value, or :class:`Nonfinite` for NaN/±Infinity."""
    import bson

    ctx = decimal.Context(prec=80)
    if isinstance(value, bson.Decimal128):
        d = value.to_decimal()
    elif isinstance(value, bool):
        raise _mismatch(value, "decimal")
    elif isinstance(value, int):
        d = decimal.Decimal(int(value))
    elif isinstance(value, float):
        d = decimal.Decimal(repr(value)) if math.isfinite(value) else decimal.Decimal(str(value))
    elif isinstance(value, str):
        try:
            d = decimal.Decimal(value.strip())
        except decimal.InvalidOperation as exc:
            raise ValueIssue("expected decimal, found string that is not a number") from exc
    else:
        raise _mismatch(value, "decimal")
    if d.is_nan():
        return Nonfinite("NaN")
    if d.is_infinite():
        return Nonfinite("Infinity" if d > 0 else "-Infinity")
    q = d.quantize(decimal.Decimal(1).scaleb(-scale), context=ctx)
    if q != d:
        raise ValueIssue(f"decimal {d} has more than {scale} fractional digits (would round)")
    digits = len(q.as_tuple().digits)
    if digits > precision:
        raise ValueIssue(
            f"decimal {d} needs more than {precision} digits (NUMERIC({precision},{scale}))"
        )
    return q


def to_double(value: Any) -> float:
    """A double, exact (an int64 that a double cannot hold exactly is an issue)."""
    if isinstance(value, bool):
        raise _mismatch(value, "double")
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        out = float(value)
        if int(out) != int(value):
            raise ValueIssue(f"integer {int(value)} is not exactly representable as a double")
        return out
    raise _mismatch(value, "double")


def to_string(value: Any) -> str:
    """Text for strings and simple scalars (cast policy)."""
    import bson

    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | bson.ObjectId):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bson.Decimal128):
        return str(value.to_decimal())
    if bson_type(value) == "date":
        ms = date_ms(value)
        return (
            ms_to_iso(ms)
            if DATE_RANGE_MS["sqlite"][0] <= ms <= DATE_RANGE_MS["sqlite"][1]
            else str(ms)
        )
    raise _mismatch(value, "string")


def to_uuid(value: Any) -> str:
    """Canonical UUID text from binData subtype 4/3 or a UUID string."""
    from bson.binary import Binary

    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Binary) and value.subtype in (3, 4) and len(value) == 16:
        return str(uuid.UUID(bytes=bytes(value)))
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise ValueIssue("expected uuid, found string that is not a UUID") from exc
    raise _mismatch(value, "uuid")


NATIVE: dict[str, set[str]] = {
    "objectid": {"objectId"},
    "string": {"string", "symbol"},
    "int": {"int"},
    "long": {"int", "long"},
    "double": {"double", "int", "long"},
    "decimal": {"decimal"},
    "boolean": {"bool"},
    "timestamp": {"date"},
    "binary": {"binData"},
    "uuid": {"binData"},
}


def convert(value: Any, ctype: str, scale: int | None, cast: bool) -> Any:
    """Convert one non-null decoded value to column type ``ctype`` (not ``json``).

    Returns the Python value for the Arrow column: ``str``, ``int``, ``float``, ``bool``,
    ``Decimal``, ``bytes``, milliseconds (``int``) for timestamps, or :class:`Nonfinite`.

    Raises:
        ValueIssue: the value is not of the column's type and cannot be cast exactly.
    """
    import bson
    from bson.binary import Binary

    kind = bson_type(value)
    if not cast and kind not in NATIVE.get(ctype, set()):
        raise _mismatch(value, ctype)
    if ctype == "string":
        return to_string(value)
    if ctype == "objectid":
        if isinstance(value, bson.ObjectId):
            return str(value)
        if isinstance(value, str) and bson.ObjectId.is_valid(value) and len(value) == 24:
            return value.lower()
        raise _mismatch(value, "objectid")
    if ctype == "int":
        return _integral(value, INT32, "int")
    if ctype == "long":
        return _integral(value, INT64, "long")
    if ctype == "double":
        if isinstance(value, float) and not math.isfinite(value):
            return Nonfinite(
                "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            )
        return to_double(value)
    if ctype == "decimal":
        return to_decimal(value, scale or 0)
    if ctype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and int(value) in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _mismatch(value, "boolean")
    if ctype == "timestamp":
        if kind == "date":
            return date_ms(value)
        if isinstance(value, bson.Timestamp):
            return int(value.time) * 1000
        raise _mismatch(value, "timestamp")
    if ctype == "binary":
        if isinstance(value, uuid.UUID):
            return value.bytes
        if isinstance(value, bytes | Binary):
            return bytes(value)
        raise _mismatch(value, "binary")
    if ctype == "uuid":
        return to_uuid(value)
    raise ValueIssue(f"unknown column type {ctype!r}")
