"""Durable commits on a local disk: a file is written under a temporary name, fsynced, renamed
into place, and its directory fsynced, so that after a crash (of the process or of the machine)
the path holds either the old content or the new one, never a half, and a rename that was
reported done is not undone.

Every rename that commits state goes through :func:`replace` (or :func:`write_bytes`, which
writes the temporary file first). Nothing here imports the rest of campusdx.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path | str) -> None:
    """Flush a file's content to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Flush a directory, so entries created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(tmp: Path | str, path: Path | str) -> None:
    """Commit the finished file ``tmp`` as ``path``: fsync it, rename it, fsync the directory
    (both directories when they differ)."""
    tmp, path = Path(tmp), Path(path)
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    if tmp.parent.resolve() != path.parent.resolve():
        fsync_dir(tmp.parent)


def tmp_path(path: Path | str) -> Path:
    """The temporary name ``path`` is written under before :func:`replace` (``<name>.tmp``)."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


def write_bytes(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably: temporary file, fsync, rename, directory fsync."""
    path = Path(path)
    tmp = tmp_path(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
