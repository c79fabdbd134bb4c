"""Reconciliation per source table: every row read is in staging, superseded, deleted or held.

For each declared table, from the landing zone and the warehouse, all in DuckDB:

- per batch, **rows read = rows landed**: the extract manifest's ``rows`` and ``tombstones``
  against the rows and tombstones in that batch's Parquet file;
- per table, **rows landed = rows in staging + rows superseded + rows of deleted keys + rows
  held at the source**. The staging side is counted in the staging model; the other side is
  worked out from the landing zone independently of the staging SQL (the newest batch wins,
  a tombstone beats a row of its own batch; keys a file wrote twice with different content are
  held), so a staging model that drops or doubles rows breaks the equation.

Any difference raises :class:`NotReconciled` naming the table (``campusdx reconcile``, and the
warehouse DAG's ``reconcile_sources`` task after ``dbt build``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from campusdx.core.declarations import load_systems
from campusdx.core.settings import DBT_PROJECT, Paths
from campusdx.core.settings import paths as default_paths
from campusdx.core.warehouse import open_warehouse

STAGING = DBT_PROJECT / "models" / "staging"
_SOURCE = re.compile(r"source\('(\w+)',\s*'(\w+)'\)")


class NotReconciled(RuntimeError):
    """Rows of a source table do not add up; the message names the table and the counts."""


@dataclass
class TableReconciliation:
    table: str  # system.table
    staging_model: str
    batches: int
    rows_read: int
    rows_landed: int
    tombstones_read: int
    tombstones_landed: int
    staging_rows: int
    superseded_rows: int
    deleted_rows: int
    held_rows: int
    expected_staging_rows: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def staging_models() -> dict[str, dict]:
    """Source table (system.table) -> its staging model and, if any, its conflicts model (first
    column: the key; and batch_id).

    The staging model of a table is the one that takes its current versions (``latest_version``);
    a model calling ``conflicting_copies`` lists the keys held at the source.
    """
    found: dict[str, dict] = {}
    for path in sorted(STAGING.rglob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        sources = set(_SOURCE.findall(sql))
        if len(sources) != 1:
            continue
        system, table = next(iter(sources))
        entry = found.setdefault(f"{system}.{table}", {})
        if "conflicting_copies(" in sql:
            entry["conflicts"] = path.stem
        elif "latest_version(" in sql:
            if "staging" in entry:
                raise ValueError(f"{system}.{table} has two staging models: {entry['staging']}, {path.stem}")
            entry["staging"] = path.stem
    return found


def _key_expression(primary_key: list[str]) -> str:
    parts = [f'cast("{column}" as varchar)' for column in primary_key]
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


def reconcile_table(conn, paths: Paths, system: str, table, models: dict) -> TableReconciliation:
    """One table's reconciliation (``conn``: the warehouse, read-only)."""
    name = f"{system}.{table.name}"
    folder = paths.landing / system / table.name
    data = str(folder / "*.parquet")
    manifests = sorted((folder / "_manifests").glob("*.json"))
    read = {m["batch_id"]: m for m in (json.loads(p.read_text(encoding="utf-8")) for p in manifests)}
    landed = {
        batch: (rows, tombstones)
        for batch, rows, tombstones in conn.execute(
            "select _batch_id, count(*) filter (not coalesce(_deleted, false)), "
            "count(*) filter (coalesce(_deleted, false)) "
            "from read_parquet(?, union_by_name = true) group by _batch_id",
            [data],
        ).fetchall()
    }
    problems = []
    for batch in sorted(set(read) | set(landed)):
        manifest = read.get(batch)
        rows, tombstones = landed.get(batch, (0, 0))
        if manifest is None:
            problems.append(f"batch {batch}: {rows} rows landed without a manifest")
        elif (manifest["rows"], manifest.get("tombstones", 0)) != (rows, tombstones):
            problems.append(
                f"batch {batch}: manifest says {manifest['rows']} rows and {manifest.get('tombstones', 0)} "
                f"tombstones read, the landing file holds {rows} and {tombstones}"
            )
    key = _key_expression(table.primary_key)
    held = "select null::varchar as k, null::varchar as b where false"
    if "conflicts" in models:  # by convention its first column is the key, beside batch_id
        (first,) = conn.execute(
            "select column_name from information_schema.columns where table_schema = 'staging' "
            "and table_name = ? order by ordinal_position limit 1",
            [models["conflicts"]],
        ).fetchone()
        held = f'select cast("{first}" as varchar) as k, batch_id as b from staging.{models["conflicts"]}'

    staging_rows, expected, data_rows, deleted, held_rows = conn.execute(
        f"""
        with
        landed as (
            select {key} as k, _batch_id as b, coalesce(_deleted, false) as d
            from read_parquet(?, union_by_name = true)
        ),
        held as ({held}),
        kept as (select landed.* from landed anti join held on landed.k = held.k and landed.b = held.b),
        latest as (
            select k, d from kept qualify row_number() over (partition by k order by b desc, d desc) = 1
        )
        select
            (select count(*) from staging.{models["staging"]}),
            (select count(*) from latest where not d),
            (select count(*) from landed where not d),
            (select count(*) from kept where not d and k in (select k from latest where d)),
            (select count(*) from landed semi join held on landed.k = held.k and landed.b = held.b)
        """,
        [data],
    ).fetchone()
    if staging_rows != expected:
        problems.append(
            f"staging.{models['staging']} holds {staging_rows} rows, the landing zone has {expected} current "
            f"keys ({staging_rows - expected:+d})"
        )
    return TableReconciliation(
        table=name,
        staging_model=models["staging"],
        batches=len(landed),
        rows_read=sum(m["rows"] for m in read.values()),
        rows_landed=data_rows,
        tombstones_read=sum(m.get("tombstones", 0) for m in read.values()),
        tombstones_landed=sum(t for _, t in landed.values()),
        staging_rows=staging_rows,
        superseded_rows=data_rows - held_rows - deleted - staging_rows,
        deleted_rows=deleted,
        held_rows=held_rows,
        expected_staging_rows=expected,
        problems=problems,
    )


