"""A cycle on Airflow's scheduler against the work floor, FULL and after one simulated day.

    .venv/bin/python benchmarks/scheduler_bench.py [--scale 0.06] [--days 1]

Two homes get the same simulated campus (same seed, ``--scale``; default: the demo's size):

- **floor**: the same stages called one after another in one process, no Airflow: every
  extraction, ``dbt build`` of the transform part, the reconciliation, the seven gates, ``dbt
  build`` of the feeds, the snapshot's publication, the seven packages (upload into the gateway
  directory). The province's answers and the receipts are taken afterwards, untimed, so the
  next cycle starts from the same state as the scheduled home's.
- **scheduled**: ``campusdx demo``'s stack (scheduler with LocalExecutor, DAG processor,
  triggerer, API server, the province beside them; started untimed), the four extract DAGs
  triggered through the REST API, timed until the publish run ends (its receipts collected).

Then both homes live ``--days`` simulated days (``campusdx advance``, from the first working
day after the generated campus's clock) and both run again: the incremental cycle. Per cycle:
wall times, the warehouse DAG against the floor's dbt build + gates, the whole cycle against
the floor, the number of task instances, the mean time a task spends in its own process for no
work (the extract DAGs' ``landed``: start-up and reporting), the mean gap between a task's upstream
ending and it starting (the scheduler's), and each component's CPU seconds. Results:
``benchmarks/results/scheduler-<stamp>.json`` and ``benchmarks/results/scheduler-<warehouse
DAG>[-scale<N>]-latest.md``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
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

# Runs in the child, in the floor's home: every stage once, each timed; prints JSON.
_FLOOR = """
import json, sys, time
from campusdx import pipeline
from campusdx.core.declarations import load_systems
from campusdx.pipeline import dbtbuild
times = {}
def timed(name, work):
    start = time.perf_counter(); result = work(); times[name] = round(time.perf_counter() - start, 2)
    return result
tables = [(d.system, t) for d in load_systems() for t in pipeline.landed_names(d.system)]
timed("extract", lambda: [pipeline.extract(system, t) for system, t in tables])
timed("dbt_transform", lambda: dbtbuild.build("transform"))
timed("reconcile", pipeline.reconcile_sources)
order = pipeline.publish_order(pipeline.published_datasets())
timed("gates", lambda: [pipeline.gate(code) for code, _ in order])
timed("dbt_feeds", lambda: dbtbuild.build("feeds"))
timed("snapshot", pipeline.publish_snapshot)
timed("package", lambda: [pipeline.publish(code) for code, _ in order])
print(json.dumps(times))
"""

_ANSWER = """
from campusdx import pipeline
from campusdx.core.settings import paths
from campusdx.demo.province import Province
province = Province.for_home(paths())
try:
    province.process_inbox()
finally:
    province.close()
for code in pipeline.published_datasets():
    pipeline.receipt(code)
"""


WAREHOUSE_STAGES = ("dbt_transform", "reconcile", "gates", "dbt_feeds", "snapshot")
"""The floor's stages the warehouse DAG runs."""


def _python(home: Path, code: str) -> str:
    env = {**os.environ, "CAMPUSDX_HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed in {home}:\n{result.stderr[-3000:]}")
    return result.stdout


