"""The report's charts: pure data preparation (hand-computed) and the PNGs read back with Pillow.

The pixel checks are independent of matplotlib's API: they count pixels of a known colour in
the decoded image, so a bar drawn at the wrong length (or not at all) fails.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from PIL import Image

from lakeshift.coordinator import charts
from lakeshift.coordinator.dashboard import STATE_COLOURS, bucket_states, done_steps, job_time


def _image(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.convert("RGB")


def _pixels(img: Image.Image, colour: str, tol: int = 8) -> int:
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        1 for px in img.getdata() if all(abs(a - b) <= tol for a, b in zip(px, want, strict=True))
    )


def test_done_steps_counts_in_and_out_of_done() -> None:
    audit = [
        (1, 100.0, "a", "PENDING", "LOADING", "", None, None),
        (2, 130.0, "a", "CUT_OVER", "DONE", "", None, None),
        (3, 150.0, "b", "CUT_OVER", "DONE", "", None, None),
        (4, 170.0, "a", "DONE", "READY", "rollback", None, None),
        (5, 200.0, "c", "PENDING", "LOADING", "", None, None),
    ]
    assert done_steps(audit) == [(100.0, 0), (130.0, 1), (150.0, 2), (170.0, 1), (200.0, 1)]
    assert done_steps([]) == []


def test_job_time_prefers_the_event_log() -> None:
    job = SimpleNamespace(
        table_name="a", kind="load", cluster="c1", submitted_at=10.0, finished_at=25.5
    )
    assert job_time(job, None) == {
        "table": "a",
        "kind": "load",
        "cluster": "c1",
        "seconds": 15.5,
        "measured": "submitted to finished",
    }
    assert job_time(job, {"wall_seconds": 9.0})["measured"] == "event log"
    assert job_time(job, {"wall_seconds": 9.0})["seconds"] == 9.0
    running = SimpleNamespace(**{**vars(job), "finished_at": None})
    assert job_time(running, None) is None


def test_bucket_states_keeps_every_bucket() -> None:
    per = bucket_states({"LOADING": 2, "START_POINT": 1, "DONE": 3, "CUT_OVER": 1})
    assert per["loading"] == {"START_POINT": 1, "LOADING": 2}
    assert per["cut over"] == {"CUT_OVER": 1, "DONE": 3}
    assert sum(sum(v.values()) for v in per.values()) == 7


def test_state_chart_bar_lengths_follow_the_counts() -> None:
    # one bucket of 4 LOADING tables, one of 2 DONE: the LOADING bar is twice as long (the
    # legend adds one equal swatch to each colour)
    img = _image(charts.state_chart({"x": {"LOADING": 4}, "y": {"DONE": 2}}, STATE_COLOURS))
    assert img.width == charts.WIDTH_PX
    loading, done = _pixels(img, STATE_COLOURS["LOADING"]), _pixels(img, STATE_COLOURS["DONE"])
    assert done > 1000
    assert loading / done == pytest.approx(2.0, rel=0.08)
    assert _pixels(img, STATE_COLOURS["FAILED"]) == 0  # no failed tables: no red


def test_latency_chart_colours_clusters_and_hatches_clock_times() -> None:
    def counts(jobs: list[charts.JobTime]) -> tuple[int, int]:
        colours = charts.cluster_colours([j.cluster for j in jobs])
        img = _image(charts.latency_chart(jobs))
        return _pixels(img, colours["c1"]), _pixels(img, colours["c2"])

    # c1: one 100 s job; c2: two 50 s jobs: as much blue as orange (bars, dots, legend)
    c1, c2 = counts(
        [
            charts.JobTime("a/load", "c1", 100.0),
            charts.JobTime("b/load", "c2", 50.0),
            charts.JobTime("c/load", "c2", 50.0),
        ]
    )
    assert c1 > 5000
    assert c2 / c1 == pytest.approx(1.0, rel=0.06)
    # the same with one c2 job timed by the coordinator's clock: its bar is hatched (white
    # stripes) and its dot hollow, so less orange
    c1b, c2b = counts(
        [
            charts.JobTime("a/load", "c1", 100.0),
            charts.JobTime("b/load", "c2", 50.0),
            charts.JobTime("c/load", "c2", 50.0, "submitted to finished"),
        ]
    )
    assert c1b == pytest.approx(c1, rel=0.03)
    assert 0.6 * c2 < c2b < 0.95 * c2


def test_usage_chart_draws_asked_and_peak() -> None:
    uses = [charts.JobUse("a/load", "c1", 8, 2, 0.25), charts.JobUse("b/load", "c1", 4, 4, 0.9)]
    img = _image(charts.usage_chart(uses))
    asked, peak = _pixels(img, charts.ASKED_COLOUR), _pixels(img, charts.PEAK_COLOUR)
    # asked 8 + 4 = 12 executor-lengths, peak 2 + 4 = 6: twice as much grey as blue
    assert peak > 500
    assert asked / peak == pytest.approx(2.0, rel=0.1)
    assert _pixels(img, charts.UTIL_COLOUR) > 500


def test_charts_are_deterministic_and_data_uris() -> None:
    points = [(1_700_000_000.0, 0), (1_700_000_600.0, 1), (1_700_003_600.0, 2)]
    png = charts.done_chart(points, 3)
    assert png == charts.done_chart(points, 3)
    img = _image(png)
    assert (img.width, img.height) == (charts.WIDTH_PX, 320)
    assert _pixels(img, charts.DONE_COLOUR) > 500
    assert charts.data_uri(png).startswith("data:image/png;base64,iVBORw0KGgo")
