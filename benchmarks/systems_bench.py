"""Per-system extraction benchmark: the simulated campus, every declared table of every source system,
the hand-written baseline and campusdx in the same run, then one simulated day and the incremental run.

    .venv/bin/python benchmarks/systems_bench.py [--scale 1] [--repeat 2] [--systems hr,student,finance,asset]
        [--keep] [--pg-admin-url URL] [--mysql-admin-url URL]

The campus (demo/campus.py) is generated into a temporary folder and its systems are put where
production has them: 人事 hr and 财务 finance in a scratch PostgreSQL database, 学工 student in a
scratch MariaDB database (demo.targets.copy_system), 资产 asset left in SQLite. Then, per system:

(a) baseline  pandas.read_sql(SELECT * FROM <table>, chunksize=50_000), each chunk .to_parquet
(b) campusdx  campusdx.sources.sql.extract_table for every enabled table (full: empty landing)
(f) files     campusdx.sources.files.extract_file for the asset office's exports (no baseline)
(i) incremental  (b) again on a copy of one full run's landing zone after demo.life.advance(1 day)
(i')          (i) with every key snapshot taken now (key_snapshot=True), on its own copy: the run on
              which the periodic snapshots fall due

Each measurement runs in its own child process (peak RSS per run); --repeat attempts interleaved,
the fastest kept. The scratch databases are dropped at the end, also on failure or Ctrl-C (not
with --keep). Never run by pytest. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.extract_bench import (  # noqa: E402  (the repository root is on sys.path only now)
    CHUNK_ROWS,
    DEFAULT_ADMIN_URL,
    RESULTS,
    _admin,
    _server_version,
    _terminate,
    machine,
)

SYSTEMS = ("hr", "student", "finance", "asset")
SERVER = {"hr": "PostgreSQL", "finance": "PostgreSQL", "student": "MariaDB", "asset": "SQLite"}
DEFAULT_MYSQL_ADMIN_URL = "mysql+pymysql://root@127.0.0.1:3306/mysql?charset=utf8mb4"
SEED = 20261122
BIG_TABLE = ("finance", "gl_fl")
TARGETS = {"ratio_vs_baseline": 3, "peak_rss_mib": 1024, "gl_fl_rows_per_s": 300_000, "incremental": 0.10}
RUNS = {
    "baseline": "(a) baseline: pandas.read_sql(chunksize=50k) -> to_parquet",
    "campusdx": "(b) campusdx: sql.extract_table, full",
    "files": "(f) campusdx: files.extract_file",
    "incremental": "(i) campusdx: sql.extract_table, incremental",
    "incremental_all_keys": "(i') (i) with every key snapshot taken",
}


# --------------------------------------------------------------------------- the measurements (child)


def _parquet_rows(con, files: list[Path]) -> int:
    if not files:
        return 0
    return con.execute(
        "SELECT count(*) FROM read_parquet(?, union_by_name = true)", [[str(p) for p in files]]
    ).fetchone()[0]


def _mib(files: list[Path]) -> float:
    return sum(p.stat().st_size for p in files) / 2**20


def _prepare_baseline(spec: dict, out: Path):
    import pandas as pd
    import pyarrow.parquet  # noqa: F401  (pandas imports it on the first to_parquet: not timed)
    import sqlalchemy as sa

    sa.create_engine(spec["url"]).dispose()  # imports the dialect and its driver before the clock

    def work() -> list[dict]:
        engine = sa.create_engine(spec["url"])
        tables = []
        try:
            for name in spec["tables"]:
                folder = out / name
                folder.mkdir(parents=True)
                started, rows = time.perf_counter(), 0
                for i, chunk in enumerate(pd.read_sql(f"SELECT * FROM {name}", engine, chunksize=CHUNK_ROWS)):
                    chunk.to_parquet(folder / f"part-{i:05d}.parquet", engine="pyarrow", index=False)
                    rows += len(chunk)
                tables.append({"table": name, "rows": rows, "seconds": time.perf_counter() - started})
        finally:
            engine.dispose()
        return tables

    def verify(tables: list[dict], con) -> None:
        for t in tables:
            files = sorted((out / t["table"]).glob("*.parquet"))
            t["landed_rows"] = _parquet_rows(con, files)
            t["parquet_mib"] = _mib(files)

    return work, verify


def _prepare_campusdx(spec: dict, out: Path):
    import adbc_driver_postgresql.dbapi  # noqa: F401  (~1.5 s, imported lazily by the extractor: not timed)
    import sqlalchemy as sa

    import campusdx.sources.arrow_pg  # noqa: F401  (likewise)
    from campusdx.core.declarations import load_systems
    from campusdx.sources.landing import Landing
    from campusdx.sources.sql import SourceConnection, extract_table

    system, url = spec["system"], spec["url"]
    decl = replace(next(d for d in load_systems() if d.system == system), default_url=url)
    declared = decl.enabled_tables
    force = True if spec.get("force_key_snapshot") else None  # (i'): every snapshot, due or not
    landing = Landing(out)
    sa.create_engine(url).dispose()

    def work() -> list[dict]:
        tables = []
        source = SourceConnection(url)  # one engine (and ADBC connection) for the system's tables
        for table in declared:
            started = time.perf_counter()
            r = extract_table(decl, table, url, landing, key_snapshot=force, source=source)
            tables.append(
                {
                    "table": table.name,
                    "rows": r.rows,
                    "tombstones": r.tombstones,
                    "mode": r.mode,
                    "seconds": time.perf_counter() - started,
                    "batch_id": r.batch_id,
                    "deletes": table.deletes,
                    "snapshot_due": table.deletes == "key_snapshot"
                    and (force is True or not table.snapshot_every_hours),
                }
            )
        source.close()
        return tables

    def verify(tables: list[dict], con) -> None:
        for t in tables:
            path = landing.data_path(system, t["table"], t["batch_id"])
            t["landed_rows"], t["landed_tombstones"] = con.execute(
                "SELECT count(*) FILTER (WHERE NOT _deleted), count(*) FILTER (WHERE _deleted) "
                "FROM read_parquet(?)",
                [str(path)],
            ).fetchone()
            manifest = json.loads(landing.manifest_path(system, t["table"], t["batch_id"]).read_text("utf-8"))
            t["keys"] = manifest["keys"]
            t["cursor_from"] = manifest["cursor"]["from"]
            t["parquet_mib"] = _mib([path])

    return work, verify


def _prepare_files(spec: dict, out: Path):
    import pandas  # noqa: F401  (pyarrow imports it on the first pa.array, ~1 s here: not timed)

    from campusdx.core.declarations import load_systems
    from campusdx.sources.files import extract_file, load_file_decls
    from campusdx.sources.landing import Landing

    system, home = spec["system"], Path(spec["home"])
    decl = next(d for d in load_systems() if d.system == system)
    files = [f for f in load_file_decls(decl.path) if f.enabled]
    landing = Landing(out)

    def work() -> list[dict]:
        tables = []
        for f in files:
            started = time.perf_counter()
            batches = extract_file(system, f, home, landing)
            tables.append(
                {
                    "table": f.name,
                    "rows": sum(b.rows for b in batches),
                    "seconds": time.perf_counter() - started,
                    "files": len(f.matching_files(home)),
                    "batch_ids": [b.batch_id for b in batches],
                }
            )
        return tables

    def verify(tables: list[dict], con) -> None:
        for t in tables:
            paths = [landing.data_path(system, t["table"], b) for b in t["batch_ids"]]
            t["landed_rows"] = _parquet_rows(con, paths)
            t["parquet_mib"] = _mib(paths)

    return work, verify


PREPARE: dict[str, Callable] = {
    "baseline": _prepare_baseline,
    "campusdx": _prepare_campusdx,
    "incremental": _prepare_campusdx,  # the same call; the landing zone it is given holds a full run
    "incremental_all_keys": lambda spec, out: _prepare_campusdx({**spec, "force_key_snapshot": True}, out),
    "files": _prepare_files,
}


def _peak_rss_mib() -> tuple[float, float | None]:
    """(ru_maxrss, VmHWM) of this process in MiB.

    On Linux ``ru_maxrss`` carries the parent's peak over into a child through fork/exec (a child
    of a 550 MiB parent reports at least 550 MiB); ``VmHWM`` is the peak of the child's own
    address space. Both are recorded; VmHWM is the figure reported.
    """
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return ru_maxrss, int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss, None


def _generate(spec: dict) -> dict:
    """The simulated campus, generated in a child so the parent stays small (see _peak_rss_mib)."""
    from campusdx.demo.campus import generate

    started = time.monotonic()
    campus = generate(Path(spec["out"]), seed=spec["seed"], scale=spec["scale"])
    return {"seconds": round(time.monotonic() - started, 1), "sizes": campus.sizes, "rows": campus.rows}


def child(kind: str) -> None:
    """One measurement, described by a JSON spec on stdin; prints one JSON line."""
    import duckdb

    spec = json.loads(sys.stdin.read())
    if kind == "generate":
        print(json.dumps(_generate(spec)))
        return
    with tempfile.TemporaryDirectory(prefix=f"{kind}-", dir=spec["tmp"]) as tmp:
        out = Path(spec["out"]) if spec.get("out") else Path(tmp)
        work, verify = PREPARE[kind](spec, out)
        _, rss_before = _peak_rss_mib()
        started = time.perf_counter()  # imports done: time the work only
        tables = work()
        seconds = time.perf_counter() - started
        ru_maxrss, peak = _peak_rss_mib()
        with duckdb.connect() as con:
            verify(tables, con)
    rows = sum(t["rows"] for t in tables)
    print(
        json.dumps(
            {
                "run": kind,
                "system": spec["system"],
                "rows": rows,
                "seconds": seconds,
                "rows_per_s": rows / seconds if seconds else None,
                "peak_rss_mib": ru_maxrss if peak is None else peak,
                "ru_maxrss_mib": ru_maxrss,
                "rss_after_imports_mib": rss_before,
                "parquet_mib": sum(t["parquet_mib"] for t in tables),
                "tables": tables,
            }
        )
    )


# --------------------------------------------------------------------------- the parent


def _measure(kind: str, spec: dict, work: Path) -> dict:
    """Run one child; the spec (URLs included) goes through stdin, never the command line. The
    child's temporary folders go under ``work``, removed at the end even when a child is killed."""
    spec = {**spec, "tmp": str(work)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
    load, started = os.getloadavg()[0], time.monotonic()
    proc = subprocess.run(command, input=json.dumps(spec), capture_output=True, text=True, cwd=REPO)
    if proc.returncode:
        raise RuntimeError(f"{kind} {spec['system']} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    return {**json.loads(last), "process_seconds": time.monotonic() - started, "load_before": load}


def _check(r: dict, expected: dict[str, int]) -> None:
    """Every table landed what the source holds (rows counted by DuckDB over the Parquet files)."""
    for t in r["tables"]:
        want = expected[t["table"]]
        if t["rows"] != want or t["landed_rows"] != want:
            raise RuntimeError(
                f"{r['run']} {r['system']}.{t['table']}: reported {t['rows']} rows, "
                f"{t['landed_rows']} in the Parquet files, the source has {want}"
            )
        if t.get("landed_tombstones", 0) != t.get("tombstones", 0):
            raise RuntimeError(f"{r['run']} {r['system']}.{t['table']}: tombstones do not match the result")


def _best(attempts: list[dict]) -> dict:
    """The fastest attempt, the highest peak RSS of all; per table the fastest of its attempts."""
    best = dict(min(attempts, key=lambda r: r["seconds"]))
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in attempts)
    best["ru_maxrss_mib"] = max(r["ru_maxrss_mib"] for r in attempts)
    best["attempts_seconds"] = [round(r["seconds"], 3) for r in attempts]
    best["attempts_load_before"] = [round(r["load_before"], 2) for r in attempts]
    best["tables"] = [
        {**t, "seconds": min(r["tables"][i]["seconds"] for r in attempts)}
        for i, t in enumerate(best["tables"])
    ]
    return best


def _engine(url: str):
    import sqlalchemy as sa

    return sa.create_engine(url, poolclass=sa.NullPool)


def _counts(url: str, tables: list[str]) -> dict[str, int]:
    import sqlalchemy as sa

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
    finally:
        engine.dispose()


def _count_since(url: str, table: str, cursor: str, lower: str) -> int:
    """Rows an incremental run must land: cursor >= the lower bound its manifest records."""
    import sqlalchemy as sa

    from campusdx.sources.sql import _typed_bound  # the extractor's own typing of the bound

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            kind = next(c["type"] for c in sa.inspect(conn).get_columns(table) if c["name"] == cursor)
            sql = sa.text(f"SELECT count(*) FROM {table} WHERE {cursor} >= :bound")
            return conn.execute(sql, {"bound": _typed_bound(lower, kind)}).scalar_one()
    finally:
        engine.dispose()


def _admin_url(text: str, backend: str, driver: str):
    from sqlalchemy.engine import make_url

    url = make_url(text)
    if url.get_backend_name() != backend:
        raise SystemExit(f"{backend} admin URL expected, got a {url.get_backend_name()} URL")
    if "+" not in url.drivername:
        url = url.set(drivername=f"{backend}+{driver}")
    return url


class Scratch:
    """The scratch databases of one run: created on demand, dropped by ``drop`` whatever happened."""

    def __init__(self, pg_admin, mysql_admin) -> None:
        self.pg_admin, self.mysql_admin = pg_admin, mysql_admin
        self.name = f"campusdx_bench_{secrets.token_hex(4)}"
        self.pg: str | None = None
        self.mysql: str | None = None

    def create_pg(self) -> str:
        admin = self.pg_admin.render_as_string(hide_password=False)
        _admin(
            admin,
            f"CREATE DATABASE \"{self.name}\" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
        )
        self.pg = self.pg_admin.set(database=self.name).render_as_string(hide_password=False)
        print(f"scratch database {self.pg_admin.set(database=self.name).render_as_string()}", flush=True)
        return self.pg

    def create_mysql(self) -> str:
        import sqlalchemy as sa

        engine = _engine(self.mysql_admin)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                )
        finally:
            engine.dispose()
        url = self.mysql_admin.set(database=self.name).update_query_dict({"charset": "utf8mb4"})
        self.mysql = url.render_as_string(hide_password=False)
        print(f"scratch database {url.render_as_string()}", flush=True)
        return self.mysql

    def drop(self) -> None:
        import sqlalchemy as sa

        if self.pg:
            try:
                _admin(
                    self.pg_admin.render_as_string(hide_password=False),
                    f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
                )
                print(f"dropped PostgreSQL database {self.name}", flush=True)
            except Exception as exc:  # keep going: the other one must be dropped too
                print(f"could not drop PostgreSQL database {self.name}: {exc}", file=sys.stderr)
        if self.mysql:
            try:
                engine = _engine(self.mysql_admin)
                try:
                    with engine.begin() as conn:
                        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{self.name}`"))
                finally:
                    engine.dispose()
                print(f"dropped MariaDB database {self.name}", flush=True)
            except Exception as exc:
                print(f"could not drop MariaDB database {self.name}: {exc}", file=sys.stderr)


def _servers(scratch: Scratch) -> dict[str, str]:
    import sqlalchemy as sa

    servers = {"SQLite": sqlite3.sqlite_version}
    if scratch.pg:
        servers["PostgreSQL"] = _server_version(scratch.pg)
    if scratch.mysql:
        engine = _engine(scratch.mysql)
        try:
            with engine.connect() as conn:
                servers["MariaDB"] = conn.execute(sa.text("SELECT version()")).scalar_one()
        finally:
            engine.dispose()
    return servers


def _load(systems: list[str], sources: Path, scratch: Scratch) -> tuple[dict[str, str], dict]:
    """Put each system where production has it; returns the URLs and what loading took."""
    from campusdx.demo.targets import copy_system

    urls, loads = {}, {}
    for system in systems:
        if system == "asset":
            urls[system] = f"sqlite:///{sources / 'asset.sqlite'}"
            continue
        if SERVER[system] == "PostgreSQL":
            url = scratch.pg or scratch.create_pg()
        else:
            url = scratch.mysql or scratch.create_mysql()
        started = time.monotonic()
        copied = copy_system(sources / f"{system}.sqlite", system, url)
        loads[system] = {"rows": copied, "seconds": round(time.monotonic() - started, 1)}
        print(
            f"loaded {system} into {SERVER[system]}: {sum(copied.values()):,} rows in "
            f"{loads[system]['seconds']}s (demo.targets.copy_system)",
            flush=True,
        )
        urls[system] = url
    if scratch.pg:  # statistics and a warm cache, so no measurement pays for the first read from disk
        pg_tables = [t for s in systems if SERVER[s] == "PostgreSQL" for t in loads[s]["rows"]]
        _admin(scratch.pg, "VACUUM ANALYZE " + ", ".join(pg_tables))
        for table in pg_tables:
            _admin(scratch.pg, f"SELECT count(*), sum(length(t::text)) FROM {table} t")
    return urls, loads


def _checkout() -> dict:
    """The commit measured and the library files that differ from it (read-only git commands)."""

    def git(*args: str) -> str | None:
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # git status must not rewrite the index
        proc = subprocess.run(["git", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
        return proc.stdout if proc.returncode == 0 else None  # not stripped: porcelain lines start " M"

    status = git("status", "--porcelain", "--", "connectors", "demo", "campusdx", "schemas/sources")
    return {
        "commit": (git("rev-parse", "HEAD") or "").strip() or None,
        "modified": [line[3:] for line in (status or "").splitlines()],
    }


def _machine(servers: dict[str, str]) -> dict:
    m = machine()
    for name in ("PyMySQL", "openpyxl"):
        try:
            m["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            m["packages"][name] = None
    m["servers"] = servers
    return m


def _verdict(what: str, ok: bool, figure: str) -> dict:
    return {"target": what, "met": ok, "figure": figure}


def _verdicts(full: dict, gl_fl: dict | None, incremental: dict, overall: dict) -> list[dict]:
    t = TARGETS
    out = []
    for system, f in full.items():
        ratio, rss = f["ratio"], f["campusdx"]["peak_rss_mib"]
        out.append(
            _verdict(f"{system}: ≥ {t['ratio_vs_baseline']}× baseline rows/s", ratio >= 3, f"{ratio:.2f}×")
        )
        out.append(_verdict(f"{system}: peak RSS < 1 GiB", rss < t["peak_rss_mib"], f"{rss:.0f} MiB"))
    if gl_fl:
        rate = gl_fl["campusdx_rows_per_s"]
        out.append(_verdict("gl_fl: ≥ 300,000 rows/s", rate >= t["gl_fl_rows_per_s"], f"{rate:,.0f} rows/s"))
        out.append(
            _verdict(
                f"gl_fl: ≥ {t['ratio_vs_baseline']}× baseline", gl_fl["ratio"] >= 3, f"{gl_fl['ratio']:.2f}×"
            )
        )
    for system, i in incremental.items():
        out.append(
            _verdict(
                f"{system}: incremental < 10 % of full", i["ratio"] < t["incremental"], f"{i['ratio']:.1%}"
            )
        )
    if overall:
        out.append(
            _verdict(
                "all systems: incremental < 10 % of full",
                overall["ratio"] < t["incremental"],
                f"{overall['ratio']:.1%}",
            )
        )
    return out


TEXT_COLUMNS = ("run", "mode", "deletes", "cursor from", "seconds of each attempt")


def _table(header: list[str], rows: list[list]) -> list[str]:
    align = ["---" if i == 0 or h in TEXT_COLUMNS else "---:" for i, h in enumerate(header)]
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]


def _markdown(report: dict) -> str:
    m, data, full = report["machine"], report["data"], report["full"]
    lines = [
        f"# Extraction benchmark per system — {report['started']}",
        "",
        f"`{report['command']}`",
        "",
        f"Code measured: commit `{str(report['checkout']['commit'])[:12]}`"
        + (
            " with uncommitted changes to " + ", ".join(f"`{f}`" for f in report["checkout"]["modified"])
            if report["checkout"]["modified"]
            else ""
        )
        + ".",
        "",
        f"Simulated campus at scale {report['scale']} (seed {report['seed']}, generated in "
        f"{data['generate_seconds']}s). hr and finance in PostgreSQL, student in MariaDB, asset in "
        "SQLite, as production has them; loaded with `campusdx.demo.targets.copy_system` ("
        + ", ".join(f"{s} {v['seconds']}s" for s, v in data["load"].items())
        + f"). Every enabled table of `schemas/sources/<system>.yml`; chunks of {CHUNK_ROWS:,} rows. "
        f"Best of {report['repeat']} interleaved attempts; peak RSS is the highest of the attempts "
        "(VmHWM of the child process: its own peak resident set, interpreter and imports included; "
        "imports are not timed).",
        "",
        "## Full extraction",
        "",
    ]
    rows = []
    for system, f in full.items():
        a, b = f["baseline"], f["campusdx"]
        for key, r in (("a", a), ("b", b)):
            rows.append(
                [
                    f"{system} ({SERVER[system]})",
                    f"({key}) {'baseline' if key == 'a' else 'campusdx'}",
                    f"{r['rows']:,}",
                    f"{r['seconds']:.2f}",
                    f"{r['rows'] / r['seconds']:,.0f}",
                    f"{r['rows'] / r['seconds'] / (a['rows'] / a['seconds']):.2f}",
                    f"{r['peak_rss_mib']:.0f}",
                    f"{r['parquet_mib']:.1f}",
                    ", ".join(f"{s:.2f}" for s in r["attempts_seconds"]),
                ]
            )
    g = report.get("gl_fl")
    if g:
        for key, name in (("a", "baseline"), ("b", "campusdx")):
            rate = g[f"{name}_rows_per_s"]
            rows.append(
                [
                    "finance.gl_fl alone",
                    f"({key}) {name}",
                    f"{g['rows']:,}",
                    f"{g[f'{name}_seconds']:.2f}",
                    f"{rate:,.0f}",
                    f"{rate / g['baseline_rows_per_s']:.2f}",
                    "",
                    "",
                    "",
                ]
            )
    header = ["system", "run", "rows", "seconds", "rows/s", "× (a)", "peak RSS MiB", "Parquet MiB"]
    lines += _table([*header, "seconds of each attempt"], rows)
    files = report.get("files")
    if files:
        r = files["full"]
        lines += [
            "",
            f"Asset office exports (`files.extract_file`; no baseline is measured for "
            f"files): {r['rows']:,} rows from "
            + ", ".join(f"{t['table']} {t['rows']:,} in {t['seconds']:.2f}s" for t in r["tables"])
            + f"; {r['seconds']:.2f}s in all, peak RSS {r['peak_rss_mib']:.0f} MiB.",
        ]
    if g:
        lines += [
            "",
            "gl_fl alone: its own table's seconds inside the finance runs (fastest attempt of the table); "
            "the campusdx figure includes the key snapshot its declaration asks for (`deletes: "
            "key_snapshot`: every flid read again and landed). Peak RSS is the finance run's.",
        ]
    lines += ["", "Per table, campusdx (b) against the baseline (a), fastest attempt of each table:", ""]
    rows = []
    for system, f in full.items():
        base = {t["table"]: t for t in f["baseline"]["tables"]}
        for t in f["campusdx"]["tables"]:
            a = base[t["table"]]
            rows.append(
                [
                    f"{system}.{t['table']}",
                    f"{t['rows']:,}",
                    f"{a['seconds']:.2f}",
                    f"{t['seconds']:.2f}",
                    f"{t['rows'] / t['seconds']:,.0f}",
                    f"{a['seconds'] / t['seconds']:.2f}",
                    t["deletes"],
                ]
            )
    lines += _table(["table", "rows", "(a) seconds", "(b) seconds", "(b) rows/s", "× (a)", "deletes"], rows)

    inc = report.get("incremental")
    if inc:
        day = report["day"]
        lines += [
            "",
            "## Incremental after one simulated day",
            "",
            "`campusdx.demo.life.advance(urls, 1, clock.json)` changed: "
            + ", ".join(f"{k} {v}" for k, v in sorted(day["counts"].items()))
            + f" ({day['seconds']}s). Then `extract_table` on a copy of one full run's landing zone "
            "(watermark from its manifests, look-back 300 s). Tables with `deletes: key_snapshot` read "
            "every key of the table again (the keys column) on every run, or, with "
            "`snapshot_every_hours`, when the last snapshot is that old: on this run, taken minutes "
            "after the full one, those are not due.",
            "",
        ]
        rows = []
        for system, i in inc.items():
            rows.append(
                [
                    system,
                    f"{full[system]['campusdx']['seconds']:.2f}",
                    f"{i['seconds']:.2f}",
                    f"{i['ratio']:.1%}",
                    f"{i['rows']:,}",
                    f"{i['tombstones']:,}",
                    f"{i['keys']:,}",
                    f"{i['all_key_snapshots_seconds']:.2f}",
                    f"{i['all_key_snapshots_ratio']:.1%}",
                    f"{i['peak_rss_mib']:.0f}",
                    ", ".join(f"{s:.2f}" for s in i["attempts_seconds"]),
                ]
            )
        o = report["incremental_overall"]
        rows.append(
            [
                "**all**",
                f"{o['full_seconds']:.2f}",
                f"{o['seconds']:.2f}",
                f"**{o['ratio']:.1%}**",
                f"{o['rows']:,}",
                f"{o['tombstones']:,}",
                f"{o['keys']:,}",
                f"{o['all_key_snapshots_seconds']:.2f}",
                f"{o['all_key_snapshots_ratio']:.1%}",
                "",
                "",
            ]
        )
        header = ["system", "full (b) s", "incremental s", "incr./full", "rows landed", "tombstones"]
        header += ["keys re-read", "(i') s ¹", "(i')/full", "peak RSS MiB", "seconds of each attempt"]
        lines += _table(header, rows)
        lines += ["", "Per table (fastest attempt of each table):", ""]
        rows = []
        for system, i in inc.items():
            for t in i["tables"]:
                rows.append(
                    [
                        f"{system}.{t['table']}",
                        t["mode"],
                        t["cursor_from"],
                        f"{t['rows']:,}",
                        f"{t['tombstones']:,}",
                        f"{t['keys'] or 0:,}",
                        f"{t['seconds']:.2f}",
                        f"{t['all_key_snapshots_seconds']:.2f}",
                    ]
                )
        header = ["table", "mode", "cursor from", "rows", "tombstones", "keys", "seconds", "(i') s ¹"]
        lines += _table(header, rows)
        lines += [
            "",
            "¹ (i'): the same incremental run with every key snapshot taken (`key_snapshot=True`), on "
            "its own copy of the landing zone: the run on which the periodic snapshots fall due (once a "
            "day with the shipped declarations); the difference to (i) is what re-reading every key costs.",
        ]
        if files and files.get("incremental"):
            r = files["incremental"]
            lines += [
                "",
                "Asset exports again (a file whose content already landed is skipped, found by sha256; "
                "the day's new or edited files land): "
                + ", ".join(
                    f"{t['table']} {len(t['batch_ids'])} new file(s), {t['rows']:,} rows" for t in r["tables"]
                )
                + f"; {r['seconds']:.2f}s (full: {files['full']['seconds']:.2f}s).",
            ]

    t = report["targets"]
    lines += [
        "",
        "## Targets",
        "",
        f"Per system: ≥ {t['ratio_vs_baseline']}× the baseline's rows/s, peak RSS < {t['peak_rss_mib']} MiB; "
        f"gl_fl ≥ {t['gl_fl_rows_per_s']:,} rows/s; incremental after one day < {t['incremental']:.0%} of "
        "the full extraction time.",
        "",
    ]
    lines += [
        f"- {v['target']}: {v['figure']} — **{'met' if v['met'] else 'missed'}**" for v in report["verdicts"]
    ]
    loads = []
    for system, f in full.items():
        loads.append(
            f"{system} (a) {', '.join(str(x) for x in f['baseline']['attempts_load_before'])}, "
            f"(b) {', '.join(str(x) for x in f['campusdx']['attempts_load_before'])}"
        )
    for system, i in (inc or {}).items():
        loads.append(f"{system} (i) {', '.join(str(x) for x in i['attempts_load_before'])}")
    lines += [
        "",
        "Every full run (a) and (b) landed the source's row count of every table, and every incremental "
        "run the rows at or after its lower bound and a key snapshot of the source's size (DuckDB over "
        "the Parquet files against `SELECT count(*)` at the source).",
        "Load average (1 min) before the attempts: " + "; ".join(loads) + " — other work on the machine "
        "shows up here.",
        "",
        "## Machine",
        "",
        f"- {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; Python {m['python']}, {m['platform']}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "- servers (same machine, 127.0.0.1): " + "; ".join(f"{k} {v}" for k, v in m["servers"].items()),
    ]
    return "\n".join(lines) + "\n"


