"""备份恢复: an encrypted, verifiable backup of what cannot be recomputed, and its restore.

What a backup holds (paths relative to the home):

==========================  ========================================================================
``exchange/``               the ledger (copied with SQLite's online backup API, never as a file of a
                            live database), the outbox and the platform's state per dataset (less
                            a DELTA's state, derived from its base and its rows and made again
                            after a restore); taken holding every dataset's publish lock, so
                            ledger and files agree
``landing/``                every landed batch (Parquet and manifests): the warehouse's only input
``quality/``                verdicts, findings (quarantine state), history, the GX stores and Data
                            Docs; taken holding the gates' lock
``sharing/``                the sharing service's state: applications and people (secret hashes),
                            grants, the audit log (SQLite's online backup API); its chain key is
                            in ``secrets/``, so back up with keys or keep that file
``history/``                the warehouse's SCD2 history (schema ``snapshots``: dbt's snapshots of
                            staff and students) in Parquet parts, as :mod:`campusdx.pipeline.history`
                            keeps it beside the snapshots (brought up to the current snapshot
                            first if it lags): the one part of the warehouse the landing zone
                            cannot rebuild; taken holding the history lock
``snapshots/<id>/``         every pinned snapshot, whole (immutable: stored once)
``secrets/``                only with ``keys=True``: the exchange key, the fingerprint and
                            pseudonym keys; encrypted like everything else, never in clear text
``repository/...``          ``schemas/quality/approvals.yml`` (the approvals, versioned in git too)
==========================  ========================================================================

Not in it: the source systems and the gateway (other machines); the rest of the warehouse, which
the next warehouse run rebuilds from the landing zone on top of the restored history (a whole
snapshot changes every day: backing it up daily would make every backup as big as the
warehouse); Airflow's metadata database, logs, locks, generated documents.

The backup repository (``$CAMPUSDX_BACKUP_DIR``)::

    key-id                       which key encrypts this repository (an HMAC of a constant: it
                                 says "wrong key" without revealing the key)
    objects/<name>               one file's content, encrypted; <name> is an HMAC of its SHA-256
                                 under the key, so names reveal nothing and equal content is
                                 stored once
    backups/<id>.manifest        the backup's manifest, encrypted: every file with its path, size,
                                 SHA-256 and object; written last, so a backup exists only whole

Encryption: SM4 (GB/T 32907, the national block cipher) in GCM mode, an authenticated mode, from
``cryptography`` (OpenSSL 3). Each object is a sequence of chunks of at most 4 MiB, each sealed
with its own nonce (a random prefix and the chunk's number) and authenticated with the object's
name, the chunk number and whether it is the last: a flipped byte, a reordered, missing or
truncated chunk fails to open, and a file whose object decrypts to other content than the
manifest's SHA-256 is refused. The key (128 bits, hex) is
kept outside the home (``$CAMPUSDX_BACKUP_KEY_FILE``), so a lost disk does not lose it with the
data, and it is never written into a backup.

Incremental: a file whose size and modification time equal those of the last backup's entry,
and whose object is in the repository, is not read again (landing batches are never rewritten),
and equal content is never stored twice. What changes daily is kept so that a day changes few
files: the exchange's state as the rows of each package since the last FULL, the history as
parts of which a day rewrites the few its new and closed versions fall in.

Restore (:func:`restore`) decrypts and checks every file of the backup into a staging directory
beside the target home and renames it into place only when every file verified: a corrupt,
incomplete or wrongly keyed backup is refused, naming the file, and nothing is written to the
target home.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import sqlite3
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from campusdx import __version__
from campusdx.core import atomic, locks, settings, snapshots
from campusdx.core.profile import load_profile
from campusdx.core.settings import SCHEMAS, Paths
from campusdx.exchange import delta as states
from campusdx.exchange.publisher import open_ledger, publish_lock
from campusdx.pipeline import history
from campusdx.quality.files import quality_lock

log = logging.getLogger(__name__)

CHUNK = 4 << 20
SMALL = 4 * CHUNK
"""Files up to this size are read into memory, hashed, and sealed only when their content is new."""
OBJECT = "object"
"""What an object's chunks are authenticated with (besides their number and whether last); the
manifest's SHA-256 of each file ties an object to its place."""
MAGIC = b"CDXBAK1\n"
SALT = 16
KEY_BYTES = 16
_ID = re.compile(r"\d{8}T\d{6}Z\Z")
APPROVALS = SCHEMAS / "quality" / "approvals.yml"
APPROVALS_IN_BACKUP = "repository/schemas/quality/approvals.yml"
DIRECTORIES = ("exchange", "landing", "quality", "sharing")
KEYS = "secrets"
HISTORY = history.DIRECTORY
HISTORY_SCHEMA = history.SCHEMA
_TABLE = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_SKIP = re.compile(r"(\.lock|\.tmp|\.part|-wal|-shm|-journal|\.holder\.json)\Z|(^|/)\.adopting(/|\Z)")
_SQLITE = b"SQLite format 3\x00"
try:  # syncfs(2): one flush of the repository's file system for every object a backup wrote
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    _LIBC.syncfs.argtypes = [ctypes.c_int]
except (OSError, AttributeError):
    _LIBC = None


