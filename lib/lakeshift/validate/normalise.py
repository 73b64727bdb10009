"""One normaliser, in Spark, used for both sides of a comparison.

Each column pair (left type, right type) gets a *kind* and both sides are rewritten into the
kind's canonical form with Spark built-in expressions only, so equal values have equal canonical
values (and equal hashes) whatever their physical types. The canonical form of every type is
documented in ``docs/validate.md``; in short:

========== ======================================================================================
kind       canonical value
========== ======================================================================================
long       every integral type (tinyint … bigint) as ``bigint``
decimal    exact numerics (integral and decimal mixed) as ``decimal(p, s)``, ``s`` the agreed scale
double     any float/double involved: ``double``, -0.0 → 0.0, one NaN, optional N significant digits
ts         timestamps (and dates paired with timestamps): UTC epoch microseconds, truncated
date       dates: days since 1970-01-01
string     code points as stored; optional NFC, trim, right-trim (CHAR), case folding
boolean    as is
binary     as is
nested     arrays, maps and structs: canonical JSON text of the canonical elements (keys of maps
           sorted, struct fields by name, explicit nulls, optional unordered/set arrays)
text       two sides of incompatible types: both cast to string (flagged in the schema report)
========== ======================================================================================

NULL is kept as NULL in the value; a separate per-column *state* (0 present, 1 NULL, 2 column
missing on this side) makes NULL, the empty string and a missing column distinguishable in the
fingerprint and in the diff.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeshift.spark import sql_name, sql_string
from lakeshift.validate.options import PRECISION_MICROS, ColumnRule, ValidateOptions

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

CHAR_METADATA = "__CHAR_VARCHAR_TYPE_STRING"
STATE_PRESENT, STATE_NULL, STATE_MISSING = 0, 1, 2
_INTEGRAL = ("byte", "short", "integer", "long")


def type_family(dtype: DataType) -> str:
    """A coarse family name of a Spark type (``integral``, ``decimal``, ``float``, …)."""
    name = dtype.typeName()
    if name in _INTEGRAL:
        return "integral"
    if name == "decimal":
        return "decimal"
    if name in ("float", "double"):
        return "float"
    if name in ("timestamp", "timestamp_ntz"):
        return "timestamp"
    if name in ("string", "char", "varchar"):
        return "string"
    if name in ("array", "map", "struct"):
        return "nested"
    return name  # date, boolean, binary, null, variant, …


def _integral_digits(dtype: DataType) -> int:
    name = dtype.typeName()
    if name == "decimal":
        return int(dtype.precision - dtype.scale)  # type: ignore[attr-defined]
    return {"byte": 3, "short": 5, "integer": 10, "long": 19}.get(name, 19)


def _scale(dtype: DataType) -> int:
    return int(dtype.scale) if dtype.typeName() == "decimal" else 0  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ColumnPlan:
    """How one column (target name) is compared.

    Attributes:
        name: the column name (after renames).
        left_type: the left Spark type, ``None`` when the column is missing on the left.
        right_type: the right Spark type, ``None`` when missing on the right.
        kind: the canonical kind (see the module docstring).
        scale: the agreed decimal scale for kind ``decimal``.
        precision: the canonical decimal precision: the larger integral digit count plus
            ``scale`` (at most 38; up to 18 Spark keeps decimals in a long, which is fast).
        rule: the effective per-column rule.
        left_char: the left column is a CHAR (right-trimmed).
        right_char: the right column is a CHAR (right-trimmed).
    """

    name: str
    left_type: DataType | None
    right_type: DataType | None
    kind: str
    scale: int
    rule: ColumnRule
    precision: int = 38
    left_char: bool = False
    right_char: bool = False

    @property
    def on_both(self) -> bool:
        """The column exists on both sides."""
        return self.left_type is not None and self.right_type is not None


def _kind(types: Sequence[DataType]) -> str:
    fams = {type_family(t) for t in types}
    if len(fams) == 1:
        fam = next(iter(fams))
        return {"integral": "long", "float": "double", "timestamp": "ts"}.get(fam, fam)
    if fams <= {"integral", "decimal"}:
        return "decimal"
    if fams <= {"integral", "decimal", "float"}:
        return "double"
    if fams <= {"timestamp", "date"}:
        return "ts"
    return "text"


def _is_char(field_metadata: dict[str, object], dtype: DataType) -> bool:
    if dtype.typeName() == "char":
        return True
    meta = str(field_metadata.get(CHAR_METADATA, ""))
    return meta.lower().startswith("char(")


def plan_columns(left: DataFrame, right: DataFrame, options: ValidateOptions) -> list[ColumnPlan]:
    """Pair the columns of two (already renamed, filtered) DataFrames into comparison plans.

    Order: right's column order, then columns only on the left. Excluded columns are skipped.
    """
    lfields = {f.name: f for f in left.schema.fields}
    rfields = {f.name: f for f in right.schema.fields}
    names = [n for n in rfields if n not in options.exclude]
    names += [n for n in lfields if n not in rfields and n not in options.exclude]
    plans = []
    for name in names:
        lf, rf = lfields.get(name), rfields.get(name)
        types = [f.dataType for f in (lf, rf) if f is not None]
        kind = _kind(types)
        scale = 0
        precision = 38
        if kind == "decimal":
            wanted = options.decimal_scale
            if wanted is None:
                wanted = max(_scale(t) for t in types)
            digits = max(_integral_digits(t) for t in types)
            scale = max(0, min(wanted, 38 - digits))
            # +1 only when a side is rounded to the agreed scale (9.999 -> 10.00 carries); without
            # it, decimal(18,4) on both sides stays decimal(18,4), which Spark keeps in a long
            carry = int(any(_scale(t) > scale for t in types))
            precision = min(38, digits + scale + carry)
        plans.append(
            ColumnPlan(
                name=name,
                left_type=lf.dataType if lf else None,
                right_type=rf.dataType if rf else None,
                kind=kind,
                scale=scale,
                precision=precision,
                rule=options.rule(name),
                left_char=bool(lf and _is_char(lf.metadata, lf.dataType)),
                right_char=bool(rf and _is_char(rf.metadata, rf.dataType)),
            )
        )
    return plans


_NAN = "CAST('NaN' AS DOUBLE)"
_TO_JSON_OPTS = "map('ignoreNullFields', 'false')"
_TRIM = sql_string(r"^\s+|\s+$")
_TRAILING_ZEROS = sql_string(r"(\.\d*?)0+$")
_TRAILING_POINT = sql_string(r"\.$")


def _string_rules(c: str, rule: ColumnRule, is_char: bool) -> str:
    if is_char or rule.rtrim:
        c = f"rtrim({c})"
    if rule.trim:
        c = f"regexp_replace({c}, {_TRIM}, '')"
    if rule.casefold:
        c = f"lower({c})"
    return c


def _double(c: str, rule: ColumnRule) -> str:
    d = f"CAST({c} AS DOUBLE)"
    d = f"CASE WHEN isnan({d}) THEN {_NAN} WHEN {d} = 0 THEN 0.0D ELSE {d} END"
    if rule.digits:
        # %.Ne keeps N+1 significant digits (HALF_UP); Infinity and NaN round-trip as text
        d = f"CAST(format_string('%.{rule.digits - 1}e', {d}) AS DOUBLE)"
        d = f"CASE WHEN {d} = 0 THEN 0.0D ELSE {d} END"
    return d


def _micros(c: str, dtype: DataType, precision: str) -> str:
    ts = c if dtype.typeName() == "timestamp" else f"CAST({c} AS TIMESTAMP)"  # ntz/date: UTC
    micros = f"unix_micros({ts})"
    unit = PRECISION_MICROS[precision]
    if unit == 1:
        return micros
    return f"({micros} - pmod({micros}, {unit}))"


def _nested_canonical(
    c: str, dtype: DataType, rule: ColumnRule, precision: str, depth: int = 0
) -> str:
    """SQL: canonical nested value with explicit structure (JSON-encoded by the caller).

    ``depth`` names the lambda variables of nested arrays and maps apart (``x0``, ``x1``, …).
    """
    name = dtype.typeName()
    fam = type_family(dtype)
    if name == "struct":
        fields = sorted(dtype.fields, key=lambda f: f.name)  # type: ignore[attr-defined]
        inner = ", ".join(
            f"{sql_string(f.name)}, "
            + _nested_canonical(f"{c}.{sql_name(f.name)}", f.dataType, rule, precision, depth)
            for f in fields
        )
        return f"CASE WHEN {c} IS NULL THEN NULL ELSE named_struct({inner}) END"
    if name == "array":
        elem = dtype.elementType  # type: ignore[attr-defined]
        x = f"x{depth}"
        arr = f"transform({c}, {x} -> {_nested_canonical(x, elem, rule, precision, depth + 1)})"
        if rule.array == "set":
            arr = f"array_sort(array_distinct({arr}))"
        elif rule.array == "unordered":
            arr = f"array_sort({arr})"
        return arr
    if name == "map":
        kt, vt = dtype.keyType, dtype.valueType  # type: ignore[attr-defined]
        e = f"e{depth}"
        key = _nested_canonical(f"{e}.key", kt, rule, precision, depth + 1)
        value = _nested_canonical(f"{e}.value", vt, rule, precision, depth + 1)
        entry = f"named_struct('key', {key}, 'value', {value})"
        return f"array_sort(transform(map_entries({c}), {e} -> {entry}))"
    if fam in ("integral", "decimal"):
        # exact numbers as plain decimal text without trailing fractional zeros: 1.2300 -> 1.23
        text = f"CAST({c} AS STRING)"
        if fam == "decimal":
            text = f"regexp_replace({text}, {_TRAILING_ZEROS}, '$1')"
            text = f"regexp_replace({text}, {_TRAILING_POINT}, '')"
        return text
    if fam == "float":
        return _double(c, rule)
    if fam == "timestamp":
        return _micros(c, dtype, precision)
    if name == "date":
        return f"unix_date({c})"
    if fam == "string":
        return _string_rules(c, rule, False)
    return c


def canonical(
    c: str, dtype: DataType, plan: ColumnPlan, options: ValidateOptions, is_char: bool = False
) -> str:
    """SQL: the canonical value of the SQL expression ``c`` (of type ``dtype``) under ``plan``.

    SQL text rather than Column objects: every Column call is a round trip to the JVM, and a
    wide table's canonical projection would cost thousands of them; the text is parsed once.
    """
    kind = plan.kind
    rule = plan.rule
    if kind == "long":
        return f"CAST({c} AS BIGINT)"
    if kind == "decimal":
        return f"CAST({c} AS DECIMAL({plan.precision},{plan.scale}))"
    if kind == "double":
        return _double(c, rule)
    if kind == "ts":
        return _micros(c, dtype, options.timestamp_precision)
    if kind == "date":
        return f"unix_date({c})"
    if kind == "string":
        return _string_rules(c, rule, is_char)
    if kind == "nested":
        nested = _nested_canonical(c, dtype, rule, options.timestamp_precision)
        return f"to_json({nested}, {_TO_JSON_OPTS})"
    if kind == "text":
        if type_family(dtype) == "nested":
            return f"to_json({c}, {_TO_JSON_OPTS})"
        if type_family(dtype) == "string":
            return _string_rules(c, rule, is_char)
        return f"CAST({c} AS STRING)"
    return c  # boolean, binary and anything else Spark can hash and compare


def canonical_type(plan: ColumnPlan) -> str:
    """The Spark SQL type of the canonical value of ``plan`` (for typed NULLs)."""
    return {
        "long": "bigint",
        "decimal": f"decimal({plan.precision},{plan.scale})",
        "double": "double",
        "ts": "bigint",
        "date": "int",
        "string": "string",
        "nested": "string",
        "text": "string",
        "boolean": "boolean",
        "binary": "binary",
    }.get(plan.kind, "string")


def display(c: str, dtype: DataType) -> str:
    """SQL: a human-readable text form of an original value (reports): JSON for nested types."""
    if type_family(dtype) == "nested":
        return f"to_json({c}, {_TO_JSON_OPTS})"
    if dtype.typeName() == "binary":
        return f"concat('0x', hex({c}))"
    return f"CAST({c} AS STRING)"


def nfc_normalise(df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Unicode NFC normalisation of top-level string ``columns`` (Arrow batches, no row UDF).

    Spark 4.2 has no built-in NFC function (its collations compare, they do not normalise), so
    this is the one place where Python touches rows: pyarrow's vectorised ``utf8_normalize`` over
    whole Arrow batches via ``mapInArrow``.
    """
    cols = [c for c in columns if c in df.columns]
    if not cols:
        return df
    schema = df.schema
    wanted = list(cols)

    def normalise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.compute as pc

        for batch in batches:
            arrays = [
                pc.utf8_normalize(batch.column(i), form="NFC")
                if name in wanted
                else batch.column(i)
                for i, name in enumerate(batch.schema.names)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    return df.mapInArrow(normalise, schema)
