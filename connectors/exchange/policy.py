"""FULL or DELTA: the send policy of ``schemas/exchange/policy.yml``, per dataset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from campusdx.core.settings import SCHEMAS

POLICY_FILE = SCHEMAS / "exchange" / "policy.yml"
_KNOWN = {"full_every_days", "full_after_rejections"}


class PolicyError(ValueError):
    """The policy file is not what it must be; the message names the file and the entry."""


@dataclass(frozen=True)
class Policy:
    """When one dataset goes FULL (see the policy file for the meaning of each field)."""

    full_every_days: int | None = 30
    full_after_rejections: int | None = 2


@dataclass(frozen=True)
class Decision:
    mode: str
    reason: str


def load_policies(path: Path = POLICY_FILE, datasets: set[str] | None = None) -> dict[str, Policy]:
    """Every dataset's policy: its own entries over the defaults."""
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    defaults = _entries(path, "defaults", raw.get("defaults") or {})
    listed = raw.get("datasets") or {}
    unknown = set(listed) - datasets if datasets is not None else set()
    if unknown:
        raise PolicyError(f"{path}: datasets {sorted(unknown)} are not in the profile")
    return {
        code: Policy(**{**defaults, **_entries(path, code, listed.get(code) or {})})
        for code in (datasets if datasets is not None else listed)
    }


def _entries(path: Path, where: str, entries: dict[str, Any]) -> dict[str, Any]:
    unknown = set(entries) - _KNOWN
    if unknown:
        raise PolicyError(f"{path}: {where}: unknown setting(s) {sorted(unknown)} (known: {sorted(_KNOWN)})")
    for name, value in entries.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise PolicyError(
                f"{path}: {where}.{name} must be a positive whole number or null, got {value!r}"
            )
    return entries


def choose_mode(
    policy: Policy,
    *,
    has_state: bool,
    full_requested: str | None,
    rejections_in_a_row: int,
    last_full_at: datetime | None,
    now: datetime,
) -> Decision:
    """FULL with the reason, or DELTA."""
    if not has_state:
        return Decision("FULL", "first package: nothing delivered on record")
    if full_requested is not None:
        return Decision("FULL", f"requested: {full_requested}")
    if policy.full_after_rejections and rejections_in_a_row >= policy.full_after_rejections:
        return Decision("FULL", f"{rejections_in_a_row} packages in a row REJECTED")
    if policy.full_every_days and (
        last_full_at is None or now - last_full_at >= timedelta(days=policy.full_every_days)
    ):
        return Decision("FULL", f"scheduled: no delivered FULL for {policy.full_every_days} days")
    return Decision("DELTA", "changes since the last delivered package")
