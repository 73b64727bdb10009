"""The plan file: which tables to move, how, in which order, and when to cut over.

A plan (YAML, loaded with :func:`lakeshift.config.load_model`, so ``${ds}`` date macros and
``${env:NAME}`` work) lists tables and, per table or in ``defaults``, its bulk ``load`` (``copy``,
``files``, ``transform`` or a ``script``), an optional ``sync`` config (which adds the start point
and the catch-up rounds), a ``validation`` gate (a template of ``validations``), the ``cutover``
(metastore switch, path routing), priorities and dependencies. :func:`load_plan` resolves it into
:class:`Plan`: globs expanded, defaults applied, every job's command line parsed with the real
``lakeshift`` parser, the dependency DAG verified acyclic and layered.

Example plan::

    name: sales
    defaults: {load: copy, format: delta, validation: by_id}
    validations: {by_id: {keys: [id], max_deviation: 0.001, repair_rounds: 2}}
    tables:
      - {name: customers, source: /lake/raw/customers, target: /lake/delta/customers,
         priority: 5, cutover: {catalog: sales.customers}}
      - {name: orders, source: /lake/delta/orders, source_format: delta,
         target: /lake/delta/orders, keys: [order_id], sync: sync_orders.yaml,
         depends_on: [customers]}
"""

from __future__ import annotations

import datetime as dt
import glob
import heapq
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from lakeshift.config import StrictModel, load_model, parse_size
from lakeshift.coordinator.jobs import (
    JOB_PLACEHOLDERS,
    KIND_TEXT,
    JobSpec,
    model_from,
    render_args,
)
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


class LoadSpec(StrictModel):
    """The bulk load of a table.

    Attributes:
        kind: ``copy`` (lake table → Delta/Parquet), ``files`` (byte copy), ``transform``
            (MongoDB → SQL, needs ``config``), ``script`` (a job file of your own) or ``none``.
        config: the command's YAML (``transform``: the transform config).
        file: the job file of a ``script`` load.
        args: further arguments; parsed with the real ``lakeshift`` parser when the plan loads
            (``script``: a template with ``{placeholders}``).
    """

    kind: Literal["copy", "files", "transform", "script", "none"] = "copy"
    config: str | None = None
    file: str | None = None
    args: list[str] = Field(default_factory=list)


class CatchUp(StrictModel):
    """How a table catches up with its live source after the bulk load.

    Attributes:
        max_lag_seconds: the lag (age of the oldest change not yet applied) that counts as
            caught up.
        max_lag_events: the events (files, versions) left that count as caught up.
        max_rounds: rounds before the table fails as "not converging".
        interval_s: wait between rounds that did not reach the threshold.
        dual_run: keep syncing every ``dual_run_interval_s`` while READY, until approved.
        dual_run_interval_s: the dual run's schedule.
    """

    max_lag_seconds: float = Field(default=60.0, ge=0)
    max_lag_events: int = Field(default=0, ge=0)
    max_rounds: int = Field(default=20, ge=1)
    interval_s: float = Field(default=10.0, ge=0)
    dual_run: bool = False
    dual_run_interval_s: float = Field(default=300.0, gt=0)


class ValidationTemplate(StrictModel):
    """Validation settings shared by several tables.

    Attributes:
        keys: key columns passed to ``lakeshift validate --keys``.
        max_deviation: the gate: the deviation rate a table may have (``0.001``: under 0.1%);
            passed as ``validate --threshold``. Needs keys.
        repair_rounds: failed gates repaired (``lakeshift repair``) and re-validated this often
            before the table fails.
        args: further ``validate`` arguments (tolerances, casts …), parsed when the plan loads.
    """

    keys: list[str] = Field(default_factory=list)
    max_deviation: float | None = Field(default=None, ge=0, le=1)
    repair_rounds: int = Field(default=0, ge=0)
    args: list[str] = Field(default_factory=list)


