"""Extraction benchmark: PostgreSQL gl_fl (凭证分录) -> Parquet, three ways, same run, same data.

    .venv/bin/python benchmarks/extract_bench.py [--lines 1500000] [--admin-url URL]

(a) baseline  pandas.read_sql(sql, engine, chunksize=50_000), each chunk .to_parquet (pyarrow)
(b) campusdx  campusdx.sources.sql.extract_table (the integrated extractor, as it is today)
(c) floor     campusdx.sources.arrow_pg.stream_query -> pyarrow ParquetWriter (raw ADBC types)
(d) ADBC path what the integrated extractor can do: numeric columns selected as ::text, each
              batch conformed to the extractor's schema (int64, decimal128(18,2)), zstd
(e) as (d) without ORDER BY (the extractor orders by the cursor; the server sort is its cost)

Each measurement runs in its own child process (peak RSS per run). A scratch database is
created, filled server-side and dropped at the end, also on failure or Ctrl-C. Never run by
pytest. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHUNK_ROWS = 50_000
LINES_PER_VOUCHER = 3  # two debit lines and the balancing credit line
COLUMNS = ["flid", "pzid", "hh", "kmdm", "bmdm", "jfje", "dfje", "wldw", "xgsj"]
# the extractor's own query shape for a table with a cursor: every column, ordered by the cursor
SQL = f"SELECT {', '.join(COLUMNS)} FROM gl_fl ORDER BY xgsj"
RUNS = {
    "a": "baseline: pandas.read_sql(chunksize=50k) -> to_parquet",
    "b": "campusdx today: sql.extract_table",
    "c": "floor: arrow_pg.stream_query -> ParquetWriter",
    "d": "ADBC path: numeric::text, conform, ParquetWriter",
    "e": "(d) without ORDER BY",
}


# --------------------------------------------------------------------------- the scratch database


def _sql_list(values) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def fill(url: str, lines: int) -> dict:
    """Create the finance tables (demo/campus.py's FINANCE_DDL) and fill them server-side."""
    import psycopg
    from sqlalchemy.engine import make_url

    from campusdx.demo.campus import ACCOUNTS, FINANCE_DDL, OFFICES, VOUCHER_TEMPLATES

    vouchers = -(-lines // LINES_PER_VOUCHER)
    lines = vouchers * LINES_PER_VOUCHER
    debit = _sql_list([d for d, _ in VOUCHER_TEMPLATES])
    credit = _sql_list([c for _, c in VOUCHER_TEMPLATES])
    offices = _sql_list(OFFICES)
    n_templates, n_offices = len(VOUCHER_TEMPLATES), len(OFFICES)
    # amount of debit line h of voucher v, in fen, 100.00 .. 50,000.00, deterministic
    fen = "(10000 + mod(abs(hashint8(({v}) * 4 + ({h}))), 4990001))"
    amount = "(" + fen + " / 100.0)::numeric(18,2)"
    started = time.monotonic()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FINANCE_DDL)  # PostgreSQL takes it as written (INTEGER PRIMARY KEY, NUMERIC(18,2))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO gl_kmb VALUES (%s, %s, %s, '2024-01-01 09:00:00')", [tuple(a) for a in ACCOUNTS]
            )
        conn.execute(
            f"""
            INSERT INTO gl_pz (pzid, kjnd, kjqj, pzrq, xgsj)
            SELECT v, to_char(d, 'YYYY'), to_char(d, 'MM'), to_char(d, 'YYYY-MM-DD'),
                   to_char(d + 2 + (v % 1000) * interval '1 second' + interval '17 hours',
                           'YYYY-MM-DD HH24:MI:SS')
            FROM (SELECT v, date '2024-01-01' + (v * 1000::bigint / {vouchers})::int AS d
                  FROM generate_series(1, {vouchers}) v) s
            """
        )
        conn.execute(
            f"""
            INSERT INTO gl_fl (flid, pzid, hh, kmdm, bmdm, jfje, dfje, wldw, xgsj)
            SELECT g, v, h,
                   CASE WHEN h < 3 THEN ({debit})[1 + v % {n_templates}]
                        ELSE ({credit})[1 + v % {n_templates}] END,
                   ({offices})[1 + (v / 7) % {n_offices}],
                   CASE WHEN h < 3 THEN {amount.format(v="v", h="h")} ELSE 0.00 END,
                   CASE WHEN h = 3 THEN {amount.format(v="v", h="1")} + {amount.format(v="v", h="2")}
                        ELSE 0.00 END,
                   CASE WHEN h < 3 AND ({debit})[1 + v % {n_templates}] IN ('500101', '2201')
                        THEN (1990 + (v % 3500) % 36)::text || lpad((v % 3500)::text, 4, '0') END,
                   p.xgsj
            FROM (SELECT g, (g - 1) / {LINES_PER_VOUCHER} + 1 AS v, (g - 1) % {LINES_PER_VOUCHER} + 1 AS h
                  FROM generate_series(1, {lines}) g) s
            JOIN gl_pz p ON p.pzid = s.v
            """
        )
        conn.execute("VACUUM ANALYZE gl_kmb, gl_pz, gl_fl")
        balance = conn.execute("SELECT sum(jfje) - sum(dfje), sum(jfje), count(*) FROM gl_fl").fetchone()
        size = conn.execute("SELECT pg_total_relation_size('gl_fl')").fetchone()[0]
        # warm the cache so no measurement pays for the first read from disk
        conn.execute("SELECT count(*), sum(length(t::text)) FROM gl_fl t").fetchone()
    if balance[0] != 0:
        raise RuntimeError(f"generated vouchers do not balance: debit - credit = {balance[0]}")
    return {
        "lines": int(balance[2]),
        "vouchers": vouchers,
        "debit_total": str(balance[1]),
        "table_mib": round(size / 2**20, 1),
        "fill_seconds": round(time.monotonic() - started, 1),
    }


