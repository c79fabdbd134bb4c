"""What the test suite costs this machine: wall time and CPU seconds, whole and in parts.

    .venv/bin/python benchmarks/suite_bench.py                 # whole, chains, rest, check (about 28 min)
    .venv/bin/python benchmarks/suite_bench.py --parts whole

Each part is one `pytest` run (the README's test command, with a selection), alone on the
machine. Around it the machine's CPU time is read from /proc/stat: busy (user, nice, system,
irq, softirq) and idle. ``busy / cores`` is the shortest wall time any scheduling of the same
work could reach on this machine; ``cores x 360`` is what a 6-minute run has. The parts:

- ``whole``: the suite as `make test` runs it;
- ``chains``: only the tests of the end-to-end runs started in the background (tests/cycles.py:
  the demo and two scheduled day cycles on the LocalExecutor, FULL and two day cycles on the
  CeleryExecutor profile), which are made in two sequences of their own;
- ``rest``: every other test (the session's warehouse builds included);
- ``check``: the fast subset, as `make check` runs it (``-m "not slow"``, a pytest-xdist worker
  per core).

Writes ``results/suite-<YYYYMMDD-HHMMSS>.json`` and ``results/suite-latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

CHAINS = [
    "tests/test_e2e.py",
    "tests/test_scheduled_cycles.py",
    "tests/test_sharing_cycle.py",
    "tests/integration/test_celery.py",
]
"""The test files whose tests wait for the background end-to-end runs (and need nothing else)."""

PARTS = {
    "whole": [],
    "chains": CHAINS,
    "rest": [arg for path in CHAINS for arg in ("--deselect", path)],
    "check": ["-m", "not slow", "-n", "logical", "--dist", "worksteal"],
}


def cpu_times() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot (/proc/stat, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / hz, (idle + iowait) / hz


def run_part(name: str, args: list[str]) -> dict:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    load = os.getloadavg()[0]
    busy0, idle0 = cpu_times()
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    busy1, idle1 = cpu_times()
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    return {
        "part": name,
        "argv": argv[1:],
        "exit": done.returncode,
        "summary": re.sub(r"=+", "", summary).strip(),
        "wall_s": round(wall, 1),
        "busy_cpu_s": round(busy1 - busy0, 1),
        "idle_cpu_s": round(idle1 - idle0, 1),
        "load_before": round(load, 2),
    }


def latest() -> list[dict]:
    """The newest measurement of each part (results/suite-*.json), in the order of PARTS."""
    found: dict[str, dict] = {}
    for path in sorted(RESULTS.glob("suite-*.json")):  # the stamp sorts by time
        run = json.loads(path.read_text(encoding="utf-8"))
        for row in run["parts"]:
            found[row["part"]] = {**row, "at": run["at"]}
    return [found[name] for name in PARTS if name in found]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ",".join(PARTS))
    args = parser.parse_args()
    names = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; the parts are {sorted(PARTS)}")
    cores = os.cpu_count() or 1
    rows = []
    for name in names:
        print(f"{name} ...", flush=True)
        row = run_part(name, PARTS[name])
        row["floor_s"] = round(row["busy_cpu_s"] / cores, 1)
        rows.append(row)
        print(f"  {row['summary']}: wall {row['wall_s']} s, busy {row['busy_cpu_s']} CPU-s", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    machine = f"{platform.processor() or platform.machine()}, {cores} cores"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"suite-{stamp}.json").write_text(
        json.dumps({"at": stamp, "cores": cores, "machine": machine, "parts": rows}, indent=1) + "\n",
        encoding="utf-8",
    )
    lines = [
        f"# The test suite on this machine ({machine})",
        "",
        "`.venv/bin/python benchmarks/suite_bench.py [--parts ...]`: each part's latest run",
        "",
        "| part | measured | tests | wall (s) | busy CPU-s | idle CPU-s | floor: busy / cores (s) "
        "| load before |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in latest():
        lines.append(
            f"| {r['part']} | {r['at']} | {r['summary']} | {r['wall_s']} | {r['busy_cpu_s']} "
            f"| {r['idle_cpu_s']} | {r['floor_s']} | {r['load_before']} |"
        )
    lines += [
        "",
        f"A 6-minute run has {cores} x 360 = {cores * 360} CPU-s on this machine. The floor is the",
        "shortest wall time any scheduling of the same work could reach here.",
    ]
    (RESULTS / "suite-latest.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
