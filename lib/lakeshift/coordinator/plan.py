"""The plan file: which tables to move, with which steps, in which order.

A plan (YAML, loaded with :func:`lakeshift.config.load_model`, so ``${ds}`` date macros and
``${env:NAME}`` work) lists tables, the job kinds each needs in order (a load step such as
``copy`` or ``transform``, then ``sync``, then ``validate``), per-table options and validation
templates, priorities and dependencies. :func:`load_plan` resolves it into :class:`Plan`: globs
expanded, defaults applied, arguments checked, the dependency DAG verified acyclic and layered.

Example plan::

    name: sales
    defaults: {steps: [copy, validate], format: delta}
    validations: {by_id: {keys: [id]}}
    tables:
      - {name: customers, source: /lake/raw/customers, target: /lake/delta/customers,
         validation: by_id, priority: 5}
      - {name: orders, source: "/lake/raw/orders/day=${ds}", target: /lake/delta/orders,
         keys: [order_id], depends_on: [customers]}
"""

from __future__ import annotations

import datetime as dt
import glob
import heapq
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from lakeshift.config import StrictModel, load_model, parse_size
from lakeshift.coordinator.jobs import JOB_KINDS, PHASE_ORDER, JobKind, render_args
from lakeshift.coordinator.jobs import spec as job_spec
from lakeshift.errors import ConfigError

DEFAULT_TRANSIENT = [
    r"Connection refused",
    r"Connection reset",
    r"timed? ?out",
    r"TimeoutException",
    r"ExecutorLostFailure",
    r"Lost executor",
    r"SparkException: Job aborted due to stage failure",
    r"Could not connect",
    r"Temporary failure",
    r"Throttl",
    r"SlowDown",
    r"503 Service Unavailable",
    r"Too many connections",
    r"OutOfMemoryError",
    r"killed by signal",
    r"job process lost",
]
DEFAULT_PERMANENT = [
    r"AnalysisException",
    r"PATH_NOT_FOUND",
    r"Path does not exist",
    r"ConfigError",
    r"UsageError",
    r"No such file or directory",
    r"ModuleNotFoundError",
    r"SyntaxError",
    r"Permission denied",
    r"AccessDenied",
    r"mismatch",
]