# --------------------------------------------------------------------------- the measurements (child)


def _prepare_baseline(url: str, out: Path):
    import pandas as pd
    import sqlalchemy as sa

    def work() -> int:
        engine = sa.create_engine(url)
        rows = 0
        try:
            for i, chunk in enumerate(pd.read_sql(SQL, engine, chunksize=CHUNK_ROWS)):
                chunk.to_parquet(out / f"part-{i:05d}.parquet", engine="pyarrow", index=False)
                rows += len(chunk)
        finally:
            engine.dispose()
        return rows

    return work


def _prepare_campusdx(url: str, out: Path):
    # the extractor imports its PostgreSQL reader lazily: import it here, as (c) does, so the
    # ~1.5 s import is not timed (the baseline's pandas import is not timed either)
    import adbc_driver_postgresql.dbapi  # noqa: F401

    import campusdx.sources.arrow_pg  # noqa: F401
    from campusdx.core.declarations import SystemDecl, TableDecl
    from campusdx.sources.landing import Landing
    from campusdx.sources.sql import extract_table

    table = TableDecl("gl_fl", ("flid",), "xgsj")
    decl = SystemDecl("finance", "财务 (benchmark)", None, url, (table,), out)

    def work() -> int:
        return extract_table(decl, table, url, Landing(out / "landing"), chunk_rows=CHUNK_ROWS).rows

    return work


def _prepare_floor(url: str, out: Path, which: str):
    import adbc_driver_postgresql.dbapi  # noqa: F401  (imported here so its ~1.5 s import is not timed)
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    from campusdx.sources.arrow_pg import conform, stream_query
    from campusdx.sources.sql import arrow_type

    def work() -> int:
        sql, target = SQL, None
        if which in ("d", "e"):  # reflect as the extractor does; numeric travels as text
            engine = sa.create_engine(url)
            try:
                reflected = sa.Table("gl_fl", sa.MetaData(), autoload_with=engine)
            finally:
                engine.dispose()
            target = pa.schema([pa.field(c.name, arrow_type(c.type)) for c in reflected.columns])
            select = [
                f'"{c.name}"::text AS "{c.name}"'
                if pa.types.is_decimal(target.field(c.name).type)
                else f'"{c.name}"'
                for c in reflected.columns
            ]
            sql = f"SELECT {', '.join(select)} FROM gl_fl" + (" ORDER BY xgsj" if which == "d" else "")
        rows = 0
        writer = None
        try:
            for batch in stream_query(url, sql, batch_rows=CHUNK_ROWS):
                if target is not None:
                    batch = conform(batch, target)
                if writer is None:
                    writer = pq.ParquetWriter(out / "gl_fl.parquet", batch.schema, compression="zstd")
                writer.write_batch(batch)
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
        return rows

    return work


