"""Names of the warehouse relations Python reads, declared once (the dbt project builds them).

The quality gate, the platform's rejections and the reconciliation read a dataset's PX
candidates (the rows the feed is made from, before the quarantine takes its rows out). They
belong to the feeds layer (dbt_project/models/feeds/candidates/) and are built before the gate,
in their own schema ``feeds_candidates`` beside ``feeds`` (which holds only what is sent:
``feeds.feed_px__<dataset>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from campusdx.core.locks import Busy
from campusdx.core.settings import Paths, current


def candidates(dataset: str) -> str:
    """The relation of a PX dataset's candidate rows, e.g. ``feeds_candidates.feed_px_candidates__zzjg``."""
    return f"feeds_candidates.feed_px_candidates__{dataset.lower()}"


# -- one writer, many readers ---------------------------------------------------------------
# DuckDB lets one process write a database file, or any number read it, never both: a reader
# opening the file while dbt writes it fails ("Could not set lock on file"), and dbt fails the
# same way while a reader holds it. Every reader of the build (the gates, the reconciliation,
# the snapshot's publication; readers outside the pipeline open published snapshots instead:
# campusdx.core.snapshots) and the writer therefore take this inter-process read-write lock
# first (filelock's, on SQLite: released by the kernel when the holder dies). Readers share
# it; dbt takes it alone and waits for the readers in flight, which then wait for dbt. Both
# wait at most ``CAMPUSDX_LOCK_WAIT_S`` and fail naming the warehouse.


def _rwlock(paths: Paths):
    from filelock import ReadWriteLock

    locks = paths.home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    return ReadWriteLock(locks / "warehouse.rwlock.db")


@contextmanager
def _hold(paths: Paths, mode: str, wait_s: float | None, busy: str) -> Iterator[None]:
    from filelock import Timeout

    wait = current().lock_wait_s if wait_s is None else wait_s
    lock = _rwlock(paths)
    acquire = lock.acquire_read if mode == "read" else lock.acquire_write
    try:
        acquire(timeout=wait)
    except Timeout:  # only the wait for the lock: what runs under it raises as it is
        raise Busy(f"the warehouse {paths.warehouse} {busy} {wait:g} s") from None
    try:
        yield
    finally:
        lock.release()


def reading(paths: Paths, *, wait_s: float | None = None):
    """Hold the warehouse for reading (shared with other readers, never with dbt)."""
    return _hold(paths, "read", wait_s, "is being written (dbt); waited")


def writing(paths: Paths, *, wait_s: float | None = None):
    """Hold the warehouse for writing (dbt): waits until no reader holds it."""
    return _hold(paths, "write", wait_s, "is being read; dbt waited")


@contextmanager
def open_warehouse(paths: Paths, *, wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, under the read lock."""
    with reading(paths, wait_s=wait_s), duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        yield conn
