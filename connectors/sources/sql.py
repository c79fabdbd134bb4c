"""The generic SQL extractor: any SQLAlchemy database -> Parquet batches in the landing zone.

Rows are streamed from the server in chunks (server-side cursor where the driver has one)
and written as Arrow record batches, so memory stays flat whatever the table size. The Arrow
schema comes from the database's own column types, so every batch of a table has the same
schema.

- PostgreSQL is read Arrow-native (ADBC, COPY BINARY: ``arrow_pg``); other databases through
  the SQLAlchemy cursor. No ORDER BY: the cursor range is computed per batch.
- Incremental: ``cursor >= watermark - lookback``. The watermark row is read again on purpose
  (rows committed late with the same timestamp are not lost); the repeats are removed
  downstream by key and content.
- Deletes (``deletes: key_snapshot``): a run also lands the table's keys (every run, or when
  the last snapshot is ``snapshot_every_hours`` old); a key present in the previous snapshot
  and missing now is landed as a tombstone (``_deleted`` true, key columns only) in the same
  batch.
  The previous snapshot a manifest names must be there: a missing one fails the table, naming
  the file (a first snapshot, with none before it, is fine).
- One extraction per table at a time (:meth:`Landing.lock`); the snapshot, the data file and
  the manifest are committed with file and directory fsync (:mod:`campusdx.core.atomic`).
- Schema drift: a new source column is landed and reported in the manifest; a column that
  earlier batches had and the source lost, or a changed type, fails this table (others go on)
  with a message naming system, table and column.
- An unreachable source is retried with back-off; the error names the connection, never its
  password.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
import tenacity

from campusdx.core import atomic
from campusdx.core.declarations import SystemDecl, TableDecl
from campusdx.core.manifest import Column, Cursor, LandingManifest, utc_stamp
from campusdx.core.settings import redact
from campusdx.sources.arrow_pg import conform, connect, stream_query
from campusdx.sources.errors import ExtractError, SourceUnreachable
from campusdx.sources.landing import BATCH_COLUMN, DELETED_COLUMN, Landing, new_batch_id

__all__ = [
    "BatchResult",
    "ExtractError",
    "SourceConnection",
    "SourceUnreachable",
    "extract_system",
    "extract_table",
]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000
RETRIES = 3
BACKOFF_S = 1.0


@dataclass(frozen=True)
class BatchResult:
    """What one extraction landed."""

    system: str
    table: str
    batch_id: str
    rows: int
    mode: str
    seconds: float
    tombstones: int = 0
    added_columns: tuple[str, ...] = ()


def arrow_type(column_type: sa.types.TypeEngine) -> pa.DataType:
    """Arrow type for a reflected column type; text for anything not clearly typed."""
    if isinstance(column_type, sa.Boolean):
        return pa.bool_()
    if isinstance(column_type, sa.Integer):
        return pa.int64()
    if isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
        if column_type.scale is None:  # unconstrained numeric: keep its text exactly
            return pa.string()
        return pa.decimal128(min(column_type.precision or 38, 38), column_type.scale)
    if isinstance(column_type, sa.Float):
        return pa.float64()
    if isinstance(column_type, sa.DateTime):
        return pa.timestamp("us")
    if isinstance(column_type, sa.Date):
        return pa.date32()
    return pa.string()


def _to_array(values: list, target: pa.DataType, where: str) -> pa.Array:
    """Convert one column chunk; text columns take whatever the driver returned, as text."""
    if pa.types.is_string(target):
        try:  # the common case: the driver returned text already
            return pa.array(values, type=pa.string(), from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers in a text column (SQLite): as text
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    failures = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
    try:
        return pa.array(values, from_pandas=False).cast(target)
    except failures:
        pass
    # Arrow's message quotes the value (it may be personal data): name the row, never the value,
    # and do not chain the original exception into the log.
    for row, value in enumerate(values, start=1):
        try:
            pa.array([value], from_pandas=False).cast(target)
        except failures:
            raise ExtractError(
                f"{where}: the value in row {row} of this batch does not convert to {target}"
            ) from None
    raise ExtractError(f"{where}: the values do not convert to {target} together") from None


def schema_fingerprint(schema: pa.Schema) -> str:
    """Short hash of column names and types, to notice schema drift between batches."""
    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SourceConnection:
    """A source's SQLAlchemy engine and, for PostgreSQL, an ADBC connection, opened when first
    needed and shared by the tables extracted one after the other in one process (opening an
    ADBC connection costs tens of milliseconds: as much as reading a small table)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._arrow = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.url)
        return self._engine

    def arrow_connection(self):
        """The ADBC connection (PostgreSQL), or None for databases read through SQLAlchemy."""
        if self._arrow is None and self.engine.dialect.name == "postgresql":
            self._arrow = connect(self.url)
        return self._arrow

    def close(self) -> None:
        if self._arrow is not None:
            self._arrow.close()
            self._arrow = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> SourceConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reflect(engine: sa.Engine, where: str, table: TableDecl) -> list[sa.Column]:
    """The table's columns and types (one catalogue query: keys, indexes and constraints are
    not needed here and cost more than reading a small table)."""
    try:
        found = sa.inspect(engine).get_columns(table.name)
    except sa.exc.NoSuchTableError:
        found = []
    if not found:
        raise ExtractError(f"{where}: the source has no such table")
    columns = [sa.Column(c["name"], c["type"]) for c in found]
    names = {c.name for c in columns}
    for needed in (*table.primary_key, *([table.cursor] if table.cursor else [])):
        if needed not in names:
            raise ExtractError(f"{where}: declared column {needed!r} is missing in the source")
    return columns


