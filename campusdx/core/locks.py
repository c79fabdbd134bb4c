"""Inter-process locks where two runs could meet (STYLE 16): one publisher per dataset, one
extraction per table.

A lock is a file under ``<home>/locks/`` held with :mod:`filelock` (``flock``: released by the
kernel when the holder dies, so a killed run never leaves a lock behind). Once it holds the
lock, the holder writes who it is (pid, host, start time, what it does) to a sidecar
``<name>.holder.json``, so that a run that finds the lock taken can say who holds it.

Names are checked against a strict pattern and never put into a path raw. Within one process
the lock is reentrant: a publish that re-delivers a pending package, or a receipt step that
rebuilds a rejected package, takes the lock it already holds.

A caller chooses how long to wait: an operator's command fails at once (``wait_s=0``); an
Airflow task waits a bounded time (:data:`TASK_WAIT_S`, ``$CAMPUSDX_LOCK_WAIT_S``) and then
fails. Either way the error says "another <what> is running (pid …)".
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from campusdx.core import atomic, settings

LOCK_WAIT_ENV = "CAMPUSDX_LOCK_WAIT_S"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}\Z")
_held = threading.local()


class Busy(RuntimeError):
    """Another run holds the lock; the message names what it does and its pid."""


def task_wait_s() -> float:
    """How long an Airflow task waits for a lock: ``$CAMPUSDX_LOCK_WAIT_S`` (default 600 s)."""
    return settings.current().lock_wait_s


def check_name(name: str) -> str:
    """``name`` when it is letters, digits, ``_`` and ``-`` (it names a file); else ValueError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{name!r} cannot name a lock: letters, digits, '_' and '-' only")
    return name


def lock_path(locks: Path, kind: str, *names: str) -> Path:
    """``<locks>/<kind>-<name>[.<name>…].lock``, every part checked."""
    return Path(locks) / f"{check_name(kind)}-{'.'.join(check_name(n) for n in names)}.lock"


def holder(path: Path) -> dict | None:
    """Who holds the lock at ``path``, as its holder wrote it (None when unknown)."""
    try:
        return json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def hold(path: Path, what: str, *, wait_s: float) -> Iterator[None]:
    """Hold the lock at ``path`` for ``what`` ("publish of XSJBXX"), waiting up to ``wait_s``
    seconds (0: fail at once); raises :class:`Busy` naming the holder."""
    path = Path(path)
    counts = _held.__dict__.setdefault("counts", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if counts.get(key):  # this thread holds it already
        counts[key] += 1
        try:
            yield
        finally:
            counts[key] -= 1
        return
    lock = FileLock(path, timeout=wait_s)
    try:
        lock.acquire(timeout=wait_s, poll_interval=0.05)
    except Timeout:
        who = holder(path)
        for _ in range(20):  # the holder writes who it is just after it took the lock
            if who is not None:
                break
            time.sleep(0.05)
            who = holder(path)
        raise Busy(f"another {what} is running ({_describe(who)})") from None
    counts[key] = 1
    try:
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "what": what,
        }
        # who holds it matters only while it is held (a crash releases the lock): not fsynced
        atomic.write_bytes(_sidecar(path), json.dumps(me).encode("utf-8"), durable=False)
        yield
    finally:
        counts.pop(key, None)
        _sidecar(path).unlink(missing_ok=True)
        lock.release()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".lock") + ".holder.json")


def _describe(who: dict | None) -> str:
    if not who:
        return "pid unknown: the holder has not said who it is yet"
    return f"pid {who.get('pid')} on {who.get('host')}, since {who.get('started_at')}"
