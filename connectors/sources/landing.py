"""The landing zone: one immutable Parquet file per table per batch, plus its manifest.

Layout::

    <landing>/<system>/<table>/<batch_id>.parquet          the batch's rows
    <landing>/<system>/<table>/_manifests/<batch_id>.json  what the batch holds

A batch is *committed* when its Parquet file exists under its final name. The manifest is
written first and the Parquet file is renamed into place last, so a crash at any point leaves
either a committed batch or nothing visible (a ``.tmp`` file, removed by the next run).
Watermarks are read from committed manifests only: state lives in what landed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BATCH_COLUMN = "_batch_id"
"""Column added to every landed row: the batch it came in, for lineage and deduplication."""
DELETED_COLUMN = "_deleted"
"""True on a tombstone: the key was deleted at the source (found by a key snapshot)."""


def new_batch_id(now: datetime | None = None) -> str:
    """A sortable batch id: UTC time to the microsecond."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


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
        """Highest cursor value landed so far (as text), or None when nothing landed."""
        highest = None
        for manifest in self.manifests(system, table):
            value = manifest.get("cursor", {}).get("max")
            if value is not None and (highest is None or value > highest):
                highest = value
        return highest

    def commit(self, system: str, table: str, batch_id: str, tmp_data: Path, manifest: dict) -> None:
        """Publish a batch: manifest first, then the data file renamed into place."""
        write_atomic(
            self.manifest_path(system, table, batch_id),
            (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )
        tmp_data.replace(self.data_path(system, table, batch_id))