def _check_drift(where: str, previous: dict | None, schema: pa.Schema) -> tuple[str, ...]:
    """New columns (reported), or an ExtractError for a lost column or a changed type."""
    if previous is None:
        return ()
    before = {c["name"]: c["type"] for c in previous.get("columns", []) if not c["name"].startswith("_")}
    now = {f.name: str(f.type) for f in schema if not f.name.startswith("_")}
    for name, kind in before.items():
        if name not in now:
            raise ExtractError(f"{where}: column {name!r} was landed before and is missing in the source now")
        if now[name] != kind:
            raise ExtractError(f"{where}: column {name!r} changed type from {kind} to {now[name]}")
    added = tuple(name for name in now if name not in before)
    if added:
        log.warning("%s: new source columns landed: %s", where, ", ".join(added))
    return added


def _quoted(engine: sa.Engine, name: str):
    return sa.literal_column(engine.dialect.identifier_preparer.quote(name))


def _lower_bound(watermark: str, lookback: float) -> str:
    """The watermark less the look-back: seconds for a timestamp cursor, units for a number."""
    if not lookback:
        return watermark
    try:
        return str(int(watermark) - int(lookback))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(watermark)
    except ValueError:
        return watermark  # a cursor we cannot do arithmetic on: no look-back
    return (moment - timedelta(seconds=lookback)).isoformat(sep=" ")


def _typed_bound(value: str, column_type: sa.types.TypeEngine) -> object:
    """The watermark as the cursor column's own type (PostgreSQL compares no timestamp with text)."""
    if isinstance(column_type, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column_type, sa.Date):
        return datetime.fromisoformat(value).date()
    if isinstance(column_type, sa.Integer):
        return int(value)
    return value


def _stream(engine: sa.Engine, query, chunk_rows: int) -> Iterator[list]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
        yield from result.partitions(chunk_rows)


def _data_batches(
    engine: sa.Engine,
    url: str,
    columns: list[sa.Column],
    schema: pa.Schema,
    table: TableDecl,
    query,
    bound: object,
    chunk_rows: int,
    where: str,
    pg_conn=None,
) -> Iterator[pa.RecordBatch]:
    """The table's rows as record batches of ``schema``: Arrow-native from PostgreSQL (ADBC,
    COPY BINARY, on ``pg_conn``), through the SQLAlchemy cursor from every other database."""
    if pg_conn is not None:
        quote = engine.dialect.identifier_preparer.quote
        wanted = [  # text and numeric come back exactly as text, then are cast (numeric decoding is slow)
            f"{quote(c.name)}::text"
            if pa.types.is_string(f.type) or pa.types.is_decimal(f.type)
            else quote(c.name)
            for c, f in zip(columns, schema, strict=False)
        ]
        sql = f"select {', '.join(wanted)} from {quote(table.name)}"
        if bound is not None:
            sql += f" where {quote(table.cursor)} >= $1"
        params = None if bound is None else [bound]
        for batch in stream_query(url, sql, params, batch_rows=chunk_rows, connection=pg_conn):
            yield conform(batch, schema)
        return
    for chunk in _stream(engine, query, chunk_rows):
        cols = list(zip(*chunk, strict=True))
        arrays = [
            _to_array(list(cols[i]), schema.field(i).type, f"{where}.{c.name}") for i, c in enumerate(columns)
        ]
        yield pa.record_batch(arrays, schema=schema)


