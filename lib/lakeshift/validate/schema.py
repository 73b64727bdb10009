"""Schema comparison: missing and extra columns, changed types and lossy type mappings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lakeshift.validate.normalise import CHAR_METADATA, ColumnPlan, type_family
from lakeshift.validate.result import SchemaIssue

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructField

_INT_RANK = {"byte": 1, "short": 2, "integer": 3, "long": 4}
_INT_DIGITS = {"byte": 3, "short": 5, "integer": 10, "long": 19}
_LEN = re.compile(r"^(?:var)?char\((\d+)\)$", re.IGNORECASE)


def _string_length(field: StructField | None) -> int | None:
    if field is None:
        return None
    meta = str(field.metadata.get(CHAR_METADATA, ""))
    match = _LEN.match(meta) or _LEN.match(field.dataType.simpleString())
    return int(match.group(1)) if match else None


def lossy_issues(left: DataType, right: DataType) -> list[str]:
    """Names of the ways writing ``left`` values into a ``right`` column can lose information."""
    lf, rf = type_family(left), type_family(right)
    ln, rn = left.typeName(), right.typeName()
    out: list[str] = []
    if lf == "decimal" and rf == "decimal":
        if right.scale < left.scale:  # type: ignore[attr-defined]
            out.append("decimal_scale_lost")
        if (right.precision - right.scale) < (left.precision - left.scale):  # type: ignore[attr-defined]
            out.append("decimal_precision_narrowed")
    elif lf == "integral" and rf == "integral":
        if _INT_RANK[rn] < _INT_RANK[ln]:
            out.append("numeric_narrowed")
    elif lf == "integral" and rf == "decimal":
        if right.precision - right.scale < _INT_DIGITS[ln]:  # type: ignore[attr-defined]
            out.append("numeric_narrowed")
    elif lf == "decimal" and rf == "integral":
        if left.scale > 0:  # type: ignore[attr-defined]
            out.append("decimal_scale_lost")
        if _INT_DIGITS[rn] < left.precision - left.scale:  # type: ignore[attr-defined]
            out.append("numeric_narrowed")
    elif lf in ("integral", "decimal") and rf == "float":
        out.append("exactness_lost")
    elif lf == "float" and rf == "float":
        if ln == "double" and rn == "float":
            out.append("numeric_narrowed")
    elif lf == "float" and rf in ("integral", "decimal"):
        out.append("numeric_narrowed")
    elif lf == "timestamp" and rn == "date":
        out.append("timestamp_precision_lost")
    elif lf == "timestamp" and rf == "timestamp" and ln != rn:
        out.append("time_zone_semantics_changed")
    return out


def compare_schemas(
    plans: list[ColumnPlan],
    left_fields: dict[str, StructField],
    right_fields: dict[str, StructField],
) -> list[SchemaIssue]:
    """Schema findings for the planned columns (errors: missing/extra columns, type changes)."""
    issues: list[SchemaIssue] = []
    for plan in plans:
        lt = plan.left_type.simpleString() if plan.left_type is not None else None
        rt = plan.right_type.simpleString() if plan.right_type is not None else None
        if plan.right_type is None:
            issues.append(SchemaIssue(plan.name, "missing_in_target", lt, None, "error"))
            continue
        if plan.left_type is None:
            issues.append(SchemaIssue(plan.name, "extra_in_target", None, rt, "error"))
            continue
        if plan.kind == "text":
            issues.append(SchemaIssue(plan.name, "type_changed", lt, rt, "warning"))
            continue
        for issue in lossy_issues(plan.left_type, plan.right_type):
            issues.append(SchemaIssue(plan.name, issue, lt, rt, "warning"))
        if plan.kind == "string":
            llen = _string_length(left_fields.get(plan.name))
            rlen = _string_length(right_fields.get(plan.name))
            if rlen is not None and (llen is None or llen > rlen):
                issues.append(SchemaIssue(plan.name, "string_truncation_risk", lt, rt, "warning"))
    return issues