class BackupError(RuntimeError):
    """A backup cannot be written, or a backup is refused; the message names the file."""


@dataclass(frozen=True)
class BackupResult:
    backup_id: str
    files: int
    bytes: int
    stored_bytes: int
    """Bytes written to the repository by this backup (new objects and the manifest)."""
    reused: int
    """Files not read again: unchanged since the last backup."""
    snapshot: str | None
    keys: bool


# -- the key and the cipher -------------------------------------------------------------------


def new_key(path: Path) -> Path:
    """Write a new backup key (hex) to ``path`` (mode 0600), refusing to replace one."""
    path = Path(path)
    if not atomic.create_new(path, (os.urandom(KEY_BYTES).hex() + "\n").encode("ascii"), 0o600):
        raise BackupError(f"{path} exists already: a backup key is never replaced")
    return path


def load_key(path: Path | None, home: Path | None = None) -> bytes:
    """The backup key from ``path`` (``$CAMPUSDX_BACKUP_KEY_FILE``): 32 hex digits, outside ``home``."""
    if path is None:
        raise BackupError(
            "no backup key: set CAMPUSDX_BACKUP_KEY_FILE to a file outside the home "
            "(campusdx backup --new-key FILE makes one)"
        )
    path = Path(path).resolve()
    if home is not None and path.is_relative_to(home.resolve()):
        raise BackupError(
            f"the backup key {path} is inside the home {home}: keep it where a lost disk cannot take it"
        )
    try:
        if path.stat().st_mode & 0o077:
            raise BackupError(f"the backup key {path} may be read by others: chmod 600 it")
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"the backup key {path} cannot be read as hex: {type(exc).__name__}") from None
    if len(key) != KEY_BYTES:
        raise BackupError(
            f"the backup key {path} holds {len(key)} bytes, not {KEY_BYTES} (SM4 takes 128 bits)"
        )
    return key


def _subkey(key: bytes, purpose: str, salt: bytes = b"", length: int = KEY_BYTES) -> bytes:
    """A key for one purpose derived from the backup key (HKDF-SHA256): the cipher, the names
    and the key id never share key material."""
    return HKDF(hashes.SHA256(), length, salt or None, f"campusdx backup {purpose}".encode()).derive(key)


def _key_id(key: bytes) -> str:
    return _subkey(key, "key id").hex()


def _object_name(naming_key: bytes, sha256: str) -> str:
    return hmac.new(naming_key, sha256.encode("ascii"), hashlib.sha256).hexdigest()


