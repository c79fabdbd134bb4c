"""Tolerances of the quality gate, each an approval on record (``schemas/quality/approvals.yml``).

Without an approval a rule tolerates nothing: one failing row of an error rule blocks its
dataset's publish. An approval lets a rule fail on up to ``max_share`` of a dataset's rows (the
failing rows are still held back in the quarantine; the rest of the dataset is sent). It states
who approved it, why, and until when; from the day after ``valid_until`` it no longer applies,
by itself. The most specific approval in force wins: rule and dataset, then rule, then dataset,
then ``rule: "*"`` (a standing policy for every row rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from campusdx.core.settings import SCHEMAS

APPROVALS_FILE = SCHEMAS / "quality" / "approvals.yml"
REQUIRED = ("id", "rule", "max_share", "approved_by", "approved_on", "valid_until", "reason")


@dataclass(frozen=True)
class Approval:
    """One approved tolerance."""

    id: str
    rule: str
    max_share: float
    approved_by: str
    approved_on: date
    valid_until: date
    reason: str
    dataset: str | None = None

    def in_force(self, on: date) -> bool:
        return self.approved_on <= on <= self.valid_until

    def matches(self, rule_id: str, dataset: str) -> bool:
        return self.rule in (rule_id, "*") and self.dataset in (None, dataset)

    @property
    def specificity(self) -> int:
        return (self.rule != "*") * 2 + (self.dataset is not None)


@dataclass(frozen=True)
class Tolerance:
    """What a rule may fail on one dataset on one day, and on whose approval."""

    max_share: float
    approval: Approval | None = None
    expired: Approval | None = None  # the approval that would apply, had it not expired

    def describe(self) -> str:
        if self.approval:
            return f"{self.max_share:.1%} (approval {self.approval.id}, until {self.approval.valid_until})"
        if self.expired:
            return f"0 (approval {self.expired.id} expired on {self.expired.valid_until})"
        return "0 (no approval)"


def _date(value, where: str, key: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


def load_approvals(
    path: Path = APPROVALS_FILE, *, rule_ids: set[str] | None = None, datasets: set[str] | None = None
) -> tuple[Approval, ...]:
    """Read and check the approvals: every field there, known rule and dataset, a share in [0, 1]."""
    if not path.exists():
        return ()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    approvals = []
    for n, entry in enumerate(raw.get("approvals") or [], start=1):
        where = f"{path}: approval {entry.get('id', f'#{n}')}"
        missing = [k for k in REQUIRED if entry.get(k) in (None, "")]
        if missing:
            raise ValueError(f"{where} lacks {missing}")
        unknown = set(entry) - {*REQUIRED, "dataset"}
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}")
        if rule_ids is not None and entry["rule"] != "*" and entry["rule"] not in rule_ids:
            raise ValueError(f"{where}: rule {entry['rule']!r} is not in expectations/rules.yml")
        if datasets is not None and entry.get("dataset") and entry["dataset"] not in datasets:
            raise ValueError(f"{where}: dataset {entry['dataset']!r} is not in the profile")
        share = float(entry["max_share"])
        if not 0 <= share <= 1:
            raise ValueError(f"{where}: max_share {share} is not a share of rows between 0 and 1")
        approval = Approval(
            id=str(entry["id"]),
            rule=str(entry["rule"]),
            max_share=share,
            approved_by=str(entry["approved_by"]),
            approved_on=_date(entry["approved_on"], where, "approved_on"),
            valid_until=_date(entry["valid_until"], where, "valid_until"),
            reason=str(entry["reason"]).strip(),
            dataset=entry.get("dataset"),
        )
        if approval.valid_until < approval.approved_on:
            raise ValueError(f"{where}: valid_until {approval.valid_until} is before approved_on")
        approvals.append(approval)
    ids = [a.id for a in approvals]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: an approval id is used twice")
    return tuple(approvals)


def tolerance(approvals: tuple[Approval, ...], rule_id: str, dataset: str, on: date) -> Tolerance:
    """The tolerance of ``rule_id`` on ``dataset`` on the day ``on``."""
    matching = sorted(
        (a for a in approvals if a.matches(rule_id, dataset)), key=lambda a: a.specificity, reverse=True
    )
    for approval in matching:
        if approval.in_force(on):
            return Tolerance(approval.max_share, approval)
    expired = next((a for a in matching if a.valid_until < on), None)
    return Tolerance(0.0, expired=expired)
