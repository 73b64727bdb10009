"""A self-contained HTML report of a scan profile: matplotlib charts as embedded PNG data URIs.

Example:
    >>> html = render_html(profile)  # doctest: +SKIP
    >>> html.startswith("<!DOCTYPE html>")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

from lakeshift.config import human_bytes

TOP_PREFIXES = 20


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def size_chart(profile: Mapping[str, Any]) -> str:
    """Share of files vs share of bytes per size bucket, as a PNG data URI."""
    from matplotlib.figure import Figure

    buckets = profile["buckets"]
    labels = [b["label"] for b in buckets]
    x = range(len(labels))
    fig = Figure(figsize=(9, 3.6))
    ax = fig.subplots()
    w = 0.4
    ax.bar([i - w / 2 for i in x], [100 * b["files_share"] for b in buckets], w, label="files")
    ax.bar([i + w / 2 for i in x], [100 * b["bytes_share"] for b in buckets], w, label="bytes")
    ax.set_xticks(list(x), labels, rotation=20, ha="right")
    ax.set_ylabel("share (%)")
    ax.set_title("Size distribution: files vs bytes per bucket")
    ax.legend()
    return _png(fig)


def prefix_chart(profile: Mapping[str, Any], top: int = TOP_PREFIXES) -> str:
    """Objects per top-level prefix (busiest ``top``), as a PNG data URI."""
    from matplotlib.figure import Figure

    rows = list(profile["prefixes"][:top])[::-1]
    fig = Figure(figsize=(9, max(2.0, 0.3 * len(rows) + 1)))
    ax = fig.subplots()
    ax.barh([r["prefix"] or "(top level)" for r in rows], [r["files"] for r in rows])
    ax.set_xlabel("objects")
    ax.set_title(f"Objects per top-level prefix (busiest {len(rows)})")
    return _png(fig)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def render_html(profile: Mapping[str, Any]) -> str:
    """The report page (no external files, scripts or fonts)."""
    t = profile["totals"]
    sm = profile["small_files"]
    buckets = _table(
        ["size", "files", "files %", "bytes", "bytes %"],
        [
            [
                b["label"],
                str(b["files"]),
                f"{100 * b['files_share']:.1f}",
                human_bytes(b["bytes"]),
                f"{100 * b['bytes_share']:.1f}",
            ]
            for b in profile["buckets"]
        ],
    )
    small = _table(
        ["folder", "small files", "small bytes", "files"],
        [
            [
                f["folder"] or "(top level)",
                str(f["small_files"]),
                human_bytes(f["small_bytes"]),
                str(f["files"]),
            ]
            for f in sm["top_folders"]
        ],
    )
    change = ""
    ch = profile.get("change")
    if ch:
        median = ch["median_changed_size"]
        change = (
            "<h2>Change since "
            + html.escape(ch["since"])
            + "</h2>"
            + _table(
                ["seconds", "new", "changed", "deleted", "files/s", "bytes/s", "median changed"],
                [
                    [
                        f"{ch['seconds']:.0f}",
                        str(ch["new_files"]),
                        str(ch["changed_files"]),
                        str(ch["deleted_files"]),
                        f"{ch['events_per_s']:.3g}",
                        human_bytes(ch["bytes_per_s"]),
                        human_bytes(median) if median is not None else "-",
                    ]
                ],
            )
        )
    sources = html.escape(", ".join(profile["sources"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lakeshift scan: {sources}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>lakeshift scan</h1>
<p>{sources} at {html.escape(profile["scanned_at"])}: {t["files"]} files,
{human_bytes(t["bytes"])} in {t["folders"]} folders, {t["prefixes"]} top-level prefixes.</p>
<h2>Size distribution</h2>
<img alt="size distribution" src="{size_chart(profile)}">
{buckets}
<h2>Top-level prefixes</h2>
<img alt="objects per prefix" src="{prefix_chart(profile)}">
<h2>Small files (under {human_bytes(sm["threshold"])}): {sm["files"]} files,
{human_bytes(sm["bytes"])}</h2>
<p>Compaction candidates: the folders with the most small files.</p>
{small}
{change}
</body></html>
"""