class RetryPolicy(StrictModel):
    """Retries, backoff and timeouts.

    Attributes:
        max_attempts: attempts per step, the first included.
        backoff_s: wait before the first retry; multiplied by ``backoff_factor`` each time.
        backoff_factor: growth of the wait.
        backoff_max_s: the longest wait.
        submit_timeout_s: a job still not running after this long is cancelled and retried.
        job_timeout_s: a job running longer than this is cancelled and retried.
        transient_patterns: regular expressions in a failed job's error text that mean "retry".
        permanent_patterns: ones that mean "do not retry" (checked first).
    """

    max_attempts: int = Field(default=3, ge=1)
    backoff_s: float = Field(default=10.0, ge=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    backoff_max_s: float = Field(default=600.0, ge=0)
    submit_timeout_s: float = Field(default=1800.0, gt=0)
    job_timeout_s: float = Field(default=7 * 86400.0, gt=0)
    transient_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_TRANSIENT))
    permanent_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_PERMANENT))

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` ≥ 1 failed so far)."""
        return float(
            min(self.backoff_max_s, self.backoff_s * self.backoff_factor ** max(0, attempt - 1))
        )


class StepSpec(StrictModel):
    """A step with its own arguments (or, for ``script``, its own job file).

    Attributes:
        kind: a job kind from :data:`lakeshift.coordinator.jobs.JOB_KINDS`.
        file: the job file for ``script`` steps (relative to the project root or absolute).
        phase: the phase of a ``script`` step (``load``, ``sync`` or ``validate``).
        args: arguments; for kinds other than ``script`` they are appended to the kind's own.
    """

    kind: str
    file: str | None = None
    phase: str | None = None
    args: list[str] = Field(default_factory=list)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in JOB_KINDS:
            raise ValueError(f"expected one of {', '.join(JOB_KINDS)}, found {value!r}")
        return value


class ValidationTemplate(StrictModel):
    """Validation settings shared by several tables.

    Attributes:
        keys: key columns passed to ``lakeshift validate --keys``.
        args: further ``validate`` arguments (e.g. tolerances).
    """

    keys: list[str] = Field(min_length=1)
    args: list[str] = Field(default_factory=list)


def _default_steps() -> list[str | StepSpec]:
    return ["copy", "validate"]


class PlanDefaults(StrictModel):
    """Values every table inherits unless it sets its own."""

    steps: list[str | StepSpec] = Field(default_factory=_default_steps)
    format: str = "delta"
    source_format: str | None = None
    priority: int = 0
    cluster: str | None = None
    validation: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class TableSpec(StrictModel):
    """One table (or collection, or path) of the plan.

    Attributes:
        name: unique name; with ``expand`` the prefix of each expanded table's name.
        source: where the data is read from (globs allowed with ``expand``).
        target: where it goes; may use ``{stem}`` (the matched file or folder name) with ``expand``.
        expand: one table per match of the ``source`` glob.
        steps: the job kinds in order (default: the plan's).
        format: target format passed to ``copy``.
        source_format: source format (``parquet``, ``csv`` …): ``copy --source-format`` and the
            ``FORMAT:`` prefix of the source in ``validate``.
        keys: key columns for validation.
        validation: the name of a validation template.
        priority: higher runs first among ready tables.
        depends_on: tables (or expanded groups) that must be DONE first.
        size: estimated size (``10GB``); default the total size of local source files.
        cluster: pin the table to one cluster profile.
        options: further values for argument placeholders.
    """

    name: str = Field(min_length=1)
    source: str | None = None
    target: str | None = None
    expand: bool = False
    steps: list[str | StepSpec] | None = None
    format: str | None = None
    source_format: str | None = None
    keys: list[str] = Field(default_factory=list)
    validation: str | None = None
    priority: int | None = None
    depends_on: list[str] = Field(default_factory=list)
    size: str | int | None = None
    cluster: str | None = None
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("size")
    @classmethod
    def _size_ok(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_size(value)
        return value


class PlanConfig(StrictModel):
    """The plan file's top level.

    Attributes:
        name: the run's name (default: the file's stem); also the default ``run_id``.
        clusters: path of the cluster profiles file (relative to the plan).
        defaults: values every table inherits.
        validations: named validation templates.
        tables: the tables.
    """

    name: str | None = None
    clusters: str | None = None
    defaults: PlanDefaults = Field(default_factory=PlanDefaults)
    validations: dict[str, ValidationTemplate] = Field(default_factory=dict)
    tables: list[TableSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Step:
    """A resolved step: what to submit (arguments still hold job placeholders)."""

    kind: str
    phase: str
    file: str
    args: tuple[str, ...]
    exit1_permanent: bool


@dataclass
class PlanTable:
    """A resolved table of the plan."""

    name: str
    steps: list[Step]
    values: dict[str, str]
    priority: int
    size_bytes: int
    cluster: str | None
    depends_on: list[str]
    retry: RetryPolicy
    layer: int = 0
    height: int = 0
    dependents: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """A resolved plan: tables by name, in topological order."""

    name: str
    path: Path | None
    clusters_path: Path | None
    tables: dict[str, PlanTable]
    order: list[str]

    @property
    def layers(self) -> int:
        """Number of dependency layers."""
        return 1 + max((t.layer for t in self.tables.values()), default=-1)


# placeholders filled per job at submit time
JOB_PLACEHOLDERS = {"run_id", "result", "token", "attempt", "state_dir"}


def _local_size(source: str | None) -> int:
    if not source or ("://" in source and not source.startswith("file://")):
        return 0
    path = source.removeprefix("file://")
    total = 0
    for match in glob.glob(path):
        if os.path.isfile(match):
            total += os.path.getsize(match)
        for root, _, files in os.walk(match):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(root, f))
                except OSError:
                    continue
    return total


def _resolve_steps(
    raw: Iterable[str | StepSpec], spec: TableSpec, cfg: PlanConfig, where: str
) -> list[Step]:
    steps: list[Step] = []
    for item in raw:
        if isinstance(item, str) and item not in JOB_KINDS:
            raise ConfigError(
                f"{where}: table {spec.name}: steps: expected one of {', '.join(JOB_KINDS)}, "
                f"found {item!r}"
            )
        step = StepSpec(kind=item) if isinstance(item, str) else item
        kind: JobKind = JOB_KINDS[step.kind]
        phase = step.phase or kind.phase
        if phase not in PHASE_ORDER:
            raise ConfigError(
                f"{where}: table {spec.name}: step phase {phase!r} is not one of "
                f"load, sync, validate"
            )
        if kind.file is None:
            if not step.file:
                raise ConfigError(f"{where}: table {spec.name}: a script step needs `file`")
            file, args = step.file, tuple(step.args)
        else:
            file, args = step.file or kind.file, kind.args + tuple(step.args)
            source_format = spec.source_format or cfg.defaults.source_format
            if kind.name == "copy" and source_format:
                args = (*args, "--source-format", source_format)
        if kind.name == "validate":
            template_name = spec.validation or cfg.defaults.validation
            if template_name:
                if template_name not in cfg.validations:
                    raise ConfigError(
                        f"{where}: table {spec.name}: validation template {template_name!r} not "
                        f"found (known: {', '.join(sorted(cfg.validations)) or 'none'})"
                    )
                args = args + tuple(cfg.validations[template_name].args)
        steps.append(Step(kind.name, phase, file, args, kind.exit1_permanent))
    phases = [PHASE_ORDER[s.phase] for s in steps]
    if not steps:
        raise ConfigError(f"{where}: table {spec.name}: steps: expected at least one step")
    if phases != sorted(phases) or phases.count(0) > 1 or (0 in phases and phases[0] != 0):
        raise ConfigError(
            f"{where}: table {spec.name}: steps must run load (copy/transform/files), then sync, "
            f"then validate; found {[s.kind for s in steps]}"
        )
    return steps


def _expand(spec: TableSpec) -> list[tuple[str, str | None, dict[str, str]]]:
    """``(name, source, extra values)`` for each table a spec stands for."""
    if not spec.expand:
        return [(spec.name, spec.source, {})]
    if not spec.source:
        raise ConfigError(f"table {spec.name}: expand needs a source glob")
    matches = sorted(glob.glob(spec.source.removeprefix("file://")))
    out: list[tuple[str, str | None, dict[str, str]]] = []
    for m in matches:
        stem = Path(m).name.split(".")[0] or Path(m).name
        out.append((f"{spec.name}_{stem}", m, {"stem": stem}))
    return out


def resolve_plan(cfg: PlanConfig, path: Path | None = None) -> Plan:
    """Resolve a validated :class:`PlanConfig` into a :class:`Plan`.

    Raises:
        ConfigError: duplicate names, unknown dependencies, bad steps or a dependency cycle.
    """
    where = str(path) if path else "plan"
    tables: dict[str, PlanTable] = {}
    groups: dict[str, list[str]] = {}
    for spec in cfg.tables:
        keys = list(spec.keys)
        template_name = spec.validation or cfg.defaults.validation
        if not keys and template_name and template_name in cfg.validations:
            keys = list(cfg.validations[template_name].keys)
        steps = _resolve_steps(spec.steps or cfg.defaults.steps, spec, cfg, where)
        members = _expand(spec)
        groups.setdefault(spec.name, [])
        for name, source, extra in members:
            if name in tables:
                raise ConfigError(f"{where}: tables: duplicate table name {name!r}")
            values: dict[str, str] = {**cfg.defaults.options, **spec.options, **extra}
            values["table"] = name
            values["format"] = spec.format or cfg.defaults.format
            source_format = spec.source_format or cfg.defaults.source_format
            if source is not None:
                values["source"] = source
                values["source_spec"] = job_spec(source_format, source)
            if spec.target is not None:
                values["target"] = spec.target.replace("{stem}", extra.get("stem", name))
                values["target_spec"] = job_spec(values["format"], values["target"])
            if keys:
                values["keys"] = ",".join(keys)
            probe = {**values, **{k: f"<{k}>" for k in JOB_PLACEHOLDERS}}
            for step in steps:
                render_args(
                    step.args, probe, f"{where}: table {name}"
                )  # unknown placeholders fail at load time
            size = parse_size(spec.size) if spec.size is not None else _local_size(source)
            tables[name] = PlanTable(
                name=name,
                steps=steps,
                values=values,
                priority=spec.priority if spec.priority is not None else cfg.defaults.priority,
                size_bytes=size,
                cluster=spec.cluster or cfg.defaults.cluster,
                depends_on=list(spec.depends_on),
                retry=cfg.defaults.retry,
            )
            groups[spec.name].append(name)
    # dependencies may name a table or an expanded group
    for t in tables.values():
        deps: list[str] = []
        for d in t.depends_on:
            if d in groups:
                deps.extend(groups[d])
            elif d in tables:
                deps.append(d)
            else:
                raise ConfigError(f"{where}: table {t.name}: depends_on: unknown table {d!r}")
        t.depends_on = sorted(set(deps))
    order = topological_order(tables, where)
    name = cfg.name or (path.stem if path else "plan")
    clusters_path = None
    if cfg.clusters:
        clusters_path = Path(cfg.clusters)
        if path is not None and not clusters_path.is_absolute():
            clusters_path = path.parent / clusters_path
    return Plan(name=name, path=path, clusters_path=clusters_path, tables=tables, order=order)


def topological_order(tables: dict[str, PlanTable], where: str = "plan") -> list[str]:
    """Kahn's algorithm; fills ``layer``, ``height`` and ``dependents``.

    Raises:
        ConfigError: the dependencies have a cycle; the message names the tables on it.
    """
    indeg: dict[str, int] = {}
    for t in tables.values():
        t.dependents = []
    for t in tables.values():
        indeg[t.name] = len(t.depends_on)
        for d in t.depends_on:
            tables[d].dependents.append(t.name)
    heap = [n for n, k in indeg.items() if k == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        n = heapq.heappop(heap)
        order.append(n)
        for m in tables[n].dependents:
            tables[m].layer = max(tables[m].layer, tables[n].layer + 1)
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, m)
    if len(order) != len(tables):
        cycle = _find_cycle(tables, {n for n, k in indeg.items() if k > 0})
        raise ConfigError(f"{where}: depends_on: dependency cycle {' -> '.join(cycle)}")
    for n in reversed(order):
        t = tables[n]
        t.height = 1 + max((tables[m].height for m in t.dependents), default=-1)
    return order


def _find_cycle(tables: dict[str, PlanTable], remaining: set[str]) -> list[str]:
    """One cycle among ``remaining`` (iterative walk along dependencies)."""
    start = min(remaining)
    seen: dict[str, int] = {}
    path: list[str] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in tables[node].depends_on if d in remaining)
    cycle = [*path[seen[node] :], node]
    return cycle


def load_plan(path: str | Path, run_date: dt.date | None = None) -> Plan:
    """Load and resolve a plan file.

    Raises:
        ConfigError: the file is invalid (the message names the file and field).
    """
    p = Path(path)
    cfg = load_model(p, PlanConfig, run_date=run_date)
    return resolve_plan(cfg, p)


def plan_from_dict(data: dict[str, Any], name: str = "plan") -> Plan:
    """Resolve a plan given as a dict (tests, benchmarks, programmatic use)."""
    from lakeshift.config.base import validate_model

    return resolve_plan(validate_model(PlanConfig, data, name))
