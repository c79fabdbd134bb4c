"""Durable commits on a local disk: a file is written under a temporary name, fsynced, renamed
into place, and its directory fsynced, so that after a crash (of the process or of the machine)
the path holds either the old content or the new one, never a half, and a rename that was
reported done is not undone.

Every rename that commits state goes through :func:`replace` (or :func:`write_bytes`, which
writes the temporary file first). Nothing here imports the rest of campusdx.
"""

from __future__ import annotations

import io
import os
import secrets
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


def write_file(path: Path | str, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` and fsync it (for files inside a directory that is
    itself committed by a rename, like a package's parts)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _private_tmp(path: Path) -> Path:
    """A temporary name next to ``path`` that no other process or thread uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_bytes(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` durably: a temporary file of this process, fsync, rename,
    directory fsync. Two writers of the same path never share a temporary file. ``durable=False``:
    still all or nothing for readers, without the fsyncs (for what means nothing after a crash,
    like who holds a lock)."""
    path = Path(path)
    new_folder = not path.parent.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private_tmp(path)
    try:
        if durable:
            write_file(tmp, data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not durable:
        return
    fsync_dir(path.parent)
    if new_folder:  # the folder's own entry, so the file is found after a crash
        fsync_dir(path.parent.parent)


def create_new(path: Path | str, data: bytes, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``data`` (file mode ``mode``) unless it exists; never replace it.

    Written under a private temporary name, fsynced, then hard-linked into place, so a reader
    never sees a half-written file and, of processes racing to create it, exactly one wins and
    the others keep the winner's content. Returns whether this call created the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _private_tmp(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(path: Path | str, table) -> None:
    """Replace ``path`` with ``table`` (a pyarrow Table) as Parquet, durably (:func:`write_bytes`)."""
    import pyarrow.parquet as pq  # here, not at the top: locks and DAG parsing import this module

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes(path, buffer.getvalue())