def _snapshot_keys(
    engine,
    url: str,
    columns: list[sa.Column],
    table: TableDecl,
    schema: pa.Schema,
    path: Path,
    chunk_rows: int,
    pg_conn=None,
) -> int:
    """Land every key of the table (key columns only) for delete detection, read the same way
    as the data (Arrow-native from PostgreSQL)."""
    key_columns = [next(c for c in columns if c.name == k) for k in table.primary_key]
    key_schema = pa.schema([schema.field(k) for k in table.primary_key])
    query = sa.select(*[_quoted(engine, k) for k in table.primary_key]).select_from(sa.table(table.name))
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, key_schema) as writer:
        for batch in _data_batches(
            engine, url, key_columns, key_schema, table, query, None, chunk_rows, table.name, pg_conn
        ):
            writer.write_batch(batch)
            count += batch.num_rows
    atomic.replace(tmp, path)
    return count


def _deleted_keys(
    previous: Path, landed_since: list[Path], landed_now: pa.Table, current: Path, key: tuple[str, ...]
) -> pa.Table:
    """Keys that existed at some point since the previous snapshot and are gone now: those of the
    previous snapshot, of every batch landed since (a row inserted and deleted between two
    snapshots was landed, so it must be tombstoned too) and of this batch's rows, less the keys
    the source holds now."""
    columns = ", ".join(f'"{k}"' for k in key)
    seen = [f"select {columns} from read_parquet(?)"]
    params: list = [str(previous)]
    if landed_since:
        seen.append(f"select {columns} from read_parquet(?, union_by_name = true) where not _deleted")
        params.append([str(p) for p in landed_since])
    if landed_now.num_rows:
        seen.append(f"select {columns} from landed_now")
    with duckdb.connect() as conn:
        conn.register("landed_now", landed_now)
        return conn.execute(
            f"{' union '.join(seen)} except select {columns} from read_parquet(?)", [*params, str(current)]
        ).to_arrow_table()


def _tombstones(deleted: pa.Table, schema: pa.Schema, batch_id: str) -> pa.RecordBatch:
    arrays = []
    for f in schema:
        if f.name in deleted.column_names:
            arrays.append(deleted.column(f.name).combine_chunks().cast(f.type))
        elif f.name == BATCH_COLUMN:
            arrays.append(pa.array([batch_id] * deleted.num_rows, type=pa.string()))
        elif f.name == DELETED_COLUMN:
            arrays.append(pa.array([True] * deleted.num_rows, type=pa.bool_()))
        else:
            arrays.append(pa.nulls(deleted.num_rows, type=f.type))
    return pa.record_batch(arrays, schema=schema)


