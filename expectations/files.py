"""How the quality gate writes its files when gates of several datasets run side by side.

- A per-dataset file (``findings/<DATASET>.parquet``, ``gate/<DATASET>.json``) is written to a
  temporary name of this process, fsynced, renamed into place and its directory fsynced: a
  reader sees the old file or the new one, never half of one, and a crash loses neither.
- Everything the gates share (the GX stores and Data Docs, ``history.jsonl``, the summary
  page) is written only while holding :func:`quality_lock`, an inter-process file lock
  (``filelock``) on ``quality/.gate.lock``.

(``connectors/`` has atomic writers of its own; the quality layer does not import the
exchange's, and a temporary name per process is needed here.)
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from campusdx.settings import Paths

LOCK_TIMEOUT_S = 900  # a gate waits this long for the others' Data Docs builds, then fails loudly


def fsync_dir(path: Path) -> None:
    """Fsync a directory so a rename or a new entry in it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file of this process, fsync, rename, dir fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_atomic(path, buffer.getvalue())


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync (call it holding :func:`quality_lock`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line.rstrip("\n") + "\n")
        out.flush()
        os.fsync(out.fileno())


def quality_lock(paths: Paths, timeout: float = LOCK_TIMEOUT_S) -> FileLock:
    """The lock every writer of the gates' shared files holds (``with quality_lock(paths):``)."""
    paths.quality.mkdir(parents=True, exist_ok=True)
    return FileLock(str(paths.quality / ".gate.lock"), timeout=timeout)