def _campusdx(home: Path, *args: str) -> str:
    env = {**os.environ, "CAMPUSDX_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "campusdx.cli", *args],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _working_days(home: Path, days: int) -> dict[str, int]:
    """``campusdx advance --days`` from the first working day after the generated campus's clock
    for every system (its own clock may first fall on a weekend: a quiet day); what changed."""
    from datetime import timedelta

    from campusdx.demo.campus import CLOCK, SYSTEMS

    first = CLOCK.date() + timedelta(days=1)
    while first.weekday() >= 5:
        first += timedelta(days=1)
    clock = home / "sources" / "clock.json"
    if not clock.exists():
        clock.write_text(json.dumps(dict.fromkeys(SYSTEMS, first.isoformat())), encoding="utf-8")
    printed = _campusdx(home, "advance", "--days", str(days))
    return {
        line.rsplit(None, 1)[0].strip(): int(line.rsplit(None, 1)[1])
        for line in printed.splitlines()
        if line.strip()
    }


def floor(home: Path) -> dict:
    started = time.perf_counter()
    times = json.loads(_python(home, _FLOOR).strip().splitlines()[-1])
    times["total_with_start_up"] = round(time.perf_counter() - started, 2)
    times["work"] = round(sum(v for k, v in times.items() if k != "total_with_start_up"), 2)
    _python(home, _ANSWER)  # untimed: the province answers, the receipts are taken
    return times


def scheduled(airflow, systems) -> dict:
    from campusdx.demo.runner import cycle

    before = airflow.cpu_seconds()
    started = time.perf_counter()
    runs = cycle(airflow, systems, say=lambda line: print(line, flush=True))
    wall = round(time.perf_counter() - started, 2)
    after = airflow.cpu_seconds()
    instances = {r.run_id: airflow.task_instances(r.dag_id, r.run_id) for r in runs}
    by_dag = {r.dag_id: r for r in runs}
    warehouse = by_dag["warehouse"]
    tis = [t for r in runs for t in instances[r.run_id]]
    ready = [  # the extract DAGs' last task: it only updates the system's Asset
        t
        for r in runs
        if r.dag_id.startswith("extract_")
        for t in instances[r.run_id]
        if t["task_id"] == "landed"
    ]
    return {
        "trigger_to_last_receipt": wall,
        "dag_runs": {
            r.dag_id: round((r.end_date - r.start_date).total_seconds(), 2) for r in runs if r.end_date
        },
        "task_instances": len(tis),
        "task_instances_by_dag": {r.dag_id: len(instances[r.run_id]) for r in runs},
        "noop_task_seconds": round(
            sum((t["end_date"] - t["start_date"]).total_seconds() for t in ready) / max(len(ready), 1), 2
        ),
        "mean_gap_between_tasks": _mean_gap(instances[warehouse.run_id]),
        "cpu_seconds": {k: round(after.get(k, 0) - before.get(k, 0), 1) for k in after},
    }


def _mean_gap(tis: list[dict]) -> float:
    """Mean seconds from the latest end before a task's start to its start (the warehouse DAG's
    tasks, in start order): the scheduler's and the task process's start-up latency."""
    ordered = sorted(tis, key=lambda t: t["start_date"])
    gaps = []
    for t in ordered[1:]:
        ended = [u["end_date"] for u in ordered if u["end_date"] and u["end_date"] <= t["start_date"]]
        if ended:
            gaps.append((t["start_date"] - max(ended)).total_seconds())
    return round(sum(gaps) / max(len(gaps), 1), 2)


def cosmos_dags(work: Path, mode: str) -> dict[str, str]:
    """A DAG folder with the product's extract and publish DAGs and Cosmos' warehouse DAG; the
    dbt manifest it renders from. Returns the environment that points Airflow at them."""
    import shutil

    from campusdx.core.settings import DBT_PROJECT, executable

    dags = work / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for name in ("extract_sources.py", "publish.py"):
        shutil.copy(REPO / "dags" / name, dags / name)
    shutil.copy(REPO / "benchmarks" / "dags" / "warehouse_cosmos.py", dags / "warehouse.py")
    target = work / "dbt-parse"
    subprocess.run(
        [executable("dbt"), "parse", "--profiles-dir", str(DBT_PROJECT), "--target-path", str(target)],
        cwd=DBT_PROJECT,
        env={**os.environ, "CAMPUSDX_HOME": str(work / "scheduled")},
        check=True,
        capture_output=True,
    )
    return {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "CAMPUSDX_BENCH_COSMOS_MODE": mode,
        "CAMPUSDX_BENCH_DBT_MANIFEST": str(target / "manifest.json"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=None, help="campus size (default: the demo's)")
    parser.add_argument("--days", type=int, default=1, help="simulated days before the incremental cycle")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--warehouse",
        choices=("parts", "cosmos-local", "cosmos-watcher"),
        default="parts",
        help="the warehouse DAG: the product's (a dbt build per part) or Cosmos' (benchmarks/dags/)",
    )
    parser.add_argument("--full-only", action="store_true", help="skip the incremental cycle")
    args = parser.parse_args()

    from campusdx.core.declarations import load_systems
    from campusdx.core.settings import Paths
    from campusdx.demo.campus import generate
    from campusdx.demo.keys import demo_key_file, ensure_demo_key
    from campusdx.demo.runner import prepare, running

    work = Path(args.workdir or tempfile.mkdtemp(prefix="campusdx-sched-bench-"))
    homes = {"floor": work / "floor", "scheduled": work / "scheduled"}
    for home in homes.values():
        generate(home / "sources", scale=args.scale)
        ensure_demo_key(demo_key_file(Paths(home)))
    profile = None if args.warehouse == "parts" else cosmos_dags(work, args.warehouse.removeprefix("cosmos-"))
    prepare(Paths(homes["scheduled"]), profile=profile)
    report = {"scale": args.scale, "days": args.days, "warehouse_dag": args.warehouse, "cycles": {}}
    systems = load_systems()
    with running(Paths(homes["scheduled"]), profile=profile) as airflow:
        airflow.wait_for_dags([f"extract_{d.system}" for d in systems] + ["warehouse", "publish"])
        for name in ("full",) if args.full_only else ("full", "incremental"):
            if name == "incremental":
                for home in homes.values():
                    report["changes"] = _working_days(home, args.days)  # same seed: the same in both
            print(f"{name}: floor ...", flush=True)
            measured_floor = floor(homes["floor"])
            print(f"{name}: scheduled ...", flush=True)
            measured = scheduled(airflow, systems)
            dbt_and_gate = sum(measured_floor[k] for k in WAREHOUSE_STAGES)
            report["cycles"][name] = {
                "floor": measured_floor,
                "scheduled": measured,
                "warehouse_dag_over_dbt_and_gate": round(measured["dag_runs"]["warehouse"] / dbt_and_gate, 2),
                "cycle_over_floor": round(measured["trigger_to_last_receipt"] / measured_floor["work"], 2),
            }
    report["machine"] = machine()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scheduler-{stamp}.json").write_text(
        json.dumps(report, indent=1, default=str), encoding="utf-8"
    )
    size = f"-scale{args.scale:g}" if args.scale else ""  # the demo's size, or a scale of its own
    (RESULTS / f"scheduler-{args.warehouse}{size}-latest.md").write_text(
        _markdown(report, stamp), encoding="utf-8"
    )
    print(_markdown(report, stamp))


