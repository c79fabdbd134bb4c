"""The landing zone: one immutable Parquet file per table per batch, plus its manifest.

Layout::

    <landing>/<system>/<table>/<batch_id>.parquet          the batch's rows
    <landing>/<system>/<table>/_manifests/<batch_id>.json  what the batch holds

A batch is *committed* when its Parquet file exists under its final name. The manifest is
written first and the Parquet file is renamed into place last, so a crash at any point leaves
either a committed batch or nothing visible (a ``.tmp`` file, removed by the next run).
Watermarks are read from committed manifests only: state lives in what landed, and they are
compared in the cursor column's own type (``10500`` is past ``9999``).

Every rename that commits a file goes through :mod:`campusdx.core.atomic` (file fsync, rename,
directory fsync). One extraction of a table runs at a time: :meth:`Landing.lock` holds
``<home>/locks/extract-<system>.<table>.lock`` (the landing zone's parent is the home).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from campusdx.core import atomic, locks
from campusdx.core.manifest import LandingManifest

BATCH_COLUMN = "_batch_id"
"""Column added to every landed row: the batch it came in, for lineage and deduplication."""
DELETED_COLUMN = "_deleted"
"""True on a tombstone: the key was deleted at the source (found by a key snapshot)."""


def new_batch_id(now: datetime | None = None) -> str:
    """A sortable batch id: UTC time to the microsecond."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ")


write_atomic = atomic.write_bytes
"""Write ``data`` to ``path`` durably (kept under this name for its importers)."""


def cursor_order(value: str, arrow_type: str | None) -> object:
    """A landed cursor value (as text) in its column's own order: a number as a number, a date
    or timestamp as a datetime; text (and an unknown type) stays text, which is how the source
    compares a text column too."""
    kind = (arrow_type or "").lower()
    try:
        if kind.startswith(("int", "uint")):
            return int(value)
        if kind.startswith(("decimal", "double", "float", "halffloat")):
            return Decimal(value)
        if kind.startswith(("timestamp", "date")):
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, InvalidOperation):
        raise ValueError(f"cursor value {value!r} is not a {arrow_type}") from None
    return value


@dataclass(frozen=True)
class Landing:
    """The landing zone rooted at ``root``."""

    root: Path

    def table_dir(self, system: str, table: str) -> Path:
        return self.root / system / table

    def manifest_path(self, system: str, table: str, batch_id: str) -> Path:
        return self.table_dir(system, table) / "_manifests" / f"{batch_id}.json"

    def data_path(self, system: str, table: str, batch_id: str) -> Path:
        return self.table_dir(system, table) / f"{batch_id}.parquet"

    @property
    def locks(self) -> Path:
        """Where the extraction locks live: ``<home>/locks`` (the landing zone is ``<home>/landing``)."""
        return self.root.parent / "locks"

    def lock(self, system: str, table: str, *, wait_s: float | None = None):
        """Hold the table's extraction lock; :class:`campusdx.core.locks.Busy` ("another extraction of
        <system>.<table> is running (pid …)") after ``wait_s`` seconds (None: an Airflow task's
        bounded wait, :func:`campusdx.core.locks.task_wait_s`; 0: at once)."""
        return locks.hold(
            locks.lock_path(self.locks, "extract", system, table),
            f"extraction of {system}.{table}",
            wait_s=locks.task_wait_s() if wait_s is None else wait_s,
        )

    def prepare(self, system: str, table: str) -> Path:
        """Create the table's folders and remove leftovers of a crashed batch."""
        folder = self.table_dir(system, table)
        (folder / "_manifests").mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("*.tmp"):
            leftover.unlink()
        (folder / "_keys").mkdir(exist_ok=True)
        for manifest in (folder / "_manifests").glob("*.json"):
            if not self.data_path(system, table, manifest.stem).exists():
                manifest.unlink()  # written before a crash; its data never committed
        for keys in (folder / "_keys").glob("*"):
            if not self.data_path(system, table, keys.name.split(".")[0]).exists():
                keys.unlink()  # snapshot of a batch that never committed
        return folder

    def manifests(self, system: str, table: str) -> Iterator[dict]:
        """Manifests of committed batches, oldest first."""
        folder = self.table_dir(system, table) / "_manifests"
        for path in sorted(folder.glob("*.json")):
            if self.data_path(system, table, path.stem).exists():
                yield json.loads(path.read_text(encoding="utf-8"))

    def last_manifest(self, system: str, table: str) -> dict | None:
        """The newest committed batch's manifest, or None."""
        last = None
        for manifest in self.manifests(system, table):
            last = manifest
        return last

    def keys_path(self, system: str, table: str, batch_id: str) -> Path:
        """The key snapshot taken with a batch (for delete detection)."""
        return self.table_dir(system, table) / "_keys" / f"{batch_id}.parquet"

    def watermark(self, system: str, table: str) -> str | None:
        """Highest cursor value landed so far (as text), or None when nothing landed; values are
        compared in the cursor column's landed type (:func:`cursor_order`)."""
        highest, order = None, None
        for manifest in self.manifests(system, table):
            cursor = manifest.get("cursor", {})
            value = cursor.get("max")
            if value is None:
                continue
            kind = next(
                (c.get("type") for c in manifest.get("columns", []) if c.get("name") == cursor.get("column")),
                None,
            )
            rank = cursor_order(value, kind)
            if highest is None or rank > order:
                highest, order = value, rank
        return highest

    def commit(
        self, system: str, table: str, batch_id: str, tmp_data: Path, manifest: LandingManifest
    ) -> None:
        """Publish a batch: manifest first, then the data file renamed into place."""
        write_atomic(
            self.manifest_path(system, table, batch_id),
            (json.dumps(manifest.as_json(), ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )
        atomic.replace(tmp_data, self.data_path(system, table, batch_id))
