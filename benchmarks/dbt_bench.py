"""Warehouse build benchmark: `dbt build` on the simulated campus at several sizes, so the growth
with the number of rows is visible.

    .venv/bin/python benchmarks/dbt_bench.py [--scales default,1,5] [--repeat 1] [--keep]

For each size: the campus is generated into a temporary home (``campusdx generate [--scale S]``)
and landed (``campusdx extract``), untimed. Then ``dbt build`` (seeds, snapshots, every model and
test, the feeds with an empty quarantine) runs on a fresh warehouse in its own child process,
``--repeat`` times (the warehouse file removed before each attempt, the fastest kept); its wall
time and peak RSS are measured, and the rows landed and the warehouse's rows are counted. The
baseline is the smallest size measured in the same run: per size the report gives the time per
landed row relative to it (1.0 = linear growth; below 1 = better than linear, fixed costs
amortised). A check that the build is right at every size rides along: ``audit.unmapped_codes``
must hold exactly the simulator's injected unknown codes.

Results: ``benchmarks/results/dbt-<stamp>.json`` and ``benchmarks/results/dbt-latest.md``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.extract_bench import RESULTS, machine  # noqa: E402  (repository root on sys.path now)
from campusdx.core.settings import DBT_PROJECT, executable  # noqa: E402

# Runs dbt in a child and reports its wall time and peak RSS (of the child, not of this process).
_MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
report = {"rc": done.returncode, "wall_s": wall, "peak_rss_mib": peak / 1024}
print(json.dumps({**report, "tail": done.stdout[-2000:]}))
"""


def _env(home: Path) -> dict:
    return {**os.environ, "CAMPUSDX_HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}


def _campusdx(home: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "campusdx.cli", *args],
        env=_env(home),
        cwd=REPO,
        check=True,
        capture_output=True,
    )


def _build(home: Path) -> dict:
    (home / "warehouse.duckdb").unlink(missing_ok=True)
    cmd = [
        executable("dbt"),
        "build",
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(home / "dbt-target"),
    ]
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        env=_env(home),
        cwd=DBT_PROJECT,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"dbt build failed in {home}:\n{result['tail']}")
    return result


def _counts(home: Path) -> dict:
    import duckdb

    truth = json.loads((home / "sources" / "dirt.json").read_text(encoding="utf-8"))
    injected = {d["value"] for d in truth["dirt"] if d["kind"] in ("unknown_code", "orphan_department")}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema not in ('codes')"
        ).fetchall()
        warehouse_rows = sum(
            conn.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables
        )
        unmapped = {
            v for (v,) in conn.execute("select distinct source_value from audit.unmapped_codes").fetchall()
        }
    return {
        "source_rows": sum(truth["rows"].values()),
        "warehouse_rows": warehouse_rows,
        "unmapped_codes_exactly_injected": unmapped == injected,
    }


def _markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# dbt build benchmark",
        "",
        f"{report['when']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB · "
        f"dbt-core {report['dbt']} · duckdb {m['packages']['duckdb']}",
        "",
        "`.venv/bin/python benchmarks/dbt_bench.py --scales " + ",".join(report["scales"]) + "`",
        "",
        "| size | source rows | warehouse rows | dbt build wall (s) | peak RSS (MiB) | µs per source row | "
        "per-row time vs smallest | rows × / time × / RSS × vs previous size | unmapped = injected |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    base = report["runs"][0]
    base_per_row = base["wall_s"] / base["source_rows"]
    previous = None
    for r in report["runs"]:
        per_row = r["wall_s"] / r["source_rows"]
        growth = (
            f"{r['source_rows'] / previous['source_rows']:.1f} / {r['wall_s'] / previous['wall_s']:.2f} / "
            f"{r['peak_rss_mib'] / previous['peak_rss_mib']:.2f}"
            if previous
            else "—"
        )
        lines.append(
            f"| {r['scale']} | {r['source_rows']:,} | {r['warehouse_rows']:,} | {r['wall_s']:.1f} | "
            f"{r['peak_rss_mib']:.0f} | {per_row * 1e6:.1f} | {per_row / base_per_row:.2f}× | {growth} | "
            f"{'yes' if r['unmapped_codes_exactly_injected'] else 'NO'} |"
        )
        previous = r
    lines += [
        "",
        "Per-row time vs smallest: (wall / source rows) at that size divided by the same at the smallest",
        "size of this run; 1.00× is linear growth, below it better than linear (fixed costs amortised).",
        "Growth vs previous size: how many times the rows, the wall time and the peak RSS grew from the",
        "size above; time growing less than rows is better than linear.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="default,1,5", help="comma-separated: default or a number")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    parser.add_argument("--report", metavar="JSON", help="only rewrite dbt-latest.md from a results file")
    args = parser.parse_args(argv)
    if args.report:
        report = json.loads(Path(args.report).read_text(encoding="utf-8"))
        (RESULTS / "dbt-latest.md").write_text(_markdown(report), encoding="utf-8")
        return 0
    scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    runs = []
    for scale in scales:
        home = Path(tempfile.mkdtemp(prefix=f"campusdx-dbt-bench-{scale}-"))
        try:
            started = time.perf_counter()
            _campusdx(home, "generate", *([] if scale == "default" else ["--scale", scale]))
            _campusdx(home, "extract")
            prepared = time.perf_counter() - started
            attempts = [_build(home) for _ in range(args.repeat)]
            best = min(attempts, key=lambda a: a["wall_s"])
            run = {
                "scale": scale,
                "wall_s": best["wall_s"],
                "peak_rss_mib": max(a["peak_rss_mib"] for a in attempts),
                "attempts_s": [round(a["wall_s"], 2) for a in attempts],
                "generate_and_extract_s": round(prepared, 1),
                **_counts(home),
            }
            runs.append(run)
            print(json.dumps(run), flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    from importlib import metadata

    report = {
        "when": stamp,
        "machine": machine(),
        "dbt": metadata.version("dbt-core"),
        "scales": scales,
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"dbt-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "dbt-latest.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