class Cutover(StrictModel):
    """What the cut-over of a table does, after the approval.

    Attributes:
        catalog: the metastore table (``db.name``) switched to the target (old one kept for
            ``lakeshift rollback``).
        format: its format in the metastore (default: the table's target format).
        route: route readers of the old path to the target (Hadoop ViewFs overload scheme);
            only for targets in the source's own format (a file tree, Parquet → Parquet).
        final_sync: one more ``sync --once`` right before the switch.
        final_validate: one more validation right before the switch.
        finalize: for a table synced into Delta, ``lakeshift sync finalize`` after the final
            validation: tombstones deleted and the hidden version columns dropped, so readers
            of the switched table see exactly the live rows.
    """

    catalog: str | None = None
    format: Literal["delta", "parquet"] | None = None
    route: bool = False
    final_sync: bool = True
    final_validate: bool = True
    finalize: bool = True


class PlanDefaults(StrictModel):
    """Values every table inherits unless it sets its own."""

    load: Literal["copy", "files", "transform", "script", "none"] | LoadSpec = "copy"
    format: str = "delta"
    source_format: str | None = None
    priority: int = 0
    cluster: str | None = None
    validation: str | None = None
    catch_up: CatchUp = Field(default_factory=CatchUp)
    auto_approve: bool = False
    cutover: Cutover = Field(default_factory=Cutover)
    metastore: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class TableSpec(StrictModel):
    """One table (or collection, or file tree) of the plan.

    Attributes:
        name: unique name; with ``expand`` the prefix of each expanded table's name.
        source: where the data is read from (globs allowed with ``expand``).
        target: where it goes; may use ``{stem}`` (the matched file or folder name) with ``expand``.
        expand: one table per match of the ``source`` glob.
        load: the bulk load (default: the plan's).
        sync: a sync YAML (``lakeshift sync``) for the start point and the catch-up; relative
            paths are relative to the plan file.
        catch_up: catch-up thresholds (default: the plan's).
        format: target format passed to ``copy``.
        source_format: source format (``parquet``, ``csv`` …).
        keys: key columns for validation.
        validation: the name of a validation template (``none``: no validation).
        validate_left: the validation's source spec (default ``SOURCE_FORMAT:SOURCE``).
        validate_right: the validation's target spec (default ``FORMAT:TARGET``).
        auto_approve: cut over without waiting for ``lakeshift approve``.
        cutover: what the cut-over does (default: the plan's).
        priority: higher runs first among ready tables.
        depends_on: tables (or expanded groups) that must be DONE first.
        size: estimated size (``10GB``); default the total size of local source files.
        cluster: pin the table to one cluster profile.
        options: further values for a script load's placeholders.
    """

    name: str = Field(min_length=1)
    source: str | None = None
    target: str | None = None
    expand: bool = False
    load: Literal["copy", "files", "transform", "script", "none"] | LoadSpec | None = None
    sync: str | None = None
    catch_up: CatchUp | None = None
    format: str | None = None
    source_format: str | None = None
    keys: list[str] = Field(default_factory=list)
    validation: str | None = None
    validate_left: str | None = None
    validate_right: str | None = None
    auto_approve: bool | None = None
    cutover: Cutover | None = None
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


@dataclass
class PlanTable:
    """A resolved table of the plan: its lifecycle's jobs and thresholds.

    ``jobs`` maps a job kind (:data:`lakeshift.coordinator.jobs.KIND_TEXT`) to what it submits;
    a phase whose job is missing is skipped (no sync: no START_POINT, no CATCHING_UP).
    """

    name: str
    load_kind: str
    jobs: dict[str, JobSpec]
    values: dict[str, str]
    catch_up: CatchUp
    gate: float | None
    repair_rounds: int
    auto_approve: bool
    route: tuple[str, str] | None
    catalog: str | None
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
    """A resolved plan: tables by name, in topological order, and what ``plan`` warns about."""

    name: str
    path: Path | None
    clusters_path: Path | None
    tables: dict[str, PlanTable]
    order: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        """Number of dependency layers."""
        return 1 + max((t.layer for t in self.tables.values()), default=-1)


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local_size(source: str | None) -> int:
    if not source or not _is_local(source):
        return 0
    total = 0
    for match in glob.glob(source.removeprefix("file://")):
        if os.path.isfile(match):
            total += os.path.getsize(match)
        for root, _, files in os.walk(match):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(root, f))
                except OSError:
                    continue
    return total


