"""Human-readable reports: self-contained HTML (inline CSS, no external assets) and JUnit XML."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

from lakeshift.validate.result import CLASSES, ValidationResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;
background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}h3{font-size:14px;margin:16px 0 6px;
color:#4a5263}
.sub{color:#667085;margin-bottom:18px}
.card{background:#fff;border:1px solid #e3e6eb;border-radius:10px;padding:16px 18px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.head{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
.badge{font-weight:700;font-size:12px;letter-spacing:.04em;padding:3px 10px;border-radius:999px}
.pass{background:#dcfae6;color:#067647}.fail{background:#fee4e2;color:#b42318}
.error{background:#fef0c7;color:#b54708}.warning{color:#b54708}
.flow{color:#667085;font-family:ui-monospace,Menlo,monospace;font-size:12px}
.stats{display:flex;gap:10px;flex-wrap:wrap;margin-top:12px}
.stat{border:1px solid #eaecf0;border-radius:8px;padding:8px 12px;min-width:110px}
.stat b{display:block;font-size:18px}.stat span{color:#667085;font-size:12px}
.stat.bad{border-color:#fda29b;background:#fffbfa}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaecf0;vertical-align:top}
th{background:#f9fafb;color:#475467;font-weight:600}
td.v{font-family:ui-monospace,Menlo,monospace;font-size:12px;word-break:break-all}
.l{color:#b42318}.r{color:#067647}.muted{color:#98a2b3}
.summary td{padding:6px 8px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _stat(label: str, value: Any, bad: bool = False) -> str:
    cls = "stat bad" if bad else "stat"
    shown = f"{value:,}" if isinstance(value, int) else _e(value)
    return f'<div class="{cls}"><b>{shown}</b><span>{_e(label)}</span></div>'


def _sample_rows(result: ValidationResult) -> str:
    rows = []
    for s in result.samples:
        cls = s.get("class", "")
        left = s.get("left") or {}
        right = s.get("right") or {}
        cols = s.get("columns") or []
        if cls == "value_mismatch" and cols:
            for col in cols:
                rows.append(
                    f"<tr><td class=v>{_e(s.get('key'))}</td><td>{_e(cls)}</td><td>{_e(col)}</td>"
                    f"<td class='v l'>{_e(left.get(col))}</td>"
                    f"<td class='v r'>{_e(right.get(col))}</td></tr>"
                )
        else:
            counts = f"left {s.get('left_count')} / right {s.get('right_count')}"
            lv = json.dumps(left, default=str, ensure_ascii=False) if left else ""
            rv = json.dumps(right, default=str, ensure_ascii=False) if right else ""
            rows.append(
                f"<tr><td class=v>{_e(s.get('key') or '(whole row)')}</td><td>{_e(cls)}</td>"
                f"<td class=muted>{_e(counts)}</td><td class='v l'>{_e(lv)}</td>"
                f"<td class='v r'>{_e(rv)}</td></tr>"
            )
    if not rows:
        return ""
    return (
        f"<h3>Differences (first {len(result.samples)}; the full list is in the details table)"
        "</h3><table><tr><th>key</th><th>class</th><th>column</th><th>left (source)</th>"
        "<th>right (target)</th></tr>" + "".join(rows) + "</table>"
    )


def render_table_html(result: ValidationResult) -> str:
    """One table's report as an HTML fragment (also the notebook ``_repr_html_``)."""
    v = result.verdict
    parts = [
        f'<div class="card"><div class="head"><span class="badge {v}">{v.upper()}</span>'
        f"<h2>{_e(result.table)}</h2></div>",
        f'<div class="flow">{_e(result.left)} &rarr; {_e(result.right)}'
        f"{' &nbsp;keys: ' + _e(', '.join(result.keys)) if result.keys else ' &nbsp;(keyless)'}"
        "</div>",
        '<div class="stats">',
        _stat("source rows", result.left_rows),
        _stat("target rows", result.right_rows, result.left_rows != result.right_rows),
    ]
    labels = {
        "missing_in_target": "missing in target",
        "extra_in_target": "extra in target",
        "duplicate_key": "duplicate keys",
        "value_mismatch": "value mismatches",
    }
    for cls in CLASSES:
        n = result.counts.get(cls, 0)
        parts.append(_stat(labels[cls], n, n > 0))
    parts.append(
        _stat(
            f"deviation (threshold {result.threshold:g})",
            f"{result.deviation:.4%}",
            result.deviation > result.threshold,
        )
    )
    parts.append("</div>")
    if result.error:
        parts.append(f'<h3 class="warning">Error</h3><div>{_e(result.error)}</div>')
    if result.column_mismatches:
        parts.append("<h3>Mismatches per column</h3><table><tr><th>column</th><th>rows</th></tr>")
        for col, n in sorted(result.column_mismatches.items(), key=lambda kv: -kv[1]):
            parts.append(f"<tr><td>{_e(col)}</td><td>{n:,}</td></tr>")
        parts.append("</table>")
    parts.append(_sample_rows(result))
    if result.schema:
        parts.append(
            "<h3>Schema</h3><table><tr><th>column</th><th>finding</th><th>source type</th>"
            "<th>target type</th><th>severity</th></tr>"
        )
        for s in result.schema:
            parts.append(
                f"<tr><td>{_e(s.column)}</td><td>{_e(s.issue)}</td><td>{_e(s.left_type)}</td>"
                f"<td>{_e(s.right_type)}</td><td class={s.severity}>{_e(s.severity)}</td></tr>"
            )
        parts.append("</table>")
    failed = [a for a in result.aggregates if not a.passed]
    if result.aggregates:
        parts.append(
            f"<h3>Aggregate checks ({len(result.aggregates) - len(failed)} of "
            f"{len(result.aggregates)} agree)</h3>"
        )
        if failed:
            parts.append(
                "<table><tr><th>column</th><th>metric</th><th>source</th><th>target</th></tr>"
            )
            for a in failed:
                parts.append(
                    f"<tr><td>{_e(a.column)}</td><td>{_e(a.metric)}</td>"
                    f"<td class='v l'>{_e(a.left)}</td><td class='v r'>{_e(a.right)}"
                    "</td></tr>"
                )
            parts.append("</table>")
    if result.expectations:
        ok = sum(e.success for e in result.expectations)
        parts.append(
            f"<h3>Expectations on the target ({ok} of {len(result.expectations)} pass)"
            "</h3><table><tr><th>expectation</th><th>column</th><th>result</th>"
            "<th>details</th></tr>"
        )
        for e in result.expectations:
            status = (
                '<span class="badge pass">pass</span>'
                if e.success
                else ('<span class="badge fail">fail</span>')
            )
            parts.append(
                f"<tr><td>{_e(e.expectation)}</td><td>{_e(e.column)}</td>"
                f"<td>{status}</td><td class=v>{_e(e.details)}</td></tr>"
            )
        parts.append("</table>")
    if result.partitions:
        bad = [p for p in result.partitions if not p["match"]]
        parts.append(f"<h3>Partitions ({len(bad)} of {len(result.partitions)} differ)</h3>")
        if bad:
            parts.append(
                "<table><tr><th>partition</th><th>source rows</th><th>target rows</th></tr>"
            )
            for p in bad[:50]:
                parts.append(
                    f"<tr><td class=v>{_e(json.dumps(p['partition'], default=str))}</td>"
                    f"<td>{p['left_rows']:,}</td><td>{p['right_rows']:,}</td></tr>"
                )
            parts.append("</table>")
    parts.append(
        '<div class="flow" style="margin-top:12px">'
        f"fingerprints: source {_e(result.left_fingerprint)}"
        f" &middot; target {_e(result.right_fingerprint)} &middot; buckets {result.buckets:,} "
        f"({result.mismatched_buckets:,} differ) &middot; {result.seconds:.1f}s &middot; run "
        f"{_e(result.run_id)}</div></div>"
    )
    body = "".join(parts)
    return f"<div><style>{_CSS}</style>{body}</div>"


