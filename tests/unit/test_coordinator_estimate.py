"""The planner's pure functions (hand-computed expectations) and the CLI views."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from lakeshift.coordinator.estimate import (
    converging_total,
    estimate_transfer,
    format_duration,
    parts_for,
    requests_needed,
)

GiB, MiB = 2**30, 2**20


def test_bandwidth_bound_with_changes() -> None:
    # 100 GiB at 100 MiB/s = 1024 s; changes at 25 MiB/s: r = 0.25, T = 1024 / 0.75
    est = estimate_transfer(100 * GiB, 100, bandwidth=100 * MiB, change_rate=25 * MiB)
    assert est.binding == "bandwidth"
    assert est.base_seconds == pytest.approx(1024.0)
    assert est.change_ratio == pytest.approx(0.25)
    assert est.total_seconds == pytest.approx(1365.3333, rel=1e-6)
    assert est.converges


def test_diverges_when_changes_outrun_bandwidth() -> None:
    est = estimate_transfer(GiB, 1, bandwidth=10 * MiB, change_rate=10 * MiB)
    assert not est.converges
    assert math.isinf(est.total_seconds)
    assert "does not converge" in est.describe()


def test_request_bound_small_files() -> None:
    # 1,000,000 files of 1 KiB: bytes 1,024,000,000 at 1 GiB/s = 0.9537 s;
    # requests = 1e6 * 2 + 1e6 parts * 2 = 4e6 at 3500/s = 1142.857 s
    est = estimate_transfer(1_024_000_000, 1_000_000, bandwidth=GiB, request_limit=3500)
    assert est.requests == 4_000_000
    assert est.binding == "requests"
    assert est.request_seconds == pytest.approx(4_000_000 / 3500)
    # effective rate = bytes / T0 = 896,000 B/s; changes of 448,000 B/s halve it: T = 2 T0
    est2 = estimate_transfer(
        1_024_000_000, 1_000_000, bandwidth=GiB, request_limit=3500, change_rate=448_000
    )
    assert est2.change_ratio == pytest.approx(0.5)
    assert est2.total_seconds == pytest.approx(2 * 4_000_000 / 3500)


def test_latency_bound() -> None:
    # 10,000 files of 1 MiB, 128 MiB parts: 10,000 parts; requests = 20,000 + 20,000 = 40,000;
    # latency 50 ms with 4 in flight: 40,000 * 0.05 / 4 = 500 s; bandwidth: 10,000 MiB / 1 GiB/s
    est = estimate_transfer(10_000 * MiB, 10_000, bandwidth=GiB, latency=0.05, concurrency=4)
    assert est.binding == "latency"
    assert est.latency_seconds == pytest.approx(500.0)
    assert est.bandwidth_seconds == pytest.approx(10_000 / 1024)


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        (parts_for, (10 * MiB, 2, 2 * MiB), 6),  # 5 MiB per file -> 3 parts each
        (parts_for, (0, 0, MiB), 0),
        (requests_needed, (10, 30), 80),
        (converging_total, (100.0, 0.5), 200.0),
        (converging_total, (100.0, 0.0), 100.0),
        (format_duration, (3725,), "1h 2m 5s"),
        (format_duration, (90061,), "1d 1h 1m 1s"),
        (format_duration, (math.inf,), "never"),
    ],
)
def test_helpers(fn, args, expected) -> None:
    assert fn(*args) == expected


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        estimate_transfer(1, 1, bandwidth=0)


def test_plan_estimate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "name: est\ntables:\n"
        "  - {name: a, source: /s, target: /t, keys: [id], size: 60GB}\n"
        "  - {name: b, source: /s, target: /t, keys: [id], size: 40GB, depends_on: [a]}\n",
        encoding="utf-8",
    )
    rc = cli(
        ["plan", str(plan), "--estimate", "--bandwidth", "100MB", "--change-rate", "25MB", "--json"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tables"] == 2 and out["layers"] == 2
    assert out["estimate"]["binding"] == "bandwidth"
    assert out["estimate"]["total_seconds"] == pytest.approx(1365.3333, rel=1e-6)
    rc = cli(["plan", str(plan), "--estimate", "--bandwidth", "10MB", "--change-rate", "20MB"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "does not converge" in text
    assert "L1 b: copy: load (40.0 GiB" in text


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["status", "--state-dir", str(tmp_path / "none"), "--once"]) == 2
    assert "no run state" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "defaults: {load: {kind: script, file: j.py}}\n"
        "tables:\n  - {name: a, depends_on: [b]}\n  - {name: b, depends_on: [a]}\n"
    )
    assert cli(["plan", str(bad)]) == 2
    assert "dependency cycle a -> b -> a" in capsys.readouterr().err
