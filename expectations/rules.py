"""The rule catalogue (``expectations/rules.yml``) and the GX suites generated from it.

Field-level rule families (required, code set, format, length, primary key) are expanded for
every field of a dataset from the PX-1.0 declarations; hand-written checks apply to the
datasets they name. Every expectation carries its rule's ID, severity and scope in ``meta``,
so a failure can always be traced to the rule and its "what / why / how to fix" text.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import yaml

RULES_FILE = Path(__file__).with_name("rules.yml")


@dataclass(frozen=True)
class Rule:
    """One quality rule as declared in rules.yml."""

    id: str
    severity: str
    scope: str
    what: str
    why: str
    fix: str
    family: str | None = None
    check: str | None = None
    px_rule: str | None = None
    px_text: str | None = None
    datasets: tuple[str, ...] = ()
    field: str | None = None
    reads: tuple[str, ...] = ()
    when: dict = dataclass_field(default_factory=dict)

    def applies_to(self, dataset: str) -> bool:
        return not self.datasets or dataset in self.datasets


@dataclass(frozen=True)
class RuleBook:
    """All rules of the catalogue (tolerances are approvals: expectations/approvals.py)."""

    rules: tuple[Rule, ...]

    def family(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.family == name:
                return rule
        raise KeyError(f"rules.yml declares no rule for the {name!r} family")

    def by_id(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"rules.yml has no rule {rule_id!r}")


def load_rules(path: Path = RULES_FILE) -> RuleBook:
    """Read and check the catalogue: unique IDs, known severities and scopes, all three texts."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for entry in raw["rules"]:
        missing = [k for k in ("id", "severity", "scope", "what", "why", "fix") if not entry.get(k)]
        if missing:
            raise ValueError(f"{path}: rule {entry.get('id', '?')} lacks {missing}")
        if entry["severity"] not in ("error", "warning") or entry["scope"] not in ("row", "dataset"):
            raise ValueError(f"{path}: rule {entry['id']} has an unknown severity or scope")
        if bool(entry.get("family")) == bool(entry.get("check")):
            raise ValueError(f"{path}: rule {entry['id']} needs exactly one of family / check")
        entry = {
            **entry,
            "datasets": tuple(entry.get("datasets", ())),
            "reads": tuple(entry.get("reads", ())),
            "when": entry.get("when") or {},
        }
        rules.append(Rule(**entry))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: a rule ID is used twice: {sorted(ids)}")
    return RuleBook(rules=tuple(rules))