def _aad(name: str, index: int, last: bool) -> bytes:
    return MAGIC + name.encode("utf-8") + struct.pack(">I?", index, last)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _seal(key: bytes, name: str, chunks: Iterator[bytes], out) -> int:
    """Write ``chunks`` sealed under ``name`` to ``out``; returns bytes written.

    Each sealed file has a random salt of its own, from which its SM4 key is derived (so a nonce,
    the chunk's number, is never used twice under one key); each chunk is framed by its length
    and whether it is the last, both authenticated with the name and the chunk's number."""
    salt = os.urandom(SALT)
    cipher_key = _subkey(key, "object", salt)
    out.write(MAGIC + salt)
    written = len(MAGIC) + SALT
    pending = next(chunks, b"")
    index = 0
    while True:
        following = next(chunks, None)
        last = following is None
        encryptor = Cipher(algorithms.SM4(cipher_key), modes.GCM(_nonce(index))).encryptor()
        encryptor.authenticate_additional_data(_aad(name, index, last))
        sealed = encryptor.update(pending) + encryptor.finalize() + encryptor.tag
        out.write(struct.pack(">I?", len(sealed), last) + sealed)
        written += 5 + len(sealed)
        if last:
            return written
        pending, index = following, index + 1


def _open_sealed(key: bytes, name: str, source: Path, what: str) -> Iterator[bytes]:
    """The plain chunks of the sealed file ``source``; :class:`BackupError` naming ``what`` when
    it is missing, altered, truncated, or sealed under another key or name."""
    if not source.is_file():
        raise BackupError(f"{what}: missing from the backup ({source.name})")
    with open(source, "rb") as fh:
        head = fh.read(len(MAGIC) + SALT)
        if len(head) != len(MAGIC) + SALT or not head.startswith(MAGIC):
            raise BackupError(f"{what}: not a campusdx backup object ({source.name})")
        cipher_key, index = _subkey(key, "object", head[len(MAGIC) :]), 0
        while True:
            frame = fh.read(5)
            if len(frame) != 5:
                raise BackupError(f"{what}: truncated ({source.name} ends before its last chunk)")
            length, last = struct.unpack(">I?", frame)
            if length < 16 or length > CHUNK + 16:
                raise BackupError(f"{what}: altered or malformed ({source.name}, chunk {index})")
            sealed = fh.read(length)
            if len(sealed) != length:
                raise BackupError(f"{what}: truncated ({source.name}, chunk {index})")
            decryptor = Cipher(algorithms.SM4(cipher_key), modes.GCM(_nonce(index), sealed[-16:])).decryptor()
            decryptor.authenticate_additional_data(_aad(name, index, last))
            try:
                plain = decryptor.update(sealed[:-16]) + decryptor.finalize()
            except InvalidTag:
                raise BackupError(
                    f"{what}: altered, or sealed under another key ({source.name}, chunk {index})"
                ) from None
            yield plain
            if last:
                if fh.read(1):
                    raise BackupError(f"{what}: bytes after its last chunk ({source.name})")
                return
            index += 1


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


# -- backup -----------------------------------------------------------------------------------


