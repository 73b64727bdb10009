r"""Charts of the HTML report: matplotlib figures drawn to PNG, embedded as ``data:`` URIs.

Pure functions of plain data (no store, no snapshot): each returns the PNG's bytes, and
:func:`data_uri` turns them into an ``<img src>`` so the page stays one self-contained file.
matplotlib is imported inside the functions (other commands pay nothing for it) and only its
object-oriented :class:`~matplotlib.figure.Figure` is used: the Agg renderer, no pyplot, no
global figure state, no display.

Example:
    >>> png = state_chart({"loading": {"LOADING": 2}, "cut over": {"DONE": 1}})
    >>> png[:8] == b"\x89PNG\r\n\x1a\n"
    True
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Width of every chart in pixels (at :data:`DPI`); the page shows them at this size.
WIDTH_PX = 960
DPI = 100
#: Jobs shown by name in the per-job panels (the slowest ones); the strip shows all.
MAX_JOBS = 30
#: Cluster colours, in order of the sorted cluster names (matplotlib's tab10).
CLUSTER_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
ASKED_COLOUR = "#b0bec5"
PEAK_COLOUR = "#1565c0"
UTIL_COLOUR = "#ef6c00"
DONE_COLOUR = "#2e7d32"


@dataclass(frozen=True)
class JobTime:
    """One finished job's latency.

    Attributes:
        label: what the job was, e.g. ``orders/load``.
        cluster: the cluster it ran on.
        seconds: its wall time.
        measured: ``event log`` (the Spark application's start to end) or ``submitted to
            finished`` (the coordinator's own clock, when the job left no event log).
    """

    label: str
    cluster: str
    seconds: float
    measured: str = "event log"


@dataclass(frozen=True)
class JobUse:
    """What one Spark job asked for and what it used.

    Attributes:
        label: what the job was, e.g. ``orders/load``.
        cluster: the cluster it ran on.
        asked: executors requested (``spark.executor.instances`` or the dynamic maximum).
        peak: executors alive at once at the peak.
        utilisation: task time over (cores held x wall time), 0..1.
    """

    label: str
    cluster: str
    asked: int | None
    peak: int
    utilisation: float


def data_uri(png: bytes) -> str:
    r"""``data:image/png;base64,…`` of PNG bytes.

    Example:
        >>> data_uri(b"\x89PNG")
        'data:image/png;base64,iVBORw=='
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def cluster_colours(clusters: Sequence[str]) -> dict[str, str]:
    """A stable colour per cluster name (sorted names take :data:`CLUSTER_COLOURS` in turn).

    Example:
        >>> cluster_colours(["c2", "c1", "c2"])
        {'c1': '#1f77b4', 'c2': '#ff7f0e'}
    """
    names = sorted(set(clusters))
    return {c: CLUSTER_COLOURS[i % len(CLUSTER_COLOURS)] for i, c in enumerate(names)}


def _figure(height_px: int) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI, layout="constrained")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # no "Software" tag: the same data gives the same bytes
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def state_chart(
    buckets: Mapping[str, Mapping[str, int]], colours: Mapping[str, str] | None = None
) -> bytes:
    """Tables per operator bucket, each bar split by state (horizontal stacked bars).

    Args:
        buckets: ``{bucket: {state: tables}}`` in display order (empty buckets are drawn too).
        colours: a colour per state (matplotlib's cycle for states not in it).
    """
    colours = colours or {}
    names = list(buckets)
    fig = _figure(60 + 34 * max(1, len(names)))
    ax = fig.add_subplot()
    left = [0] * len(names)
    drawn: set[str] = set()
    states = list(dict.fromkeys(s for counts in buckets.values() for s in counts))
    for state in states:
        widths = [buckets[b].get(state, 0) for b in names]
        if not any(widths):
            continue
        ax.barh(
            names,
            widths,
            left=left,
            color=colours.get(state),
            edgecolor="white",
            label=state if state not in drawn else None,
        )
        drawn.add(state)
        left = [a + w for a, w in zip(left, widths, strict=True)]
    for y, total in enumerate(left):
        ax.annotate(str(total), (total, y), xytext=(4, 0), textcoords="offset points", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("tables")
    ax.set_xlim(0, max([*left, 1]) * 1.1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if drawn:
        ax.legend(loc="lower right", fontsize="small", ncols=min(4, len(drawn)))
    ax.set_title("Tables per bucket and state")
    return _png(fig)


def done_chart(points: Sequence[tuple[float, int]], total: int) -> bytes:
    """DONE tables over time: a step line of ``(epoch seconds, tables DONE)`` points.

    Args:
        points: the count after each change, oldest first (the first point is the start).
        total: tables in the plan (drawn as a dashed line).
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    fig = _figure(320)
    ax = fig.add_subplot()
    when = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t, _ in points]
    ax.step(when, [n for _, n in points], where="post", color=DONE_COLOUR, linewidth=2.5)
    ax.fill_between(when, [n for _, n in points], step="post", color=DONE_COLOUR, alpha=0.25)
    ax.axhline(total, color="#616161", linestyle="--", linewidth=1)
    ax.annotate(
        f"{total} tables",
        (0, total),
        xycoords=("axes fraction", "data"),
        xytext=(4, 2),
        textcoords="offset points",
        va="bottom",
    )
    ax.set_ylim(0, max(total, 1) * 1.12)
    ax.yaxis.get_major_locator().set_params(integer=True)
    locator = AutoDateLocator(tz=dt.timezone.utc)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=dt.timezone.utc))
    ax.set_ylabel("tables DONE")
    ax.set_xlabel("time (UTC)")
    ax.set_title("DONE tables over time")
    return _png(fig)


def latency_chart(jobs: Sequence[JobTime], limit: int = MAX_JOBS) -> bytes:
    """Latency per job per cluster: a strip of every job, and bars of the slowest.

    Each job is a dot on its cluster's row; the slowest ``limit`` jobs are named bars, coloured
    by cluster. Jobs measured by the coordinator's clock (no event log) are hollow dots and
    hatched bars.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = cluster_colours([j.cluster for j in jobs])
    slow = sorted(jobs, key=lambda j: -j.seconds)[:limit]
    clusters = sorted(colours)
    fig = _figure(110 + 22 * max(len(slow), 2 * len(clusters), 4))
    strip, bars = fig.subplots(1, 2, width_ratios=(2, 3))
    for row, cluster in enumerate(clusters):
        mine = [j for j in jobs if j.cluster == cluster]
        for filled in (True, False):
            xs = [j.seconds for j in mine if (j.measured == "event log") == filled]
            if not xs:
                continue
            # deterministic spread of the dots across the row (golden-ratio sequence)
            ys = [row + ((i * 0.618034) % 1 - 0.5) * 0.6 for i in range(len(xs))]
            strip.scatter(
                xs,
                ys,
                s=28,
                color=colours[cluster] if filled else "none",
                edgecolors=colours[cluster],
                linewidths=1.2,
            )
    strip.set_yticks(range(len(clusters)), clusters)
    strip.set_ylim(len(clusters) - 0.5, -0.5)
    strip.set_xlim(left=0)
    strip.set_xlabel("seconds")
    strip.set_title(f"all {len(jobs)} jobs per cluster")
    kinds = {j.measured == "event log" for j in jobs}
    if len(kinds) > 1:  # both measures present: say which dots are which
        strip.legend(
            [
                Line2D([], [], marker="o", color="#616161", linestyle=""),
                Line2D([], [], marker="o", color="#616161", mfc="none", linestyle=""),
            ],
            ["event log", "submitted to finished"],
            fontsize="small",
        )
    y = list(range(len(slow)))
    bars.barh(
        y,
        [j.seconds for j in slow],
        color=[colours[j.cluster] for j in slow],
        hatch=["" if j.measured == "event log" else "//" for j in slow],
        edgecolor="white",
    )
    bars.set_yticks(y, [f"{j.label} ({j.cluster})" for j in slow], fontsize="small")
    bars.invert_yaxis()
    bars.set_xlabel("seconds")
    bars.set_title(f"slowest {len(slow)} jobs")
    bars.legend(
        [Patch(color=colours[c]) for c in clusters], clusters, title="cluster", fontsize="small"
    )
    return _png(fig)


def usage_chart(jobs: Sequence[JobUse], limit: int = MAX_JOBS) -> bytes:
    """Requested vs used per job: executors asked vs peak alive, and utilisation.

    Utilisation is the share of the cores held that did work; the first ``limit`` jobs are
    drawn, in the order given.
    """
    shown = list(jobs)[:limit]
    labels = [f"{j.label} ({j.cluster})" for j in shown]
    fig = _figure(110 + 24 * max(len(shown), 3))
    ex, util = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    y = list(range(len(shown)))
    ex.barh(
        [v - 0.2 for v in y],
        [j.asked or 0 for j in shown],
        height=0.4,
        color=ASKED_COLOUR,
        label="executors asked",
    )
    ex.barh(
        [v + 0.2 for v in y],
        [j.peak for j in shown],
        height=0.4,
        color=PEAK_COLOUR,
        label="peak alive",
    )
    ex.set_yticks(y, labels, fontsize="small")
    ex.invert_yaxis()
    ex.xaxis.get_major_locator().set_params(integer=True)
    ex.set_xlabel("executors")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    ex.set_title("executors: asked vs peak alive")
    util.barh(y, [100 * j.utilisation for j in shown], color=UTIL_COLOUR)
    for v, j in zip(y, shown, strict=True):
        util.annotate(
            f"{j.utilisation:.0%}",
            (100 * j.utilisation, v),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    util.axvline(50, color="#616161", linestyle=":", linewidth=1)
    util.set_xlim(0, 110)
    util.set_xlabel("% of held cores busy")
    util.set_title("utilisation")
    return _png(fig)