def _markdown(report: dict, stamp: str) -> str:
    lines = [
        f"# A scheduled cycle against the work floor ({stamp}; warehouse DAG: {report['warehouse_dag']})",
        "",
        f"Scale {report['scale'] or 'demo default'}; incremental = after {report['days']} simulated day(s). "
        "`.venv/bin/python benchmarks/scheduler_bench.py`",
        "",
        "| cycle | floor: extract / dbt transform / reconcile / gates / dbt feeds / package = work (s) "
        "| scheduled: trigger to last receipt (s) | cycle / floor | warehouse DAG (s) "
        "| warehouse DAG / (dbt + gates) | task instances | no-op task (s) | mean gap between tasks (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in report["cycles"].items():
        f, s = c["floor"], c["scheduled"]
        stages = " / ".join(str(f[k]) for k in ("extract", *WAREHOUSE_STAGES, "package"))
        cells = [
            name,
            f"{stages} = **{f['work']}**",
            f"**{s['trigger_to_last_receipt']}**",
            c["cycle_over_floor"],
            s["dag_runs"].get("warehouse"),
            c["warehouse_dag_over_dbt_and_gate"],
            s["task_instances"],
            s["noop_task_seconds"],
            s["mean_gap_between_tasks"],
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    if report.get("changes"):
        lines += ["", f"What the simulated day(s) changed at the sources: {report['changes']}"]
    lines += ["", "CPU seconds per component during each scheduled cycle:", ""]
    for name, c in report["cycles"].items():
        lines.append(f"- {name}: {c['scheduled']['cpu_seconds']}; DAG runs (s): {c['scheduled']['dag_runs']}")
    m = report["machine"]
    lines += ["", f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
