"""The quality gate's summary for people and machines, written after every verdict.

- ``quality/history.jsonl``: one line per verdict (dataset, run, counts per rule), appended.
- ``quality/summary.json``: the latest verdict per dataset and the failures per rule over the
  last runs, for machines.
- ``quality/summary.html``: the same as one page, with a bar chart (inline SVG, no script and
  nothing fetched) of failures per rule over the last runs, the rules' what / why / how to fix,
  and a link to the GX Data Docs.

Gates of several datasets run at once: they call :func:`record` and :func:`write_summary` while
holding the quality lock (``campusdx.quality.files.quality_lock``); the files are appended with an
fsync and replaced atomically.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path

from campusdx.core.settings import Paths
from campusdx.quality.files import append_line, write_text_atomic
from campusdx.quality.rules import RuleBook

LAST_RUNS = 10
DATA_DOCS = "gx/uncommitted/data_docs/local_site/index.html"


def record(paths: Paths, verdict: dict) -> None:
    """Append one verdict to the history (holding the quality lock)."""
    line = {
        k: verdict[k]
        for k in ("dataset", "run_id", "checked_at", "status", "rows_checked", "rows_quarantined")
    }
    line["failures"], line["warnings"] = verdict["failures"], verdict["warnings"]
    append_line(paths.quality / "history.jsonl", json.dumps(line, ensure_ascii=False))


def _history(paths: Paths) -> list[dict]:
    path = paths.quality / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summary(paths: Paths, latest: dict[str, dict], last_runs: int = LAST_RUNS) -> dict:
    """Latest verdicts, and per rule its failing rows in each of the last runs (oldest first)."""
    runs: dict[str, str] = {}  # run id -> when it started (its first verdict)
    per_run: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in _history(paths):
        runs.setdefault(entry["run_id"], entry["checked_at"])
        for rule, count in {**entry["failures"], **entry["warnings"]}.items():
            per_run[entry["run_id"]][rule] += count
    recent = sorted(runs, key=runs.get)[-last_runs:]
    rules = sorted({rule for run in recent for rule in per_run[run]})
    return {
        "datasets": latest,
        "runs": [{"run_id": run, "started": runs[run]} for run in recent],
        "failures_per_rule": {rule: [per_run[run].get(rule, 0) for run in recent] for rule in rules},
        "data_docs": DATA_DOCS,
    }


def _chart(counts: list[int], width: int = 220, height: int = 40) -> str:
    """Bars of failing rows per run, oldest left; scaled to the rule's own maximum."""
    top = max(counts) or 1
    bar = width / max(len(counts), 1)
    bars = []
    for i, count in enumerate(counts):
        h = 0 if not count else max(2.0, height * count / top)
        bars.append(
            f'<rect x="{i * bar + 1:.1f}" y="{height - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}">'
            f"<title>{count}</title></rect>"
        )
    return (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="failing rows per run">{"".join(bars)}</svg>'
    )


def render_html(report: dict, book: RuleBook) -> str:
    e = html.escape
    rows = []
    for code, v in report["datasets"].items():
        errors = ", ".join(f"{r} ×{n}" for r, n in sorted(v["failures"].items())) or "—"
        warnings = ", ".join(f"{r} ×{n}" for r, n in sorted(v["warnings"].items())) or "—"
        why = "<br>".join(e(b) for b in v["blocking"])
        rows.append(
            f'<tr class="{e(v["status"])}"><td>{e(code)}</td><td>{e(v["status"])}</td>'
            f"<td>{v['rows_checked']}</td><td>{v['rows_quarantined']}</td><td>{e(errors)}</td>"
            f"<td>{e(warnings)}</td><td>{why}</td><td>{e(v['checked_at'])}</td></tr>"
        )
    charts = []
    for rule_id, counts in report["failures_per_rule"].items():
        try:
            rule = book.by_id(rule_id)
            text = f"<b>{e(rule.what)}</b><br>Why: {e(rule.why)}<br>Fix: {e(rule.fix)}"
            severity = rule.severity
        except KeyError:
            text, severity = "(no longer in rules.yml)", ""
        charts.append(
            f"<tr><td>{e(rule_id)}</td><td>{e(severity)}</td><td>{_chart(counts)}</td>"
            f"<td>{counts[-1] if counts else 0}</td><td>{text}</td></tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>campusdx quality gate</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }}
tr.blocked td:nth-child(2) {{ color: #b00; font-weight: bold; }}
tr.passed td:nth-child(2) {{ color: #070; }}
svg.chart rect {{ fill: #4a78b5; }}
</style>
</head>
<body>
<h1>Quality gate</h1>
<p>Latest verdict per PX dataset. Held rows are in the warehouse table <code>quality.quarantine</code>;
every expectation's result is in the <a href="{e(report["data_docs"])}">Great Expectations Data Docs</a>.</p>
<table>
<tr><th>dataset</th><th>status</th><th>rows</th><th>held back</th><th>errors</th><th>warnings</th>
<th>why blocked</th><th>checked at (UTC)</th></tr>
{"".join(rows)}
</table>
<h2>Failing rows per rule, last {len(report["runs"])} runs (oldest left)</h2>
<table>
<tr><th>rule</th><th>severity</th><th>per run</th><th>latest</th><th>what / why / how to fix</th></tr>
{"".join(charts) or '<tr><td colspan="5">no failures in these runs</td></tr>'}
</table>
</body>
</html>
"""


def write_summary(paths: Paths, latest: dict[str, dict], book: RuleBook) -> Path:
    """Write summary.json and summary.html under ``quality/`` (holding the quality lock); returns
    the HTML page."""
    report = summary(paths, latest)
    write_text_atomic(paths.quality / "summary.json", json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    page = paths.quality / "summary.html"
    write_text_atomic(page, render_html(report, book))
    return page
