"""The sharing service under load: 400 concurrent users, a snapshot switch mid-run, capacity.

    .venv/bin/python benchmarks/sharing_bench.py [--scale 1] [--users 400] [--seconds 120]
                                                 [--workers 1] [--work DIR]

The campus at ``--scale`` is generated and its warehouse built in one process (no Airflow), and
published as the current snapshot; then one working day is applied (``advance``) and built, not
yet published. ``campusdx serve`` runs in its own process on 127.0.0.1 (``--workers`` uvicorn
processes); 40 applications each hold approved grants on students, staff, assets and orgs, and
each user is one of them (so no application exceeds its rate limit). The load generator is a
bounded asyncio client (httpx) in this process, on 127.0.0.1 only:

- **baseline**: one client, one request at a time, 30 of each request kind: its median latency;
- **load**: ``--users`` users for ``--seconds`` seconds (started over the first 10 s), each
  waiting 1 to 3 s between requests, as a person or a syncing system does, on a mix of paged
  lists (40 %, following ``next_cursor`` for up to 3 pages), single-record lookups (40 %) and
  ``changed_since`` syncs (20 %). Half-way through, the built day is published as a new snapshot
  (the switch). Every answer's records are checked against the snapshot the answer names: a
  record that does not match it counts as an answer from a half-switched snapshot;
- **capacity**: no wait between requests, with 25, 50, 100, 200 and 400 concurrent users for
  20 s each: throughput and p95; the throughput where p95 first reaches 2 s is the capacity.

Targets: 0 errors, p95 under 200 ms, no answer from a half-switched snapshot. Results:
``benchmarks/results/sharing-<stamp>.json`` and ``sharing-latest.md``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.extract_bench import RESULTS, machine  # noqa: E402
from benchmarks.scheduler_bench import _python  # noqa: E402
from benchmarks.snapshot_bench import _TRANSFORM  # noqa: E402

DATASETS = ("students", "staff", "assets", "orgs")
APPLICATIONS = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(work: Path, scale: float) -> Path:
    """The campus built and published (snapshot 1), then a day later built again (not published)."""
    from campusdx.core import snapshots
    from campusdx.core.settings import Paths
    from campusdx.demo.campus import generate
    from campusdx.demo.keys import demo_key_file, ensure_demo_key

    home = work / "home"
    generate(home / "sources", scale=scale)
    ensure_demo_key(demo_key_file(Paths(home)))
    started = time.perf_counter()
    _python(home, _TRANSFORM)
    snapshots.publish(Paths(home), "bench-day-0")
    subprocess.run(
        [str(Path(sys.executable).with_name("campusdx")), "advance", "--days", "1"],
        env={**os.environ, "CAMPUSDX_HOME": str(home)},
        check=True,
        capture_output=True,
    )
    _python(home, _TRANSFORM)
    print(f"built scale {scale} and its next day in {time.perf_counter() - started:.0f} s", flush=True)
    return home


def principals(home: Path) -> list[str]:
    """40 applications with approved grants on every benchmarked dataset; one token each."""
    from campusdx.core.settings import Paths
    from campusdx.service.store import Store

    store = Store(Paths(home))
    steward_of = {"students": "106", "staff": "103", "assets": "105", "orgs": "103"}
    stewards = {
        dept: store.add_principal(f"steward {dept}", "steward", dept)[0] for dept in set(steward_of.values())
    }
    tokens = []
    ends = date.today() + timedelta(days=30)
    for n in range(APPLICATIONS):
        app, _ = store.add_principal(f"campus system {n}", "application", "402")
        for dataset in DATASETS:
            grant = store.request_grant(app.id, dataset, _open_fields(dataset), None, "负载测试", ends)
            store.decide(grant.id, stewards[steward_of[dataset]].id, True)
        tokens.append(store.issue_token(app, ttl_s=6 * 3600))
    store.close()
    return tokens


def _open_fields(dataset: str) -> list[str]:
    from campusdx.service.catalog import datasets

    return datasets()[dataset].open_fields


def keys(home: Path) -> dict[str, list[str]]:
    """Keys to look up, per dataset, from the current snapshot."""
    from campusdx.core import snapshots
    from campusdx.core.settings import Paths
    from campusdx.service.catalog import datasets

    out = {}
    with snapshots.connect(Paths(home)) as conn:
        for name in DATASETS:
            ds = datasets()[name]
            where = f"where {ds.history.current}" if ds.history else ""
            out[name] = [r[0] for r in conn.execute(f"select {ds.key} from {ds.relation} {where}").fetchall()]
    return out


def truth(home: Path, snapshot_id: str) -> dict[tuple[str, str], str]:
    """A digest of every served record of one snapshot, by dataset and key, as the service serves it
    to an application holding every open field (code names included)."""
    from campusdx.core.settings import Paths
    from campusdx.service.catalog import datasets
    from campusdx.service.query import Access, Reader

    reader = Reader(Paths(home), timeout_s=600)
    out = {}
    sid, _ = reader.current()
    assert sid == snapshot_id, (sid, snapshot_id)
    for name in DATASETS:
        ds = datasets()[name]
        access = Access(frozenset(ds.open_fields), None, frozenset(ds.personal_fields))
        cursor = None
        while True:
            page = reader.page(ds, access, limit=1000, cursor=cursor)
            for record in page.records:
                out[(name, str(record[ds.key]))] = _digest(record)
            cursor = page.next_cursor
            if cursor is None:
                break
    reader.close()
    return out


def _digest(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Run:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.mixed = 0
        self.checked = 0
        self.snapshots: dict[str, int] = {}
        self.truths: dict[str, dict] = {}
        self.seen: list[tuple[str, str, str, str]] = []

    def record(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def check(self, dataset: str, key_field: str, body: dict, records: list[dict]) -> None:
        """Keep what each answer said, to be compared with its snapshot once the run is over."""
        sid = body["snapshot"]
        self.snapshots[sid] = self.snapshots.get(sid, 0) + 1
        # the first and the last record of each answer: an answer that mixed two snapshots
        # would show it in any of its records, and digesting every one would load the client
        sample = records[:1] + records[-1:] if len(records) > 1 else records
        self.seen.extend((sid, dataset, str(r[key_field]), _digest(r)) for r in sample)

    def verify(self) -> None:
        for sid, dataset, key, digest in self.seen:
            self.checked += 1
            if self.truths[sid].get((dataset, key)) != digest:
                self.mixed += 1


async def _call(client: httpx.AsyncClient, run: Run, kind: str, url: str, params: dict, token: str):
    started = time.perf_counter()
    try:
        r = await client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        run.errors.append(f"{kind}: {type(exc).__name__}")
        return None
    run.record(kind, time.perf_counter() - started)
    if r.status_code != 200:
        run.errors.append(f"{kind}: {r.status_code} {r.text[:200]}")
        return None
    return r.json()


async def one_request(client, run: Run, rng: random.Random, token: str, keys_of: dict, marks: dict) -> None:
    from campusdx.service.catalog import datasets

    dataset = rng.choice(DATASETS)
    ds = datasets()[dataset]
    roll = rng.random()
    if roll < 0.4:
        cursor = None
        for _ in range(rng.randint(1, 3)):
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            body = await _call(client, run, "list page", f"/v1/data/{dataset}", params, token)
            if body is None:
                return
            run.check(dataset, ds.key, body, body["records"])
            cursor = body["next_cursor"]
            if cursor is None:
                return
    elif roll < 0.8:
        key = rng.choice(keys_of[dataset])
        body = await _call(client, run, "lookup", f"/v1/data/{dataset}/{key}", {}, token)
        if body is not None:
            run.check(dataset, ds.key, body, [body["record"]])
    else:
        params = {"limit": 100, "changed_since": marks.get(dataset, "20000101T000000000000Z")}
        body = await _call(client, run, "changed_since", f"/v1/data/{dataset}", params, token)
        if body is not None:
            run.check(dataset, ds.key, body, body["records"])


async def users(
    base: str,
    tokens: list[str],
    keys_of: dict,
    marks: dict,
    count: int,
    seconds: float,
    wait: tuple[float, float] | None,
    run: Run,
    during=None,
) -> float:
    """``count`` users for ``seconds``; the wall time. ``during``: a coroutine started at half time."""
    # a client (one keep-alive connection) per user, as each campus system or person has its own:
    # httpcore's pool scans every connection of a shared pool on each request, which at hundreds of
    # connections made the load generator, not the service, the bottleneck
    started = time.perf_counter()
    end = started + seconds

    async def user(n: int) -> None:
        rng = random.Random(n)
        token = tokens[n % len(tokens)]
        async with httpx.AsyncClient(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=1)
        ) as client:
            if wait:
                await asyncio.sleep(rng.uniform(0, min(10.0, seconds / 4)))
            while time.perf_counter() < end:
                await one_request(client, run, rng, token, keys_of, marks)
                if wait:
                    await asyncio.sleep(rng.uniform(*wait))

    tasks = [asyncio.create_task(user(n)) for n in range(count)]
    if during is not None:
        await asyncio.sleep(seconds / 2)
        await during()
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "n": len(values),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--capacity-seconds", type=float, default=20)
    parser.add_argument("--work", type=Path, help="reuse a built home's parent directory")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="campusdx-sharing-bench-"))
    home = work / "home"
    if not (home / "snapshots").exists():
        home = build(work, args.scale)
    else:
        shutil.rmtree(home / "sharing", ignore_errors=True)
    os.environ["CAMPUSDX_HOME"] = str(home)
    from campusdx.core import snapshots
    from campusdx.core.settings import Paths

    paths = Paths(home)
    tokens = principals(home)
    keys_of = keys(home)
    first = snapshots.current_id(paths)
    run = Run()
    run.truths[first] = truth(home, first)

    port = _free_port()
    env = {
        **os.environ,
        "CAMPUSDX_HOME": str(home),
        "CAMPUSDX_SHARING_RATE": "50",
        "CAMPUSDX_SHARING_BURST": "100",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("campusdx")),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    report: dict = {
        "scale": args.scale,
        "users": args.users,
        "seconds": args.seconds,
        "workers": args.workers,
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/openapi.json").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # the sync marks a system would hold: the answer to a full listing a day before
        marks = {name: "20000101T000000000000Z" for name in DATASETS}
        with httpx.Client(base_url=base, timeout=60) as client:
            for name in DATASETS:
                body = client.get(
                    f"/v1/data/{name}", params={"limit": 1}, headers={"Authorization": f"Bearer {tokens[0]}"}
                ).json()
                marks[name] = body["next_changed_since"] or marks[name]

        # baseline: one client, one request at a time
        base_run = Run()

        async def baseline():
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                rng = random.Random(7)
                for kind in ("list page", "lookup", "changed_since"):
                    for _ in range(30):
                        dataset = rng.choice(DATASETS)
                        if kind == "list page":
                            await _call(
                                client, base_run, kind, f"/v1/data/{dataset}", {"limit": 100}, tokens[0]
                            )
                        elif kind == "lookup":
                            key = rng.choice(keys_of[dataset])
                            await _call(client, base_run, kind, f"/v1/data/{dataset}/{key}", {}, tokens[0])
                        else:
                            params = {"limit": 100, "changed_since": marks[dataset]}
                            await _call(client, base_run, kind, f"/v1/data/{dataset}", params, tokens[0])

        asyncio.run(baseline())
        report["baseline"] = {k: _percentiles(v) for k, v in base_run.latencies.items()}
        report["baseline_errors"] = base_run.errors[:10]
        print("baseline", json.dumps(report["baseline"]), flush=True)

        switched = {}

        async def switch():
            started = time.perf_counter()
            snapshot = await asyncio.to_thread(snapshots.publish, paths, "bench-day-1")
            switched["id"] = snapshot.id
            switched["publish_s"] = round(time.perf_counter() - started, 3)

        wall = asyncio.run(
            users(base, tokens, keys_of, marks, args.users, args.seconds, (1.0, 3.0), run, during=switch)
        )
        if "id" in switched:
            run.truths[switched["id"]] = truth(home, switched["id"])
        run.verify()
        every = [x for v in run.latencies.values() for x in v]
        report["load"] = {
            "wall_s": round(wall, 1),
            "requests": len(every),
            "throughput_rps": round(len(every) / wall, 1),
            "errors": len(run.errors),
            "error_samples": run.errors[:10],
            "all": _percentiles(every),
            "per_kind": {k: _percentiles(v) for k, v in run.latencies.items()},
            "snapshots_answering": run.snapshots,
            "switch": switched,
            "records_checked": run.checked,
            "records_not_matching_their_snapshot": run.mixed,
        }
        print("load", json.dumps(report["load"], ensure_ascii=False), flush=True)

        capacity = []
        for count in (25, 50, 100, 200, 400):
            cap_run = Run()
            wall = asyncio.run(
                users(base, tokens, keys_of, marks, count, args.capacity_seconds, None, cap_run)
            )
            every = [x for v in cap_run.latencies.values() for x in v]
            step = {
                "users": count,
                "throughput_rps": round(len(every) / wall, 1),
                "errors": len(cap_run.errors),
                **_percentiles(every),
            }
            capacity.append(step)
            print("capacity", json.dumps(step), flush=True)
        report["capacity"] = capacity
        reached = [s for s in capacity if s.get("p95_ms", 0) >= 2000]
        report["capacity_at_p95_2s_rps"] = reached[0]["throughput_rps"] if reached else None
        report["capacity_max_rps"] = max(s["throughput_rps"] for s in capacity)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report["machine"] = machine()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"sharing-{stamp}.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (RESULTS / "sharing-latest.md").write_text(_markdown(report, stamp), encoding="utf-8")
    print(_markdown(report, stamp))
    return 0


def _markdown(report: dict, stamp: str) -> str:
    load = report["load"]
    lines = [
        f"# Sharing service under load ({stamp})",
        "",
        f"`.venv/bin/python benchmarks/sharing_bench.py --scale {report['scale']:g} "
        f"--users {report['users']} "
        f"--seconds {report['seconds']:g} --workers {report['workers']}`: `campusdx serve` on 127.0.0.1, "
        "the load generator (asyncio + httpx) in another process on the same 2 cores.",
        "",
        "## Baseline: one client, one request at a time",
        "",
        "| request | n | p50 (ms) | p95 (ms) |",
        "|---|---|---|---|",
    ]
    for kind, p in report["baseline"].items():
        lines.append(f"| {kind} | {p['n']} | {p['p50_ms']} | {p['p95_ms']} |")
    lines += [
        "",
        f"## {report['users']} users, each waiting 1–3 s between requests, {load['wall_s']} s, "
        "one snapshot switch",
        "",
        f"Requests {load['requests']}, throughput {load['throughput_rps']}/s, errors **{load['errors']}**; "
        f"snapshot switched at half time (publication {load['switch'].get('publish_s')} s); "
        "answers per snapshot "
        f"{load['snapshots_answering']}; records checked against the snapshot their answer names "
        f"{load['records_checked']}, not matching **{load['records_not_matching_their_snapshot']}**.",
        "",
        "| request | n | p50 (ms) | p95 (ms) | p99 (ms) | p95 ÷ baseline p50 |",
        "|---|---|---|---|---|---|",
    ]
    for kind, p in {**load["per_kind"], "all": load["all"]}.items():
        floor = report["baseline"].get(kind, {}).get("p50_ms")
        ratio = f"{p['p95_ms'] / floor:.1f}" if floor else ""
        lines.append(f"| {kind} | {p['n']} | {p['p50_ms']} | **{p['p95_ms']}** | {p['p99_ms']} | {ratio} |")
    lines += [
        "",
        "Target: 0 errors, p95 under 200 ms, no answer from a half-switched snapshot.",
        "",
        "## Capacity: no wait between requests",
        "",
        "| users | throughput (/s) | p50 (ms) | p95 (ms) | p99 (ms) | errors |",
        "|---|---|---|---|---|---|",
    ]
    for s in report["capacity"]:
        lines.append(
            f"| {s['users']} | {s['throughput_rps']} | {s.get('p50_ms')} | {s.get('p95_ms')} "
            f"| {s.get('p99_ms')} | {s['errors']} |"
        )
    at = report["capacity_at_p95_2s_rps"]
    lines += [
        "",
        f"Throughput where p95 first reaches 2 s: **{at if at is not None else 'not reached'}**"
        f"; the highest throughput measured: {report['capacity_max_rps']}/s.",
        "",
        f"Machine: {json.dumps(report['machine'], ensure_ascii=False)}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
