"""DELTA benchmark: the time to compute a DELTA with 1 % of the rows changed, per PX dataset.

    .venv/bin/python benchmarks/delta_bench.py --home DIR [--repeat 3] [--changed 0.01]

``--home`` is a home already generated, extracted and built (``benchmarks/gate_bench.py --keep``
or ``campusdx demo`` leave one). For each dataset its feed is read from the warehouse and kept as
the platform's state; then a copy with ``--changed`` of the rows altered (a third updated, a
third deleted, a third new) is diffed against it:

- **campusdx**: ``campusdx.exchange.delta.compute_delta`` (DuckDB over the Arrow feed and the
  Parquet state), as the publisher runs it;
- **baseline**: the same diff row by row in Python (dicts keyed by primary key), the obvious
  hand-written way, measured in the same run.

Both must find the same changes (checked). Results: ``benchmarks/results/delta-<stamp>.json``
and ``benchmarks/results/delta-latest.md``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.extract_bench import RESULTS, machine  # noqa: E402


def _changed(table, dataset, share: float, rng: random.Random):
    """The feed with ``share`` of its rows changed: updated, deleted or new, a third each."""
    import pyarrow as pa

    rows = table.to_pylist()
    n = max(3, int(len(rows) * share))
    picked = rng.sample(range(len(rows)), min(n, len(rows)))
    third = len(picked) // 3
    last = dataset.field_codes[-1] if dataset.field_codes[-1] not in dataset.primary_key else None
    victim = last or next(f for f in dataset.field_codes if f not in dataset.primary_key)
    for i in picked[:third]:
        rows[i] = {**rows[i], victim: f"{rows[i][victim] or ''}*"}
    gone = set(picked[third : 2 * third])
    new = [{**rows[i], **{k: f"{rows[i][k]}~new" for k in dataset.primary_key}} for i in picked[2 * third :]]
    kept = [r for i, r in enumerate(rows) if i not in gone] + new
    return pa.Table.from_pylist(kept, schema=table.schema)


def _python_diff(dataset, before, after) -> dict:
    key = lambda r: tuple(r[k] for k in dataset.primary_key)  # noqa: E731
    old = {key(r): r for r in before.to_pylist()}
    new = {key(r): r for r in after.to_pylist()}
    ops = {k: "I" for k in new.keys() - old.keys()}
    ops |= {k: "D" for k in old.keys() - new.keys()}
    ops |= {k: "U" for k in new.keys() & old.keys() if new[k] != old[k]}
    return ops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a home already built")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.01, help="share of rows changed (0.01 = 1 %%)")
    args = parser.parse_args(argv)
    os.environ["CAMPUSDX_HOME"] = str(args.home)

    from campusdx.core.profile import load_profile
    from campusdx.exchange import delta as states
    from campusdx.pipeline import published_datasets, read_feed

    profile = load_profile()
    rng = random.Random(20261203)
    per_dataset, same = {}, True
    with tempfile.TemporaryDirectory() as tmp:
        for code in published_datasets():
            dataset = profile.dataset(code)
            feed = read_feed(code)
            state = Path(tmp) / f"{code}.parquet"
            states.write_table(state, feed)
            now = _changed(feed, dataset, args.changed, rng)
            timings = {"campusdx": [], "baseline": []}
            for _ in range(args.repeat):
                start = time.perf_counter()
                got = states.compute_delta(profile, dataset, now, state)
                timings["campusdx"].append(time.perf_counter() - start)
                start = time.perf_counter()
                expected = _python_diff(dataset, feed, now)
                timings["baseline"].append(time.perf_counter() - start)
            found = {tuple(r[k] for k in dataset.primary_key): r["CZLX"] for r in got.to_pylist()}
            same &= found == expected
            per_dataset[code] = {
                "rows": feed.num_rows,
                "delta_rows": got.num_rows,
                "campusdx_s": min(timings["campusdx"]),
                "baseline_s": min(timings["baseline"]),
            }
            print(code, json.dumps(per_dataset[code]), flush=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report = {
        "when": stamp,
        "machine": machine(),
        "changed": args.changed,
        "repeat": args.repeat,
        "datasets": per_dataset,
        "same_changes": same,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"delta-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "delta-latest.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0 if same else 1


def _markdown(report: dict) -> str:
    m, rows = report["machine"], report["datasets"]
    total = {k: sum(d[k] for d in rows.values()) for k in ("rows", "delta_rows", "campusdx_s", "baseline_s")}
    lines = [
        "# DELTA benchmark",
        "",
        f"{report['when']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB · "
        f"{report['changed']:.0%} of the rows changed · fastest of {report['repeat']}",
        "",
        "| dataset | feed rows | delta rows | campusdx (DuckDB) s | baseline (Python dicts) s |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {c} | {d['rows']:,} | {d['delta_rows']:,} | {d['campusdx_s']:.3f} | {d['baseline_s']:.3f} |"
            for c, d in rows.items()
        ],
        f"| all | {total['rows']:,} | {total['delta_rows']:,} | {total['campusdx_s']:.3f} | "
        f"{total['baseline_s']:.3f} |",
        "",
        f"**campusdx vs baseline: {total['baseline_s'] / total['campusdx_s']:.2f}× faster.** "
        f"Same changes found by both: {'yes' if report['same_changes'] else 'NO'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
