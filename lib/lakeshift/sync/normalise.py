"""Split a reduced change frame into a parent frame and child tables (array fields)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakeshift.changeframe import DELETED
from lakeshift.spark import col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakeshift.sync.config import ChildSpec


def split_children(
    batch: DataFrame, keys: Sequence[str], children: Sequence[ChildSpec]
) -> tuple[DataFrame, dict[str, DataFrame]]:
    """Parent rows without the child fields, and one frame per child table (pure transform).

    A child frame has the child's key columns (the parent key), ``index_column`` (the element's
    position) and the element's fields (a struct is expanded, a scalar becomes ``value``). Only
    non-deleted parents have children; the apply replaces all children of every applied parent.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StructType

    parent = batch.drop(*[c.field for c in children])
    out: dict[str, DataFrame] = {}
    for spec in children:
        element = batch.schema[spec.field].dataType
        elem_type = element.elementType if isinstance(element, ArrayType) else element
        exploded = batch.where(~F.col(DELETED)).select(
            *[col(k).alias(c) for k, c in zip(keys, spec.key_columns, strict=True)],
            F.posexplode_outer(col(spec.field)).alias(spec.index_column, "__elem"),
        )
        exploded = exploded.where(F.col("__elem").isNotNull())
        if isinstance(elem_type, StructType):
            values = [col("__elem", f.name).alias(f.name) for f in elem_type.fields]
        else:
            values = [F.col("__elem").alias("value")]
        out[spec.table] = exploded.select(*spec.key_columns, spec.index_column, *values)
    return parent, out
