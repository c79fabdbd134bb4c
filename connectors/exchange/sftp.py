"""The SFTP gateway (PX-1.0 §3): key authentication, a pinned host key, atomic uploads.

An upload writes ``inbox/{package_id}.part/`` file by file and renames it to
``inbox/{package_id}/`` once every file is complete. After a cut connection the next upload
resumes: a file already in the ``.part`` directory with the right size and SHA-256 is kept,
any other is written again. The same package already in the inbox makes an upload a no-op; a
different one under the same id (rebuilt after a rejection) replaces it.

The host key must be in the ``known_hosts`` file given: an unknown key or a changed one is
refused with a message saying which, and nothing is sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from campusdx.core import atomic
from campusdx.core.profile import GatewayLayout, load_profile
from campusdx.exchange.package import MAX_FETCH_BYTES, MAX_FETCH_FILES, plain_name
from campusdx.exchange.receipts import MAX_RECEIPT_BYTES, ReceiptProblem, parse_receipt

log = logging.getLogger(__name__)


class SftpError(RuntimeError):
    """The gateway cannot be reached safely; the message says why and what to check."""


@dataclass(frozen=True)
class SftpSettings:
    """Where the province's SFTP gateway is and how the school proves who it is."""

    host: str
    port: int
    user: str
    key_file: str  # the school's private key
    known_hosts: str  # the gateway's pinned host key, in OpenSSH known_hosts format
    remote_root: str = "."  # the gateway directory (holding inbox/ and receipts/) on the server
    timeout_s: float = 30.0

    @classmethod
    def from_json(cls, text: str) -> SftpSettings:
        raw = json.loads(text)
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


