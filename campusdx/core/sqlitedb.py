"""Durable local state in SQLite (the publisher's ledger, the simulated platform's store).

WAL with synchronous=FULL, and one ``BEGIN IMMEDIATE`` transaction per change: a crash at any
point leaves the state before or after the change, never between.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_durable(path: Path | str, schema: str, *, threads: bool = False) -> sqlite3.Connection:
    """Open (creating when missing) the database at ``path`` and apply the idempotent ``schema``.

    ``threads``: the connection may be used from several threads (callers serialise access)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=not threads)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction: committed when the block ends, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
