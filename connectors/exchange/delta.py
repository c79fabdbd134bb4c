"""What the province holds, and the DELTA from it to the feed, computed in DuckDB.

For every package the publisher builds it keeps, under ``<home>/exchange/state/<DATASET>/``:

- ``<batch_id>.sent.parquet``: the rows the package carries (to find a receipt's rejected
  rows by file and line);
- ``<batch_id>.post.parquet``: what the platform holds once it takes the whole package (FULL:
  the rows; DELTA: the previous state with the changes applied).

A PARTIAL receipt adds ``<batch_id>.held.parquet``: the platform took the package except the
rejected rows (FULL: those rows are missing; DELTA: those keys keep their previous version).
Files are written before the ledger records the step they belong to, so the ledger never
points at a state that is not on disk. The state of a dataset is that of its last delivered
package (:func:`delivered_state`); with none on record the next package is a FULL.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.exchange.package import fsync_dir, write_atomically
from connectors.exchange.profile import Dataset, Profile

_LINE = re.compile(r"^(?P<dataset>[A-Z0-9]+)\.(?P<part>[0-9]+)\.csv$")


class DeltaError(RuntimeError):
    """A state file the ledger names is missing or does not fit the dataset."""


def state_dir(exchange: Path, dataset: str) -> Path:
    return exchange / "state" / dataset


def state_file(exchange: Path, dataset: str, batch_id: str, kind: str) -> Path:
    """``kind``: ``sent``, ``post`` or ``held``."""
    return state_dir(exchange, dataset) / f"{batch_id}.{kind}.parquet"


def write_table(path: Path, table: pa.Table) -> None:
    """Write ``table`` as Parquet atomically and durably (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_atomically(path, buffer.getvalue())
    fsync_dir(path.parent.parent)


def delivered_state(exchange: Path, dataset: str, entry: Any | None) -> Path | None:
    """The state file of the last delivered package ``entry`` (a ledger entry), or None when
    there is none on record (nothing delivered yet, or a ledger older than the state files)."""
    if entry is None:
        return None
    if entry.status == "PARTIAL":
        held = state_file(exchange, dataset, entry.batch_id, "held")
        if held.exists():
            return held
    post = state_file(exchange, dataset, entry.batch_id, "post")
    return post if post.exists() else None


def prune(exchange: Path, dataset: str, keep: set[str]) -> int:
    """Remove the state files of the dataset's packages whose batch id is not in ``keep``."""
    removed = 0
    for path in state_dir(exchange, dataset).glob("*.parquet"):
        if path.name.split(".", 1)[0] not in keep:
            path.unlink()
            removed += 1
    return removed


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _conn(**tables: pa.Table | Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    for name, table in tables.items():
        if isinstance(table, Path):
            conn.execute(f"create view {name} as select * from read_parquet('{table.as_posix()}')")
        else:
            conn.register(name, table)
    return conn


def _keys_match(left: str, right: str, dataset: Dataset) -> str:
    return " and ".join(f"{left}.{_q(k)} = {right}.{_q(k)}" for k in dataset.primary_key)


def compute_delta(profile: Profile, dataset: Dataset, feed: pa.Table, state: Path) -> pa.Table:
    """The DELTA rows from ``state`` (what the platform holds) to ``feed``: inserts, updates
    and deletes with the profile's op column, in primary-key order; empty when nothing changed.

    A delete carries its primary-key fields only (PX-1.0 §2.1)."""
    fields = dataset.field_codes
    op, ops = profile.op_column, profile.ops
    cols = ", ".join(f"f.{_q(c)}" for c in fields)
    differs = " or ".join(f"f.{_q(c)} is distinct from s.{_q(c)}" for c in fields)
    deleted = ", ".join(
        f"s.{_q(c)}" if c in dataset.primary_key else f"cast(null as varchar) as {_q(c)}" for c in fields
    )
    order = ", ".join(_q(k) for k in dataset.primary_key)
    on = _keys_match("f", "s", dataset)
    sql = f"""
        select * from (
            select {cols}, '{ops["insert"]}' as {_q(op)} from feed f anti join state s on {on}
            union all
            select {cols}, '{ops["update"]}' from feed f join state s on {on} where {differs}
            union all
            select {deleted}, '{ops["delete"]}' from state s anti join feed f on {on}
        ) order by {order}, {_q(op)}
    """
    with _conn(feed=_strings(feed, fields), state=state) as conn:
        return _strings(conn.execute(sql).to_arrow_table(), (*fields, op))


def apply_delta(profile: Profile, dataset: Dataset, state: Path, delta: pa.Table) -> pa.Table:
    """What the platform holds after taking the whole ``delta`` on top of ``state``."""
    fields = dataset.field_codes
    cols = ", ".join(_q(c) for c in fields)
    on = _keys_match("s", "d", dataset)
    sql = f"""
        select {cols} from (
            select {", ".join(f"s.{_q(c)}" for c in fields)} from state s anti join delta d on {on}
            union all
            select {cols} from delta where {_q(profile.op_column)} <> '{profile.ops["delete"]}'
        ) order by {", ".join(_q(k) for k in dataset.primary_key)}
    """
    with _conn(state=state, delta=delta) as conn:
        return _strings(conn.execute(sql).to_arrow_table(), fields)


def rejected_rows(profile: Profile, receipt: Mapping[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The rows a receipt rejected, by index (from 0, in package order), each with its errors:
    the errors that are not warnings. A receipt's line counts file lines, the header being 1."""
    rows: dict[int, list[dict[str, Any]]] = {}
    for error in receipt.get("errors") or []:
        rule, file, line = error.get("rule") or "", error.get("file") or "", error.get("line")
        match = _LINE.match(file)
        if rule.startswith("PX-W") or not match or not isinstance(line, int) or line < 2:
            continue
        index = (int(match["part"]) - 1) * profile.max_rows_per_part + line - 2
        rows.setdefault(index, []).append(dict(error))
    return dict(sorted(rows.items()))


def held_after_partial(
    dataset: Dataset, mode: str, sent: Path, post: Path, previous: Path | None, rejected: Iterable[int]
) -> pa.Table:
    """What the platform holds after a PARTIAL: the whole package less the rejected rows.

    FULL: the rejected rows are simply missing. DELTA: a rejected row's key keeps the version
    the platform held before (or stays absent)."""
    fields = dataset.field_codes
    keys = pq.read_table(sent, columns=list(dataset.primary_key)).take(pa.array(sorted(rejected), pa.int64()))
    held = _conn(post=post, rejected=keys)
    try:
        on = _keys_match("p", "r", dataset)
        kept = f"select {', '.join(f'p.{_q(c)}' for c in fields)} from post p anti join rejected r on {on}"
        if mode == "DELTA" and previous is not None:
            held.execute(f"create view previous as select * from read_parquet('{previous.as_posix()}')")
            back = _keys_match("v", "r", dataset)
            kept += (
                f" union all select {', '.join(f'v.{_q(c)}' for c in fields)} from previous v"
                f" semi join rejected r on {back}"
            )
        order = ", ".join(_q(k) for k in dataset.primary_key)
        return _strings(held.execute(f"select * from ({kept}) order by {order}").to_arrow_table(), fields)
    finally:
        held.close()


def _strings(table: pa.Table, columns: Iterable[str]) -> pa.Table:
    """``table`` with exactly ``columns``, all plain strings (a column of nulls included)."""
    columns = list(columns)
    return pa.table({c: table.column(c).cast(pa.string()) for c in columns})
