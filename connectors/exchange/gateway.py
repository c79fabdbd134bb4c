"""Delivery to the provincial gateway: a small interface and its directory implementation.

The gateway has ``inbox/`` (the school writes) and ``receipts/`` (the platform writes), PX-1.0 §3.
:class:`DirectoryGateway` serves a gateway on the same host (the embedded default);
:class:`campusdx.exchange.sftp.SftpGateway` the province's SFTP gateway. :func:`configured`
picks one: SFTP when ``$CAMPUSDX_SFTP_SETTINGS`` names a settings file (JSON: host, port, user,
key_file, known_hosts, remote_root), else the directory under the home. Uploads are atomic
(``.part`` directory renamed when complete) and safe to repeat.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

from campusdx.core import atomic, settings
from campusdx.core.profile import GatewayLayout, load_profile
from campusdx.exchange.package import (
    MAX_FETCH_BYTES,
    MAX_FETCH_FILES,
    PackageFileRefused,
    plain_name,
    read_in_package,
)
from campusdx.exchange.receipts import MAX_RECEIPT_BYTES, ReceiptProblem, parse_receipt
from campusdx.exchange.sftp import SftpGateway, SftpSettings

log = logging.getLogger(__name__)


class Gateway(Protocol):
    """Where packages go and receipts come from."""

    def upload(self, package_path: Path) -> None:
        """Publish the package directory atomically; repeating an upload changes nothing."""

    def receipt(self, package_id: str) -> Any:
        """The platform's receipt for ``package_id`` as parsed JSON, or None while there is none;
        :class:`ReceiptProblem` when it is not JSON. The caller validates it
        (:func:`campusdx.exchange.receipts.validate_receipt`)."""

    def fetch(self, package_id: str, target: Path) -> bool:
        """Copy the package ``inbox/{package_id}/`` as the gateway holds it into the new directory
        ``target`` (its regular files, each at most ``MAX_FETCH_BYTES``); False when the inbox
        does not hold it. Nothing fetched is trusted: the caller checks it as a package."""


SFTP_SETTINGS_ENV = "CAMPUSDX_SFTP_SETTINGS"


def configured(directory: Path, layout: GatewayLayout | None = None) -> Gateway:
    """The SFTP gateway when ``$CAMPUSDX_SFTP_SETTINGS`` names its settings, else ``directory``."""
    settings_file = settings.current().sftp_settings
    if not settings_file:
        return DirectoryGateway(directory, layout)
    try:
        text = Path(settings_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeError(f"{SFTP_SETTINGS_ENV}: cannot read {settings_file}: {exc.strerror}") from None
    return SftpGateway(SftpSettings.from_json(text), layout)


class DirectoryGateway:
    """A gateway that is a directory on a (shared) file system."""

    def __init__(self, root: Path | str, layout: GatewayLayout | None = None) -> None:
        self.root = Path(root)
        self.layout = layout or load_profile().gateway
        self.inbox = self.root / self.layout.inbox
        self.receipts = self.root / self.layout.receipts

    def upload(self, package_path: Path | str) -> None:
        """Copy the package to ``inbox/{id}.part/``, fsync, rename to ``inbox/{id}/``.

        The same package already there makes this a no-op (a re-send); a
        different package under the same id (one rebuilt after a rejection) replaces it.
        A ``.part`` left by a crashed upload is removed and the copy redone.
        """
        source = Path(package_path)
        package_id = source.name
        self.inbox.mkdir(parents=True, exist_ok=True)
        final = self.inbox / package_id
        if final.is_dir() and _same_package(final, source):
            log.info("gateway: %s already in the inbox, nothing to upload", package_id)
            return
        part = self.inbox / f"{package_id}{self.layout.part_suffix}"
        if part.exists():
            log.warning("gateway: removing stale %s from an interrupted upload", part.name)
            shutil.rmtree(part)
        _copy_durably(source, part)
        if final.exists():
            self._replace(final, part)
        else:
            os.rename(part, final)
        atomic.fsync_dir(self.inbox)
        log.info("gateway: uploaded %s", package_id)

    def _replace(self, final: Path, part: Path) -> None:
        """Swap a different package of the same id for the new one (the old is unprocessable)."""
        stale = self.inbox / f"{final.name}.replaced{self.layout.part_suffix}"
        shutil.rmtree(stale, ignore_errors=True)
        os.rename(final, stale)
        os.rename(part, final)
        shutil.rmtree(stale)
        log.info("gateway: replaced an older package under the id %s", final.name)

    def receipt(self, package_id: str) -> Any:
        """``receipts/{package_id}.json`` parsed as JSON (not yet validated), or None when absent.

        Only a regular file directly in ``receipts/`` is read (never a link elsewhere), at most
        :data:`MAX_RECEIPT_BYTES`; a receipt that is not JSON raises :class:`ReceiptProblem`."""
        name = f"{package_id}.json"
        source = f"{self.layout.receipts}/{name}"
        try:
            data = read_in_package(self.receipts, name, MAX_RECEIPT_BYTES)
        except PackageFileRefused as exc:
            raise ReceiptProblem(f"receipt {source} {exc}") from None
        return None if data is None else parse_receipt(data, source)

    def fetch(self, package_id: str, target: Path) -> bool:
        """See :meth:`Gateway.fetch`: only a directory directly in the inbox, never a link."""
        if not plain_name(package_id):
            return False
        source = self.inbox / package_id
        if source.is_symlink() or not source.is_dir():
            return False
        target.mkdir(parents=True)
        for item in sorted(source.iterdir())[:MAX_FETCH_FILES]:
            try:
                data = read_in_package(source, item.name, MAX_FETCH_BYTES)
            except PackageFileRefused:
                continue  # not a regular file of the package: the package check will miss it
            if data is not None and len(data) <= MAX_FETCH_BYTES:  # longer: left behind, found missing
                atomic.write_file(target / item.name, data)
        return True


def _same_package(a: Path, b: Path) -> bool:
    """True when two package directories hold the same files with the same bytes."""
    try:
        files_a = sorted(p.name for p in a.iterdir() if p.is_file())
        files_b = sorted(p.name for p in b.iterdir() if p.is_file())
        return files_a == files_b and all((a / n).read_bytes() == (b / n).read_bytes() for n in files_a)
    except OSError:
        return False


def _copy_durably(source: Path, target: Path) -> None:
    """Copy the regular files of ``source`` into a new directory ``target``, fsyncing each."""
    target.mkdir(parents=True)
    for item in sorted(source.iterdir()):
        if item.is_file():
            atomic.write_file(target / item.name, item.read_bytes())
    atomic.fsync_dir(target)
