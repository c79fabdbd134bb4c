"""campusdx.core.atomic: the one durable-write helper every stage commits state through."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from campusdx.core import atomic


def _create(args: tuple[str, bytes]) -> bool:
    path, data = args
    return atomic.create_new(Path(path), data)


def test_create_new_has_exactly_one_winner_whose_content_every_loser_keeps(tmp_path):
    path = tmp_path / "secrets" / "some.key"
    contenders = [(str(path), f"key-{i}\n".encode()) for i in range(8)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        won = pool.map(_create, contenders)
    assert won.count(True) == 1
    winner = contenders[won.index(True)][1]
    assert path.read_bytes() == winner
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not atomic.create_new(path, b"other\n") and path.read_bytes() == winner  # never replaced
    assert sorted(p.name for p in path.parent.iterdir()) == ["some.key"]  # no temporary file left


def test_write_bytes_replaces_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    atomic.write_bytes(path, b"old")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic.write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert str(tmp_path) in synced  # the directory is fsynced after the rename
    assert any(s.endswith(".tmp") for s in synced)  # and the file before it


def test_a_failed_write_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    atomic.write_bytes(path, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
