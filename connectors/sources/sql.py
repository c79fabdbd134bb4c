"""The generic SQL extractor: any SQLAlchemy database -> Parquet batches in the landing zone.

Rows are streamed from the server in chunks (server-side cursor where the driver has one)
and written as Arrow record batches, so memory stays flat whatever the table size. The Arrow
schema comes from the database's own column types, so every batch of a table has the same
schema. Incremental tables read ``cursor >= watermark`` (the watermark row is read again on
purpose: rows committed late with the same timestamp are not lost; the repeats are removed
downstream by key and cursor).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from connectors.sources.declarations import SystemDecl, TableDecl
from connectors.sources.landing import BATCH_COLUMN, Landing, new_batch_id

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000


class ExtractError(RuntimeError):
    """Extraction of one table failed; the message names system, table and column."""


@dataclass(frozen=True)
class BatchResult:
    """What one extraction landed."""

    system: str
    table: str
    batch_id: str
    rows: int
    mode: str
    seconds: float


def redact(url: str) -> str:
    """The URL with its password hidden, safe for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def arrow_type(column_type: sa.types.TypeEngine) -> pa.DataType:
    """Arrow type for a reflected column type; text for anything not clearly typed."""
    if isinstance(column_type, sa.Boolean):
        return pa.bool_()
    if isinstance(column_type, sa.Integer):
        return pa.int64()
    if isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
        precision = column_type.precision or 38
        scale = column_type.scale if column_type.scale is not None else 0
        if column_type.scale is None:  # unconstrained numeric: keep its text exactly
            return pa.string()
        return pa.decimal128(min(precision, 38), scale)
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
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(values, from_pandas=False).cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ExtractError(f"{where}: values do not convert to {target}: {exc}") from exc


def _reflect(engine: sa.Engine, decl: SystemDecl, table: TableDecl) -> sa.Table:
    try:
        reflected = sa.Table(table.name, sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise ExtractError(f"{decl.system}.{table.name}: the source has no such table") from None
    names = set(reflected.columns.keys())
    for needed in (*table.primary_key, *([table.cursor] if table.cursor else [])):
        if needed not in names:
            raise ExtractError(
                f"{decl.system}.{table.name}: declared column {needed!r} is missing in the source"
            )
    return reflected


def schema_fingerprint(schema: pa.Schema) -> str:
    """Short hash of column names and types, to notice schema drift between batches."""
    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def extract_table(
    decl: SystemDecl,
    table: TableDecl,
    url: str,
    landing: Landing,
    *,
    full_refresh: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchResult:
    """Land one batch of ``table``: everything, or what changed since the watermark."""
    started = time.monotonic()
    where = f"{decl.system}.{table.name}"
    folder = landing.prepare(decl.system, table.name)
    watermark = None if full_refresh or not table.cursor else landing.watermark(decl.system, table.name)
    mode = "incremental" if watermark is not None else "full"
    engine = sa.create_engine(url)
    try:
        source = _reflect(engine, decl, table)
        columns = list(source.columns)
        schema = pa.schema(
            [pa.field(c.name, arrow_type(c.type)) for c in columns] + [pa.field(BATCH_COLUMN, pa.string())]
        )
        query = sa.select(
            *[sa.literal_column(engine.dialect.identifier_preparer.quote(c.name)) for c in columns]
        )
        query = query.select_from(sa.table(table.name))
        if table.cursor:
            cursor_col = sa.literal_column(engine.dialect.identifier_preparer.quote(table.cursor))
            if watermark is not None:
                query = query.where(cursor_col >= sa.literal(watermark))
            query = query.order_by(cursor_col)
        batch_id = new_batch_id()
        tmp = folder / f"{batch_id}.parquet.tmp"
        rows, low, high = 0, None, None
        cursor_index = [c.name for c in columns].index(table.cursor) if table.cursor else None
        with engine.connect() as conn, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
            for chunk in result.partitions(chunk_rows):
                cols = list(zip(*chunk, strict=True))
                arrays = [
                    _to_array(list(cols[i]), schema.field(i).type, f"{where}.{c.name}")
                    for i, c in enumerate(columns)
                ]
                arrays.append(pa.array([batch_id] * len(chunk), type=pa.string()))
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += len(chunk)
                if cursor_index is not None:
                    values = [v for v in cols[cursor_index] if v is not None]
                    if values:
                        low = min(low, min(values)) if low is not None else min(values)
                        high = max(high, max(values)) if high is not None else max(values)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
    except sa.exc.OperationalError as exc:
        raise ExtractError(f"{where}: cannot read from {redact(url)}: {exc.orig}") from None
    finally:
        engine.dispose()
    manifest = {
        "system": decl.system,
        "table": table.name,
        "batch_id": batch_id,
        "mode": mode,
        "rows": rows,
        "primary_key": list(table.primary_key),
        "cursor": {
            "column": table.cursor,
            "from": watermark,
            "min": None if low is None else str(low),
            "max": None if high is None else str(high),
        },
        "source": {"url": redact(url), "schema_fingerprint": schema_fingerprint(schema)},
        "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
        "extracted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    landing.commit(decl.system, table.name, batch_id, tmp, manifest)
    seconds = time.monotonic() - started
    log.info("landed %s: %d rows (%s) in batch %s, %.2fs", where, rows, mode, batch_id, seconds)
    return BatchResult(decl.system, table.name, batch_id, rows, mode, seconds)


def extract_system(decl: SystemDecl, url: str, landing: Landing, **kwargs) -> list[BatchResult]:
    """Every enabled table of a system (a convenience for scripts and tests)."""
    return [extract_table(decl, t, url, landing, **kwargs) for t in decl.enabled_tables]
