"""Published warehouse snapshots: what every reader outside the pipeline opens.

dbt builds into the *build database* (``<home>/warehouse.duckdb``), which only the pipeline
opens: a DuckDB file has one writer or many readers, never both, so one analyst's connection
left open would stop the next build ("Could not set lock on file"). When a warehouse run has
built the feeds, the pipeline *publishes* the build as a snapshot: a file copy of the closed,
checkpointed build, made read-only, described beside it::

    <home>/snapshots/<id>/warehouse.duckdb   the snapshot (mode 0444; never changed again)
    <home>/snapshots/<id>/snapshot.json      id, warehouse run id, time, bytes
    <home>/snapshots/<id>/pinned             present when pinned (kept by every prune)
    <home>/snapshots/current -> <id>         the newest, switched atomically (a symlink renamed
                                             over the old one)

A reader opens ``snapshots/current/warehouse.duckdb`` (or a past snapshot by id) read-only. A
connection keeps the file it opened: the next publication switches ``current`` for new
connections and never touches a published file, and a pruned snapshot's file stays readable
by a connection that holds it (the kernel frees it when the last one closes). Inside a
snapshot, ``campusdx_build.info`` (written by dbt at the end of every invocation:
dbt_project.yml) says which build a connection is reading, without a write at publication.

DuckDB keeps one database instance per path within a process: in one process, open a new
snapshot by its own path (:func:`path_of`, or :func:`connect`), not through ``current``,
or a second connection can be handed the instance of the first.

Publishing, pinning and pruning hold ``<home>/locks/snapshots.lock``; the last
``$CAMPUSDX_SNAPSHOTS_KEEP`` snapshots (default 3), the current one and every pinned one are kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from campusdx.core import atomic, locks
from campusdx.core.settings import Paths, current
from campusdx.core.warehouse import reading, writing

DATABASE = "warehouse.duckdb"
INFO = "snapshot.json"
PINNED = "pinned"
CURRENT = "current"
BUILD_INFO = "campusdx_build.info"
"""The table dbt writes into the build at the end of every invocation: which build a copy is."""
log = logging.getLogger(__name__)
_ID = re.compile(r"\d{8}T\d{12}Z\Z")


class SnapshotError(RuntimeError):
    """No such snapshot, none published yet, or a request the snapshots cannot take."""


@dataclass(frozen=True)
class Snapshot:
    """One published snapshot, as its ``snapshot.json`` says."""

    id: str
    run_id: str
    created_at: str
    bytes: int
    pinned: bool = False
    current: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def root(paths: Paths) -> Path:
    """``<home>/snapshots``."""
    return paths.home / "snapshots"


def check_id(snapshot_id: str) -> str:
    """``snapshot_id`` when it has the shape of one (``20261205T013000123456Z``); else
    :class:`SnapshotError` (an id from a command line or a request never names a path raw)."""
    if not isinstance(snapshot_id, str) or not _ID.match(snapshot_id):
        raise SnapshotError(f"{snapshot_id!r} is not a snapshot id (like 20261205T013000123456Z)")
    return snapshot_id


def path_of(paths: Paths, snapshot_id: str | None = None) -> Path:
    """The database file of snapshot ``snapshot_id`` (None: the current one), resolved to its own
    directory; :class:`SnapshotError` naming what is missing."""
    snapshot_id = current_id(paths) if snapshot_id is None else check_id(snapshot_id)
    if snapshot_id is None:
        raise SnapshotError(
            f"no warehouse snapshot is published under {root(paths)} yet: a warehouse run publishes "
            "one when it has built the feeds (campusdx snapshots publish does it by hand)"
        )
    database = root(paths) / snapshot_id / DATABASE
    if not database.is_file():
        raise SnapshotError(f"snapshot {snapshot_id} is not in {root(paths)} (pruned?)")
    return database


def current_id(paths: Paths) -> str | None:
    """The id ``current`` points at, or None when nothing is published."""
    link = root(paths) / CURRENT
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError:  # a copy of the home that followed the link: the snapshot's own description
        try:
            return check_id(str(json.loads((link / INFO).read_text(encoding="utf-8"))["id"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise SnapshotError(f"{link} is neither a link to a snapshot nor a copy of one") from None
    return check_id(Path(target).name)


@contextmanager
def connect(paths: Paths, snapshot_id: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a snapshot (None: the current one). Never waits for the
    pipeline: a snapshot is never written."""
    with duckdb.connect(str(path_of(paths, snapshot_id)), read_only=True) as conn:
        yield conn


def _lock(paths: Paths, wait_s: float | None):
    return locks.hold(
        locks.lock_path(paths.home / "locks", "snapshots"),
        "snapshot publication or prune",
        wait_s=locks.task_wait_s() if wait_s is None else wait_s,
    )