def _expand(spec: TableSpec, warnings: list[str]) -> list[tuple[str, str | None, dict[str, str]]]:
    """``(name, source, extra values)`` for each table a spec stands for."""
    if not spec.expand:
        if (
            spec.source
            and _is_local(spec.source)
            and not glob.glob(spec.source.removeprefix("file://"))
        ):
            warnings.append(f"table {spec.name}: source {spec.source} does not exist")
        return [(spec.name, spec.source, {})]
    if not spec.source:
        raise ConfigError(f"table {spec.name}: expand needs a source glob")
    matches = sorted(glob.glob(spec.source.removeprefix("file://")))
    if not matches:
        warnings.append(f"table {spec.name}: expand: {spec.source} matches nothing")
    out: list[tuple[str, str | None, dict[str, str]]] = []
    for m in matches:
        stem = Path(m).name.split(".")[0] or Path(m).name
        out.append((f"{spec.name}_{stem}", m, {"stem": stem}))
    return out


def _plan_path(value: str, base: Path | None) -> str:
    """A path named in the plan, relative to the plan's folder, made absolute."""
    p = Path(value)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve())


def _brace(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _table_jobs(
    name: str,
    *,
    load: LoadSpec,
    values: dict[str, str],
    sync: str | None,
    template: ValidationTemplate | None,
    keys: list[str],
    cut: Cutover,
    metastore: str | None,
    base: Path | None,
    where: str,
) -> dict[str, JobSpec]:
    """Every job of a table's lifecycle, each parsed once with the real ``lakeshift`` parser."""
    from lakeshift.catalog.command import CatalogArgs
    from lakeshift.copy.command import CopyArgs
    from lakeshift.files.command import FilesArgs
    from lakeshift.nosql.command import TransformArgs
    from lakeshift.sync.command import SyncArgs
    from lakeshift.validate.command import RepairArgs, ValidateArgs

    at = f"{where}: table {name}"
    jobs: dict[str, JobSpec] = {}
    source, target = values.get("source"), values.get("target")
    if load.kind in ("copy", "files") and (not source or not target):
        raise ConfigError(f"{at}: a {load.kind} load needs source and target")
    if load.kind == "copy":
        words = ["copy", str(source), str(target), "--format", values["format"], *load.args]
        if values.get("source_format"):
            words += ["--source-format", values["source_format"]]
        jobs["load"] = JobSpec("load", model_from(CopyArgs, [*words, "--no-progress"], at))
    elif load.kind == "files":
        base_words = ["files", str(source), str(target), *load.args, "--no-progress"]
        model = model_from(FilesArgs, base_words, at)
        jobs["load"] = JobSpec("load", model)
        update = model_from(FilesArgs, [*base_words, "--update"], at)
        verify = model_from(FilesArgs, [*base_words, "--verify"], at)
        repair = model_from(FilesArgs, [*base_words, "--verify", "--repair"], at)
        jobs["catch_up"] = JobSpec("catch_up", update, label="files --update")
        jobs["validate"] = JobSpec("validate", verify, exit1_permanent=True, label="files --verify")
        jobs["repair"] = JobSpec("repair", repair, label="files --verify --repair")
    elif load.kind == "transform":
        if not load.config:
            raise ConfigError(f"{at}: a transform load needs `config` (the transform YAML)")
        words = ["transform", "--config", _plan_path(load.config, base), *load.args]
        jobs["load"] = JobSpec("load", model_from(TransformArgs, words, at))
    elif load.kind == "script":
        if not load.file:
            raise ConfigError(f"{at}: a script load needs `file`")
        probe = {**values, **{k: f"<{k}>" for k in JOB_PLACEHOLDERS}}
        render_args(load.args, probe, at)  # unknown placeholders fail at load time
        jobs["load"] = JobSpec("load", file=load.file, template=tuple(load.args), label="script")
    if sync is not None:
        cfg = _plan_path(sync, base)
        from lakeshift.config import load_model
        from lakeshift.sync.config import SyncConfig

        sync_cfg = load_model(cfg, SyncConfig)  # a broken sync file fails the plan, not later
        jobs["start_point"] = JobSpec(
            "start_point", model_from(SyncArgs, ["sync", "start-point", "--config", cfg], at)
        )
        once = model_from(SyncArgs, ["sync", "run", "--config", cfg, "--once"], at)
        jobs["catch_up"] = JobSpec("catch_up", once, label="sync --once")
        jobs["dual_run"] = JobSpec("dual_run", once, label="sync --once")
        if sync_cfg.target.kind == "delta" and cut.finalize:
            jobs["finalize"] = JobSpec(
                "finalize", model_from(SyncArgs, ["sync", "finalize", "--config", cfg], at)
            )
    if template is not None and "validate" not in jobs:
        left = values.get("validate_left") or values.get("source_spec")
        right = values.get("validate_right") or values.get("target_spec")
        if not left or not right:
            raise ConfigError(
                f"{at}: validation needs a source and a target (or validate_left/validate_right)"
            )
        if template.max_deviation is not None and not keys:
            raise ConfigError(
                f"{at}: validation gate max_deviation {template.max_deviation:g} needs key "
                f"columns (keys: or the template's keys:)"
            )
        words = ["validate", left, right, "--name", name, *template.args]
        if keys:
            words += ["--keys", ",".join(keys)]
        if template.max_deviation is not None:
            words += ["--threshold", repr(template.max_deviation)]
        jobs["validate"] = JobSpec(
            "validate", model_from(ValidateArgs, words, at), exit1_permanent=True
        )
        if template.repair_rounds:
            if not keys:
                raise ConfigError(f"{at}: repair_rounds needs key columns")
            jobs["repair"] = JobSpec("repair", model_from(RepairArgs, ["repair", *words[1:]], at))
    if cut.final_sync and "catch_up" in jobs:
        jobs["final_sync"] = JobSpec(
            "final_sync", jobs["catch_up"].model, label=jobs["catch_up"].label
        )
    if cut.final_validate and "validate" in jobs:
        v = jobs["validate"]
        jobs["final_validate"] = JobSpec(
            "final_validate", v.model, exit1_permanent=True, label=v.label
        )
    if cut.catalog:
        if not target:
            raise ConfigError(f"{at}: cutover.catalog needs a target location")
        fmt = cut.format or ("parquet" if values["format"] == "parquet" else "delta")
        common = ["--metastore", metastore] if metastore else []
        switch = ["catalog", "switch", cut.catalog, "--to", target, "--format", fmt, *common]
        jobs["switch"] = JobSpec("switch", model_from(CatalogArgs, switch, at))
        back = ["catalog", "rollback", cut.catalog, *common]
        jobs["rollback"] = JobSpec("rollback", model_from(CatalogArgs, back, at))
    order = list(KIND_TEXT)  # the lifecycle's order
    return dict(sorted(jobs.items(), key=lambda kv: order.index(kv[0])))


def resolve_plan(cfg: PlanConfig, path: Path | None = None) -> Plan:
    """Resolve a validated :class:`PlanConfig` into a :class:`Plan`.

    Raises:
        ConfigError: duplicate names, unknown dependencies or templates, a job line the real
            parser rejects, a gate without keys, or a dependency cycle.
    """
    where = str(path) if path else "plan"
    base = path.parent if path is not None else None
    d = cfg.defaults
    tables: dict[str, PlanTable] = {}
    groups: dict[str, list[str]] = {}
    warnings: list[str] = []
    for spec in cfg.tables:
        raw_load = spec.load if spec.load is not None else d.load
        load = LoadSpec(kind=raw_load) if isinstance(raw_load, str) else raw_load
        template_name = spec.validation if spec.validation is not None else d.validation
        template: ValidationTemplate | None = None
        if template_name and template_name != "none":
            if template_name not in cfg.validations:
                raise ConfigError(
                    f"{where}: table {spec.name}: validation template {template_name!r} not "
                    f"found (known: {', '.join(sorted(cfg.validations)) or 'none'})"
                )
            template = cfg.validations[template_name]
        keys = list(spec.keys) or (list(template.keys) if template else [])
        cut = spec.cutover or d.cutover
        fmt = spec.format or d.format
        source_format = spec.source_format or d.source_format
        groups.setdefault(spec.name, [])
        for name, source, extra in _expand(spec, warnings):
            if name in tables:
                raise ConfigError(f"{where}: tables: duplicate table name {name!r}")
            values: dict[str, str] = {**d.options, **spec.options, **extra}
            values["table"] = name
            values["format"] = fmt
            if source_format:
                values["source_format"] = source_format
            if source is not None:
                values["source"] = source
                values["source_spec"] = job_spec(source_format, source)
            if spec.target is not None:
                values["target"] = spec.target.replace("{stem}", extra.get("stem", name))
                values["target_spec"] = job_spec(fmt, values["target"])
            if keys:
                values["keys"] = ",".join(keys)
            for k in ("validate_left", "validate_right"):
                if getattr(spec, k):
                    values[k] = getattr(spec, k)
            jobs = _table_jobs(
                name,
                load=load,
                values=values,
                sync=spec.sync,
                template=template,
                keys=keys,
                cut=cut,
                metastore=d.metastore,
                base=base,
                where=where,
            )
            route = None
            if cut.route:
                same = load.kind == "files" or (source_format or "") == fmt
                if not same or source is None or "target" not in values:
                    raise ConfigError(
                        f"{where}: table {name}: cutover.route needs a target in the source's "
                        f"own format (a files load, or {fmt} -> {fmt}); readers of the old path "
                        f"would see every file version of a {fmt} table"
                    )
                route = (source, values["target"])
            size = parse_size(spec.size) if spec.size is not None else _local_size(source)
            tables[name] = PlanTable(
                name=name,
                load_kind=load.kind,
                jobs=jobs,
                values=values,
                catch_up=spec.catch_up or d.catch_up,
                gate=template.max_deviation if template else None,
                repair_rounds=template.repair_rounds if template else 0,
                auto_approve=spec.auto_approve if spec.auto_approve is not None else d.auto_approve,
                route=route,
                catalog=cut.catalog,
                priority=spec.priority if spec.priority is not None else d.priority,
                size_bytes=size,
                cluster=spec.cluster or d.cluster,
                depends_on=list(spec.depends_on),
                retry=d.retry,
            )
            groups[spec.name].append(name)
    for t in tables.values():
        deps: list[str] = []
        for dep in t.depends_on:
            if dep in groups:
                deps.extend(groups[dep])
            elif dep in tables:
                deps.append(dep)
            else:
                raise ConfigError(f"{where}: table {t.name}: depends_on: unknown table {dep!r}")
        t.depends_on = sorted(set(deps))
    order = topological_order(tables, where)
    name = cfg.name or (path.stem if path else "plan")
    clusters_path = None
    if cfg.clusters:
        clusters_path = Path(cfg.clusters)
        if base is not None and not clusters_path.is_absolute():
            clusters_path = base / clusters_path
    return Plan(name, path, clusters_path, tables, order, warnings)


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
