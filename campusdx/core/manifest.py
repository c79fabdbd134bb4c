"""The landing manifest: what one landed batch holds, declared once.

Every extractor (a database table, a file export) commits its batch with one of these next to
the Parquet file (``<landing>/<system>/<table>/_manifests/<batch_id>.json``); watermarks, key
snapshots, reconciliation and staging's lineage read them back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utc_stamp(now: datetime | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the manifests' time format."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cursor(BaseModel):
    """The change cursor of an incremental read (all null for a file or a full read without one)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str | None = None
    from_: Any = Field(default=None, alias="from")
    watermark: Any = None
    min: str | None = None
    max: str | None = None


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: str


class LandingManifest(BaseModel):
    """One landed batch. Fields a kind of extractor does not know are left out of its JSON."""

    model_config = ConfigDict(extra="forbid")

    system: str
    table: str
    batch_id: str
    mode: str
    """``full``, ``incremental`` (databases) or ``file`` (an export)."""
    rows: int
    tombstones: int = 0
    primary_key: list[str]
    cursor: Cursor = Cursor()
    key_snapshot: str | None = None
    key_snapshot_at: str | None = None
    keys: Any = None
    added_columns: list[str] = []
    source: dict[str, Any]
    """Where it came from: a redacted URL or a file's name, size and digest; the schema's fingerprint."""
    columns: list[Column]
    new_columns: list[str] | None = None
    duplicate_keys: Any = None
    null_keys: Any = None
    extracted_at: str = Field(default_factory=utc_stamp)

    def as_json(self) -> dict[str, Any]:
        """The JSON object written next to the batch (keys an extractor did not set left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