def reconcile_sources(paths: Paths | None = None, *, strict: bool = True) -> list[TableReconciliation]:
    """Every declared source table; raises :class:`NotReconciled` (all problems) when ``strict``."""

    from campusdx.sources.files import load_file_decls  # at run time: the DAG files import this module

    paths = paths or default_paths()
    models = staging_models()
    results = []
    with open_warehouse(paths) as conn:
        for declaration in load_systems():
            for table in [*declaration.enabled_tables, *load_file_decls(declaration.path)]:
                name = f"{declaration.system}.{table.name}"
                if not any((paths.landing / declaration.system / table.name).glob("*.parquet")):
                    continue  # never extracted: nothing read, nothing to reconcile
                if "staging" not in models.get(name, {}):
                    raise NotReconciled(f"{name}: no staging model takes its current versions")
                results.append(reconcile_table(conn, paths, declaration.system, table, models[name]))
    broken = [r for r in results if not r.ok]
    if strict and broken:
        raise NotReconciled("; ".join(f"{r.table}: {' / '.join(r.problems)}" for r in broken))
    return results


def as_rows(results: list[TableReconciliation]) -> list[dict]:
    return [{**asdict(r), "ok": r.ok} for r in results]


def as_table(results: list[TableReconciliation]) -> str:
    """The reconciliation as a text table (``campusdx reconcile``)."""
    header = ("table", "read", "landed", "staging", "superseded", "deleted", "held", "status")
    lines = [header]
    for r in results:
        lines.append(
            (
                r.table,
                f"{r.rows_read:,}",
                f"{r.rows_landed:,}",
                f"{r.staging_rows:,}",
                f"{r.superseded_rows:,}",
                f"{r.deleted_rows:,}",
                f"{r.held_rows:,}",
                "ok" if r.ok else "NOT RECONCILED",
            )
        )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    text = []
    for row in lines:
        cells = [str(c).rjust(w) for c, w in zip(row, widths, strict=True)]
        cells[0] = str(row[0]).ljust(widths[0])
        text.append("  ".join(cells))
    for r in results:
        text += [f"  {r.table}: {p}" for p in r.problems]
    return "\n".join(text)
