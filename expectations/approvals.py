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
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, field_validator, model_validator

from campusdx.core.declarations import Declared, Wording, labelled_items, read_yaml, validate
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


def _date(value: object) -> object:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _share(share: float) -> float:
    if not 0 <= share <= 1:
        raise ValueError(f"{share} is not a share of rows between 0 and 1")
    return share


Day = Annotated[date, BeforeValidator(_date)]
Text = Annotated[str, BeforeValidator(str)]


class ApprovalSchema(Declared):
    """One entry of ``approvals:`` (every key required but ``dataset``)."""

    id: Text
    rule: Text
    max_share: Annotated[float, AfterValidator(_share)]
    approved_by: Text
    approved_on: Day
    valid_until: Day
    reason: Annotated[str, BeforeValidator(lambda v: str(v).strip())]
    dataset: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, raw: object) -> object:
        """A required key that is null or empty counts as absent."""
        return (
            {k: v for k, v in raw.items() if k not in REQUIRED or v not in (None, "")}
            if isinstance(raw, dict)
            else raw
        )

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, rule: str, info: ValidationInfo) -> str:
        rule_ids = (info.context or {}).get("rule_ids")
        if rule_ids is not None and rule != "*" and rule not in rule_ids:
            raise ValueError(f"{rule!r} is not in expectations/rules.yml")
        return rule

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, dataset: str | None, info: ValidationInfo) -> str | None:
        datasets = (info.context or {}).get("datasets")
        if datasets is not None and dataset and dataset not in datasets:
            raise ValueError(f"{dataset!r} is not in the profile")
        return dataset

    @model_validator(mode="after")
    def _in_order(self) -> ApprovalSchema:
        if self.valid_until < self.approved_on:
            raise ValueError(f"valid_until {self.valid_until} is before approved_on")
        return self


class ApprovalsFile(Declared):
    """``schemas/quality/approvals.yml``."""

    approvals: list[ApprovalSchema] | None = None

    @model_validator(mode="after")
    def _ids_once(self) -> ApprovalsFile:
        ids = [a.id for a in self.approvals or []]
        if len(set(ids)) != len(ids):
            raise ValueError("an approval id is used twice")
        return self


def _label(number: int, raw: object) -> str:
    return f"approval {raw.get('id', f'#{number}') if isinstance(raw, dict) else f'#{number}'}"


_WORDING = Wording(missing="{where} lacks {key_list}", unknown="{where} has unknown keys {key_list}")


def load_approvals(
    path: Path = APPROVALS_FILE, *, rule_ids: set[str] | None = None, datasets: set[str] | None = None
) -> tuple[Approval, ...]:
    """Read and check the approvals: every field there, known rule and dataset, a share in [0, 1]."""
    if not path.exists():
        return ()
    raw = read_yaml(path, ValueError) or {}
    document = validate(
        ApprovalsFile,
        raw,
        path,
        ValueError,
        label=labelled_items("approvals", raw, _label),
        wording=_WORDING,
        context={"rule_ids": rule_ids, "datasets": datasets},
    )
    return tuple(Approval(**entry.model_dump()) for entry in document.approvals or [])


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
