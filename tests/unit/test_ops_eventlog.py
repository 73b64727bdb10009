"""Event folding on hand-written events (expectations computed by hand)."""

from __future__ import annotations

import json
from pathlib import Path

from lakeshift.ops.eventlog import advice, event_log_conf, metrics_from_events


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