def child(which: str, url: str) -> None:
    """One measurement; prints a JSON line with rows, seconds, peak RSS and what landed."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix=f"campusdx-bench-{which}-") as tmp:
        out = Path(tmp)
        if which == "a":
            work = _prepare_baseline(url, out)
        elif which == "b":
            work = _prepare_campusdx(url, out)
        else:
            work = _prepare_floor(url, out, which)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()  # imports done: time the work only
        rows = work()
        seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
        files = [p for p in out.rglob("*.parquet")]
        with duckdb.connect() as con:
            landed, debit = con.execute(
                "SELECT count(*), sum(CAST(jfje AS DECIMAL(18,2))) FROM read_parquet(?)",
                [[str(p) for p in files]],
            ).fetchone()
        print(
            json.dumps(
                {
                    "run": which,
                    "rows": rows,
                    "seconds": seconds,
                    "rows_per_s": rows / seconds,
                    "peak_rss_mib": peak_kib / 1024,
                    "rss_after_imports_mib": rss_before / 1024,
                    "parquet_files": len(files),
                    "parquet_mib": sum(p.stat().st_size for p in files) / 2**20,
                    "landed_rows": landed,
                    "landed_debit_total": str(debit),
                }
            )
        )


# --------------------------------------------------------------------------- the parent


def machine() -> dict:
    import psutil

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in (
        "pyarrow",
        "pandas",
        "SQLAlchemy",
        "psycopg",
        "adbc-driver-postgresql",
        "adbc-driver-manager",
        "duckdb",
        "psutil",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def _server_version(url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT version()").fetchone()[0]


def _admin(url: str, statement: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


def _measure(which: str, url: str) -> dict:
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, "--url", url],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"run {which} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.monotonic() - started
    result["load_before"] = load
    return result


def _best(attempts: list[dict], which: str) -> dict:
    """The fastest attempt, with every attempt's speed and the highest peak RSS of all."""
    best = dict(max(attempts, key=lambda r: r["rows_per_s"]))
    best["what"] = RUNS[which]
    best["attempts_rows_per_s"] = [round(r["rows_per_s"]) for r in attempts]
    best["attempts_load_before"] = [round(r["load_before"], 2) for r in attempts]
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in attempts)
    return best


