"""The warehouse's SCD2 history kept beside the snapshots, as Parquet parts a backup can copy.

dbt's snapshots of staff and students (schema ``snapshots``) are the one part of the warehouse
the landing zone cannot rebuild. After each snapshot publication the pipeline brings
``<home>/history/`` up to the new snapshot (:func:`export`):

==============================  ================================================================
``history/index.json``          the snapshot it holds, and per table its parts: file, digest, rows
``history/<table>/<n>.<d>.parquet``  part ``n`` of the table (versions whose ``dbt_scd_id`` hashes
                                to ``n`` of :data:`PARTS`); ``d``: 16 hex digits of the SHA-256
                                of its digest
==============================  ================================================================

Each part is described by a digest computed in DuckDB: the table's columns and types; the MD5
of the part's versions in order, each its ``dbt_scd_id`` (dbt's MD5 of key and start) and
``dbt_valid_to`` (the one value dbt ever changes in a version: when it is closed); and the sum
of a hash of every whole row, so a row changed outside dbt's rules changes the digest too. A
table without dbt's columns is one part, digested by the MD5 of every row as JSON. A part whose
digest is unchanged is not written again, so a day's new and closed versions rewrite a few
parts, and a backup (which copies a file only when it changed) carries those parts alone.

A new part gets a new name and is fsynced before the index names it; the index is replaced
atomically and only then are the files it no longer names removed, all under the history lock,
which a backup holds while it copies: a backup sees one index and every file it names. The
export always brings the history to the snapshot current when it holds the lock, so an export
that waited never puts back an older one. Parts hold names in clear: owner-only, like the
build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from campusdx.core import atomic, locks, snapshots
from campusdx.core.settings import Paths

log = logging.getLogger(__name__)

SCHEMA = "snapshots"
"""The warehouse schema of dbt's snapshots (the SCD2 history)."""
DIRECTORY = "history"
INDEX = "index.json"
PARTS = 64
_TABLE = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_PART_FILE = re.compile(r"(\d{1,3})\.[0-9a-f]{16}\.parquet\Z")


class HistoryError(RuntimeError):
    """The history cannot be exported, or an exported history is not whole; names the file."""


def root(paths: Paths) -> Path:
    return paths.home / DIRECTORY


@contextmanager
def holding(paths: Paths, wait_s: float | None = None) -> Iterator[None]:
    """The history lock: one export at a time, and no export while a backup copies."""
    with locks.hold(
        locks.lock_path(paths.home / "locks", "history"),
        "export of the SCD2 history",
        wait_s=locks.task_wait_s() if wait_s is None else wait_s,
    ):
        yield


def read_index(paths: Paths) -> dict:
    """The index (empty when nothing was exported); :class:`HistoryError` when it is damaged."""
    path = root(paths) / INDEX
    try:
        index = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {"snapshot": None, "tables": {}}
    except (OSError, ValueError) as exc:
        raise HistoryError(f"{path}: not a history index ({exc})") from None
    tables = index.get("tables") if isinstance(index, dict) else None
    if not (
        isinstance(tables, dict)
        and isinstance(index.get("snapshot"), str | None)
        and all(
            isinstance(t, dict)
            and isinstance(t.get("parts"), dict)
            and all(
                isinstance(part, dict)
                and isinstance(part.get("file"), str)
                and isinstance(part.get("digest"), str)
                for part in t["parts"].values()
            )
            for t in tables.values()
        )
    ):
        raise HistoryError(f"{path}: not a history index (tables, parts, files and digests)")
    return index


def files(paths: Paths, index: dict) -> list[tuple[str, Path]]:
    """(path relative to the home, file) of every part the index names, checked to be names the
    export writes (an index is never trusted to point elsewhere)."""
    found = []
    for table, described in sorted(index["tables"].items()):
        if not _TABLE.match(str(table)):
            raise HistoryError(f"{root(paths) / INDEX}: names a table {str(table)[:80]!r}")
        for part in described["parts"].values():
            name = str(part["file"])
            if not _PART_FILE.match(name):
                raise HistoryError(f"{root(paths) / INDEX}: names a part file {name[:80]!r}")
            found.append((f"{DIRECTORY}/{table}/{name}", root(paths) / table / name))
    return found


