"""The planner against the published figures of a real 500 TB / 8.6 M-file Hadoop -> S3 move.

Expectations are the published numbers (days, TB), not recomputed by the planner; each within 3%.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from lakeshift.coordinator.estimate import estimate_transfer

TB = 10**12
DAY = 86400.0
FILES = 8_600_000
BANDWIDTH = 3e9 / 8  # 3 Gb/s in bytes per second


def test_frozen_source_500tb_at_3gbps_is_about_15_4_days() -> None:
    est = estimate_transfer(500 * TB, FILES, bandwidth=BANDWIDTH)
    assert est.binding == "bandwidth"
    assert est.total_seconds / DAY == pytest.approx(15.4, rel=0.03)


def test_changing_source_is_about_513_5_tb_in_15_8_days() -> None:
    # about 50 change events per second of 200 KB median size
    est = estimate_transfer(500 * TB, FILES, bandwidth=BANDWIDTH, change_rate=50 * 200e3)
    assert est.converges
    assert est.bytes_sent / TB == pytest.approx(513.5, rel=0.03)
    assert est.total_seconds / DAY == pytest.approx(15.8, rel=0.03)


def test_75_1_million_puts_at_23ms_without_concurrency_is_about_20_days() -> None:
    est = estimate_transfer(
        500 * TB, FILES, bandwidth=BANDWIDTH, requests=75_100_000, latency=0.023, concurrency=1
    )
    assert est.binding == "latency"
    assert est.latency_seconds / DAY == pytest.approx(20.0, rel=0.03)
    # concurrency is needed: enough of it and bandwidth binds again (15.4 days)
    assert est.concurrency_needed > 1
    lifted = estimate_transfer(
        500 * TB,
        FILES,
        bandwidth=BANDWIDTH,
        requests=75_100_000,
        latency=0.023,
        concurrency=est.concurrency_needed,
    )
    assert lifted.binding == "bandwidth"
    assert lifted.total_seconds / DAY == pytest.approx(15.4, rel=0.03)
    assert "concurrency 2 would lift the latency limit" in est.describe()


def test_does_not_converge_when_changes_outpace_bandwidth() -> None:
    est = estimate_transfer(500 * TB, FILES, bandwidth=BANDWIDTH, change_rate=400e6)
    assert not est.converges
    assert "does not converge" in est.describe()


def test_tcp_window_limit_of_one_connection() -> None:
    # a 64 KiB window over a 23 ms RTT carries 2,849,391 B/s per connection: 500 TB alone takes
    # 500e12 / 2849391.3 = 175,476,144 s; 100 connections take 1,754,761 s (~20.3 days)
    est = estimate_transfer(
        500 * TB, FILES, bandwidth=BANDWIDTH, latency=0.023, concurrency=100, tcp_window=65536
    )
    assert est.binding == "window"
    assert est.window_seconds == pytest.approx(1_754_761, rel=1e-3)
    assert est.concurrency_needed == 132  # 175,476,144 s / 1,333,333 s = 131.6


def test_plan_estimate_cli_shows_every_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "name: big\ntables:\n  - {name: a, source: /s, target: /t, keys: [id], size: 100GB}\n",
        encoding="utf-8",
    )
    # 100 GiB at 100 MiB/s = 1024 s; 64 KiB window / 0.1 s RTT = 640 KiB/s per connection,
    # 4 connections: 107374182400 / 2621440 = 40960 s -> window-bound, 160 connections lift it
    argv = ["plan", str(plan), "--estimate", "--bandwidth", "100MB", "--latency", "0.1"]
    argv += ["--concurrency", "4", "--tcp-window", "64KB", "--json"]
    assert cli(argv) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert set(est["limits"]) == {"bandwidth", "requests", "latency", "window"}
    assert est["binding"] == "window"
    assert est["limits"]["window"] == pytest.approx(40960.0)
    assert est["concurrency_needed"] == 160
    assert "concurrency 160 would lift the window limit" in est["summary"]
    assert cli(["plan", str(plan), "--estimate", "--prefixes", "0"]) == 2
    assert "--prefixes" in capsys.readouterr().err
