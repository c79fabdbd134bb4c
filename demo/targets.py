"""Put a generated source system into a real database (PostgreSQL, MariaDB) by SQLAlchemy URL.

The simulated campus is generated as SQLite; a real deployment's systems live in vendor
databases. ``copy_system`` recreates each table in the target with the types such a vendor
would use there (modification stamps as TIMESTAMP/DATETIME, keys as VARCHAR, money as
NUMERIC(18,2), text as utf8mb4 on MariaDB) and copies the rows in chunks.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from campusdx.demo.life import STAMP

CHUNK = 5_000


def _column_type(declared: str, name: str, system: str, is_key: bool) -> sa.types.TypeEngine:
    declared = declared.upper()
    if name == STAMP[system]:
        return sa.DateTime()
    if declared.startswith("INTEGER"):
        return sa.BigInteger()
    if declared.startswith("NUMERIC"):
        return sa.Numeric(18, 2)
    return sa.String(64) if is_key else sa.String(255)


def copy_system(sqlite_path: Path, system: str, url: str) -> dict[str, int]:
    """Recreate every table of one generated system in the database at ``url``; rows per table."""
    source = sqlite3.connect(sqlite_path)
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    copied: dict[str, int] = {}
    try:
        tables = [
            r[0] for r in source.execute("select name from sqlite_master where type = 'table' order by 1")
        ]
        for name in tables:
            info = source.execute(
                f"pragma table_info({name})"
            ).fetchall()  # cid, name, type, notnull, dflt, pk
            sa.Table(
                name,
                metadata,
                *[
                    sa.Column(
                        col, _column_type(kind, col, system, bool(pk)), primary_key=bool(pk), nullable=not nn
                    )
                    for _, col, kind, nn, _, pk in info
                ],
                mysql_charset="utf8mb4",
            )
        metadata.drop_all(engine)
        metadata.create_all(engine)
        for name in tables:
            table = metadata.tables[name]
            stamp = STAMP[system] if STAMP[system] in table.columns else None
            cursor = source.execute(f"select * from {name}")
            columns = [d[0] for d in cursor.description]
            copied[name] = 0
            with engine.begin() as conn:
                while rows := cursor.fetchmany(CHUNK):
                    records = [dict(zip(columns, row, strict=True)) for row in rows]
                    if stamp:
                        for record in records:
                            record[stamp] = datetime.fromisoformat(record[stamp])
                    conn.execute(table.insert(), records)
                    copied[name] += len(records)
    finally:
        source.close()
        engine.dispose()
    return copied
