"""``lakeshift repair``: re-copy the differing keys from the source into a Delta target.

From a validation result (its mismatch DataFrame, computed on the cluster), one MERGE — one
Delta commit, so a reader never sees a half-repaired table and a failed repair changes nothing:

1. every target row whose key differs (extra in target, duplicate key, value mismatch) is
   deleted: the MERGE source holds one *delete marker* per differing key, matched on the key;
2. in the same MERGE, the source rows of the keys that are missing in target, mismatched or
   duplicated are inserted: they carry an operation flag that never matches, so they land in
   ``WHEN NOT MATCHED ... INSERT``;
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
from lakeshift.spark import col, sql_name
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
    """Apply the repair for ``result`` to the Delta target in one MERGE (one commit).

    Returns:
        ``keys`` repaired, target rows ``deleted_rows`` and source rows ``inserted_rows``.

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
    rtypes = {f.name: f.dataType for f in right.schema.fields}
    target_cols = [c for c in right.columns if c in left.columns]
    knames = [f"__lk{j}_{tag}" for j in range(len(options.keys))]

    diff = result.mismatches()
    todo = diff.select(
        "class",
        *[col("key_canonical", k).alias(n) for k, n in zip(options.keys, knames, strict=True)],
    ).localCheckpoint(eager=True)  # fixed before the target changes

    def target_cond(alias_src: str) -> Column:
        conds = []
        for k, n in zip(options.keys, knames, strict=True):
            plan = plans[k]
            tkey = canonical(
                f"t.{sql_name(k)}", _typ(plan.right_type), plan, options, plan.right_char
            )
            conds.append(F.expr(tkey).eqNullSafe(col(alias_src, n)))
        return reduce(lambda a, b: a & b, conds)

    op = f"__op_{tag}"
    counts = {"keys": 0, "deleted_rows": 0, "inserted_rows": 0}
    try:
        markers = (
            todo.select(*knames)
            .distinct()
            .select(
                *[F.lit(None).cast(rtypes[c]).alias(c) for c in target_cols],
                *knames,
                F.lit("d").alias(op),
            )
        )
        upsert_keys = todo.filter(
            F.col("class").isin("missing_in_target", "value_mismatch", "duplicate_key")
        ).select(*knames)
        key_exprs = [
            F.expr(
                canonical(
                    sql_name(k), _typ(plans[k].left_type), plans[k], options, plans[k].left_char
                )
            ).alias(n)
            for k, n in zip(options.keys, knames, strict=True)
        ]
        inserts = (
            left.select(*[col(c).cast(rtypes[c]).alias(c) for c in target_cols], *key_exprs)
            .join(upsert_keys.distinct(), knames, "left_semi")
            .withColumn(op, F.lit("i"))
        )
        source = markers.unionByName(inserts)
        counts["keys"] = todo.select(*knames).distinct().count()
        if counts["keys"]:
            values: dict[str, str | Column] = {sql_name(c): col("s", c) for c in target_cols}
            metrics = (
                target.alias("t")
                .merge(source.alias("s"), target_cond("s") & (F.col(f"s.{op}") == F.lit("d")))
                .whenMatchedDelete()
                .whenNotMatchedInsert(condition=F.col(f"s.{op}") == F.lit("i"), values=values)
                .execute()
            )
            row = metrics.first() if metrics is not None else None
            if row is not None:
                counts["deleted_rows"] = int(row["num_deleted_rows"])
                counts["inserted_rows"] = int(row["num_inserted_rows"])
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
