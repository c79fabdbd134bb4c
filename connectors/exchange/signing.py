"""Hashes, HMAC signatures and the exchange key.

PX-1.0 signs ``manifest.json`` with HMAC-SM3 (HMAC-SHA256 also accepted) and lists SHA-256 and
SM3 digests of every data file. SM3 comes from OpenSSL 3 through :mod:`hashlib`. The key is a
secret: it is read from a file holding hex, and it never appears in a log line or an exception
message (errors name the file, not its content).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-fA-F]{1,1024}")

DIGESTS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}
"""Signature algorithm names of the profile -> hashlib digest names."""


class SigningError(ValueError):
    """A signature cannot be made or checked (unknown algorithm, SM3 unavailable)."""


class KeyFileError(ValueError):
    """The key file is missing or malformed; the message names the path, never the key."""


def require_sm3() -> None:
    """Fail clearly when this Python's OpenSSL does not provide SM3."""
    try:
        hashlib.new("sm3")
    except ValueError:
        raise SigningError(
            "SM3 is not available in this Python's OpenSSL (need OpenSSL 3 with SM3); "
            "PX-1.0 needs it for file digests and HMAC-SM3"
        ) from None


def sm3_hex(data: bytes) -> str:
    """SM3 digest (GB/T 32905-2016) of ``data`` as hex."""
    require_sm3()
    return hashlib.new("sm3", data).hexdigest()


def file_digests(data: bytes) -> tuple[str, str]:
    """(sha256, sm3) of a file's exact bytes, as listed in manifest.json."""
    return hashlib.sha256(data).hexdigest(), sm3_hex(data)


def _digest(alg: str) -> str:
    try:
        name = DIGESTS[alg]
    except KeyError:
        raise SigningError(f"unknown signature algorithm {alg!r} (known: {', '.join(DIGESTS)})") from None
    if name == "sm3":
        require_sm3()
    return name


def sign(data: bytes, key: bytes, alg: str) -> str:
    """Hex HMAC of ``data`` under ``key`` with ``alg`` (``HMAC-SM3`` or ``HMAC-SHA256``)."""
    return hmac.new(key, data, _digest(alg)).hexdigest()


def verify(data: bytes, key: bytes, alg: str, signature: str) -> bool:
    """True when ``signature`` (hex) is the HMAC of ``data``; compared in constant time."""
    if not isinstance(signature, str) or not _HEX.fullmatch(signature.strip()):
        return False  # compare_digest refuses non-ASCII text: a hostile signature must not raise
    return hmac.compare_digest(sign(data, key, alg), signature.strip().lower())


def load_key(path: Path | str) -> bytes:
    """The key held as hex in ``path``. Errors name the path, never the content."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"exchange key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError):
        raise KeyFileError(f"exchange key file {path} cannot be read as ASCII hex") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"exchange key file {path} does not hold a hex key") from None
    if len(key) < 16:
        raise KeyFileError(f"exchange key in {path} is shorter than 16 bytes")
    return key