def _markdown(report: dict) -> str:
    m, data, runs = report["machine"], report["data"], report["runs"]
    base = runs["a"]["rows_per_s"]
    lines = [
        f"# Extraction benchmark — {report['started']}",
        "",
        f"`{report['command']}`",
        "",
        f"gl_fl: **{data['lines']:,} lines** ({data['vouchers']:,} balanced vouchers, "
        f"{data['table_mib']} MiB in PostgreSQL); query `{report['sql']}` (the extractor's shape: "
        f"every column, ordered by the cursor) unless the run says otherwise; chunks of "
        f"{CHUNK_ROWS:,} rows. Best of {report['repeat']} interleaved attempts per run; peak RSS is "
        "the highest of the attempts (the child process's maximum resident set, interpreter and "
        "imports included).",
        "",
        "| run | what | rows | seconds | rows/s | × (a) | peak RSS MiB | Parquet MiB "
        "| rows/s of each attempt |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, r in runs.items():
        lines.append(
            f"| ({key}) | {r['what']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | "
            f"{r['rows_per_s'] / base:.2f} | {r['peak_rss_mib']:.0f} | {r['parquet_mib']:.1f} | "
            + ", ".join(f"{v:,}" for v in r["attempts_rows_per_s"])
            + " |"
        )
    t = report["targets"]
    lines += [
        "",
        f"Targets for the integrated extractor: ≥ {t['ratio_vs_baseline']}× (a), "
        f"≥ {t['rows_per_s']:,} rows/s, peak RSS < {t['peak_rss_mib']} MiB.",
        "",
    ]
    for key in ("b", "d", "e"):
        if key in runs:
            r = runs[key]
            ok = (
                r["rows_per_s"] / base >= t["ratio_vs_baseline"]
                and r["rows_per_s"] >= t["rows_per_s"]
                and r["peak_rss_mib"] < t["peak_rss_mib"]
            )
            lines.append(
                f"- ({key}) {r['what']}: {r['rows_per_s'] / base:.2f}×, {r['rows_per_s']:,.0f} rows/s, "
                f"{r['peak_rss_mib']:.0f} MiB — {'meets' if ok else 'misses'} the targets"
            )
    lines += [
        "",
        f"Every run landed {data['lines']:,} rows and the same debit total ({data['debit_total']}), "
        "checked with DuckDB over the Parquet files.",
        "Load average (1 min) before the attempts: "
        + "; ".join(f"({k}) " + ", ".join(str(v) for v in r["attempts_load_before"]) for k, r in runs.items())
        + " — other work on the machine shows up here.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores), RAM {m['ram_gib']} GiB",
        f"- Python {m['python']} on {m['platform']}",
        f"- PostgreSQL: {report['server']} (same machine, 127.0.0.1)",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "",
    ]
    return "\n".join(lines)


def _terminate(signum, frame) -> None:
    """SIGTERM ends the run like Ctrl-C, so the scratch database is dropped either way."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_500_000, help="gl_fl lines to generate")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("CAMPUSDX_TEST_PG_URL", DEFAULT_ADMIN_URL),
        help="SQLAlchemy URL of a PostgreSQL database allowed to CREATE DATABASE",
    )
    parser.add_argument("--runs", default="abcde", help="which measurements, in order (default: abcde)")
    parser.add_argument("--repeat", type=int, default=3, help="attempts per run, interleaved; best is kept")
    parser.add_argument("--child", choices=sorted(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.url)
        return 0

    from sqlalchemy.engine import make_url

    signal.signal(signal.SIGTERM, _terminate)
    admin = make_url(args.admin_url)
    name = f"campusdx_bench_{secrets.token_hex(4)}"
    url = admin.set(database=name).render_as_string(hide_password=False)
    shown = admin.set(database=name).render_as_string(hide_password=True)
    started = datetime.now()
    print(f"scratch database {shown}", flush=True)
    _admin(args.admin_url, f'CREATE DATABASE "{name}"')
    try:
        data = fill(url, args.lines)
        print(f"filled gl_fl: {data['lines']:,} lines, {data['table_mib']} MiB in {data['fill_seconds']}s")
        attempts: dict[str, list[dict]] = {w: [] for w in args.runs}
        for attempt in range(1, args.repeat + 1):
            for which in args.runs:
                r = _measure(which, url)
                print(
                    f"[{attempt}/{args.repeat}] ({which}) {RUNS[which]}: {r['rows']:,} rows in "
                    f"{r['seconds']:.2f}s = {r['rows_per_s']:,.0f} rows/s, "
                    f"peak RSS {r['peak_rss_mib']:.0f} MiB (load {r['load_before']:.2f})",
                    flush=True,
                )
                if r["rows"] != data["lines"] or r["landed_rows"] != data["lines"]:
                    raise RuntimeError(
                        f"run {which} landed {r['landed_rows']} rows, expected {data['lines']}"
                    )
                if r["landed_debit_total"] != data["debit_total"]:
                    raise RuntimeError(
                        f"run {which} landed debit total {r['landed_debit_total']}, "
                        f"expected {data['debit_total']}"
                    )
                attempts[which].append(r)
        runs = {w: _best(a, w) for w, a in attempts.items()}
        report = {
            "started": started.isoformat(timespec="seconds"),
            "command": " ".join(["benchmarks/extract_bench.py", *(sys.argv[1:] if argv is None else argv)]),
            "sql": SQL,
            "chunk_rows": CHUNK_ROWS,
            "repeat": args.repeat,
            "data": data,
            "server": _server_version(url),
            "machine": machine(),
            "runs": runs,
            "ratios_vs_baseline": {
                k: runs[k]["rows_per_s"] / runs["a"]["rows_per_s"] for k in runs if k != "a" and "a" in runs
            },
            "targets": {"ratio_vs_baseline": 3, "rows_per_s": 300_000, "peak_rss_mib": 1024},
        }
    finally:
        _admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped {shown}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"extract-{stamp}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if "a" in runs:
        (RESULTS / "extract-latest.md").write_text(_markdown(report), encoding="utf-8")
    print(f"wrote benchmarks/results/extract-{stamp}.json and extract-latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
