"""DuckLake as the published form of the warehouse, measured against file snapshots.

    .venv/bin/python benchmarks/ducklake_probe.py --build var/warehouse.duckdb --extensions DIR

Not a dependency of the product: the extensions come from the package index as wheels
(``pip download duckdb-extension-ducklake duckdb-extension-postgres-scanner``, unzipped into
DIR) and are loaded by path (DuckDB's own install would download). Needs PostgreSQL on
127.0.0.1 (a database of its own, dropped afterwards).

Measures, fastest of 3: (1) what a warehouse run would pay to publish into DuckLake, every table
of the build written into the lake in one transaction (dbt rebuilds every table each run),
against a file copy of the build; (2) what a reader attached to the lake sees when a writer
commits meanwhile: its next query (the default), and a query pinned to the version it started
at. Results: ``benchmarks/results/ducklake-latest.md``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import sqlalchemy as sa

from campusdx.core.atomic import fsync_file

RESULTS = Path(__file__).resolve().parent / "results"
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, required=True, help="a built warehouse (DuckDB file)")
    parser.add_argument("--extensions", type=Path, required=True, help="the unzipped extension wheels")
    args = parser.parse_args()
    ducklake = next(args.extensions.rglob("ducklake.duckdb_extension"))
    postgres = next(args.extensions.rglob("postgres_scanner.duckdb_extension"))
    database = f"campusdx_ducklake_probe_{int(time.time())}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{database}"'))
    work = Path(tempfile.mkdtemp(prefix="ducklake-probe-"))
    try:
        report = _measure(args.build, ducklake, postgres, database, work)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{database}" with (force)'))
        shutil.rmtree(work, ignore_errors=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    lines = [
        f"# DuckLake (PostgreSQL catalog) against file snapshots ({stamp})",
        "",
        f"`.venv/bin/python benchmarks/ducklake_probe.py --build {args.build.name} ...`; build"
        f" {report['bytes'] / 1e6:.1f} MB, {report['tables']} tables, fastest of 3.",
        "",
        "| publication | seconds | / file copy |",
        "|---|---|---|",
        f"| file copy of the build and an fsync (the floor) | {report['copy_s']} | 1 |",
        f"| every table into DuckLake, one transaction | {report['lake_s']} | {report['lake_over_copy']} |",
        "",
        f"A reader attached before a writer's commit: its next query saw {report['reader_next']} rows"
        f" (before: {report['reader_before']}, after the commit: {report['after']}); pinned with"
        f" `AT (VERSION => {report['version']})` it saw {report['reader_pinned']}.",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ducklake-latest.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def _connect(ducklake: Path, postgres: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(config={"allow_unsigned_extensions": True, "autoinstall_known_extensions": False})
    conn.execute(f"load '{postgres.as_posix()}'")
    conn.execute(f"load '{ducklake.as_posix()}'")
    return conn


def _measure(build: Path, ducklake: Path, postgres: Path, database: str, work: Path) -> dict:
    lake = f"ducklake:postgres:dbname={database} host=127.0.0.1 user=postgres"
    best_copy = best_lake = float("inf")
    with duckdb.connect(str(build), read_only=True) as source:
        tables = source.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()
    for _ in range(3):
        start = time.perf_counter()
        shutil.copyfile(build, work / "copy.duckdb")
        fsync_file(work / "copy.duckdb")  # durable, as a published snapshot is
        best_copy = min(best_copy, time.perf_counter() - start)
        conn = _connect(ducklake, postgres)
        conn.execute(f"attach '{build.as_posix()}' as build (read_only)")
        conn.execute(f"attach '{lake}' as lake (data_path '{(work / 'data').as_posix()}/')")
        start = time.perf_counter()
        conn.execute("begin")
        for schema, table in tables:
            conn.execute(f'create schema if not exists lake."{schema}"')
            name = f'"{schema}"."{table}"'
            conn.execute(f"create or replace table lake.{name} as select * from build.{name}")
        conn.execute("commit")
        best_lake = min(best_lake, time.perf_counter() - start)
        conn.close()
    reader, writer = _connect(ducklake, postgres), _connect(ducklake, postgres)
    for conn in (reader, writer):
        conn.execute(f"attach '{lake}' as lake (data_path '{(work / 'data').as_posix()}/')")
    schema, table = tables[0]
    relation = f'lake."{schema}"."{table}"'
    before = reader.execute(f"select count(*) from {relation}").fetchone()[0]
    version = reader.execute("select max(snapshot_id) from lake.snapshots()").fetchone()[0]
    writer.execute(f"insert into {relation} select * from {relation} limit 5")
    after = writer.execute(f"select count(*) from {relation}").fetchone()[0]
    next_query = reader.execute(f"select count(*) from {relation}").fetchone()[0]
    pinned = reader.execute(f"select count(*) from {relation} at (version => {version})").fetchone()[0]
    reader.close()
    writer.close()
    return {
        "bytes": build.stat().st_size,
        "tables": len(tables),
        "copy_s": round(best_copy, 3),
        "lake_s": round(best_lake, 3),
        "lake_over_copy": round(best_lake / best_copy, 1),
        "reader_before": before,
        "after": after,
        "reader_next": next_query,
        "reader_pinned": pinned,
        "version": version,
    }


if __name__ == "__main__":
    main()