def _new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def publish(paths: Paths, run_id: str, *, keep: int | None = None, wait_s: float | None = None) -> Snapshot:
    """Publish the build database as a new snapshot and make it current; prune old ones.

    The build is copied while dbt cannot write it (the warehouse read lock), after a checkpoint
    when a write-ahead log is left (a build that died before closing). The copy is completed in
    a hidden directory, made read-only and fsynced, then renamed into place and ``current``
    switched to it by renaming a new symlink over the old one: a reader sees the old snapshot or
    the new one, never a part."""
    build = paths.warehouse
    if not build.is_file():
        raise SnapshotError(f"there is no warehouse build to publish at {build}: run the warehouse DAG")
    base = root(paths)
    base.mkdir(parents=True, exist_ok=True)
    with _lock(paths, wait_s):
        snapshot_id = _new_id()
        while (base / snapshot_id).exists():  # two publications within a microsecond
            snapshot_id = _new_id()
        staging = base / f".{snapshot_id}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            database = staging / DATABASE
            _copy_build(paths, database)
            created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            info = Snapshot(snapshot_id, run_id, created_at, database.stat().st_size)
            atomic.write_file(staging / INFO, _info_bytes(info))
            os.chmod(database, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            atomic.fsync_file(database)
            atomic.fsync_dir(staging)
            os.rename(staging, base / snapshot_id)
            atomic.fsync_dir(base)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _switch(base, snapshot_id)
        _prune(paths, current().snapshots_keep if keep is None else keep)
    return _read(base / snapshot_id, snapshot_id, snapshot_id)


def _copy_build(paths: Paths, target: Path) -> None:
    """Copy the closed build to ``target`` (the bytes of a checkpointed DuckDB file are the whole
    database); a write-ahead log left by a build that died is checkpointed into it first."""
    wal = paths.warehouse.with_name(paths.warehouse.name + ".wal")
    if wal.exists():
        with writing(paths), duckdb.connect(str(paths.warehouse)) as conn:
            conn.execute("checkpoint")
    with reading(paths):
        if wal.exists():
            raise SnapshotError(f"{wal} appeared while publishing: a build is writing; publish after it")
        shutil.copyfile(paths.warehouse, target)


def _info_bytes(info: Snapshot) -> bytes:
    fields = {k: v for k, v in info.as_dict().items() if k not in ("pinned", "current")}
    return json.dumps(fields, ensure_ascii=False, indent=2).encode("utf-8")


def _switch(base: Path, snapshot_id: str) -> None:
    """Point ``current`` at ``snapshot_id``: a new symlink renamed over the old one."""
    link = base / f".{CURRENT}.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    copied = base / CURRENT
    if copied.is_dir() and not copied.is_symlink():  # a copy of the home that followed the link
        shutil.rmtree(copied)
    os.symlink(snapshot_id, link)
    os.replace(link, base / CURRENT)
    atomic.fsync_dir(base)


def _read(directory: Path, snapshot_id: str, now: str | None) -> Snapshot:
    """The snapshot in ``directory`` (``now``: the current snapshot's id)."""
    try:
        info = json.loads((directory / INFO).read_text(encoding="utf-8"))
        return Snapshot(
            id=snapshot_id,
            run_id=str(info["run_id"]),
            created_at=str(info["created_at"]),
            bytes=int(info["bytes"]),
            pinned=(directory / PINNED).exists(),
            current=snapshot_id == now,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise SnapshotError(f"{directory / INFO}: not readable as a snapshot's description: {exc}") from None


def listed(paths: Paths) -> list[Snapshot]:
    """Every published snapshot, oldest first."""
    base = root(paths)
    if not base.is_dir():
        return []
    now = current_id(paths)
    found = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if _ID.match(entry.name) and entry.is_dir() and not entry.is_symlink():
            try:
                found.append(_read(entry, entry.name, now))
            except SnapshotError as exc:  # not a whole snapshot: never listed, pruned or opened
                log.warning("%s", exc)
    return found


def pin(paths: Paths, snapshot_id: str, reason: str = "", *, pinned: bool = True) -> Snapshot:
    """Pin (or unpin) a snapshot: a pinned one survives every prune."""
    directory = root(paths) / check_id(snapshot_id)
    with _lock(paths, 0):
        path_of(paths, snapshot_id)  # under the lock: a prune cannot remove it meanwhile
        if pinned:
            atomic.write_bytes(directory / PINNED, reason.encode("utf-8"))
        else:
            (directory / PINNED).unlink(missing_ok=True)
        return _read(directory, snapshot_id, current_id(paths))


def prune(paths: Paths, keep: int | None = None) -> list[str]:
    """Remove the snapshots beyond the newest ``keep`` (default ``$CAMPUSDX_SNAPSHOTS_KEEP``),
    never the current one nor a pinned one; returns the ids removed."""
    with _lock(paths, 0):
        return _prune(paths, current().snapshots_keep if keep is None else keep)


def _prune(paths: Paths, keep: int) -> list[str]:
    if keep < 1:
        raise SnapshotError(f"keep must be at least 1 (got {keep})")
    every = listed(paths)
    newest = {s.id for s in every[-keep:]}
    removed = []
    for snapshot in every:
        if snapshot.id in newest or snapshot.current or snapshot.pinned:
            continue
        gone = root(paths) / f".{snapshot.id}.removing"
        os.rename(root(paths) / snapshot.id, gone)  # out of sight first: never half a snapshot listed
        shutil.rmtree(gone)
        removed.append(snapshot.id)
    for stale in root(paths).glob(".*.removing"):  # left by a prune that died
        shutil.rmtree(stale, ignore_errors=True)
    return removed
