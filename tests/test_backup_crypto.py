"""The backup's sealed objects (campusdx.pipeline.backup): what opens, and what is refused with
the file named: a manifest larger than a chunk, altered, truncated, reordered or foreign chunks,
another key."""

from __future__ import annotations

import io
import os
import struct

import pytest

from campusdx.pipeline import backup


def _sealed(tmp_path, key: bytes, name: str, data: bytes):
    out = io.BytesIO()
    backup._seal(key, name, backup._pieces(data), out)
    path = tmp_path / "object"
    path.write_bytes(out.getvalue())
    return path


def _frames(raw: bytes) -> tuple[bytes, list[bytes]]:
    head, rest, frames = raw[: len(backup.MAGIC) + backup.SALT], raw[len(backup.MAGIC) + backup.SALT :], []
    while rest:
        length, _ = struct.unpack(">I?", rest[:5])
        frames.append(rest[: 5 + length])
        rest = rest[5 + length :]
    return head, frames


def _open(key, name, path) -> bytes:
    return b"".join(backup._open_sealed(key, name, path, "backups/x.manifest"))


def test_a_manifest_larger_than_a_chunk_opens_again(tmp_path):
    key = os.urandom(backup.KEY_BYTES)
    data = os.urandom(backup.CHUNK * 2 + 123)
    path = _sealed(tmp_path, key, "manifest:20261205T000000Z", data)
    assert len(_frames(path.read_bytes())[1]) == 3
    assert _open(key, "manifest:20261205T000000Z", path) == data


@pytest.mark.parametrize(
    "harm", ["drop the last chunk", "swap two chunks", "another name", "another key", "a byte"]
)
def test_what_was_not_sealed_so_is_refused(tmp_path, harm):
    key = os.urandom(backup.KEY_BYTES)
    data = os.urandom(backup.CHUNK * 2 + 5)
    path = _sealed(tmp_path, key, "object", data)
    head, frames = _frames(path.read_bytes())
    name = "object"
    if harm == "drop the last chunk":
        path.write_bytes(head + b"".join(frames[:-1]))
    elif harm == "swap two chunks":
        path.write_bytes(head + frames[1] + frames[0] + frames[2])
    elif harm == "another name":
        name = "manifest:20261205T000000Z"
    elif harm == "another key":
        key = os.urandom(backup.KEY_BYTES)
    else:
        raw = bytearray(path.read_bytes())
        raw[-100] ^= 0x40
        path.write_bytes(bytes(raw))
    with pytest.raises(backup.BackupError, match=r"backups/x\.manifest: (truncated|altered)"):
        _open(key, name, path)


def test_every_object_has_a_key_of_its_own(tmp_path):
    """Equal plain text sealed twice under one backup key gives different bytes (a salt per
    object, the key derived from it): a nonce never repeats under one key."""
    key = os.urandom(backup.KEY_BYTES)
    one = _sealed(tmp_path, key, "object", b"same").read_bytes()
    two = _sealed(tmp_path, key, "object", b"same").read_bytes()
    assert one != two and _frames(one)[1] != _frames(two)[1]
