"""Job metrics from Spark's own event logs, read as a stream (one JSON line at a time).

Pure folding of events into :class:`JobMetrics`; the only I/O is :func:`read_event_log`, which
opens a file or a rolling-log folder (plain, or ``.zstd`` as Spark 4 writes with
``spark.eventLog.compress=true``) on a local disk, HDFS (``hdfs://``) or S3 (``s3a://``,
``s3://``) through the file copy's filesystem layer (:mod:`lakeshift.sources.fs`) and feeds its
lines to :func:`metrics_from_events` as they are read (one buffer at a time, never the whole log).

Example:
    >>> lines = [
    ...     '{"Event":"SparkListenerApplicationStart","Timestamp":1000}',
    ...     '{"Event":"SparkListenerApplicationEnd","Timestamp":3000}',
    ... ]
    >>> metrics_from_events(lines).wall_seconds
    2.0
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lakeshift.errors import UsageError

if TYPE_CHECKING:
    from lakeshift.sources.fs import Location, S3Options

#: Bytes read from the store at a time (one request per buffer on S3).
READ_BUFFER = 1 << 20


@dataclass
class StageTime:
    """One stage: id, name, seconds from submission to completion."""

    stage_id: int
    name: str
    seconds: float


@dataclass
class JobMetrics:
    """What one Spark application did, and what it asked for."""

    app_id: str = ""
    app_name: str = ""
    wall_seconds: float = 0.0
    task_seconds: float = 0.0
    tasks: int = 0
    failed_tasks: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    output_records: int = 0
    memory_spill_bytes: int = 0
    disk_spill_bytes: int = 0
    gc_seconds: float = 0.0
    peak_jvm_heap_bytes: int = 0
    peak_executors: int = 0
    requested_executors: int | None = None
    requested_cores: int | None = None
    requested_memory: str | None = None
    dynamic_min: int | None = None
    dynamic_max: int | None = None
    total_cores: int = 0
    stages: list[StageTime] = field(default_factory=list)

    @property
    def slowest_stage(self) -> StageTime | None:
        """The stage that took longest, if any."""
        return max(self.stages, key=lambda s: s.seconds, default=None)

    @property
    def utilisation(self) -> float:
        """``task time / (cores x wall)``: the share of the cores held that did work."""
        cores = self.total_cores
        return self.task_seconds / (cores * self.wall_seconds) if cores and self.wall_seconds else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (with ``utilisation`` and ``slowest_stage`` filled in)."""
        out = asdict(self)
        out["utilisation"] = self.utilisation
        slow = self.slowest_stage
        out["slowest_stage"] = asdict(slow) if slow else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobMetrics:
        """Inverse of :meth:`to_dict` (derived keys ignored)."""
        kw = {k: v for k, v in data.items() if k not in ("utilisation", "slowest_stage")}
        kw["stages"] = [StageTime(**s) for s in kw.get("stages", [])]
        return cls(**kw)


def _props(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {str(p[0]): str(p[1]) for p in value or []}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def metrics_from_events(lines: Iterable[str]) -> JobMetrics:
    """Fold event-log lines into :class:`JobMetrics`; each line is parsed and dropped."""
    m = JobMetrics()
    start: int | None = None
    end: int | None = None
    alive: dict[str, int] = {}
    for line in lines:
        if not line.strip():
            continue
        ev = json.loads(line)
        kind = ev.get("Event")
        if kind == "SparkListenerApplicationStart":
            start = ev.get("Timestamp", 0)
            m.app_id = ev.get("App ID", "")
            m.app_name = ev.get("App Name", "")
        elif kind == "SparkListenerApplicationEnd":
            end = ev.get("Timestamp", 0)
        elif kind == "SparkListenerEnvironmentUpdate":
            props = _props(ev.get("Spark Properties"))
            m.requested_executors = _int(props.get("spark.executor.instances"))
            m.requested_cores = _int(props.get("spark.executor.cores"))
            m.requested_memory = props.get("spark.executor.memory")
            if props.get("spark.dynamicAllocation.enabled") == "true":
                m.dynamic_min = _int(props.get("spark.dynamicAllocation.minExecutors"))
                m.dynamic_max = _int(props.get("spark.dynamicAllocation.maxExecutors"))
        elif kind == "SparkListenerExecutorAdded":
            info = ev.get("Executor Info", {})
            alive[str(ev.get("Executor ID"))] = int(info.get("Total Cores", 0))
            m.peak_executors = max(m.peak_executors, len(alive))
            m.total_cores = max(m.total_cores, sum(alive.values()))
        elif kind == "SparkListenerExecutorRemoved":
            alive.pop(str(ev.get("Executor ID")), None)
        elif kind == "SparkListenerStageCompleted":
            info = ev.get("Stage Info", {})
            if info.get("Submission Time") and info.get("Completion Time"):
                secs = (info["Completion Time"] - info["Submission Time"]) / 1000
                m.stages.append(StageTime(int(info["Stage ID"]), info.get("Stage Name", ""), secs))
        elif kind == "SparkListenerStageExecutorMetrics":
            heap = ev.get("Executor Metrics", {}).get("JVMHeapMemory", 0)
            m.peak_jvm_heap_bytes = max(m.peak_jvm_heap_bytes, int(heap))
        elif kind == "SparkListenerTaskEnd":
            _task_end(m, ev)
    if start is not None and end is not None:
        m.wall_seconds = (end - start) / 1000
    return m


def _task_end(m: JobMetrics, ev: dict[str, Any]) -> None:
    info = ev.get("Task Info", {})
    m.tasks += 1
    if info.get("Failed"):
        m.failed_tasks += 1
    tm = ev.get("Task Metrics") or {}
    m.task_seconds += tm.get("Executor Run Time", 0) / 1000
    m.gc_seconds += tm.get("JVM GC Time", 0) / 1000
    m.memory_spill_bytes += tm.get("Memory Bytes Spilled", 0)
    m.disk_spill_bytes += tm.get("Disk Bytes Spilled", 0)
    sr = tm.get("Shuffle Read Metrics", {})
    m.shuffle_read_bytes += sr.get("Remote Bytes Read", 0) + sr.get("Local Bytes Read", 0)
    m.shuffle_write_bytes += tm.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)
    m.input_bytes += tm.get("Input Metrics", {}).get("Bytes Read", 0)
    m.output_bytes += tm.get("Output Metrics", {}).get("Bytes Written", 0)
    m.output_records += tm.get("Output Metrics", {}).get("Records Written", 0)
    heap = (ev.get("Task Executor Metrics") or {}).get("JVMHeapMemory", 0)
    m.peak_jvm_heap_bytes = max(m.peak_jvm_heap_bytes, int(heap))


