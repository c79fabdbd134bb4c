"""The rule catalogue (``expectations/rules.yml``) and the GX suites generated from it.

Field-level rule families (required, code set, format, length, primary key) are expanded for
every field of a dataset from the PX-1.0 declarations; hand-written checks apply to the
datasets they name. Every expectation carries its rule's ID, severity and scope in ``meta``,
so a failure can always be traced to the rule and its "what / why / how to fix" text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from campusdx.core.declarations import Declared, Wording, labelled_items, read_yaml, validate

RULES_FILE = Path(__file__).with_name("rules.yml")


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


Text = Annotated[str, Field(min_length=1)]


class Rule(Declared):
    """One quality rule, an entry of ``rules:`` in rules.yml (a frozen, checked value)."""

    id: Text
    severity: Literal["error", "warning"]
    scope: Literal["row", "dataset"]
    what: Text
    why: Text
    fix: Text
    family: str | None = None
    check: str | None = None
    px_rule: str | None = None
    px_text: str | None = None
    datasets: tuple[str, ...] = ()
    field: str | None = None
    reads: tuple[str, ...] = ()
    when: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, raw: object) -> object:
        """An empty required text counts as absent."""
        required = ("id", "severity", "scope", "what", "why", "fix")
        return {k: v for k, v in raw.items() if k not in required or v} if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _family_or_check(self) -> Rule:
        if bool(self.family) == bool(self.check):
            raise ValueError("needs exactly one of family / check")
        return self

    def applies_to(self, dataset: str) -> bool:
        return not self.datasets or dataset in self.datasets


class RuleCatalogue(Declared):
    """expectations/rules.yml."""

    rules: list[Rule]

    @model_validator(mode="after")
    def _ids_once(self) -> RuleCatalogue:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"a rule ID is used twice: {sorted(ids)}")
        return self


def _label(number: int, raw: object) -> str:
    return f"rule {raw.get('id', '?') if isinstance(raw, dict) else f'#{number}'}"


def load_rules(path: Path = RULES_FILE) -> RuleBook:
    """Read and check the catalogue: unique IDs, known severities and scopes, all three texts."""
    raw = read_yaml(path, ValueError)
    label = labelled_items("rules", raw, _label)
    catalogue = validate(RuleCatalogue, raw, path, ValueError, label=label, wording=_WORDING)
    return RuleBook(tuple(catalogue.rules))


_WORDING = Wording(missing="{where} lacks {key_list}")
