"""FULL or DELTA: the send policy of ``schemas/exchange/policy.yml``, per dataset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from campusdx.core.declarations import Declared, Wording, read_yaml, validate
from campusdx.core.settings import SCHEMAS

POLICY_FILE = SCHEMAS / "exchange" / "policy.yml"


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


PositiveOrNull = Annotated[int | None, Field(strict=True, gt=0)]


class PolicySettings(Declared):
    """The settings of ``defaults:`` or of one dataset; a setting left out is not set."""

    full_every_days: PositiveOrNull = None
    full_after_rejections: PositiveOrNull = None


class PolicyFile(Declared):
    """``schemas/exchange/policy.yml``."""

    defaults: PolicySettings | None = None
    datasets: dict[str, PolicySettings | None] | None = None


_POSITIVE = "must be a positive whole number or null, got {value}"
_WORDING = Wording(
    unknown="{where}: unknown setting(s) {key_list} (known: {known})",
    problems={"int_type": _POSITIVE, "greater_than": _POSITIVE},
)


def load_policies(path: Path = POLICY_FILE, datasets: set[str] | None = None) -> dict[str, Policy]:
    """Every dataset's policy: its own entries over the defaults."""
    raw = read_yaml(path, PolicyError) or {}
    document = validate(PolicyFile, raw, path, PolicyError, wording=_WORDING)
    defaults = _set(document.defaults)
    listed = document.datasets or {}
    unknown = set(listed) - datasets if datasets is not None else set()
    if unknown:
        raise PolicyError(f"{path}: datasets {sorted(unknown)} are not in the profile")
    return {
        code: Policy(**{**defaults, **_set(listed.get(code))})
        for code in (datasets if datasets is not None else listed)
    }


def _set(settings: PolicySettings | None) -> dict[str, Any]:
    return settings.model_dump(exclude_unset=True) if settings else {}


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
    if full_requested is not None:
        return Decision("FULL", f"requested: {full_requested}")
    if not has_state:
        return Decision("FULL", "first package: nothing delivered on record")
    if policy.full_after_rejections and rejections_in_a_row >= policy.full_after_rejections:
        return Decision("FULL", f"{rejections_in_a_row} packages in a row REJECTED")
    if policy.full_every_days and (
        last_full_at is None or now - last_full_at >= timedelta(days=policy.full_every_days)
    ):
        return Decision("FULL", f"scheduled: no delivered FULL for {policy.full_every_days} days")
    return Decision("DELTA", "changes since the last delivered package")