class _Repository:
    def __init__(self, root: Path, key: bytes, *, create: bool) -> None:
        self.root, self.key = Path(root), key
        self.naming_key = _subkey(key, "object names", length=32)
        key_id = self.root / "key-id"
        if create:
            (self.root / "objects").mkdir(parents=True, exist_ok=True)
            (self.root / "backups").mkdir(parents=True, exist_ok=True)
            atomic.create_new(key_id, (_key_id(key) + "\n").encode("ascii"), 0o644)
        try:
            found = key_id.read_text(encoding="ascii").strip()
        except OSError:
            raise BackupError(f"{self.root} is not a campusdx backup repository (no key-id)") from None
        if not hmac.compare_digest(found, _key_id(key)):
            raise BackupError(
                f"{self.root}: the backup key does not open this repository (it was written under key id "
                f"{found[:8]}…, the key given is {_key_id(key)[:8]}…): wrong CAMPUSDX_BACKUP_KEY_FILE"
            )

    def object_path(self, name: str) -> Path:
        return self.root / "objects" / name

    def manifest_path(self, backup_id: str) -> Path:
        if not _ID.match(backup_id):
            raise BackupError(f"{backup_id!r} is not a backup id (like 20261205T013000Z)")
        return self.root / "backups" / f"{backup_id}.manifest"

    def backups(self) -> list[str]:
        found = (p.name.removesuffix(".manifest") for p in (self.root / "backups").glob("*.manifest"))
        return sorted(name for name in found if _ID.match(name))

    def writing(self):
        """One backup at a time into the repository (an inter-process lock beside it; another
        backup running: :class:`campusdx.core.locks.Busy` naming it)."""
        return locks.hold(self.root / ".backup.lock", f"backup into {self.root}", wait_s=0)

    def store(self, chunks, name_after) -> tuple[str, int]:
        """Seal ``chunks()`` as a new object, named by ``name_after()`` once they are read (written
        whole or not at all; an object of that name already there is kept); returns (name, bytes
        written)."""
        tmp = self.root / "objects" / f".incoming.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            with open(tmp, "wb") as out:
                written = _seal(self.key, OBJECT, chunks(), out)  # made durable by sync() below
            name = name_after()
            target = self.object_path(name)
            if target.exists():
                return name, 0
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return name, written

    def sync(self) -> None:
        """Flush every object written to the disk before the manifest names them: one
        ``syncfs`` of the repository's file system (Linux), else an fsync per object."""
        objects = self.root / "objects"
        fd = os.open(objects, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if _LIBC is not None and _LIBC.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
        for path in objects.iterdir():
            atomic.fsync_file(path)
        atomic.fsync_dir(objects)

    def manifest(self, backup_id: str) -> dict:
        path = self.manifest_path(backup_id)
        data = b"".join(
            _open_sealed(self.key, f"manifest:{backup_id}", path, f"backup {backup_id}'s manifest")
        )
        return json.loads(data)


def _entries(paths: Paths, directories: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    """(path in the backup, file) of every file backed up in ``directories``, in a stable order."""
    home = paths.home
    for directory in directories:
        top = home / directory
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            relative = path.relative_to(home).as_posix()
            if path.is_symlink() or not path.is_file() or _SKIP.search(relative):
                continue
            if directory != KEYS and _is_key(path):
                continue
            if directory == "exchange" and states.derived(path):
                continue  # a DELTA's state: made again from its base and its rows after a restore
            yield relative, path


def _pinned(paths: Paths) -> list[tuple[str, Path]]:
    """The files of every pinned snapshot (whole: a pinned snapshot is kept on purpose)."""
    found = []
    for pinned in (s for s in snapshots.listed(paths) if s.pinned):
        directory = snapshots.root(paths) / pinned.id
        for name in (snapshots.DATABASE, snapshots.INFO, snapshots.PINNED):
            found.append((f"snapshots/{pinned.id}/{name}", directory / name))
    return found


def _is_key(path: Path) -> bool:
    """A key file outside ``secrets/`` (never backed up unless keys are asked for)."""
    return path.suffix == ".key" or path.name.startswith("id_")


def backup(
    paths: Paths | None = None,
    target: Path | None = None,
    *,
    keys: bool = False,
    key_file: Path | None = None,
) -> BackupResult:
    """Write a backup of the home to the repository ``target`` (default ``$CAMPUSDX_BACKUP_DIR``)."""
    paths = paths or settings.paths()
    config = settings.current()
    target = target or config.backup_dir
    if target is None:
        raise BackupError("no backup repository: set CAMPUSDX_BACKUP_DIR (or pass one)")
    key = load_key(key_file or config.backup_key_file, paths.home)
    if Path(target).resolve().is_relative_to(paths.home.resolve()):
        raise BackupError(f"the backup repository {target} is inside the home {paths.home}")
    repo = _Repository(Path(target), key, create=True)
    with repo.writing():
        return _backup(paths, repo, keys, config.lock_wait_s)


def _backup(paths: Paths, repo: _Repository, keys: bool, wait_s: float) -> BackupResult:
    previous = {}
    if repo.backups():
        previous = {f["path"]: f for f in repo.manifest(repo.backups()[-1])["files"]}
    backup_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    while repo.manifest_path(backup_id).exists():
        time.sleep(1.0 - datetime.now(UTC).microsecond / 1e6)  # ids are seconds: the next one
        backup_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    taken = _Taken(repo, previous)
    # scratch space for the copies of live databases, inside the home: it holds personal
    # data in clear, so never in a shared temporary directory; owner-only, removed at the end
    (paths.home / "tmp").mkdir(mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backup-", dir=paths.home / "tmp") as scratch:
        taken.scratch = Path(scratch)
        history.export(paths, wait_s=wait_s)  # done by the warehouse run; here when it lags
        # landing batches are committed by a rename and never rewritten: taken without locks;
        # the rest is listed and taken holding the locks of those who write or prune it
        taken.all(_entries(paths, ("landing",)))
        rest = (*(d for d in DIRECTORIES if d != "landing"), *((KEYS,) if keys else ()))
        with _consistent(paths, wait_s):
            taken.all(list(_entries(paths, rest)))
        with history.holding(paths, wait_s):
            index = history.read_index(paths)
            snapshot = index["snapshot"]
            if snapshot is not None:
                taken.all([(f"{HISTORY}/{history.INDEX}", history.root(paths) / history.INDEX)])
                taken.all(history.files(paths, index))
        taken.all(_pinned(paths))
        if APPROVALS.is_file():
            taken.all([(APPROVALS_IN_BACKUP, APPROVALS)])
    manifest = {
        "backup_id": backup_id,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "producer": f"campusdx {__version__}",
        "school_code": load_profile().school_code,
        "snapshot": snapshot,
        "keys": keys,
        "cipher": "SM4-GCM",
        "files": taken.files,
    }
    # compact: json's C encoder (an indented manifest of a few hundred files took 8 ms in Python)
    data = json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = repo.manifest_path(backup_id)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        taken.stored += _seal(repo.key, f"manifest:{backup_id}", _pieces(data), out)
    repo.sync()
    atomic.replace(tmp, path)
    total = sum(f["bytes"] for f in taken.files)
    log.info(
        "backup %s: %d files, %d bytes, %d bytes stored, %d unchanged",
        backup_id,
        len(taken.files),
        total,
        taken.stored,
        taken.reused,
    )
    return BackupResult(backup_id, len(taken.files), total, taken.stored, taken.reused, snapshot, keys)


class _Taken:
    """The files of one backup as they are taken: manifest entries, bytes stored, files reused."""

    def __init__(self, repo: _Repository, previous: dict[str, dict]) -> None:
        self.repo, self.previous = repo, previous
        self.files: list[dict] = []
        self.stored = self.reused = 0
        self.scratch = Path()

    def all(self, entries) -> None:
        for relative, path in entries:
            entry, written, was_reused = _take(
                self.repo, relative, path, self.previous.get(relative), self.scratch
            )
            self.files.append(entry)
            self.stored += written
            self.reused += was_reused


@contextmanager
def _consistent(paths: Paths, wait_s: float) -> Iterator[None]:
    """Hold every dataset's publish lock and the gates' lock: the ledger and the exchange's files,
    and the quality files, are taken as one state."""
    with ExitStack() as stack:
        for code in sorted(load_profile().datasets):
            stack.enter_context(publish_lock(paths, code, wait_s=wait_s))
        stack.enter_context(quality_lock(paths, timeout=wait_s))
        yield


def _take(
    repo: _Repository, relative: str, path: Path, before: dict | None, scratch: Path
) -> tuple[dict, int, bool]:
    """Back up one file: (its manifest entry, bytes stored, whether it was unchanged). The file
    is read once, hashed and sealed in the same pass (a file pruned meanwhile stays readable
    through the open handle)."""
    info = path.stat()
    if (
        before is not None
        and before["bytes"] == info.st_size
        and before.get("mtime_ns") == info.st_mtime_ns
        and repo.object_path(before["object"]).exists()
    ):
        return before, 0, True
    source = path
    if _is_sqlite(path):  # a consistent copy of a live database, never its file
        source = scratch / "sqlite-copy"
        source.unlink(missing_ok=True)
        live, copy = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True), sqlite3.connect(source)
        try:
            live.backup(copy)
        finally:
            live.close()
            copy.close()
    digest = hashlib.sha256()
    size = 0
    if info.st_size <= SMALL:  # read once into memory: hashed first, sealed only when new
        data = source.read_bytes()
        digest.update(data)
        size = len(data)
        name = _object_name(repo.naming_key, digest.hexdigest())
        written = 0 if repo.object_path(name).exists() else repo.store(lambda: _pieces(data), lambda: name)[1]
    else:

        def hashed() -> Iterator[bytes]:
            nonlocal size
            for chunk in _chunks(source):
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        name, written = repo.store(hashed, lambda: _object_name(repo.naming_key, digest.hexdigest()))
    entry = {
        "path": relative,
        "bytes": size,
        "sha256": digest.hexdigest(),
        "object": name,
        # a live database is always taken again: it changes without a new size or time
        "mtime_ns": None if source is not path else info.st_mtime_ns,
        "mode": info.st_mode & 0o777,
    }
    return entry, written, False


def _pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, max(len(data), 1), CHUNK):
        yield data[start : start + CHUNK]


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(_SQLITE)) == _SQLITE


