"""How the quality gate writes its files when gates of several datasets run side by side.

- A per-dataset file (``findings/<DATASET>.parquet``, ``gate/<DATASET>.json``) is written to a
  temporary name of this process, fsynced, renamed into place and its directory fsynced: a
  reader sees the old file or the new one, never half of one, and a crash loses neither.
- Everything the gates share (the GX stores and Data Docs, ``history.jsonl``, the summary
  page) is written only while holding :func:`quality_lock`, an inter-process file lock
  (``filelock``) on ``quality/.gate.lock``.

Both go through :mod:`campusdx.core.atomic`, the one durable-write helper (a temporary name per
process, file fsync, rename, directory fsync).
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock

from campusdx.core import atomic
from campusdx.core.settings import Paths

LOCK_TIMEOUT_S = 900  # a gate waits this long for the others' Data Docs builds, then fails loudly


def write_text_atomic(path: Path, text: str) -> None:
    atomic.write_bytes(path, text.encode("utf-8"))


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
