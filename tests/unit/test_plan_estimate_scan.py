"""``lakeshift plan PLAN --estimate --scan PROFILE.json``: the planner fed by a scan profile.

The profile is written by hand here, so every figure below is worked out in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeshift.cli import main as cli

MiB, GiB = 2**20, 2**30

# 1,000,000 files of 512 B and 100 files of 300 MiB, over 4 top-level prefixes of which the
# busiest holds 500,050 objects
SMALL_BYTES = 1_000_000 * 512  # 512,000,000
BIG_BYTES = 100 * 300 * MiB  # 31,457,280,000
FILES = 1_000_100
BYTES = SMALL_BYTES + BIG_BYTES  # 31,969,280,000


def _profile(tmp_path: Path, change: dict[str, float] | None) -> Path:
    buckets = [{"label": str(i), "files": 0, "bytes": 0} for i in range(8)]
    buckets[0].update(files=1_000_000, bytes=SMALL_BYTES)
    buckets[5].update(files=100, bytes=BIG_BYTES)
    prof: dict[str, object] = {
        "version": 1,
        "sources": ["s3a://lake/raw"],
        "scanned_at": "2026-01-01T00:00:00+00:00",
        "scanned_at_epoch": 1767225600.0,
        "totals": {
            "files": FILES,
            "bytes": BYTES,
            "folders": 10,
            "prefixes": 4,
            "max_prefix_files": 500_050,
        },
        "buckets": buckets,
        "prefixes": [],
    }
    if change is not None:
        prof["change"] = {"since": "2025-12-31T00:00:00+00:00", **change}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(prof), encoding="utf-8")
    return path


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(
        "name: est\ntables:\n  - {name: a, source: /s, target: /t, keys: [id], size: 60GB}\n",
        encoding="utf-8",
    )
    return p


def _est(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert cli(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_scan_figures_replace_the_plan_sizes(tmp_path: Path, plan: Path, capsys) -> None:
    change = {
        "events_per_s": 2.0,
        "deletes_per_s": 0.5,
        "bytes_per_s": 2048.0,
        "median_changed_size": 512,
    }
    prof = _profile(tmp_path, change)
    out = _est(
        capsys,
        *("plan", str(plan), "--estimate", "--scan", str(prof), "--json"),
        *("--request-limit", "3500", "--bandwidth", "1GB"),
    )
    est = out["estimate"]
    assert (est["bytes"], est["files"]) == (BYTES, FILES)  # not the plan's 60 GiB
    # prefixes: 1,000,100 objects / 500,050 in the busiest = 2.0
    assert est["prefixes"] == 2.0
    # parts at 128 MiB: 1,000,000 small files 1 part each, 300 MiB files ceil(300/128) = 3 each
    assert out["scan"]["parts"] == 1_000_300
    # requests: 2 per file + 2 per part = 2,000,200 + 2,000,600
    assert est["requests"] == 4_000_800
    # 3500 req/s per prefix x 2 prefixes = 7000/s -> 571.5429 s; bandwidth 31.97e9 / 2**30 = 29.8 s
    assert est["binding"] == "requests"
    assert est["limits"]["requests"] == pytest.approx(4_000_800 / 7000)
    assert est["limits"]["bandwidth"] == pytest.approx(31_969_280_000 / 2**30)
    # changes: 2 files/s of 512 B: 2*2 + 2 parts*2 requests, + 0.5 deletes = 8.5 requests/s
    assert est["change_requests"] == pytest.approx(8.5)
    assert est["change_ratio"] == pytest.approx(8.5 / 7000)
    # T = T0 / (1 - r) = (4,000,800 / 7000) / (1 - 8.5 / 7000) = 4,000,800 / 6991.5
    assert est["total_seconds"] == pytest.approx(4_000_800 / 6991.5)
    assert est["converges"]


def test_many_small_changes_do_not_converge_on_requests(tmp_path: Path, plan: Path, capsys) -> None:
    # 2000 files/s of 512 B = 1,024,000 B/s: nothing for 1 GiB/s, but 2000 * (2 + 2) = 8000
    # requests/s against 7000/s of request capacity: r = 8000 / 7000
    change = {
        "events_per_s": 2000.0,
        "deletes_per_s": 0.0,
        "bytes_per_s": 1_024_000.0,
        "median_changed_size": 512,
    }
    prof = _profile(tmp_path, change)
    argv = ["plan", str(plan), "--estimate", "--scan", str(prof), "--request-limit", "3500"]
    est = _est(capsys, *argv, "--json")["estimate"]
    assert est["change_ratio"] == pytest.approx(8000 / 7000)
    assert not est["converges"] and est["total_seconds"] is None
    assert cli(argv) == 0
    text = capsys.readouterr().out
    assert "scan " in text and "1000100 files" in text and "2e+03 files/s" in text
    assert "does not converge" in text


def test_options_override_the_profile(tmp_path: Path, plan: Path, capsys) -> None:
    change = {
        "events_per_s": 2000.0,
        "deletes_per_s": 0.0,
        "bytes_per_s": 1_024_000.0,
        "median_changed_size": 512,
    }
    prof = _profile(tmp_path, change)
    est = _est(
        capsys,
        *("plan", str(plan), "--estimate", "--scan", str(prof), "--json"),
        *("--request-limit", "3500", "--prefixes", "1", "--change-files", "100"),
    )["estimate"]
    # one prefix: 4,000,800 / 3500 s; 100 files/s * 4 requests = 400/s of 3500/s
    assert est["prefixes"] == 1.0
    assert est["limits"]["requests"] == pytest.approx(4_000_800 / 3500)
    assert est["change_ratio"] == pytest.approx(400 / 3500)
    assert est["total_seconds"] == pytest.approx((4_000_800 / 3500) / (1 - 400 / 3500))


def test_profile_without_change_rate(tmp_path: Path, plan: Path, capsys) -> None:
    prof = _profile(tmp_path, None)
    est = _est(capsys, "plan", str(plan), "--estimate", "--scan", str(prof), "--json")["estimate"]
    # 1 GiB/s default bandwidth, no request limit: bandwidth-bound, no changes
    assert est["binding"] == "bandwidth"
    assert est["change_ratio"] == 0.0
    assert est["total_seconds"] == pytest.approx(31_969_280_000 / 2**30)


def test_bad_scan_input(tmp_path: Path, plan: Path, capsys) -> None:
    assert cli(["plan", str(plan), "--estimate", "--scan", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"--scan: no such file: {tmp_path / 'none.json'}")
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert cli(["plan", str(plan), "--estimate", "--scan", str(bad)]) == 2
    assert "not a lakeshift scan profile" in capsys.readouterr().err
    prof = _profile(tmp_path, None)
    assert cli(["plan", str(plan), "--scan", str(prof)]) == 2
    assert "--scan: only with --estimate" in capsys.readouterr().err