# -- verify and restore -----------------------------------------------------------------------


def _safe_relative(relative: str) -> Path:
    """A manifest's path, refused when it could leave the target (absolute, ``..``, odd names)."""
    parts = relative.split("/")
    if (
        not relative
        or relative.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in relative
    ):
        raise BackupError(f"the manifest lists a path that would leave the home: {relative!r}")
    top = parts[0]
    if top not in (*DIRECTORIES, KEYS, HISTORY, "snapshots", "repository"):
        raise BackupError(f"the manifest lists a path outside what a backup holds: {relative!r}")
    return Path(*parts)


def verify(
    source: Path, backup_id: str | None = None, *, key_file: Path | None = None, into: Path | None = None
) -> dict:
    """Check every file of a backup (default: the newest) without restoring it: present, unaltered,
    of the size and SHA-256 the manifest lists. Returns the manifest; :class:`BackupError` names
    the first file that fails. With ``into``, the files are also written there."""
    key = load_key(key_file or settings.current().backup_key_file)
    repo = _Repository(Path(source), key, create=False)
    found = repo.backups()
    if not found:
        raise BackupError(f"{source}: holds no backup")
    backup_id = backup_id or found[-1]
    manifest = repo.manifest(backup_id)
    for entry in manifest["files"]:
        relative = _safe_relative(str(entry["path"]))
        name = str(entry["object"])
        if not re.fullmatch(r"[0-9a-f]{64}", name):
            raise BackupError(f"{relative}: the manifest names no valid object")
        digest, size = hashlib.sha256(), 0
        with ExitStack() as stack:
            out = None
            if into is not None:
                (into / relative).parent.mkdir(parents=True, exist_ok=True)
                out = stack.enter_context(open(into / relative, "wb"))
            for chunk in _open_sealed(key, OBJECT, repo.object_path(name), str(relative)):
                digest.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
            if out is not None:
                out.flush()
                os.fsync(out.fileno())
                # the file's mode as backed up, never writable by others (keys stay 0600)
                os.chmod(out.fileno(), int(entry.get("mode") or 0o644) & 0o755)
        if size != entry["bytes"] or digest.hexdigest() != entry["sha256"]:
            raise BackupError(f"{relative}: its content differs from the manifest (size or SHA-256)")
    return manifest