def render_html(results: Sequence[ValidationResult], title: str = "lakeshift validation") -> str:
    """A self-contained HTML page for a whole run (one card per table, a summary first)."""
    passed = sum(r.passed for r in results)
    rows = "".join(
        f"<tr><td><span class='badge {r.verdict}'>{r.verdict.upper()}</span></td>"
        f"<td>{_e(r.table)}</td><td>{r.left_rows:,}</td><td>{r.right_rows:,}</td>"
        f"<td>{r.differing_rows:,}</td><td>{r.deviation:.4%}</td></tr>"
        for r in results
    )
    cards = "".join(render_table_html(r) for r in results)
    run = results[0].run_id if results else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><div class=sub>{passed} of {len(results)} tables pass"
        f" &middot; run {_e(run)}</div>"
        "<div class=card><table class=summary><tr><th>verdict</th><th>table</th>"
        "<th>source rows</th><th>target rows</th><th>differing rows</th><th>deviation</th></tr>"
        f"{rows}</table></div>{cards}</body></html>"
    )


def render_junit(results: Sequence[ValidationResult], suite: str = "lakeshift.validate") -> str:
    """JUnit XML: one testcase per table, a failure element for each failing table."""
    failures = sum(1 for r in results if r.verdict == "fail")
    errors = sum(1 for r in results if r.verdict == "error")
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root, "testcase", classname=suite, name=r.table, time=f"{r.seconds:.3f}"
        )
        if r.verdict == "error":
            el = ET.SubElement(case, "error", message=r.error or "error")
            el.text = r.summary()
        elif r.verdict == "fail":
            message = f"deviation {r.deviation:.6g} > threshold {r.threshold:g}; " + ", ".join(
                f"{k} {v}" for k, v in r.counts.items() if v
            )
            el = ET.SubElement(case, "failure", message=message, type="ValidationMismatch")
            el.text = r.summary()
        out = ET.SubElement(case, "system-out")
        out.text = r.summary()
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def run_document(results: Sequence[ValidationResult]) -> dict[str, Any]:
    """The JSON document of a run: ``{"schema_version", "passed", "tables": [...]}``."""
    return {
        "schema_version": 1,
        "run_id": results[0].run_id if results else None,
        "passed": all(r.passed for r in results),
        "tables": [r.to_dict() for r in results],
    }
