"""Library entry points: :func:`validate_tables` (sources) and :func:`compare` (DataFrames)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lakeshift.errors import LakeshiftError
from lakeshift.validate.engine import compare_dataframes
from lakeshift.validate.options import ColumnRule, ValidateOptions, parse_tolerance
from lakeshift.validate.result import ValidationResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakeshift.sources.base import Source


def _source(spec: Source | str, keys: Sequence[str]) -> Source:
    from lakeshift.sources.factory import from_spec

    if not isinstance(spec, str):
        return spec
    hint = {"partition_hint": ",".join(keys)} if spec.startswith("jdbc:") and keys else {}
    return from_spec(spec, hint)


def validate_tables(
    spark: SparkSession,
    left_source: Source | str,
    right_source: Source | str,
    options: ValidateOptions | None = None,
    *,
    table: str | None = None,
    run_id: str | None = None,
) -> ValidationResult:
    """Compare a source table with a target table and return the verdict and every difference.

    This is the function other components (copy, coordinator, sync) call after moving a table.

    Args:
        spark: the session.
        left_source: the source (a :class:`~lakeshift.sources.base.Source` or a spec string
            such as ``delta:/lake/orders`` or ``jdbc:postgresql://h:5432/db?table=public.t``).
        right_source: the target, same forms.
        options: keys, mapping, tolerances, threshold (default: keyless, exact).
        table: the name used in reports (default: the right source's description).
        run_id: an id shared by the tables of one run (default: a new uuid).

    Returns:
        The :class:`ValidationResult`; ``result.mismatches()`` is the full diff DataFrame.

    Raises:
        UsageError: bad keys or mapping; SourceError: a side cannot be read.

    Example:
        >>> opts = ValidateOptions(keys=["id"], threshold=0.001)
        >>> res = validate_tables(spark, "parquet:/src/t", "delta:/lake/t", opts)  # doctest: +SKIP
        >>> res.passed  # doctest: +SKIP
        True
    """
    opts = options or ValidateOptions()
    left = _source(left_source, opts.keys)
    right = _source(right_source, opts.keys)
    return compare_dataframes(
        spark,
        left.read(spark),
        right.read(spark),
        opts,
        table=table or right.describe(),
        left_name=left.describe(),
        right_name=right.describe(),
        run_id=run_id,
    )


def _rules(tolerances: Mapping[str, str | ColumnRule | Mapping[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col, rule in (tolerances or {}).items():
        if isinstance(rule, str):
            try:
                out[col] = parse_tolerance(rule)
            except ValueError as exc:
                raise LakeshiftError(f"tolerance for {col}: {exc}") from exc
        elif isinstance(rule, ColumnRule):
            out[col] = rule
        else:
            out[col] = ColumnRule.model_validate(dict(rule))
    return out


def compare(
    left_df: DataFrame,
    right_df: DataFrame,
    keys: Sequence[str] = (),
    tolerances: Mapping[str, str | ColumnRule | Mapping[str, Any]] | None = None,
    threshold: float = 0.0,
    **options: Any,
) -> ValidationResult:
    """Compare two DataFrames in a notebook.

    Args:
        left_df: the source DataFrame.
        right_df: the target DataFrame.
        keys: key columns; empty compares whole rows as multisets.
        tolerances: column -> rule, e.g. ``{"amount": "abs:0.01", "ts": "skew:1ms",
            "name": "trim+casefold"}`` (see :func:`~lakeshift.validate.options.parse_tolerance`).
        threshold: allowed deviation rate.
        **options: ``table`` (the name in reports) or any further :class:`ValidateOptions`
            field (``rename``, ``exclude``, ``filter``, ``decimal_scale``, ``samples``…).

    Returns:
        A :class:`ValidationResult` with ``.passed``, ``.summary()``, ``.mismatches()`` and an
        HTML view in notebooks.

    Example:
        >>> res = compare(src, dst, keys=["id"], tolerances={"x": "abs:0.01"})  # doctest: +SKIP
        >>> res.passed, res.mismatches().count()  # doctest: +SKIP
        (False, 3)
    """
    table = str(options.pop("table", "compare"))
    opts = ValidateOptions.model_validate(
        {"keys": list(keys), "threshold": threshold, "columns": _rules(tolerances), **options}
    )
    spark = left_df.sparkSession
    return compare_dataframes(spark, left_df, right_df, opts, table=table)