def _snapshot_due(table: TableDecl, previous: dict | None, full_refresh: bool, forced: bool | None) -> bool:
    """Take the key snapshot now? Forced either way, else on a full read, when there is none
    yet, or when the last one is ``snapshot_every_hours`` old."""
    if table.deletes != "key_snapshot" or forced is False:
        return False
    taken = (previous or {}).get("key_snapshot_at")
    if forced or full_refresh or not taken or not table.snapshot_every_hours:
        return True
    age = datetime.now(UTC) - datetime.strptime(taken, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return age >= timedelta(hours=table.snapshot_every_hours)


def _extract_once(
    decl: SystemDecl,
    table: TableDecl,
    url: str,
    landing: Landing,
    *,
    full_refresh: bool,
    chunk_rows: int,
    key_snapshot: bool | None,
    source: SourceConnection | None,
) -> BatchResult:
    started = time.monotonic()
    where = f"{decl.system}.{table.name}"
    folder = landing.prepare(decl.system, table.name)
    previous = landing.last_manifest(decl.system, table.name)
    before = (previous or {}).get("key_snapshot")
    if before and _snapshot_due(table, previous, full_refresh, key_snapshot):
        missing = landing.keys_path(decl.system, table.name, before)
        if not missing.exists() and not full_refresh:
            raise ExtractError(
                f"{where}: key snapshot {missing} (named by batch {previous['batch_id']}) is missing, so "
                "deletes cannot be detected; restore it, or run a full refresh of the table to take a new "
                "baseline (keys deleted since that snapshot are then not tombstoned)"
            )
        if not missing.exists():
            log.warning("%s: key snapshot %s is missing; full refresh takes a new baseline", where, missing)
    watermark = None if full_refresh or not table.cursor else landing.watermark(decl.system, table.name)
    lower = None if watermark is None else _lower_bound(watermark, table.lookback)
    mode = "full_refresh" if full_refresh else ("incremental" if watermark is not None else "full")
    owned, done = source is None, False
    source = source or SourceConnection(url)
    try:
        engine = source.engine
        columns = _reflect(engine, where, table)
        pg_conn = source.arrow_connection()  # PostgreSQL: one ADBC connection for data and keys
        schema = pa.schema(
            [pa.field(c.name, arrow_type(c.type)) for c in columns]
            + [pa.field(BATCH_COLUMN, pa.string()), pa.field(DELETED_COLUMN, pa.bool_())]
        )
        added = _check_drift(where, previous, schema)
        query = sa.select(*[_quoted(engine, c.name) for c in columns]).select_from(sa.table(table.name))
        bound = None
        if table.cursor and lower is not None:
            cursor_type = next(c.type for c in columns if c.name == table.cursor)
            bound = _typed_bound(lower, cursor_type)
            query = query.where(
                _quoted(engine, table.cursor) >= sa.bindparam("watermark", bound, type_=cursor_type)
            )
        batch_id = new_batch_id()
        tmp = folder / f"{batch_id}.parquet.tmp"
        rows, low, high, tombstones = 0, None, None, 0
        data_schema = pa.schema(list(schema)[: len(columns)])
        batch_ids, not_deleted = pa.array([], pa.string()), pa.array([], pa.bool_())
        snapshot = _snapshot_due(table, previous, full_refresh, key_snapshot)
        landed_keys: list[pa.Table] = []  # this batch's keys, for delete detection
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in _data_batches(
                engine, url, columns, data_schema, table, query, bound, chunk_rows, where, pg_conn
            ):
                n = batch.num_rows
                if n > len(batch_ids):  # constant columns, built once and sliced
                    batch_ids = pa.array([batch_id] * n, pa.string())
                    not_deleted = pa.array([False] * n, pa.bool_())
                arrays = [*batch.columns, batch_ids.slice(0, n), not_deleted.slice(0, n)]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += n
                if snapshot and previous:
                    landed_keys.append(pa.Table.from_batches([batch]).select(list(table.primary_key)))
                if table.cursor and n:
                    span = pc.min_max(batch.column(table.cursor)).as_py()
                    if span["min"] is not None:
                        low = span["min"] if low is None else min(low, span["min"])
                        high = span["max"] if high is None else max(high, span["max"])
            keys = None
            if snapshot:
                keys_path = landing.keys_path(decl.system, table.name, batch_id)
                keys = _snapshot_keys(engine, url, columns, table, schema, keys_path, chunk_rows, pg_conn)
                if before and landing.keys_path(decl.system, table.name, before).exists():
                    since = [
                        landing.data_path(decl.system, table.name, m["batch_id"])
                        for m in landing.manifests(decl.system, table.name)
                        if m["batch_id"] >= before
                    ]
                    key_schema = pa.schema([data_schema.field(k) for k in table.primary_key])
                    deleted = _deleted_keys(
                        landing.keys_path(decl.system, table.name, before),
                        since,
                        pa.concat_tables(landed_keys) if landed_keys else key_schema.empty_table(),
                        keys_path,
                        table.primary_key,
                    )
                    if deleted.num_rows:
                        writer.write_batch(_tombstones(deleted, schema, batch_id))
                        tombstones = deleted.num_rows
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        done = True
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise SourceUnreachable(f"{where}: cannot read from {redact(url)}: {_first_line(exc)}") from None
    finally:
        if owned or not done:  # a connection that failed mid-way is not reused
            source.close()
    now = utc_stamp()
    manifest = LandingManifest(
        system=decl.system,
        table=table.name,
        batch_id=batch_id,
        mode=mode,
        rows=rows,
        tombstones=tombstones,
        primary_key=list(table.primary_key),
        cursor=Cursor(
            column=table.cursor,
            from_=lower,
            watermark=watermark,
            min=None if low is None else str(low),
            max=str(high) if high is not None else (watermark if rows == 0 else None),
        ),
        key_snapshot=batch_id if keys is not None else (previous or {}).get("key_snapshot"),
        key_snapshot_at=now if keys is not None else (previous or {}).get("key_snapshot_at"),
        keys=keys,
        added_columns=list(added),
        source={"url": redact(url), "schema_fingerprint": schema_fingerprint(schema)},
        columns=[Column(name=f.name, type=str(f.type)) for f in schema],
        extracted_at=now,
    )
    landing.commit(decl.system, table.name, batch_id, tmp, manifest)
    seconds = time.monotonic() - started
    log.info(
        "landed %s: %d rows, %d tombstones (%s) in batch %s, %.2fs",
        where,
        rows,
        tombstones,
        mode,
        batch_id,
        seconds,
    )
    return BatchResult(decl.system, table.name, batch_id, rows, mode, seconds, tombstones, added)


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def extract_table(
    decl: SystemDecl,
    table: TableDecl,
    url: str,
    landing: Landing,
    *,
    full_refresh: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    key_snapshot: bool | None = None,
    source: SourceConnection | None = None,
    lock_wait_s: float | None = None,
) -> BatchResult:
    """Land one batch of ``table``: everything, or what changed since the watermark.

    ``source``: connections to reuse across the tables of one system (see ``extract_system``);
    by default the table opens its own and closes them.

    ``key_snapshot``: None takes the delete-detecting key snapshot when the declaration says it
    is due; True takes it now; False skips it.

    Nothing is visible until the batch commits, so a failed attempt is simply tried again
    (``retries`` times, waiting ``backoff_s``, then twice as long, ...) when the source is
    unreachable; other errors fail at once.

    The table's extraction lock is held throughout (:meth:`Landing.lock`; ``lock_wait_s``: how
    long to wait for another extraction of the table, None for an Airflow task's bounded wait,
    0 to fail at once with :class:`campusdx.core.locks.Busy`).
    """
    with landing.lock(decl.system, table.name, wait_s=lock_wait_s):
        try:
            return _retrying(retries, backoff_s)(
                _extract_once,
                decl,
                table,
                url,
                landing,
                full_refresh=full_refresh,
                chunk_rows=chunk_rows,
                key_snapshot=key_snapshot,
                source=source,
            )
        except SourceUnreachable as exc:
            raise SourceUnreachable(f"{exc} (gave up after {retries + 1} attempts)") from None


def _retrying(retries: int, backoff_s: float) -> tenacity.Retrying:
    """Try again when the source is unreachable: ``retries`` times, waiting ``backoff_s``, then
    twice as long, ...; any other error is raised at once."""

    def warn(state: tenacity.RetryCallState) -> None:
        log.warning(
            "%s; retrying in %.1fs (attempt %d of %d)",
            state.outcome.exception(),
            state.upcoming_sleep,
            state.attempt_number + 1,
            retries + 1,
        )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(SourceUnreachable),
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_exponential(multiplier=backoff_s, min=0, max=backoff_s * 2**retries),
        before_sleep=warn,
        reraise=True,
    )


def extract_system(decl: SystemDecl, url: str, landing: Landing, **kwargs) -> list[BatchResult]:
    """Every enabled table of a system (a convenience for scripts and tests). A table that fails
    does not stop the others; the failures are raised together at the end."""
    results, failures = [], []
    with SourceConnection(url) as source:
        for table in decl.enabled_tables:
            try:
                results.append(extract_table(decl, table, url, landing, source=source, **kwargs))
            except ExtractError as exc:
                log.error("%s", exc)
                failures.append(str(exc))
    if failures:
        raise ExtractError(
            f"{len(failures)} of {len(decl.enabled_tables)} tables failed: " + "; ".join(failures)
        )
    return results