def export(paths: Paths, *, wait_s: float | None = None) -> dict:
    """Bring ``history/`` up to the current snapshot (read once the lock is held); returns
    ``{"snapshot", "parts", "written"}``. Nothing to do when it holds that snapshot already; an
    index that cannot be read is started again from the snapshot."""
    with holding(paths, wait_s):
        snapshot_id = snapshots.current_id(paths)
        if snapshot_id is None:
            return {"snapshot": None, "parts": 0, "written": 0}
        try:
            before = read_index(paths)
        except HistoryError as exc:
            log.warning("%s: every part is exported again", exc)
            before = {"snapshot": None, "tables": {}}
        if before.get("snapshot") == snapshot_id:
            parts = sum(len(t["parts"]) for t in before["tables"].values())
            return {"snapshot": snapshot_id, "parts": parts, "written": 0}
        base = root(paths)
        base.mkdir(mode=0o700, exist_ok=True)
        os.chmod(base, 0o700)
        if "'" in base.as_posix():
            raise HistoryError(f"{base}: a path with a quote cannot be given to DuckDB")
        tables, written = {}, 0
        with snapshots.connect(paths, snapshot_id) as conn:
            for table, columns, typed in conn.execute(
                "select table_name, list(column_name order by ordinal_position),"
                " list(column_name || ' ' || data_type order by ordinal_position)"
                " from information_schema.columns where table_schema = ? group by table_name order by 1",
                [SCHEMA],
            ).fetchall():
                if not _TABLE.match(table):
                    raise HistoryError(f"snapshot {snapshot_id}: a history table named {table!r}")
                old = before["tables"].get(table, {}).get("parts", {})
                parts, count = _table(conn, base, table, columns, typed, old)
                tables[table] = {"parts": parts}
                written += count
        index = {"snapshot": snapshot_id, "parts": PARTS, "tables": tables}
        atomic.write_bytes(base / INDEX, json.dumps(index, indent=1, sort_keys=True).encode("utf-8"))
        _remove_unnamed(paths, index)
    log.info("SCD2 history of snapshot %s: %d parts written", snapshot_id, written)
    total = sum(len(t["parts"]) for t in tables.values())
    return {"snapshot": snapshot_id, "parts": total, "written": written}


def _table(conn, base: Path, table: str, columns: list, typed: list, old: dict) -> tuple[dict, int]:
    """The parts of one table: the unchanged ones as they were, the changed ones written anew."""
    relation = f'{SCHEMA}."{table}"'
    shape = hashlib.sha256("\n".join(typed).encode("utf-8")).hexdigest()[:16]
    if {"dbt_scd_id", "dbt_valid_to"} <= set(columns):
        part = f"hash(dbt_scd_id) % {PARTS}"
        versions = (
            "md5(string_agg(dbt_scd_id || '|' || coalesce(cast(dbt_valid_to as varchar), ''), ','"
            " order by dbt_scd_id)) || ':' || cast(sum(hash(t)::hugeint) as varchar)"
        )
    else:
        part = "0"
        row = "md5(cast(to_json(t) as varchar))"
        versions = f"md5(string_agg({row}, '' order by {row}))"
    described = conn.execute(
        f"select {part} as part, count(*), '{shape}:' || {versions} from {relation} t group by part"
    ).fetchall() or [(0, 0, f"{shape}:")]  # an empty table: one empty part keeps its columns
    parts, changed = {}, []
    for number, rows, digest in described:
        kept = old.get(str(number))
        if (
            kept
            and kept["digest"] == digest
            and _PART_FILE.match(kept["file"])
            and (base / table / kept["file"]).is_file()
        ):
            parts[str(number)] = kept
        else:
            name = f"{number}.{hashlib.sha256(digest.encode()).hexdigest()[:16]}.parquet"
            parts[str(number)] = {"file": name, "digest": digest, "rows": rows}
            changed.append(number)
    if changed:
        staging = base / f".{table}.tmp"
        shutil.rmtree(staging, ignore_errors=True)  # what an export that died left
        conn.execute(
            f"copy (select *, {part} as part__ from {relation} where {part} in "
            f"({', '.join(str(int(n)) for n in changed)})) to '{staging.as_posix()}' "
            "(format parquet, partition_by (part__), filename_pattern 'p')"
        )
        (base / table).mkdir(mode=0o700, exist_ok=True)
        for number in changed:
            target = base / table / parts[str(number)]["file"]
            written = sorted((staging / f"part__={number}").glob("*.parquet"))
            if len(written) == 1:
                written[0].replace(target)
            elif written:  # a part DuckDB wrote in pieces: one file (no SQL text: paths as values)
                conn.read_parquet([str(p) for p in written], hive_partitioning=False).write_parquet(
                    str(target)
                )
            else:  # an empty table: no rows, no partition written; one empty part keeps its columns
                conn.sql(f"select * from {relation} limit 0").write_parquet(str(target))
            os.chmod(target, 0o600)
            atomic.fsync_file(target)
        atomic.fsync_dir(base / table)
        shutil.rmtree(staging, ignore_errors=True)
    return parts, len(changed)


def _remove_unnamed(paths: Paths, index: dict) -> None:
    named = {path for _, path in files(paths, index)}
    for directory in root(paths).iterdir():
        if not directory.is_dir():
            continue
        if directory.name not in index["tables"]:
            shutil.rmtree(directory, ignore_errors=True)
            continue
        for path in directory.iterdir():
            if path not in named:
                path.unlink()
