"""Quality-gate benchmark: validation of all seven PX datasets, against a whole-table baseline.

    .venv/bin/python benchmarks/gate_bench.py [--scale 1] [--home DIR] [--repeat 2] [--keep]

The campus is generated at ``--scale`` into a temporary home, landed and built with ``dbt build``
(untimed), unless ``--home`` names a home already built. Then, in a child process each, with a
fresh ``quality/`` folder each time (GX context, findings, Data Docs from scratch), ``--repeat``
times, the fastest kept:

- **baseline**: the same GX suites with the same expectations on whole-table pandas DataFrames,
  without batching or push-down: every value checked row by row, the dataset-level rule
  (CDX-D017, debits = credits per period) summed in pandas over the whole CWKMYE frame, and each
  reference's keys taken from the referenced dataset's whole frame and its findings in pandas.
- **campusdx**: ``Gate.check`` as the warehouse DAG runs it: each column judged as a batch
  (formats by a vectorised pattern, code sets and 公民身份号码 once per distinct value),
  CDX-D017 and the reference keys computed in DuckDB (only the aggregate or the key column
  leaves it).
- **gx-floor**: the same suites, checkpoints, results and Data Docs, with every check of ours
  answering "kept" at once: what GX alone costs, so the least any gate that validates through
  GX can take. It finds nothing, by construction.

Baseline and campusdx write the same findings (the benchmark checks they are identical) and
Data Docs. Wall time and peak RSS are the child's. Results: ``benchmarks/results/gate-<stamp>.json`` and
``benchmarks/results/gate-latest.md``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.dbt_bench import _build, _campusdx  # noqa: E402  (repository root on sys.path now)
from benchmarks.extract_bench import RESULTS, machine  # noqa: E402

VARIANTS = {
    "baseline": "GX on whole-table DataFrames: row by row, aggregates and reference keys in pandas",
    "campusdx": "Gate.check: columns judged as batches, aggregates and reference keys in DuckDB",
    "gx-floor": "GX alone: the same suites with every campusdx check answering True at once",
}
COMPARED = ("baseline", "campusdx")  # the floor finds nothing, by construction

# Runs in the child: judge every dataset in publish order, print wall time, peak RSS, counts.
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from benchmarks.gate_bench import gate_for
from campusdx.pipeline import publish_order, published_datasets
start = time.perf_counter()
gate = gate_for(sys.argv[1])
verdicts = {code: gate.check(code, run_id="bench") for code, _ in publish_order(published_datasets())}
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "wall_s": wall,
    "peak_rss_mib": peak,
    "rows": {c: v.rows_checked for c, v in verdicts.items()},
    "held": {c: v.rows_quarantined for c, v in verdicts.items()},
    "status": {c: v.status for c, v in verdicts.items()},
}))
"""


def gate_for(variant: str):
    """The Gate of one variant (in the child process)."""
    from campusdx.quality.gate import Gate

    if variant == "campusdx":
        return Gate()
    if variant == "baseline":
        return _whole_table_gate_class()()  # made on first use: pandas and GX load in the child only
    if variant == "gx-floor":
        return _floor_gate()
    raise ValueError(variant)


def _floor_gate():
    """The least time any gate that validates through GX can take: the same suites, checkpoints,
    results and Data Docs, but every check of ours (code sets, formats, 身份证号, row rules,
    references, CDX-D017) answers "kept" without looking at the data."""
    import pandas as pd

    from campusdx.quality import custom, row_rules
    from campusdx.quality.gate import Gate

    def kept(values, *_):
        return pd.Series(True, index=values.index)

    class AnyKey(dict):
        def __contains__(self, key):
            return True

        def __getitem__(self, key):
            return frozenset()

    custom._per_distinct = custom.formats_ok = custom._in_keys = kept
    row_rules.age_in_range = kept
    for name in row_rules.ROW_RULES:
        row_rules.ROW_RULES[name] = kept
    custom.REFERENCE_KEYS = AnyKey()
    gate = Gate()
    gate._load_reference_keys = lambda dataset, frame: None
    gate._pushed_down = lambda dataset: []
    return gate