class SftpGateway:
    """A gateway reached over SFTP; one connection per call, closed afterwards."""

    def __init__(self, settings: SftpSettings, layout: GatewayLayout | None = None) -> None:
        self.settings = settings
        self.layout = layout or load_profile().gateway

    # ----------------------------------------------------------------------- connection

    def _connect(self) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
        s = self.settings
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(s.known_hosts)
        except FileNotFoundError:
            raise SftpError(
                f"known_hosts file {s.known_hosts} not found: the gateway's host key must be pinned"
            ) from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = f"{s.user}@{s.host}:{s.port}"
        try:
            client.connect(
                s.host,
                port=s.port,
                username=s.user,
                key_filename=s.key_file,
                look_for_keys=False,
                allow_agent=False,
                timeout=s.timeout_s,
                banner_timeout=s.timeout_s,
                auth_timeout=s.timeout_s,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise SftpError(
                f"{where}: the gateway's host key CHANGED (now {exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}); refusing to send. If the province announced "
                f"a new key, replace it in {s.known_hosts}"
            ) from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise SftpError(
                    f"{where}: the gateway's host key is not pinned in {s.known_hosts}; refusing to "
                    "send. Add the key the province published for its gateway"
                ) from None
            raise SftpError(f"{where}: SSH failed: {exc}") from exc
        except OSError as exc:
            client.close()
            raise SftpError(f"{where}: cannot connect: {exc}") from exc
        return client, client.open_sftp()

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.settings.remote_root, *parts)

    # ----------------------------------------------------------------------- Gateway

    def upload(self, package_path: Path | str) -> None:
        """Upload into ``inbox/{id}.part/`` (resuming what a cut left), then rename."""
        source = Path(package_path)
        package_id = source.name
        files = {p.name: p.read_bytes() for p in sorted(source.iterdir()) if p.is_file()}
        client, sftp = self._connect()
        try:
            inbox = self._path(self.layout.inbox)
            _mkdir(sftp, self.settings.remote_root)
            _mkdir(sftp, inbox)
            final = posixpath.join(inbox, package_id)
            if _same_files(sftp, final, files):
                log.info("sftp: %s already in the inbox, nothing to upload", package_id)
                return
            part = final + self.layout.part_suffix
            _mkdir(sftp, part)
            kept = 0
            for name, data in files.items():
                target = posixpath.join(part, name)
                if _same_file(sftp, target, data):
                    kept += 1
                    continue
                with sftp.open(target + ".tmp", "wb") as fh:
                    fh.set_pipelined(True)
                    fh.write(data)
                _rename(sftp, target + ".tmp", target)
            if kept:
                log.info(
                    "sftp: resumed %s: %d of %d files were already complete", package_id, kept, len(files)
                )
            for leftover in set(sftp.listdir(part)) - set(files):
                sftp.remove(posixpath.join(part, leftover))
            if _exists(sftp, final):
                stale = final + ".replaced" + self.layout.part_suffix
                _rmtree(sftp, stale)
                sftp.rename(final, stale)
                sftp.rename(part, final)
                _rmtree(sftp, stale)
                log.info("sftp: replaced an older package under the id %s", package_id)
            else:
                sftp.rename(part, final)
            log.info("sftp: uploaded %s (%d files)", package_id, len(files))
        finally:
            sftp.close()
            client.close()

    def receipt(self, package_id: str) -> Any:
        """``receipts/{package_id}.json`` parsed as JSON (not yet validated), or None when absent.

        At most :data:`MAX_RECEIPT_BYTES` are read; a receipt that is not JSON, or is not a
        regular file, raises :class:`ReceiptProblem`."""
        source = f"{self.layout.receipts}/{package_id}.json"
        client, sftp = self._connect()
        try:
            path = self._path(self.layout.receipts, f"{package_id}.json")
            try:
                mode = sftp.stat(path).st_mode  # None when the server does not say
                if mode is not None and not stat.S_ISREG(mode):
                    raise ReceiptProblem(f"receipt {source} is not a regular file")
                with sftp.open(path, "rb") as fh:
                    data = fh.read(MAX_RECEIPT_BYTES + 1)
            except FileNotFoundError:
                return None
            return parse_receipt(data, source)
        finally:
            sftp.close()
            client.close()

    def fetch(self, package_id: str, target: Path) -> bool:
        """See :class:`campusdx.exchange.gateway.Gateway`: the regular files of ``inbox/{id}/``."""
        if not plain_name(package_id):
            return False
        client, sftp = self._connect()
        try:
            remote = self._path(self.layout.inbox, package_id)
            try:
                entries = sftp.listdir_attr(remote)
            except FileNotFoundError:
                return False
            target.mkdir(parents=True)
            for entry in entries[:MAX_FETCH_FILES]:
                # a regular file (a server that gives no mode is taken at its word, as for
                # receipts), of a plain name, within the size limit; anything else is left
                # behind and the package check then finds it missing
                regular = entry.st_mode is None or stat.S_ISREG(entry.st_mode)
                if not (regular and plain_name(entry.filename)) or (entry.st_size or 0) > MAX_FETCH_BYTES:
                    continue
                with sftp.open(posixpath.join(remote, entry.filename), "rb") as fh:
                    fh.prefetch()
                    data = fh.read(MAX_FETCH_BYTES + 1)
                if len(data) <= MAX_FETCH_BYTES:
                    atomic.write_file(target / entry.filename, data)
            return True
        finally:
            sftp.close()
            client.close()


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _mkdir(sftp: paramiko.SFTPClient, path: str) -> None:
    if not _exists(sftp, path):
        sftp.mkdir(path)


def _rename(sftp: paramiko.SFTPClient, source: str, target: str) -> None:
    """Rename over an existing file (SFTP v3 rename refuses to replace; posix-rename does)."""
    try:
        sftp.posix_rename(source, target)
    except OSError:
        if _exists(sftp, target):
            sftp.remove(target)
        sftp.rename(source, target)


def _same_file(sftp: paramiko.SFTPClient, path: str, data: bytes) -> bool:
    try:
        if sftp.stat(path).st_size != len(data):
            return False
        with sftp.open(path, "rb") as fh:
            fh.prefetch()
            return hashlib.sha256(fh.read()).digest() == hashlib.sha256(data).digest()
    except FileNotFoundError:
        return False


def _same_files(sftp: paramiko.SFTPClient, directory: str, files: dict[str, bytes]) -> bool:
    try:
        names = sorted(sftp.listdir(directory))
    except FileNotFoundError:
        return False
    return names == sorted(files) and all(
        _same_file(sftp, posixpath.join(directory, n), d) for n, d in files.items()
    )


def _rmtree(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        entries = sftp.listdir_attr(path)
    except FileNotFoundError:
        return
    for entry in entries:
        child = posixpath.join(path, entry.filename)
        if stat.S_ISDIR(entry.st_mode or 0):
            _rmtree(sftp, child)
        else:
            sftp.remove(child)
    sftp.rmdir(path)
