"""The demo's exchange key: on the embedded default the simulated province issues it.

A real deployment gets its key from the province and points ``CAMPUSDX_PX_KEY_FILE`` at it (or
puts it at ``<home>/secrets/px-hmac.key``); the publisher never makes one up. The demo's set-up
(``campusdx demo``, ``campusdx generate``, the simulated province) calls :func:`ensure_demo_key`.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from campusdx.core import atomic
from campusdx.core.settings import Paths

log = logging.getLogger(__name__)


def demo_key_file(paths: Paths) -> Path:
    """Where the demo key lives: the home's default key file."""
    return paths.secrets / "px-hmac.key"


def ensure_demo_key(path: Path | str) -> bytes:
    """The demo key in ``path``, created (32 random bytes as hex, mode 0600) when missing.

    Processes racing to create it all read the one that won (:func:`campusdx.core.atomic.create_new`
    links a complete file into place)."""
    path = Path(path)
    if not path.exists() and atomic.create_new(path, (secrets.token_hex(32) + "\n").encode("ascii")):
        log.info("created demo exchange key file %s", path)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())
