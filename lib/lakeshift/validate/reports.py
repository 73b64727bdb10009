"""Writers of validation reports: JSON, HTML, JUnit XML files and Delta result tables.

The Delta results are two tables under one base path:

* ``<base>/summary`` — one row per validated table and run (verdict, counts, deviation);
* ``<base>/details`` — one row per difference and column: ``run_id``, ``table_name``, ``key``
  (JSON), ``class``, ``column``, ``left_value``, ``right_value``, ``left_count``,
  ``right_count``, plus ``key_canonical_json`` for ``lakeshift repair``.

Writes are idempotent per run: ``replaceWhere run_id = …`` replaces a re-run's rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lakeshift.errors import SinkError
from lakeshift.validate.render import render_html, render_junit, run_document

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakeshift.validate.result import ValidationResult

log = logging.getLogger(__name__)


def _write_text(path: str, text: str) -> None:
    try:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SinkError(f"{path}: cannot write report: {exc.strerror or exc}") from exc


def write_json(results: Sequence[ValidationResult], path: str) -> None:
    """Write the run's JSON document (schema in ``docs/validate.md``)."""
    _write_text(path, json.dumps(run_document(results), indent=2, default=str) + "\n")


def write_html(results: Sequence[ValidationResult], path: str) -> None:
    """Write the self-contained HTML report."""
    _write_text(path, render_html(results))


def write_junit(results: Sequence[ValidationResult], path: str) -> None:
    """Write JUnit XML (one testcase per table)."""
    _write_text(path, render_junit(results))


def details_frame(result: ValidationResult) -> DataFrame:
    """The details rows of one result: one row per (difference, column)."""
    from pyspark.sql import functions as F

    diff = result.mismatches()
    cols = F.when(F.size("columns") > 0, F.col("columns")).otherwise(F.array(F.lit(None)))
    exploded = diff.select("*", F.explode(cols.cast("array<string>")).alias("column"))
    whole = F.when(F.col("column").isNull(), F.to_json(F.col("left")))
    whole_r = F.when(F.col("column").isNull(), F.to_json(F.col("right")))
    return exploded.select(
        F.lit(result.run_id).alias("run_id"),
        F.lit(result.table).alias("table_name"),
        F.col("key"),
        F.col("class"),
        F.col("column"),
        F.coalesce(F.element_at("left", F.col("column")), whole).alias("left_value"),
        F.coalesce(F.element_at("right", F.col("column")), whole_r).alias("right_value"),
        F.col("left_count"),
        F.col("right_count"),
        F.to_json("key_canonical").alias("key_canonical_json"),
    )


def write_delta_results(
    spark: SparkSession, results: Sequence[ValidationResult], base: str
) -> None:
    """Append the summary and details of ``results`` to Delta tables under ``base``.

    Raises:
        SinkError: a table cannot be written.
    """
    from pyspark.sql import functions as F

    if not results:
        return
    path = base[len("delta:") :] if base.startswith("delta:") else base
    run_id = results[0].run_id
    summary_rows = [
        (
            r.run_id,
            r.table,
            r.left,
            r.right,
            r.verdict,
            r.passed,
            r.left_rows,
            r.right_rows,
            r.counts["missing_in_target"],
            r.counts["extra_in_target"],
            r.counts["duplicate_key"],
            r.counts["value_mismatch"],
            r.differing_rows,
            float(r.deviation),
            float(r.threshold),
            json.dumps(r.to_dict(), default=str),
            r.started,
        )
        for r in results
    ]
    summary = spark.createDataFrame(
        summary_rows,
        "run_id string, table_name string, source string, target string, verdict string, "
        "passed boolean, source_rows bigint, target_rows bigint, missing_in_target bigint, "
        "extra_in_target bigint, duplicate_key bigint, value_mismatch bigint, "
        "differing_rows bigint, deviation double, threshold double, report_json string, "
        "started string",
    )
    frames = [details_frame(r) for r in results if r.error is None and r._mismatches is not None]
    try:
        summary.write.format("delta").mode("overwrite").option(
            "replaceWhere", f"run_id = '{run_id}'"
        ).save(f"{path}/summary")
        if frames:
            details = frames[0]
            for f in frames[1:]:
                details = details.unionByName(f)
            details = details.withColumn("run_id", F.lit(run_id))
            details.write.format("delta").mode("overwrite").option(
                "replaceWhere", f"run_id = '{run_id}'"
            ).save(f"{path}/details")
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SinkError(f"{path}: cannot write validation results: {first}") from exc
    log.info("wrote validation results of run %s to %s", run_id, path)
