"""The secret key behind the analysts' person pseudonyms (``analyst.persons.person_id``).

A pseudonym is HMAC-SHA256 under this key of the person key (document type + number),
computed by DuckDB while dbt builds ``marts.dim_person`` (macro ``person_pseudonym``). Without
the key nobody can recompute one from a candidate document number, so the masked number and
the birth year an analyst sees cannot be turned back into the full number by guessing and
hashing.

The key is a file holding 32 random bytes as hex: ``$CAMPUSDX_PSEUDONYM_KEY_FILE`` when set
(a deployment's own key, which must exist), else ``<home>/secrets/pseudonym.key``, created at
the first dbt run of the embedded default. dbt sees only the file's path; the key itself is
read by DuckDB at build time and never appears in compiled SQL, dbt's artefacts or a log line
(errors name the file or the variable, never the content). Rotating it changes every
pseudonym: README, "Rotating the pseudonym key".
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

from campusdx.core import atomic, settings

log = logging.getLogger(__name__)

KEY_FILE_ENV = "CAMPUSDX_PSEUDONYM_KEY_FILE"
"""Environment variable naming the pseudonym key file of a deployment."""

DEFAULT_NAME = "pseudonym.key"
"""The embedded default's key file, under ``<home>/secrets``."""

_HEX_KEY = re.compile(r"(?:[0-9a-f]{2}){16,64}")
"""16 to 64 bytes as hex: at least 128 bits, at most one SHA-256 block (the SQL HMAC's limit)."""


class PseudonymKeyError(RuntimeError):
    """The key file is missing or malformed; the message names the file or variable, not the key."""


def pseudonym_key_file(paths: settings.Paths | None = None) -> Path:
    """The key file dbt reads, checked; on the embedded default created when missing.

    With ``$CAMPUSDX_PSEUDONYM_KEY_FILE`` set the file must exist: a deployment that names its
    key and has lost it must not get a fresh one silently (every pseudonym would change).
    """
    configured = settings.current().pseudonym_key_file
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise PseudonymKeyError(
                f"{KEY_FILE_ENV} names {path}, which does not exist; restore the key file "
                f"(or unset {KEY_FILE_ENV} to use the embedded default's generated key)"
            )
    else:
        path = (paths or settings.paths()).secrets / DEFAULT_NAME
    ensure_key(path, "pseudonym key", create=not configured)
    return path


def ensure_key(path: Path, what: str, *, create: bool = True) -> bytes:
    """The key in ``path`` (``what`` names it in messages), checked: 16 to 64 bytes as hex.

    With ``create`` a missing file is made first: 32 random bytes as hex, mode 0600, written
    privately and linked into place, so of processes starting at once exactly one creates it
    and every one reads that key. Also the home's other generated keys use this (the quality
    artefacts' fingerprint key).
    """
    if (
        create
        and not path.exists()
        and atomic.create_new(path, (secrets.token_hex(32) + "\n").encode("ascii"))
    ):
        log.info("created %s file %s", what, path)
    try:
        text = path.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError):
        raise PseudonymKeyError(f"{what} file {path} cannot be read as ASCII hex") from None
    if not _HEX_KEY.fullmatch(text):
        raise PseudonymKeyError(f"{what} file {path} does not hold a hex key of 16 to 64 bytes")
    if path.stat().st_mode & 0o077:
        log.warning("%s file %s is readable by others than its owner; chmod 600 it", what, path)
    return bytes.fromhex(text)
