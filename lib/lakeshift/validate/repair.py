"""``lakeshift repair``: re-copy the differing keys from the source into a Delta target.

From a validation result (its mismatch DataFrame, computed on the cluster):

1. target rows whose key is *extra in target* or a *duplicate key* are deleted (a MERGE with
   ``whenMatchedDelete``);
2. source rows whose key is *missing in target*, a *value mismatch* or a *duplicate key* are
   MERGEd on the key (update when matched, insert otherwise);
3. the table is validated again; the second result is the verdict.

Keys are matched on their canonical form, so an ``int`` source key finds its ``bigint`` target
row. Only keyed tables can be repaired.
"""

from __future__ import annotations

import logging
import uuid
from functools import reduce
from typing import TYPE_CHECKING

from lakeshift.errors import SinkError, UsageError
from lakeshift.validate.api import _source, validate_tables
from lakeshift.validate.engine import apply_mapping
from lakeshift.validate.normalise import canonical, plan_columns
from lakeshift.validate.options import ValidateOptions
from lakeshift.validate.result import ValidationResult

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql.types import DataType

    from lakeshift.sources.base import Source

log = logging.getLogger(__name__)


def _typ(dtype: DataType | None) -> DataType:
    if dtype is None:
        raise UsageError("repair: a key column is missing on one side")
    return dtype


def _delta_path(source: Source) -> str:
    fmt = getattr(source, "format", None)
    path = getattr(source, "path", None)
    if fmt != "delta" or not path:
        raise UsageError(f"repair: the target must be a Delta table, found {source.describe()}")
    return str(path)


def repair(
    spark: SparkSession,
    left_source: Source | str,
    right_source: Source | str,
    result: ValidationResult,
    options: ValidateOptions,
) -> dict[str, int]:
    """Apply the repair for ``result`` to the Delta target; returns rows deleted/merged.

    Raises:
        UsageError: a keyless table or a non-Delta target.
        SinkError: the MERGE failed.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    if not options.keys:
        raise UsageError("repair: needs key columns (--keys)")
    left_src = _source(left_source, options.keys)
    right_src = _source(right_source, options.keys)
    path = _delta_path(right_src)
    left = apply_mapping(left_src.read(spark), options, "left")
    target = DeltaTable.forPath(spark, path)
    right = apply_mapping(target.toDF(), options, "right")
    plans = {p.name: p for p in plan_columns(left, right, options)}
    tag = uuid.uuid4().hex[:8]
    knames = [f"__lk{j}_{tag}" for j in range(len(options.keys))]

    diff = result.mismatches()
    todo = diff.select(
        "class",
        *[
            F.col(f"key_canonical.`{k}`").alias(n)
            for k, n in zip(options.keys, knames, strict=True)
        ],
    ).localCheckpoint(eager=True)  # fixed before the target changes

    def target_cond(alias_src: str) -> Column:
        conds = []
        for k, n in zip(options.keys, knames, strict=True):
            plan = plans[k]
            tkey = canonical(
                F.col(f"t.`{k}`"), _typ(plan.right_type), plan, options, plan.right_char
            )
            conds.append(tkey.eqNullSafe(F.col(f"{alias_src}.`{n}`")))
        return reduce(lambda a, b: a & b, conds)

    counts = {"deleted_keys": 0, "merged_rows": 0}
    try:
        drop = todo.filter(F.col("class").isin("extra_in_target", "duplicate_key")).select(*knames)
        counts["deleted_keys"] = drop.count()
        if counts["deleted_keys"]:
            target.alias("t").merge(drop.alias("s"), target_cond("s")).whenMatchedDelete().execute()
        upsert_keys = todo.filter(
            F.col("class").isin("missing_in_target", "value_mismatch", "duplicate_key")
        ).select(*knames)
        target_cols = [c for c in right.columns if c in left.columns]
        key_exprs = [
            canonical(
                F.col(f"`{k}`"), _typ(plans[k].left_type), plans[k], options, plans[k].left_char
            ).alias(n)
            for k, n in zip(options.keys, knames, strict=True)
        ]
        rtypes = {f.name: f.dataType for f in right.schema.fields}
        rows = left.select(
            *[F.col(f"`{c}`").cast(rtypes[c]).alias(c) for c in target_cols], *key_exprs
        ).join(upsert_keys, knames, "left_semi")
        counts["merged_rows"] = rows.count()
        if counts["merged_rows"]:
            assign: dict[str, str | Column] = {f"`{c}`": F.col(f"s.`{c}`") for c in target_cols}
            (
                target.alias("t")
                .merge(rows.alias("s"), target_cond("s"))
                .whenMatchedUpdate(set=assign)
                .whenNotMatchedInsert(values=assign)
                .execute()
            )
    except UsageError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SinkError(f"{path}: repair MERGE failed: {first}") from exc
    log.info("repaired %s: %s", path, counts)
    return counts


def repair_table(
    spark: SparkSession,
    left_source: Source | str,
    right_source: Source | str,
    options: ValidateOptions,
    table: str | None = None,
) -> tuple[ValidationResult, ValidationResult]:
    """Validate, repair when needed, validate again: ``(before, after)``."""
    before = validate_tables(spark, left_source, right_source, options, table=table)
    if before.differing_rows == 0:
        return before, before
    repair(spark, left_source, right_source, before, options)
    after = validate_tables(spark, left_source, right_source, options, table=table)
    return before, after
