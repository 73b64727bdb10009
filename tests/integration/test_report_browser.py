"""The HTML report rendered by a real headless browser (Chromium), its charts read back.

A real coordinator run over in-process fake clusters (with a fake clock: 30 s a tick) whose load
jobs report Spark event-log metrics writes the state; ``lakeshift report --html`` writes the
page; Chromium screenshots it. Oracles are independent of the chart code: the embedded PNGs are
decoded with Pillow (size, not blank), and the screenshot must hold the charts' own colours in
the same amounts as the decoded PNGs (a broken or missing image shows none of them).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from lakeshift.cli import main as cli
from lakeshift.coordinator import charts
from lakeshift.coordinator.backends.base import JobStatus, Submission
from lakeshift.coordinator.backends.fake import FakeBackend
from lakeshift.coordinator.plan import plan_from_dict
from lakeshift.coordinator.scheduler import Coordinator
from lakeshift.coordinator.store import StateStore

pytestmark = pytest.mark.slow

TABLES = ["orders", "customers", "items", "events", "refunds", "stock"]


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "chromium not installed (scripts/services.sh install adds the Debian package)"
    if os.environ.get("LAKESHIFT_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class SparkFake(FakeBackend):
    """A fake cluster whose finished load jobs report event-log metrics, as spark-submit's do."""

    def poll(self, jobs: Sequence[tuple[str, str | None]]) -> dict[str, JobStatus]:
        out = super().poll(jobs)
        for token, st in out.items():
            job = self.jobs.get(token)
            if job is not None and st.state == "succeeded" and job.sub.kind == "load":
                st.spark = _spark(job.sub.table, self.name)
        return out


def _spark(table: str, cluster: str) -> dict[str, object]:
    i = TABLES.index(table)
    wall = 40.0 + 35.0 * i
    return {
        "app_id": f"app-{table}",
        "app_name": f"lakeshift:{table}:load",
        "wall_seconds": wall,
        "task_seconds": wall * (1 + i % 3),  # 1, 2 or 3 cores' worth of busy time
        "tasks": 16,
        "requested_executors": 4,
        "requested_cores": 2,
        "peak_executors": 1 + i % 4,
        "total_cores": 2 * (1 + i % 4),
        "stages": [
            {"stage_id": 0, "name": "scan", "seconds": wall * 0.3},
            {"stage_id": 1, "name": f"write {table}", "seconds": wall * 0.6},
        ],
    }


@pytest.fixture
def report(tmp_path: Path) -> Path:
    plan = plan_from_dict(
        {
            "name": "browser",
            "defaults": {
                "validation": "v",
                "auto_approve": True,
                "cutover": {"final_validate": False},
                "retry": {"max_attempts": 1},
            },
            "validations": {"v": {"keys": ["id"]}},
            "tables": [
                {"name": t, "source": "/s", "target": "/t", "keys": ["id"], "size": f"{i + 1}GB"}
                for i, t in enumerate(TABLES)
            ],
        }
    )

    def outcome(sub: Submission) -> tuple[int, str]:
        if sub.table == "refunds" and sub.kind == "validate":
            return 1, "12 rows differ: mismatch"
        return 0, ""

    # the fake clock starts now: the store stamps the plan's "added by plan" audit rows with
    # the real time (not the coordinator's clock), and the DONE-over-time chart starts there
    now = [float(int(time.time()))]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    store = StateStore.open(tmp_path / "state.db")
    Coordinator(
        plan,
        {
            "east": SparkFake("east", 2, ticks=1, outcome=outcome),
            "west": SparkFake("west", 2, ticks=3, outcome=outcome),
        },
        store,
        poll_interval=30,
        clock=lambda: now[0],
        sleep=sleep,
    ).run()
    store.close()
    out = tmp_path / "report.html"
    assert cli(["report", "--state-dir", str(tmp_path), "--html", str(out)]) == 0
    return out


def _embedded(page: str) -> list[Image.Image]:
    out = []
    for data in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page):
        img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        img.load()
        out.append(img.convert("RGB"))
    return out


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_report_renders_its_charts_in_chromium(report: Path, tmp_path: Path) -> None:
    browser = _browser()
    page = report.read_text(encoding="utf-8")
    assert "<script" not in page and 'src="http' not in page  # self-contained
    images = _embedded(page)
    assert len(images) == 4  # states, DONE over time, latency, requested vs used
    for img in images:
        assert img.width >= 300 and img.height >= 150
        counts = Counter(img.getdata())
        white = counts.get((255, 255, 255), 0)
        assert 1 - white / (img.width * img.height) > 0.03  # not blank
        assert len(counts) > 20  # drawn text and bars, not a flat fill
    # six tables on two clusters: six loads (event logs) and six validations (no event logs)
    assert "latency of 12 jobs on 2 clusters (east, west)" in page
    assert "executors asked vs peak alive of 6 jobs" in page

    height = max(2400, sum(img.height for img in images) + 900)
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",  # never another user's profile lock
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--screenshot={shot}",
            f"--window-size=1280,{height}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    screen = Image.open(shot).convert("RGB")
    assert screen.size == (1280, height)
    seen = Counter(screen.getdata())
    in_pngs: Counter[tuple[int, int, int]] = Counter()
    for img in images:
        in_pngs.update(img.getdata())
    # colours only the charts use: the browser shows as many of their pixels as the PNGs hold
    # (images at 1:1; a broken image would show an icon and its alt text instead)
    palette = charts.cluster_colours(["east", "west"])
    figures = {}
    for name, colour in {
        "DONE line": charts.DONE_COLOUR,
        "peak alive": charts.PEAK_COLOUR,
        "executors asked": charts.ASKED_COLOUR,
        "utilisation": charts.UTIL_COLOUR,
        "cluster east": palette["east"],
        "cluster west": palette["west"],
    }.items():
        want, got = in_pngs[_hex(colour)], seen[_hex(colour)]
        figures[name] = (want, got)
        assert want > 300, (name, want)
        assert abs(got - want) <= 0.02 * want + 50, (name, want, got)
    print("chart colour pixels (decoded PNGs, screenshot):", figures)
    non_white = sum(n for px, n in seen.items() if px != (255, 255, 255))
    print(f"screenshot {screen.size}: {non_white / (1280 * height):.1%} non-white")
