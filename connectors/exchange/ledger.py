"""The publisher's durable memory: every package built, sent and answered.

One SQLite file (WAL, synchronous=FULL); every state change is one transaction. A package is
identified by its ``batch_id``: a ``package_id`` can recur, because a REJECTED package does not
consume its sequence number and the rebuilt package gets the same id. Sequences come from
what the province confirmed, never from memory: the next sequence of a dataset is the last
*delivered* one (receipt ACCEPTED, PARTIAL or DUPLICATE) plus one.

A sequence is held by at most one package that is unanswered or delivered (a unique index on
``(dataset, sequence)`` over those statuses; REJECTED packages give their number back, so
they may share it). :meth:`Ledger.record_built` checks that the package's sequence is still the
next one and inserts it in one ``BEGIN IMMEDIATE`` transaction, so two publishers that raced
past the publish lock cannot both record the same sequence.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campusdx.core.sqlitedb import open_durable, transaction
from campusdx.exchange.package import Package

BUILT = "BUILT"
SENT = "SENT"
UNANSWERED = (BUILT, SENT)
"""Statuses of a package the province has not answered yet."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    id              INTEGER PRIMARY KEY,
    package_id      TEXT NOT NULL,
    dataset         TEXT NOT NULL,
    mode            TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    batch_id        TEXT NOT NULL UNIQUE,
    fingerprint     TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    files           TEXT NOT NULL,
    rows            INTEGER NOT NULL,
    built_at        TEXT NOT NULL,
    as_of           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         TEXT,
    receipt         TEXT,
    receipt_at      TEXT,
    snapshot        TEXT,
    adopted_at      TEXT
);
CREATE INDEX IF NOT EXISTS packages_dataset ON packages (dataset, sequence);
CREATE TABLE IF NOT EXISTS gateway_checks (
    dataset      TEXT PRIMARY KEY,
    requested_at TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS full_requests (
    dataset      TEXT PRIMARY KEY,
    requested_at TEXT NOT NULL,
    reason       TEXT NOT NULL
);
"""


_SEQUENCE_INDEX = "packages_dataset_sequence_unique"
_FULL, _GATEWAY = "full_requests", "gateway_checks"
"""The tables of what is asked of a dataset's next publish (one row per dataset, with why)."""


def _ask(db: sqlite3.Connection, table: str, dataset: str, reason: str, at: str) -> None:
    db.execute(
        f"INSERT OR REPLACE INTO {table} (dataset, requested_at, reason) VALUES (?, ?, ?)",
        (dataset, at, reason),
    )


def _asked(db: sqlite3.Connection, table: str, dataset: str) -> str | None:
    row = db.execute(f"SELECT requested_at, reason FROM {table} WHERE dataset = ?", (dataset,)).fetchone()
    return f"{row[1]} (asked {row[0]})" if row else None


def _answered(db: sqlite3.Connection, table: str, dataset: str) -> None:
    db.execute(f"DELETE FROM {table} WHERE dataset = ?", (dataset,))


class LedgerError(RuntimeError):
    """A state change the ledger cannot make (unknown batch, wrong state)."""


@dataclass(frozen=True)
class LedgerEntry:
    """One package as the ledger knows it."""

    package_id: str
    dataset: str
    mode: str
    sequence: int
    batch_id: str
    fingerprint: str
    manifest_sha256: str
    files: list[dict[str, Any]]
    rows: int
    built_at: str
    as_of: str
    status: str
    attempts: int
    sent_at: str | None
    receipt: dict[str, Any] | None
    receipt_at: str | None
    snapshot: str | None = None
    """The published warehouse snapshot the package was built from."""
    adopted_at: str | None = None
    """When the package was adopted from the gateway (sent by a state of this home that a restore
    did not bring back), else None."""


class Ledger:
    """The SQLite ledger at ``path``; ``delivered`` = receipt statuses that count as delivered."""

    def __init__(
        self, path: Path | str, *, delivered: Collection[str] = ("ACCEPTED", "PARTIAL", "DUPLICATE")
    ) -> None:
        self.path = Path(path)
        self.delivered = tuple(delivered)
        self._db = open_durable(self.path, _SCHEMA)
        self._holding = (*UNANSWERED, *self.delivered)
        self._add_columns()
        self._unique_sequences()

    def _add_columns(self) -> None:
        """Columns a ledger written before them lacks (added empty)."""
        with self._tx() as db:  # read and changed in one write transaction: two openers agree
            have = {row[1] for row in db.execute("PRAGMA table_info(packages)")}
            for column in ("snapshot", "adopted_at"):
                if column not in have:
                    db.execute(f"ALTER TABLE packages ADD COLUMN {column} TEXT")

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unique_sequences(self) -> None:
        """Create the unique index on ``(dataset, sequence)`` of packages that hold their number
        (an older ledger gets it here); refuse to open a ledger where two packages hold one."""
        for status in self._holding:
            if not status.replace("_", "").isalnum():
                raise LedgerError(f"status {status!r} cannot be used in the ledger's index")
        marks = ", ".join("?" * len(self._holding))
        with self._tx() as db:
            twice = db.execute(
                f"SELECT dataset, sequence, group_concat(batch_id, ', ') FROM packages"
                f" WHERE status IN ({marks}) GROUP BY dataset, sequence HAVING count(*) > 1"
                " ORDER BY dataset, sequence",
                self._holding,
            ).fetchall()
            if twice:
                listed = "; ".join(f"{d} sequence {s} (batches {b})" for d, s, b in twice)
                raise LedgerError(
                    f"{self.path}: several unanswered or delivered packages hold one sequence: {listed}; "
                    "settle them by hand (the province's receipts say which was taken) before publishing"
                )
            statuses = ", ".join(f"'{s}'" for s in self._holding)
            db.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {_SEQUENCE_INDEX} ON packages (dataset, sequence)"
                f" WHERE status IN ({statuses})"
            )

    def _tx(self):
        """One transaction: committed when the block ends, rolled back on error."""
        return transaction(self._db)

    # ----------------------------------------------------------------------- changes

    def record_built(
        self, package: Package, fingerprint: str, built_at: str, *, snapshot: str | None = None
    ) -> LedgerEntry:
        """A package now in the outbox, not yet sent. A FULL answers a request for one.
        ``snapshot``: the published warehouse snapshot it was built from."""
        return self._insert(package, fingerprint, built_at, BUILT, snapshot=snapshot)

    def record_adopted(self, package: Package, fingerprint: str, adopted_at: str) -> LedgerEntry:
        """A package found on the gateway that the ledger does not know (sent after the backup it
        was restored from): recorded as SENT, so its receipt is collected as any other's."""
        built_at = package.manifest["generated_at"]
        return self._insert(package, fingerprint, built_at, SENT, adopted_at=adopted_at)

    def _insert(
        self,
        package: Package,
        fingerprint: str,
        built_at: str,
        status: str,
        *,
        snapshot: str | None = None,
        adopted_at: str | None = None,
    ) -> LedgerEntry:
        m = package.manifest
        try:
            with self._tx() as db:
                expected = self._next_sequence(db, m["dataset"])
                if m["sequence"] != expected:
                    raise LedgerError(
                        f"{package.package_id}: sequence {m['sequence']} of {m['dataset']} is not the next "
                        f"one ({expected}); another publish took it"
                    )
                if m["mode"] == "FULL":
                    _answered(db, _FULL, m["dataset"])
                db.execute(
                    "INSERT INTO packages (package_id, dataset, mode, sequence, batch_id, fingerprint,"
                    " manifest_sha256, files, rows, built_at, as_of, status, attempts, snapshot, adopted_at,"
                    " sent_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        package.package_id,
                        m["dataset"],
                        m["mode"],
                        m["sequence"],
                        m["batch_id"],
                        fingerprint,
                        package.manifest_sha256,
                        json.dumps(m["files"]),
                        m["total_rows"],
                        built_at,
                        m["as_of"],
                        status,
                        int(status == SENT),
                        snapshot,
                        adopted_at,
                        adopted_at,  # an adopted package was sent; when, the gateway does not say
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise LedgerError(
                f"{package.package_id}: sequence {m['sequence']} of {m['dataset']} is held by another "
                f"package (or batch {m['batch_id']} is recorded already): {exc}"
            ) from None
        return self.entry(m["batch_id"])

    def record_sent(self, batch_id: str, sent_at: str) -> LedgerEntry:
        """The package was uploaded (again): status SENT, one more attempt."""
        self._update(
            batch_id,
            "status = ?, attempts = attempts + 1, sent_at = ?",
            (SENT, sent_at),
            allowed=UNANSWERED,
        )
        return self.entry(batch_id)

    def record_receipt(self, batch_id: str, receipt: dict[str, Any], received_at: str) -> LedgerEntry:
        """The province answered: the package takes the receipt's status."""
        self._update(
            batch_id,
            "status = ?, receipt = ?, receipt_at = ?",
            (str(receipt["status"]), json.dumps(receipt, ensure_ascii=False), received_at),
            allowed=UNANSWERED,
        )
        return self.entry(batch_id)

    def record_unproven(
        self, package_id: str, dataset: str, mode: str, sequence: int, receipt: dict[str, Any], at: str
    ) -> LedgerEntry:
        """A sequence the province answered as delivered for a package this ledger cannot read
        (not in the gateway's inbox any more, or not ours to verify): it holds its number, and
        the next package of the dataset is a FULL, since what the platform holds is unknown."""
        try:
            return self._unproven(package_id, dataset, mode, sequence, receipt, at)
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"{package_id}: cannot hold sequence {sequence} of {dataset}: {exc}") from None

    def _unproven(
        self, package_id: str, dataset: str, mode: str, sequence: int, receipt: dict[str, Any], at: str
    ) -> LedgerEntry:
        with self._tx() as db:
            expected = self._next_sequence(db, dataset)
            if sequence != expected:
                raise LedgerError(
                    f"{package_id}: sequence {sequence} of {dataset} is not the next one ({expected})"
                )
            db.execute(
                "INSERT INTO packages (package_id, dataset, mode, sequence, batch_id, fingerprint,"
                " manifest_sha256, files, rows, built_at, as_of, status, receipt, receipt_at, adopted_at)"
                " VALUES (?, ?, ?, ?, ?, '', '', '[]', ?, ?, '', ?, ?, ?, ?)",
                (
                    package_id,
                    dataset,
                    mode,
                    sequence,
                    str(receipt["batch_id"]),
                    int(receipt.get("rows_received") or 0),
                    at,
                    str(receipt["status"]),
                    json.dumps(receipt, ensure_ascii=False),
                    at,
                    at,
                ),
            )
            _ask(db, _FULL, dataset, f"{package_id} was delivered but its rows are not on record", at)
        return self.entry(str(receipt["batch_id"]))

    def request_gateway_check(self, dataset: str, reason: str, requested_at: str) -> None:
        """Before the next publish of ``dataset``, compare this ledger with what the gateway shows
        (asked by a restore: packages may have been sent after the backup)."""
        with self._tx() as db:
            _ask(db, _GATEWAY, dataset, reason, requested_at)

    def gateway_check_requested(self, dataset: str) -> str | None:
        """Why the ledger must be compared with the gateway before publishing ``dataset``, or None."""
        return _asked(self._db, _GATEWAY, dataset)

    def gateway_checked(self, dataset: str) -> None:
        """The comparison with the gateway is done for ``dataset``."""
        with self._tx() as db:
            _answered(db, _GATEWAY, dataset)

    def request_full(self, dataset: str, reason: str, requested_at: str) -> None:
        """The next package of ``dataset`` is a FULL, whatever the policy says."""
        with self._tx() as db:
            _ask(db, _FULL, dataset, reason, requested_at)

    def _update(self, batch_id: str, assignments: str, values: tuple, *, allowed: tuple[str, ...]) -> None:
        marks = ", ".join("?" * len(allowed))
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE packages SET {assignments} WHERE batch_id = ? AND status IN ({marks})",
                (*values, batch_id, *allowed),
            )
            if cur.rowcount != 1:
                raise LedgerError(f"no package with batch {batch_id} in state {'/'.join(allowed)}")

    # ----------------------------------------------------------------------- queries

    def entry(self, batch_id: str) -> LedgerEntry:
        """The package with ``batch_id``."""
        row = self._db.execute("SELECT * FROM packages WHERE batch_id = ?", (batch_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no package with batch {batch_id}")
        return _entry(row)

    def next_sequence(self, dataset: str) -> int:
        """Last delivered sequence of ``dataset`` + 1 (a REJECTED package does not count)."""
        return self._next_sequence(self._db, dataset)

    def _next_sequence(self, db: sqlite3.Connection, dataset: str) -> int:
        marks = ", ".join("?" * len(self.delivered))
        row = db.execute(
            f"SELECT MAX(sequence) FROM packages WHERE dataset = ? AND status IN ({marks})",
            (dataset, *self.delivered),
        ).fetchone()
        return (row[0] or 0) + 1

    def pending(self, dataset: str) -> list[LedgerEntry]:
        """Packages of ``dataset`` built or sent but not answered, in sequence order."""
        return self._select("dataset = ? AND status IN (?, ?)", (dataset, *UNANSWERED))

    def awaiting_receipt(self) -> list[LedgerEntry]:
        """Packages of every dataset that were sent and have no receipt yet."""
        return self._select("status = ?", (SENT,))

    def last_delivered(self, dataset: str) -> LedgerEntry | None:
        """The delivered package of ``dataset`` with the highest sequence."""
        marks = ", ".join("?" * len(self.delivered))
        found = self._select(f"dataset = ? AND status IN ({marks})", (dataset, *self.delivered))
        return found[-1] if found else None

    def full_requested(self, dataset: str) -> str | None:
        """Why a FULL of ``dataset`` was asked for and when, or None."""
        return _asked(self._db, _FULL, dataset)

    def rejections_in_a_row(self, dataset: str) -> int:
        """How many packages of ``dataset`` came back REJECTED since the last delivered one."""
        count = 0
        for entry in reversed(self.packages(dataset)):
            if entry.status in self.delivered:
                break
            count += entry.status == "REJECTED"
        return count

    def last_delivered_full(self, dataset: str) -> LedgerEntry | None:
        """The delivered FULL of ``dataset`` with the highest sequence."""
        marks = ", ".join("?" * len(self.delivered))
        found = self._select(
            f"dataset = ? AND mode = 'FULL' AND status IN ({marks})", (dataset, *self.delivered)
        )
        return found[-1] if found else None

    def packages(self, dataset: str | None = None) -> list[LedgerEntry]:
        """Every package (of ``dataset``), by dataset and sequence."""
        if dataset is None:
            return self._select("1 = 1", ())
        return self._select("dataset = ?", (dataset,))

    def _select(self, where: str, params: tuple) -> list[LedgerEntry]:
        rows = self._db.execute(
            f"SELECT * FROM packages WHERE {where} ORDER BY dataset, sequence, id", params
        ).fetchall()
        return [_entry(r) for r in rows]


def _entry(row: sqlite3.Row) -> LedgerEntry:
    data = dict(row)
    data.pop("id")
    data["files"] = json.loads(data["files"])
    data["receipt"] = json.loads(data["receipt"]) if data["receipt"] else None
    return LedgerEntry(**data)