def restore(
    source: Path, home: Path | None = None, backup_id: str | None = None, *, key_file: Path | None = None
) -> dict:
    """Restore a backup (default: the newest) into ``home`` (default: the configured home), which
    must be empty or absent. Everything is verified in a staging directory beside it first; only
    then is it renamed into place. Afterwards the build database holds the SCD2 history (the next
    warehouse run rebuilds the rest from the landing zone and publishes a snapshot), and before
    the next publish of each dataset the exchange compares its ledger with what the gateway
    shows (packages sent after the backup are adopted)."""
    home = Path(home or settings.home()).absolute()
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise BackupError(f"{home} is not empty: restore into an empty or new home")
    load_key(key_file or settings.current().backup_key_file, home)  # never a key inside the home
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.restoring-", dir=home.parent))
    try:
        manifest = verify(source, backup_id, key_file=key_file, into=staging)
        # everything the restored home needs is done before it takes the home's name: the
        # ledger's request to compare with the gateway first, so no state without it exists
        notes = _after_restore(Paths(staging), manifest)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # the home as a new directory would be (mkdtemp: 0700)
        if (staging / KEYS).is_dir():
            os.chmod(staging / KEYS, 0o700)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if home.exists():
        home.rmdir()
    os.rename(staging, home)
    atomic.fsync_dir(home.parent)
    log.warning("restored backup %s into %s: %s", manifest["backup_id"], home, "; ".join(notes))
    return {
        **{k: v for k, v in manifest.items() if k != "files"},
        "files": len(manifest["files"]),
        "notes": notes,
    }