def _event_file_index(name: str) -> int:
    """``n`` of a rolling log's ``events_<n>_<app>[.zstd]`` file.

    Example:
        >>> _event_file_index("events_12_local-1700000000000.zstd")
        12
    """
    try:
        return int(name.split("_")[1])
    except (IndexError, ValueError) as exc:
        raise UsageError(f"expected events_<n>_<app>[.zstd], found {name!r}") from exc


def _log_files(loc: Location) -> list[str]:
    """The log's files relative to ``loc`` (``[""]``: ``loc`` is the file), in event order."""
    from lakeshift.sources import fs

    entry = fs.stat(loc, "")
    if entry is None:
        raise UsageError(f"{loc.uri}: no such event log")
    if not entry.is_dir:
        return [""]
    # rolling logs (spark.eventLog.rolling.enabled, Spark 4's default) keep events_<n>_<app>
    # files in a folder eventlog_v2_<app>, in order of n, beside appstatus_<app>
    names = [
        e.rel
        for e in fs.list_tree(loc)
        if not e.is_dir and "/" not in e.rel and e.rel.startswith("events_")
    ]
    if not names:
        raise UsageError(f"{loc.uri}: no events_<n>_<app> files in this event-log folder")
    return sorted(names, key=_event_file_index)


def _lines(loc: Location) -> Iterator[str]:
    import pyarrow as pa

    from lakeshift.sources import fs

    for rel in _log_files(loc):
        name = (rel or loc.root).rsplit("/", 1)[-1]
        suffix = os.path.splitext(name)[1]
        if suffix in (".lz4", ".snappy", ".lzf"):
            raise UsageError(
                f"{loc.path(rel)}: {suffix} event logs are not readable here; use zstd or none"
            )
        raw: Any = fs.open_input(loc, rel)
        if suffix == ".zstd":
            raw = pa.CompressedInputStream(raw, "zstd")
        buffered = io.BufferedReader(raw, buffer_size=READ_BUFFER)
        with io.TextIOWrapper(buffered, encoding="utf-8") as text:
            yield from text


def read_event_log(path: str | os.PathLike[str], s3: S3Options | None = None) -> JobMetrics:
    """Metrics of one application's event log (a file, or a rolling-log folder).

    Args:
        path: a local path or ``file:`` URI, ``hdfs://namenode:port/…``, or ``s3a://bucket/…``
            / ``s3://bucket/…`` (credentials from the AWS chain; endpoint from ``s3`` or
            ``$AWS_ENDPOINT_URL``), as Spark's ``spark.eventLog.dir`` names them.
        s3: how to reach S3 (default: the environment).

    Raises:
        UsageError: no such file or folder, or a codec that cannot be read.

    Example:
        >>> read_event_log("hdfs://nn:8020/spark-logs/eventlog_v2_app-1")  # doctest: +SKIP
    """
    from lakeshift.sources import fs

    return metrics_from_events(_lines(fs.resolve(os.fspath(path), s3)))


def advice(m: JobMetrics) -> list[str]:
    """Concrete lines for a job that used under half of what it asked for, spilled or retried."""
    out: list[str] = []
    asked = m.requested_executors or m.dynamic_max
    util = m.utilisation
    if asked and (m.peak_executors * 2 <= asked or (m.total_cores and util < 0.5)):
        cores = f" x {m.requested_cores} cores" if m.requested_cores else ""
        # what it really held when it held fewer; else the share of the ask it kept busy
        held = m.peak_executors if m.peak_executors < asked else math.ceil(asked * util)
        try_n = max(1, held)
        if try_n < asked:  # asking for one executor and using a little of it is no advice
            out.append(
                f"asked {asked} executors{cores}, peak {m.peak_executors} alive, "
                f"utilisation {util:.0%}: try --num-executors {try_n}"
            )
    if m.memory_spill_bytes or m.disk_spill_bytes:
        out.append(
            f"spilled {m.disk_spill_bytes} B to disk ({m.memory_spill_bytes} B in memory): give "
            "executors more memory or raise spark.sql.shuffle.partitions"
        )
    if m.failed_tasks:
        out.append(f"{m.failed_tasks} of {m.tasks} task attempts failed and were retried")
    return out
