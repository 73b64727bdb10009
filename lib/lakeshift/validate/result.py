"""The result of one table comparison: small facts on the driver, the full diff as a DataFrame."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

JSON_SCHEMA_VERSION = 1
CLASSES = ("missing_in_target", "extra_in_target", "duplicate_key", "value_mismatch")


@dataclass
class SchemaIssue:
    """One schema finding.

    Attributes:
        column: the column (target name).
        issue: ``missing_in_target``, ``extra_in_target``, ``type_changed`` or a lossy mapping:
            ``decimal_scale_lost``, ``decimal_precision_narrowed``, ``numeric_narrowed``,
            ``exactness_lost``, ``timestamp_precision_lost``, ``string_truncation_risk``.
        left_type: the left Spark type (``None`` when missing).
        right_type: the right Spark type (``None`` when missing).
        severity: ``error`` (fails the table) or ``warning``.
    """

    column: str
    issue: str
    left_type: str | None
    right_type: str | None
    severity: str = "warning"


@dataclass
class AggregateCheck:
    """One aggregate compared between sides (count, sum, min, max, nulls, approx distinct).

    Attributes:
        column: the column, or ``*`` for the row count.
        metric: ``count``, ``sum``, ``min``, ``max``, ``nulls`` or ``approx_distinct``.
        left: the left value (as text for exactness).
        right: the right value.
        passed: whether the values agree within tolerance.
    """

    column: str
    metric: str
    left: str | None
    right: str | None
    passed: bool


@dataclass
class ExpectationResult:
    """One great-expectations expectation run on the target table."""

    expectation: str
    column: str | None
    success: bool
    details: str = ""


@dataclass
class ValidationResult:
    """Outcome of comparing one left (source) table with one right (target) table.

    Attributes:
        table: the table's name in reports.
        left: secret-free description of the left source.
        right: secret-free description of the right source.
        keys: the key columns (empty: keyless).
        passed: the verdict.
        left_rows: rows on the left (after filters).
        right_rows: rows on the right (after filters).
        counts: differences per class (see :data:`CLASSES`).
        differing_rows: rows that differ (the deviation numerator).
        deviation: ``differing_rows / max(left_rows, 1)``.
        threshold: the allowed deviation.
        column_mismatches: value mismatches per column.
        schema: schema findings.
        aggregates: aggregate checks (empty when not run).
        expectations: great-expectations results (empty when not run).
        samples: up to ``samples`` rows of the diff as plain dicts.
        buckets: number of key-hash buckets.
        mismatched_buckets: buckets whose fingerprints differed.
        left_fingerprint: order-independent table fingerprint of the left side (hex).
        right_fingerprint: same for the right side.
        partitions: per-partition fingerprint verdicts (when ``partition_by`` is set).
        run_id: the id of the validation run.
        started: UTC start time (ISO 8601).
        seconds: wall time.
        error: an error message when the comparison could not run.
    """

    table: str
    left: str
    right: str
    keys: list[str]
    passed: bool = False
    left_rows: int = 0
    right_rows: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    differing_rows: int = 0
    deviation: float = 0.0
    threshold: float = 0.0
    column_mismatches: dict[str, int] = field(default_factory=dict)
    schema: list[SchemaIssue] = field(default_factory=list)
    aggregates: list[AggregateCheck] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    buckets: int = 0
    mismatched_buckets: int = 0
    left_fingerprint: str = ""
    right_fingerprint: str = ""
    partitions: list[dict[str, Any]] = field(default_factory=list)
    run_id: str = ""
    started: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())
    seconds: float = 0.0
    error: str | None = None
    _mismatches: DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> str:
        """``pass``, ``fail`` or ``error``."""
        if self.error:
            return "error"
        return "pass" if self.passed else "fail"

    def release(self) -> None:
        """Drop the cached mismatch DataFrame from executor memory/disk (after reports are out).

        The diff is persisted so the summary, the samples and the reports read it once; a run
        over many tables calls this when it is done with each result.
        """
        if self._mismatches is not None:
            self._mismatches.unpersist()

    def mismatches(self) -> DataFrame:
        """Every difference as a DataFrame (computed on the cluster; nothing is sampled).

        Columns: ``key`` (JSON of the key values), the key columns (as text), ``class``,
        ``columns`` (differing column names), ``left_count``, ``right_count``, ``left`` and
        ``right`` (maps column -> value text of the differing columns, or of the whole row for
        missing/extra rows). Empty (no rows) when the tables match.

        Raises:
            RuntimeError: the comparison did not run (see :attr:`error`).
        """
        if self._mismatches is None:
            raise RuntimeError(f"{self.table}: no mismatch DataFrame ({self.error or 'not run'})")
        return self._mismatches

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of this table (schema documented in ``docs/validate.md``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = [asdict(v) if is_dataclass(v) else v for v in value]  # type: ignore[arg-type]
            out[f.name] = value
        out["verdict"] = self.verdict
        out["schema_version"] = JSON_SCHEMA_VERSION
        return out

    def summary(self) -> str:
        """A few lines for a terminal or a notebook."""
        lines = [
            f"{self.table}: {self.verdict.upper()}  ({self.left} -> {self.right})",
            f"  rows: left {self.left_rows:,}  right {self.right_rows:,}  "
            f"differing {self.differing_rows:,}  deviation {self.deviation:.6g} "
            f"(threshold {self.threshold:g})",
            "  " + "  ".join(f"{k} {v:,}" for k, v in self.counts.items()),
        ]
        if self.column_mismatches:
            cols = ", ".join(f"{k} {v:,}" for k, v in sorted(self.column_mismatches.items()))
            lines.append(f"  columns: {cols}")
        errors = [s for s in self.schema if s.severity == "error"]
        warns = [s for s in self.schema if s.severity != "error"]
        for s in errors + warns:
            lines.append(
                f"  schema {s.severity}: {s.column}: {s.issue} ({s.left_type} -> {s.right_type})"
            )
        failed = [a for a in self.aggregates if not a.passed]
        for a in failed:
            lines.append(f"  aggregate: {a.column} {a.metric}: {a.left} != {a.right}")
        for e in self.expectations:
            if not e.success:
                lines.append(f"  expectation failed: {e.expectation} {e.column or ''}".rstrip())
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from lakeshift.validate.render import render_table_html

        return render_table_html(self)

    def __str__(self) -> str:
        return self.summary()