def _history_parts(paths: Paths) -> dict[str, list[Path]]:
    """The restored history's files per table: the parts its index names (kept: the next export
    starts from them), or one file per table in backups written before parts."""
    try:
        index = history.read_index(paths)
        found: dict[str, list[Path]] = {}
        for relative, path in history.files(paths, index):
            found.setdefault(relative.split("/")[1], []).append(path)
    except history.HistoryError as exc:
        raise BackupError(str(exc)) from None
    for path in sorted(history.root(paths).glob(f"{HISTORY_SCHEMA}.*.parquet")):
        table = path.name.removeprefix(f"{HISTORY_SCHEMA}.").removesuffix(".parquet")
        if not _TABLE.match(table):
            raise BackupError(f"{HISTORY}/{path.name}: not a history table's name")
        found[table] = [path]
    return found


def _after_restore(paths: Paths, manifest: dict) -> list[str]:
    """Inside the staging directory (``paths``): the gateway checks asked for, the history put
    into a new build database; returns what the operator is told."""
    profile = load_profile()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    with open_ledger(paths, profile) as ledger:
        for code in profile.datasets:
            ledger.request_gateway_check(code, f"restored from backup {manifest['backup_id']}", stamp)
    notes = ["the ledger is compared with the gateway before each dataset's next publish"]
    parts = _history_parts(paths)
    if parts:  # the build starts from the history; the next warehouse run rebuilds the rest
        with duckdb.connect(str(paths.warehouse)) as conn:
            conn.execute(f"create schema {HISTORY_SCHEMA}")
            for table, files in parts.items():
                try:
                    conn.execute(
                        f'create table {HISTORY_SCHEMA}."{table}" as select * from read_parquet(?)',
                        [[str(f) for f in files]],
                    )
                except duckdb.Error as exc:
                    raise BackupError(f"{HISTORY}: table {table} cannot go into the build: {exc}") from None
        for older in history.root(paths).glob(f"{HISTORY_SCHEMA}.*.parquet"):
            older.unlink()  # loaded; parts take their place at the next export
        for directory in (history.root(paths), *history.root(paths).iterdir()):
            if directory.is_dir():  # names in clear: owner-only, as the export makes them
                os.chmod(directory, 0o700)
        notes.append(
            f"the SCD2 history of snapshot {manifest.get('snapshot')} is in the build; the next warehouse "
            "run rebuilds the rest from the landing zone and publishes a snapshot"
        )
    notes += [f"pinned snapshot {pinned.id} is back" for pinned in snapshots.listed(paths)]
    saved = paths.home / APPROVALS_IN_BACKUP
    if saved.is_file() and APPROVALS.is_file() and saved.read_bytes() != APPROVALS.read_bytes():
        notes.append(
            f"the approvals differ from the backup's ({APPROVALS_IN_BACKUP}): compare before the next gate"
        )
    if not manifest.get("keys"):
        notes.append(
            "the backup holds no key: put the exchange, fingerprint, pseudonym and audit chain keys back"
            " in secrets/"
        )
    return notes