def _summary(name: str, r: dict) -> str:
    return (
        f"{name}: {r['rows']:,} rows in {r['seconds']:.2f}s = {r['rows'] / r['seconds']:,.0f} rows/s, "
        f"peak RSS {r['peak_rss_mib']:.0f} MiB (load {r['load_before']:.2f})"
    )


def run(args, systems: list[str], work: Path, scratch: Scratch) -> dict:
    """Everything between creating and dropping the scratch databases; returns the report."""
    from campusdx.core.declarations import load_systems
    from campusdx.demo.life import advance

    decls = {d.system: d for d in load_systems()}
    checkout = _checkout()
    home = work / "home"
    sources = home / "sources"
    print(f"generating the campus at scale {args.scale} in {sources}", flush=True)
    campus = _measure(
        "generate", {"system": "campus", "out": str(sources), "seed": SEED, "scale": args.scale}, work
    )
    generate_seconds = campus["seconds"]
    print(f"generated in {generate_seconds}s: {campus['sizes']}", flush=True)
    urls, loads = _load(systems, sources, scratch)
    tables = {s: [t.name for t in decls[s].enabled_tables] for s in systems}
    source_rows = {s: _counts(urls[s], tables[s]) for s in systems}
    file_rows = {k.split(".")[-1]: v for k, v in campus["rows"].items() if k.startswith("asset.export.")}

    kept = work / "landing-full"  # one full run per system, for the incremental run
    full: dict[str, dict[str, list[dict]]] = {s: {"baseline": [], "campusdx": []} for s in systems}
    files_full: list[dict] = []
    for attempt in range(1, args.repeat + 1):
        for system in systems:
            for kind in ("baseline", "campusdx"):
                spec = {"system": system, "url": urls[system], "tables": tables[system]}
                if kind == "campusdx" and attempt == 1:
                    spec["out"] = str(kept)
                r = _measure(kind, spec, work)
                print(f"[{attempt}/{args.repeat}] {system} " + _summary(RUNS[kind], r), flush=True)
                _check(r, source_rows[system])
                full[system][kind].append(r)
            if system == "asset":
                spec = {"system": system, "home": str(home), "out": str(kept) if attempt == 1 else None}
                r = _measure("files", spec, work)
                print(f"[{attempt}/{args.repeat}] asset " + _summary(RUNS["files"], r), flush=True)
                _check(r, file_rows)
                files_full.append(r)

    print("advancing every system by one simulated day", flush=True)
    started = time.monotonic()
    counts = advance(urls, 1, sources / "clock.json", seed=SEED)
    day = {"counts": dict(sorted(counts.items())), "seconds": round(time.monotonic() - started, 1)}
    after = {s: _counts(urls[s], tables[s]) for s in systems}
    # the day's new export files (demo.life: a new inventory CSV now and then, an edited rooms workbook)
    new_file_rows = {
        "zc_pd": counts.get("asset.zc_pd exported", 0),
        "zc_fj": file_rows.get("zc_fj", 0) if counts.get("asset.zc_fj updated") else 0,
    }
    expected: dict[str, dict[str, int]] = {}
    incremental: dict[str, list[dict]] = {s: [] for s in systems}
    all_keys: dict[str, list[dict]] = {s: [] for s in systems}
    files_inc: list[dict] = []
    for attempt in range(1, args.repeat + 1):
        landings = {
            kind: work / f"landing-{kind}-{attempt}" for kind in ("incremental", "incremental_all_keys")
        }
        for landing in landings.values():
            shutil.copytree(kept, landing)  # the same starting point for every attempt (not timed)
        for system in systems:
            for kind, landing in landings.items():
                r = _measure(kind, {"system": system, "url": urls[system], "out": str(landing)}, work)
                print(f"[{attempt}/{args.repeat}] {system} " + _summary(RUNS[kind], r), flush=True)
                if system not in expected:
                    expected[system] = {
                        t["table"]: _count_since(
                            urls[system], t["table"], decls[system].table(t["table"]).cursor, t["cursor_from"]
                        )
                        for t in r["tables"]
                    }
                _check(r, expected[system])
                for t in r["tables"]:
                    want = after[system][t["table"]] if t["snapshot_due"] else None
                    if t["mode"] != "incremental" or t["keys"] != want:
                        raise RuntimeError(
                            f"{kind} {system}.{t['table']}: mode {t['mode']}, {t['keys']} keys, "
                            f"expected {want}"
                        )
                (incremental if kind == "incremental" else all_keys)[system].append(r)
        if "asset" in systems:
            spec = {"system": "asset", "home": str(home), "out": str(landings["incremental"])}
            r = _measure("files", spec, work)
            print(f"[{attempt}/{args.repeat}] asset " + _summary(RUNS["files"], r), flush=True)
            _check(r, new_file_rows)
            files_inc.append(r)
        for landing in landings.values():
            shutil.rmtree(landing)

    best_full = {}
    for system in systems:
        a, b = _best(full[system]["baseline"]), _best(full[system]["campusdx"])
        ratio = (b["rows"] / b["seconds"]) / (a["rows"] / a["seconds"])
        best_full[system] = {"server": SERVER[system], "baseline": a, "campusdx": b, "ratio": ratio}
    gl_fl = None
    if BIG_TABLE[0] in systems:
        f = best_full[BIG_TABLE[0]]
        a = next(t for t in f["baseline"]["tables"] if t["table"] == BIG_TABLE[1])
        b = next(t for t in f["campusdx"]["tables"] if t["table"] == BIG_TABLE[1])
        gl_fl = {
            "rows": b["rows"],
            "baseline_seconds": a["seconds"],
            "campusdx_seconds": b["seconds"],
            "baseline_rows_per_s": a["rows"] / a["seconds"],
            "campusdx_rows_per_s": b["rows"] / b["seconds"],
            "ratio": a["seconds"] / b["seconds"],
            "peak_rss_mib_of_the_finance_run": f["campusdx"]["peak_rss_mib"],
        }
    best_inc = {}
    for system in systems:
        i = _best(incremental[system])
        i["tombstones"] = sum(t["tombstones"] for t in i["tables"])
        i["keys"] = sum(t["keys"] or 0 for t in i["tables"])
        i["full_seconds"] = best_full[system]["campusdx"]["seconds"]
        i["ratio"] = i["seconds"] / i["full_seconds"]
        n = _best(all_keys[system])
        i["all_key_snapshots"] = n
        i["all_key_snapshots_seconds"] = n["seconds"]
        i["all_key_snapshots_ratio"] = n["seconds"] / i["full_seconds"]
        for t, u in zip(i["tables"], n["tables"], strict=True):
            t["all_key_snapshots_seconds"] = u["seconds"]
        best_inc[system] = i
    overall = {
        key: sum(i[key] for i in best_inc.values())
        for key in ("seconds", "full_seconds", "rows", "tombstones", "keys", "all_key_snapshots_seconds")
    }
    overall["ratio"] = overall["seconds"] / overall["full_seconds"]
    overall["all_key_snapshots_ratio"] = overall["all_key_snapshots_seconds"] / overall["full_seconds"]
    files = {"full": _best(files_full), "incremental": _best(files_inc)} if files_full else None
    return {
        "scale": args.scale,
        "checkout": checkout,
        "seed": SEED,
        "repeat": args.repeat,
        "chunk_rows": CHUNK_ROWS,
        "systems": systems,
        "data": {
            "generate_seconds": generate_seconds,
            "sizes": campus["sizes"],
            "source_rows": source_rows,
            "file_rows": file_rows,
            "load": loads,
        },
        "full": best_full,
        "gl_fl": gl_fl,
        "files": files,
        "day": {**day, "source_rows_after": after, "incremental_expected_rows": expected},
        "incremental": best_inc,
        "incremental_overall": overall,
        "verdicts": _verdicts(best_full, gl_fl, best_inc, overall),
        "targets": TARGETS,
        "attempts": {
            "full": full,
            "files": files_full,
            "incremental": incremental,
            "incremental_all_keys": all_keys,
            "files_incremental": files_inc,
        },
        "machine": _machine(_servers(scratch)),
        "parent_peak_rss_mib": _peak_rss_mib()[1],
    }


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="systems_bench.py", description=__doc__, formatter_class=formatter)
    parser.add_argument("--scale", type=float, default=1.0, help="campus size, 1 = the real university")
    parser.add_argument("--repeat", type=int, default=2, help="attempts per run, interleaved; best is kept")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, default: all four")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases and the work folder")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("CAMPUSDX_TEST_PG_URL") or DEFAULT_ADMIN_URL,
        help="SQLAlchemy URL of a PostgreSQL database allowed to CREATE DATABASE (hr, finance)",
    )
    parser.add_argument(
        "--mysql-admin-url",
        default=os.environ.get("CAMPUSDX_TEST_MARIADB_URL") or DEFAULT_MYSQL_ADMIN_URL,
        help="SQLAlchemy URL of a MariaDB/MySQL server allowed to CREATE DATABASE (student)",
    )
    parser.add_argument("--child", choices=sorted([*PREPARE, "generate"]), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown or not systems or args.repeat < 1:
        parser.error(f"--systems takes some of {','.join(SYSTEMS)} (unknown: {unknown}); --repeat ≥ 1")
    systems = [s for s in SYSTEMS if s in systems]

    signal.signal(signal.SIGTERM, _terminate)
    scratch = Scratch(
        _admin_url(args.pg_admin_url, "postgresql", "psycopg"),
        _admin_url(args.mysql_admin_url, "mysql", "pymysql").update_query_dict({"charset": "utf8mb4"}),
    )
    started = datetime.now()
    work = Path(tempfile.mkdtemp(prefix="campusdx-systems-"))
    try:
        report = {
            "started": started.isoformat(timespec="seconds"),
            "command": " ".join(["benchmarks/systems_bench.py", *(sys.argv[1:] if argv is None else argv)]),
            **run(args, systems, work, scratch),
        }
    finally:
        if args.keep:
            kept = [k for k, url in (("PostgreSQL", scratch.pg), ("MariaDB", scratch.mysql)) if url]
            print(f"kept {scratch.name} on {', '.join(kept) or 'no server'} and {work} (asset's SQLite)")
        else:
            scratch.drop()
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"systems-{stamp}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "systems-latest.md").write_text(_markdown(report), encoding="utf-8")
    print(f"wrote benchmarks/results/systems-{stamp}.json and systems-latest.md")
    for v in report["verdicts"]:
        print(f"  {v['target']}: {v['figure']} — {'met' if v['met'] else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
