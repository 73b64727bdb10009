"""Event folding on hand-written events (expectations computed by hand)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from lakeshift.errors import UsageError
from lakeshift.ops.eventlog import advice, metrics_from_events, read_event_log
from lakeshift.spark import event_log_conf


def _ev(**kw: object) -> str:
    return json.dumps(kw)


def test_fold_and_advice() -> None:
    lines = [
        _ev(Event="SparkListenerApplicationStart", Timestamp=0, **{"App ID": "a1"}),
        _ev(
            Event="SparkListenerEnvironmentUpdate",
            **{
                "Spark Properties": [
                    ["spark.executor.instances", "8"],
                    ["spark.executor.cores", "4"],
                ]
            },
        ),
        *[
            _ev(
                Event="SparkListenerExecutorAdded",
                **{"Executor ID": str(i), "Executor Info": {"Total Cores": 4}},
            )
            for i in range(3)
        ],
        _ev(
            Event="SparkListenerTaskEnd",
            **{
                "Task Info": {"Failed": False},
                "Task Metrics": {"Executor Run Time": 26_400_000, "Disk Bytes Spilled": 5},
            },
        ),
        _ev(Event="SparkListenerApplicationEnd", Timestamp=10_000_000),
    ]
    m = metrics_from_events(lines)
    assert m.wall_seconds == 10_000 and m.peak_executors == 3 and m.total_cores == 12
    # 26,400 s of task time over 12 cores x 10,000 s = 22%
    assert round(m.utilisation, 2) == 0.22
    lines_out = advice(m)
    assert lines_out[0] == (
        "asked 8 executors x 4 cores, peak 3 alive, utilisation 22%: try --num-executors 3"
    )
    assert "spilled 5 B to disk" in lines_out[1]


def test_conf() -> None:
    assert event_log_conf("s3a://b/ev") == {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "s3a://b/ev",
    }


def test_event_log_option_reaches_the_session_conf(tmp_path: Path) -> None:
    import argparse

    from lakeshift.runtime import profile_from_args
    from lakeshift.spark import spark_conf

    args = argparse.Namespace(master="local[1]", event_log=str(tmp_path / "ev"))
    conf = spark_conf(profile_from_args(args, "t"))
    assert conf["spark.eventLog.enabled"] == "true"
    assert conf["spark.eventLog.dir"] == (tmp_path / "ev").as_uri()
    assert (tmp_path / "ev").is_dir()
    off = spark_conf(profile_from_args(argparse.Namespace(master="local[1]"), "t"))
    assert "spark.eventLog.enabled" not in off


def _write_rolling(folder: Path, parts: dict[int, list[str]], suffix: str = "") -> None:
    folder.mkdir()
    for n, lines in parts.items():
        data = ("\n".join(lines) + "\n").encode()
        path = folder / f"events_{n}_local-1{suffix}"
        if suffix == ".zstd":
            import pyarrow as pa

            with pa.CompressedOutputStream(str(path), "zstd") as out:
                out.write(data)
        else:
            path.write_bytes(data)
    (folder / "appstatus_local-1").write_text("not events\n")


def _added(i: str) -> str:
    return _ev(Event="SparkListenerExecutorAdded", **{"Executor ID": i, "Executor Info": {}})


def _removed(i: str) -> str:
    return _ev(Event="SparkListenerExecutorRemoved", **{"Executor ID": i})


ROLLING = {
    1: [_ev(Event="SparkListenerApplicationStart", Timestamp=1_000)],
    2: [_added("a"), _added("b")],
    10: [
        _removed("a"),
        _removed("b"),
        _added("c"),
        _ev(Event="SparkListenerApplicationEnd", Timestamp=9_000),
    ],
}


@pytest.mark.parametrize("suffix", ["", ".zstd"])
def test_rolling_folder_read_in_file_number_order(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "eventlog_v2_local-1"
    _write_rolling(folder, ROLLING, suffix)
    # in order 1, 2, 10: two executors at once at the peak (in name order 1, 10, 2 it would
    # be three: c added before a and b)
    for where in (folder, folder.as_uri(), f"file:{folder}"):
        m = read_event_log(where)
        assert (m.wall_seconds, m.peak_executors) == (8.0, 2)


def test_single_file_missing_and_unreadable_codecs(tmp_path: Path) -> None:
    one = tmp_path / "local-1"
    one.write_text("\n".join(ROLLING[1] + ROLLING[2] + ROLLING[10]) + "\n")
    assert read_event_log(one).peak_executors == 2
    with pytest.raises(UsageError, match="no such event log"):
        read_event_log(tmp_path / "gone")
    lz4 = tmp_path / "eventlog_v2_local-2"
    lz4.mkdir()
    (lz4 / "events_1_local-2.lz4").write_bytes(b"\x04\x22\x4d\x18")
    with pytest.raises(UsageError, match="lz4 event logs are not readable"):
        read_event_log(lz4)
    empty = tmp_path / "eventlog_v2_local-3"
    empty.mkdir()
    with pytest.raises(UsageError, match="no events_<n>_<app> files"):
        read_event_log(empty)


def test_read_streams_the_log(tmp_path: Path) -> None:
    """A ~24 MB log is folded with a few MB of Python memory at most (never read whole)."""
    task = _ev(
        Event="SparkListenerTaskEnd",
        **{"Task Info": {"Failed": False}, "Task Metrics": {"Executor Run Time": 1000}},
        pad="x" * 900,
    )
    n = 25_000
    log = tmp_path / "local-1"
    with log.open("w") as out:
        out.write(ROLLING[1][0] + "\n")
        for _ in range(n):
            out.write(task + "\n")
        out.write(ROLLING[10][-1] + "\n")
    assert log.stat().st_size > 20 * 2**20
    tracemalloc.start()
    try:
        m = read_event_log(log)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (m.tasks, m.task_seconds) == (n, float(n))
    assert peak < 4 * 2**20, peak