def _whole_table_gate_class():
    import pandas as pd
    import pyarrow.parquet as pq

    from campusdx.quality import custom
    from campusdx.quality.gate import KEY_COLUMN, Gate, read_candidates

    class WholeTable(Gate):
        """The baseline: the same suites, nothing batched and nothing pushed down."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            custom.ROW_BY_ROW = True

        def _load_reference_keys(self, dataset, frame):
            for reference in dataset.references.values():
                target = f"{reference.dataset}.{reference.field}"
                if reference.dataset == dataset.code:
                    referenced = frame
                else:
                    other = self.profile.dataset(reference.dataset)
                    referenced = read_candidates(self.paths.warehouse, other)
                    findings = self.paths.quality / "findings" / f"{reference.dataset}.parquet"
                    if findings.exists():
                        held = pq.read_table(findings).to_pandas()
                        held = set(held.loc[held["severity"] == "error", "record_key"])
                        referenced = referenced[~referenced[KEY_COLUMN].isin(held)]
                custom.REFERENCE_KEYS[target] = frozenset(referenced[reference.field].dropna().astype(str))

        def _pushed_down(self, dataset):
            breaches = []
            for rule in self.book.rules:
                if rule.check == "double_entry_per_period" and rule.applies_to(dataset.code):
                    frame = read_candidates(self.paths.warehouse, dataset)
                    for column in ("JFFSE", "DFFSE"):
                        frame[column] = pd.to_numeric(frame[column], errors="coerce")
                    sums = frame.groupby(["KJND", "KJQJ"])[["JFFSE", "DFFSE"]].sum().round(2)
                    unbalanced = sums[sums["JFFSE"] != sums["DFFSE"]]
                    if len(unbalanced):
                        breaches.append(f"{rule.id}: {len(unbalanced)} periods")
            return breaches

    return WholeTable


def _measure(home: Path, variant: str) -> dict:
    shutil.rmtree(home / "quality", ignore_errors=True)
    env = {**os.environ, "CAMPUSDX_HOME": str(home), "GX_ANALYTICS_ENABLED": "False"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, variant, str(REPO)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["findings"] = _findings_digest(home)
    return result


def _findings_digest(home: Path) -> dict:
    import duckdb

    pattern = str(home / "quality" / "findings" / "*.parquet")
    with duckdb.connect() as conn:
        rows = conn.execute(
            "select dataset, count(*), hash(string_agg(record_key || rule_id || coalesce(field, '') "
            "|| coalesce(value, ''), ',' order by record_key, rule_id, field, value)) "
            f"from read_parquet('{pattern}') group by dataset order by dataset"
        ).fetchall()
    return {dataset: [count, str(digest)] for dataset, count, digest in rows}


def _markdown(report: dict) -> str:
    m = report["machine"]
    runs = report["runs"]
    base, ours = runs["baseline"], runs["campusdx"]
    lines = [
        "# Quality-gate benchmark",
        "",
        f"{report['when']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB · scale {report['scale']} · "
        f"{sum(ours['rows'].values()):,} candidate rows in 7 datasets",
        "",
        f"`.venv/bin/python benchmarks/gate_bench.py --scale {report['scale']} --repeat {report['repeat']}`",
        "",
        "| variant | what | wall (s) | peak RSS (MiB) | attempts (s) |",
        "|---|---|---:|---:|---|",
    ]
    for name, run in runs.items():
        lines.append(
            f"| {name} | {VARIANTS[name]} | {run['wall_s']:.1f} | {run['peak_rss_mib']:.0f} | "
            f"{', '.join(str(a) for a in run['attempts_s'])} |"
        )
    lines += [
        "",
        f"**campusdx vs baseline: {base['wall_s'] / ours['wall_s']:.2f}× faster, "
        f"{ours['peak_rss_mib'] / base['peak_rss_mib']:.2f}× the peak RSS.** "
        f"Same findings in both: {'yes' if report['same_findings'] else 'NO'}.",
        *_floor_lines(runs),
        "",
        "| dataset | rows | held back |",
        "|---|---:|---:|",
        *[f"| {c} | {n:,} | {ours['held'][c]:,} |" for c, n in ours["rows"].items()],
        "",
    ]
    return "\n".join(lines)


def _floor_lines(runs: dict) -> list[str]:
    """What GX alone costs, and so the most any gate validating through GX could gain."""
    if "gx-floor" not in runs:
        return []
    base, ours, floor = (runs[v]["wall_s"] for v in ("baseline", "campusdx", "gx-floor"))
    return [
        "",
        f"GX alone (every check of ours answering at once) takes {floor:.1f} s: {floor / ours:.0%} of "
        f"campusdx's time is GX's own work, {ours - floor:.1f} s is our checks. No gate that validates "
        f"through GX can be more than {base / floor:.2f}× faster than the baseline here.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="1")
    parser.add_argument("--home", type=Path, help="a home already generated, extracted and built")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--report", metavar="JSON", help="only rewrite gate-latest.md from a results file")
    args = parser.parse_args(argv)
    if args.report:
        report = json.loads(Path(args.report).read_text(encoding="utf-8"))
        (RESULTS / "gate-latest.md").write_text(_markdown(report), encoding="utf-8")
        return 0
    home = args.home or Path(tempfile.mkdtemp(prefix=f"campusdx-gate-bench-{args.scale}-"))
    try:
        if not args.home:
            _campusdx(home, "generate", "--scale", args.scale)
            _campusdx(home, "extract")
            _build(home)
        runs, digests = {}, {}
        for variant in VARIANTS:
            attempts = [_measure(home, variant) for _ in range(args.repeat)]
            best = min(attempts, key=lambda a: a["wall_s"])
            runs[variant] = {
                **{k: v for k, v in best.items() if k != "findings"},
                "peak_rss_mib": max(a["peak_rss_mib"] for a in attempts),
                "attempts_s": [round(a["wall_s"], 1) for a in attempts],
            }
            digests[variant] = best["findings"]
            print(variant, json.dumps(runs[variant]), flush=True)
    finally:
        if not args.home and not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report = {
        "when": stamp,
        "machine": machine(),
        "scale": args.scale,
        "repeat": args.repeat,
        "runs": runs,
        "same_findings": digests["baseline"] == digests["campusdx"],
        "floor_findings": digests.get("gx-floor"),
        "findings": digests["campusdx"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"gate-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "gate-latest.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0 if report["same_findings"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
