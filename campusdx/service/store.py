"""The sharing service's own state: principals, access tokens, grants and the audit log.

One SQLite database, ``<home>/sharing/sharing.sqlite`` (WAL, synchronous=FULL, one ``BEGIN
IMMEDIATE`` transaction per change; several service processes may share it).

- **Principals** are applications (campus systems, each owned by a department) and people
  (platform administrators, department data stewards, department users, auditors). A secret is
  shown once, when made, and stored only as a salted scrypt hash; rotating replaces it, revoking
  ends every token at once.
- **Access tokens** (OAuth2 client credentials) are random, stored as their SHA-256, and live
  ``TOKEN_TTL_S``. A token proves who calls; what the caller may read is looked up on every
  request, so a revoked grant or principal stops the next call.
- **Grants** (访问审核): an application requests dataset, fields, row scope, purpose and end date;
  the dataset's steward department approves or rejects; a grant ends by itself after its end date
  and can be revoked at any time.
- **Audit** (日志监管): one append-only table, each entry chained to the one before by an
  HMAC-SHA256 under ``<home>/secrets/audit-chain.key``, and a head row naming the last entry, so
  an edited, deleted or appended-by-hand entry breaks :func:`verify_chain` at that entry.
  Entries are written by one thread per process in groups (one fsync for many requests); a
  request's response is released only after its entry is committed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from campusdx.core.pseudonyms import ensure_key
from campusdx.core.settings import Paths
from campusdx.core.sqlitedb import open_durable, transaction

ROLES = ("application", "admin", "steward", "dept_user", "auditor")
TOKEN_TTL_S = 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    department TEXT,
    secret_salt BLOB NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash BLOB PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals(id),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL REFERENCES principals(id),
    dataset TEXT NOT NULL,
    fields TEXT NOT NULL,
    scope TEXT,
    purpose TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    note TEXT,
    revoked_by TEXT,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS grants_app ON grants(app_id, dataset);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    entry TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

GENESIS = "0" * 64


class StoreError(ValueError):
    """A request the state does not allow (unknown id, wrong status); the message says which."""


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    role: str
    department: str | None
    revoked_at: str | None = None


class Grant(BaseModel):
    """One access request and its decision (the API's answer adds ``expired``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    app_id: str
    dataset: str
    fields: tuple[str, ...]
    scope: tuple[str, ...] | None
    purpose: str
    ends_on: str
    status: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    note: str | None
    revoked_by: str | None
    revoked_at: str | None

    def active(self, today: date) -> bool:
        return self.status == "approved" and date.fromisoformat(self.ends_on) >= today

    def as_json(self, today: date | None = None) -> dict[str, Any]:
        expired = self.status == "approved" and not self.active(today or date.today())
        return {**self.model_dump(mode="json"), "expired": expired}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


def _row_grant(row: sqlite3.Row) -> Grant:
    return Grant(
        id=row["id"],
        app_id=row["app_id"],
        dataset=row["dataset"],
        fields=tuple(json.loads(row["fields"])),
        scope=tuple(json.loads(row["scope"])) if row["scope"] is not None else None,
        purpose=row["purpose"],
        ends_on=row["ends_on"],
        status=row["status"],
        requested_at=row["requested_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        note=row["note"],
        revoked_by=row["revoked_by"],
        revoked_at=row["revoked_at"],
    )


def database(paths: Paths) -> Path:
    return paths.home / "sharing" / "sharing.sqlite"


class Store:
    """The state of one home. Thread-safe: each thread reads through its own connection."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self.path = database(paths)
        self._local = threading.local()
        key_file = paths.secrets / "audit-chain.key"
        if (
            not key_file.exists()
            and self.path.exists()
            and self._db().execute("SELECT 1 FROM audit").fetchone()
        ):
            # a new key would make every entry so far fail the chain's check
            raise StoreError(
                f"the audit log {self.path} has entries but its chain key {key_file} is missing: put the "
                "key back (a backup taken with --keys holds it) before the service starts"
            )
        self._chain_key = ensure_key(key_file, "the audit chain key")
        self._db()  # creates the schema once, before any thread reads
        self._writer: AuditWriter | None = None

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_durable(self.path, SCHEMA)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with transaction(self._db()) as db:
            yield db

    # -- principals ----------------------------------------------------------------------------

    def add_principal(self, name: str, role: str, department: str | None = None) -> tuple[Principal, str]:
        """A new application or person; returns it and its secret, which is shown only now."""
        if role not in ROLES:
            raise StoreError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if role in ("application", "steward", "dept_user") and not department:
            raise StoreError(f"a principal of role {role!r} needs a department (单位号)")
        prefix = "app" if role == "application" else "usr"
        pid = f"{prefix}_{secrets.token_hex(8)}"
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._tx() as db:
            db.execute(
                "INSERT INTO principals (id, name, role, department, secret_salt, secret_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pid, name, role, department, salt, _hash_secret(secret, salt), _now()),
            )
        return Principal(pid, name, role, department), secret

    def rotate_secret(self, pid: str) -> str:
        """A new secret for ``pid``; the old one and every token issued under it stop at once."""
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._tx() as db:
            n = db.execute(
                "UPDATE principals SET secret_salt = ?, secret_hash = ?, rotated_at = ?"
                " WHERE id = ? AND revoked_at IS NULL",
                (salt, _hash_secret(secret, salt), _now(), pid),
            ).rowcount
            if not n:
                raise StoreError(f"no active principal {pid!r}")
            db.execute("DELETE FROM tokens WHERE principal_id = ?", (pid,))
        return secret

    def revoke_principal(self, pid: str) -> None:
        with self._tx() as db:
            n = db.execute(
                "UPDATE principals SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_now(), pid)
            ).rowcount
            if not n:
                raise StoreError(f"no active principal {pid!r}")
            db.execute("DELETE FROM tokens WHERE principal_id = ?", (pid,))

    def principal(self, pid: str) -> Principal | None:
        row = (
            self._db()
            .execute("SELECT id, name, role, department, revoked_at FROM principals WHERE id = ?", (pid,))
            .fetchone()
        )
        return Principal(**dict(row)) if row else None

    def principals(self) -> list[Principal]:
        rows = self._db().execute(
            "SELECT id, name, role, department, revoked_at FROM principals ORDER BY created_at"
        )
        return [Principal(**dict(r)) for r in rows]

    def check_secret(self, pid: str, secret: str) -> Principal | None:
        """The active principal whose secret this is, else None (the same slow work either way)."""
        row = (
            self._db()
            .execute(
                "SELECT id, name, role, department, revoked_at, secret_salt, secret_hash FROM principals"
                " WHERE id = ?",
                (pid,),
            )
            .fetchone()
        )
        salt = row["secret_salt"] if row else b"\0" * 16
        expected = row["secret_hash"] if row else b"\0" * 32
        ok = hmac.compare_digest(_hash_secret(secret, salt), expected)
        if not (row and ok) or row["revoked_at"]:
            return None
        return Principal(row["id"], row["name"], row["role"], row["department"])

    # -- tokens --------------------------------------------------------------------------------

    def issue_token(self, principal: Principal, ttl_s: int = TOKEN_TTL_S) -> str:
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            db.execute("DELETE FROM tokens WHERE expires_at < ?", (time.time(),))
            db.execute(
                "INSERT INTO tokens (token_hash, principal_id, expires_at) VALUES (?, ?, ?)",
                (hashlib.sha256(token.encode()).digest(), principal.id, time.time() + ttl_s),
            )
        return token

    def end_token(self, token: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM tokens WHERE token_hash = ?", (hashlib.sha256(token.encode()).digest(),))

    def principal_of_token(self, token: str) -> Principal | None:
        row = (
            self._db()
            .execute(
                "SELECT p.id, p.name, p.role, p.department FROM tokens t JOIN principals p"
                " ON p.id = t.principal_id"
                " WHERE t.token_hash = ? AND t.expires_at > ? AND p.revoked_at IS NULL",
                (hashlib.sha256(token.encode()).digest(), time.time()),
            )
            .fetchone()
        )
        return Principal(**dict(row)) if row else None

    # -- grants --------------------------------------------------------------------------------

    def request_grant(
        self,
        app_id: str,
        dataset: str,
        fields: list[str],
        scope: list[str] | None,
        purpose: str,
        ends_on: date,
    ) -> Grant:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO grants (app_id, dataset, fields, scope, purpose, ends_on, status, requested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    app_id,
                    dataset,
                    json.dumps(fields),
                    json.dumps(scope) if scope is not None else None,
                    purpose,
                    ends_on.isoformat(),
                    _now(),
                ),
            )
            gid = cur.lastrowid
        return self.grant(gid)

    def grant(self, gid: int) -> Grant:
        row = self._db().execute("SELECT * FROM grants WHERE id = ?", (gid,)).fetchone()
        if row is None:
            raise StoreError(f"no grant {gid}")
        return _row_grant(row)

    def grants(
        self, *, app_id: str | None = None, datasets: list[str] | None = None, status: str | None = None
    ) -> list[Grant]:
        sql, args = "SELECT * FROM grants WHERE 1 = 1", []
        if app_id is not None:
            sql += " AND app_id = ?"
            args.append(app_id)
        if datasets is not None:
            sql += f" AND dataset IN ({', '.join('?' * len(datasets))})" if datasets else " AND 0"
            args.extend(datasets)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return [_row_grant(r) for r in self._db().execute(sql + " ORDER BY id", args)]

    def active_grants(self, app_id: str, dataset: str, today: date) -> list[Grant]:
        rows = self._db().execute(
            "SELECT * FROM grants WHERE app_id = ? AND dataset = ? AND status = 'approved' AND ends_on >= ?",
            (app_id, dataset, today.isoformat()),
        )
        return [_row_grant(r) for r in rows]

    def decide(self, gid: int, by: str, approve: bool, note: str | None = None) -> Grant:
        with self._tx() as db:
            n = db.execute(
                "UPDATE grants SET status = ?, decided_by = ?, decided_at = ?, note = ?"
                " WHERE id = ? AND status = 'pending'",
                ("approved" if approve else "rejected", by, _now(), note, gid),
            ).rowcount
        if not n:
            raise StoreError(f"grant {gid} is not pending")
        return self.grant(gid)

    def revoke_grant(self, gid: int, by: str) -> Grant:
        with self._tx() as db:
            n = db.execute(
                "UPDATE grants SET status = 'revoked', revoked_by = ?, revoked_at = ?"
                " WHERE id = ? AND status IN ('approved', 'pending')",
                (by, _now(), gid),
            ).rowcount
        if not n:
            raise StoreError(f"grant {gid} is neither approved nor pending")
        return self.grant(gid)

    # -- audit ---------------------------------------------------------------------------------

    def audit_writer(self) -> AuditWriter:
        if self._writer is None or not self._writer.alive:
            self._writer = AuditWriter(self.path, self._chain_key)
        return self._writer

    def audit(self, entry: dict[str, Any]) -> int:
        """Append ``entry`` and wait until it is committed; its sequence number."""
        return self.audit_writer().submit(entry).result()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None

    def audit_entries(
        self,
        *,
        principal: str | None = None,
        dataset: str | None = None,
        datasets: list[str] | None = None,
        outcome: int | None = None,
        since: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Entries, newest first, filtered by fields of the entry (all values as parameters)."""
        sql = "SELECT seq, at, entry, hash FROM audit WHERE seq > ?"
        args: list[Any] = [after_seq]
        for column, value in (("principal", principal), ("dataset", dataset), ("status", outcome)):
            if value is not None:
                sql += f" AND json_extract(entry, '$.{column}') = ?"
                args.append(value)
        if datasets is not None:
            sql += f" AND json_extract(entry, '$.dataset') IN ({', '.join('?' * len(datasets)) or 'NULL'})"
            args.extend(datasets)
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        return [
            {"seq": r["seq"], "at": r["at"], **json.loads(r["entry"]), "hash": r["hash"]}
            for r in self._db().execute(sql, args)
        ]


def _head_sig(key: bytes, seq: int, digest: str) -> str:
    """The head's own signature: pointing it at an earlier entry (after cutting the newest ones)
    needs the key, like rewriting an entry does."""
    return hmac.new(key, json.dumps(["head", seq, digest]).encode(), hashlib.sha256).hexdigest()


def _link(key: bytes, prev: str, seq: int, at: str, entry: str) -> str:
    message = json.dumps([prev, seq, at, entry], ensure_ascii=False).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class AuditWriter:
    """One thread appending entries in groups: each group one transaction (one fsync)."""

    def __init__(self, path: Path, key: bytes):
        self._path, self._key = path, key
        self._cv = threading.Condition()
        self._queue: list[tuple[dict[str, Any], Future]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="campusdx-audit", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, entry: dict[str, Any]) -> Future:
        future: Future = Future()
        with self._cv:
            if self._stopping:
                raise RuntimeError("the audit writer has stopped")
            self._queue.append((entry, future))
            self._cv.notify()
        return future

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        db = open_durable(self._path, SCHEMA)
        try:
            while True:
                with self._cv:
                    while not self._queue and not self._stopping:
                        self._cv.wait()
                    batch, self._queue = self._queue, []
                    if not batch and self._stopping:
                        return
                try:
                    seqs = self._append(db, [e for e, _ in batch])
                except BaseException as exc:  # every waiting request learns of it
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for (_, future), seq in zip(batch, seqs, strict=True):
                    future.set_result(seq)
        finally:
            db.close()

    def _append(self, db: sqlite3.Connection, entries: list[dict[str, Any]]) -> list[int]:
        seqs = []
        with transaction(db):
            head = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            seq, prev = (head["seq"], head["hash"]) if head else (0, GENESIS)
            for entry in entries:
                seq += 1
                at = _now()
                text = json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str)
                digest = _link(self._key, prev, seq, at, text)
                db.execute(
                    "INSERT INTO audit (seq, at, entry, prev, hash) VALUES (?, ?, ?, ?, ?)",
                    (seq, at, text, prev, digest),
                )
                prev = digest
                seqs.append(seq)
            db.execute(
                "INSERT INTO audit_head (id, seq, hash, sig) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE"
                " SET seq = excluded.seq, hash = excluded.hash, sig = excluded.sig",
                (seq, prev, _head_sig(self._key, seq, prev)),
            )
        return seqs


@dataclass(frozen=True)
class ChainReport:
    entries: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(paths: Paths) -> ChainReport:
    """Recompute the audit chain; every entry that does not follow from the one before is named."""
    key = ensure_key(paths.secrets / "audit-chain.key", "the audit chain key", create=False)
    db = open_durable(database(paths), SCHEMA)
    problems: list[str] = []
    expected_seq, prev, n = 1, GENESIS, 0
    try:
        for row in db.execute("SELECT seq, at, entry, prev, hash FROM audit ORDER BY seq"):
            n += 1
            seq = row["seq"]
            if seq != expected_seq:
                problems.append(f"entry {expected_seq}: missing (the next entry present is {seq})")
            if row["prev"] != prev:
                problems.append(f"entry {seq}: does not follow entry {seq - 1} (its link to it differs)")
            if not hmac.compare_digest(_link(key, row["prev"], seq, row["at"], row["entry"]), row["hash"]):
                problems.append(f"entry {seq}: its content does not match its hash (edited)")
            prev, expected_seq = row["hash"], seq + 1
        head = db.execute("SELECT seq, hash, sig FROM audit_head WHERE id = 1").fetchone()
        if head is None and n:
            problems.append("the chain's head record is missing")
        elif head is not None and not hmac.compare_digest(
            head["sig"], _head_sig(key, head["seq"], head["hash"])
        ):
            problems.append(
                f"entry {head['seq']}: the head naming it as the last entry is not signed by the key"
            )
        elif head is not None and (head["seq"] != expected_seq - 1 or head["hash"] != prev):
            problems.append(
                f"entry {head['seq']}: the head names it as the last entry, but the log ends at entry "
                f"{expected_seq - 1} (entries after it were removed, or the head was edited)"
            )
    finally:
        db.close()
    return ChainReport(n, problems)
