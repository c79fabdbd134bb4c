"""The shared datasets the sharing service serves, read from ``schemas/sharing/datasets.yml``.

Every SQL identifier the service ever writes (relations, columns, code tables) comes from here,
checked against a strict pattern when the declaration is read; values from requests never become
identifiers. Each dataset's approver is the steward department of the source system declared
authoritative for it (``schemas/sources/<system>.yml``): 一数一源.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from campusdx.core.declarations import (
    DeclarationError,
    Declared,
    Steward,
    labelled_items,
    load_systems,
    read_yaml,
    validate,
)
from campusdx.core.settings import SCHEMAS

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Relation = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$")]

DECLARATION = SCHEMAS / "sharing" / "datasets.yml"


class FieldDecl(Declared):
    """One served field."""

    name: Identifier
    title: str
    code_set: Identifier | None = None
    personal: Literal["name", "id_number", "year", "phone"] | None = None
    filter: bool = False


class HistoryDecl(Declared):
    """The SCD2 columns of a dataset kept with history (one row per key per version)."""

    valid_from: Identifier
    valid_to: Identifier
    current: Identifier


class DatasetDecl(Declared):
    """One shared dataset."""

    name: Identifier
    title: str
    relation: Relation
    system: str
    key: Identifier
    scope: Identifier | None = None
    """The column holding the 单位号 a row belongs to: grants and department users are scoped by it."""
    changes: Identifier | None = None
    """A sortable column that grows whenever a row changes (the landing batch id)."""
    history: HistoryDecl | None = None
    fields: list[FieldDecl]
    steward: Steward | None = None
    """Filled from the source system's declaration."""

    @model_validator(mode="after")
    def _consistent(self) -> DatasetDecl:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"a field is declared twice: {names}")
        if self.key not in names:
            raise ValueError(f"the key {self.key!r} is not one of the fields")
        if self.scope is not None and self.scope not in names:
            raise ValueError(f"the scope column {self.scope!r} is not one of the fields")
        if self.field(self.key).personal:
            raise ValueError(f"the key {self.key!r} may not be a personal field")
        filtered = [f.name for f in self.fields if f.filter and f.personal]
        if filtered:
            raise ValueError(f"a personal field may not be a filter: {filtered}")
        return self

    def field(self, name: str) -> FieldDecl:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def personal_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.personal]

    @property
    def open_fields(self) -> list[str]:
        """The fields that are not personal: what a grant of "every field" covers."""
        return [f.name for f in self.fields if not f.personal]


class CatalogSchema(Declared):
    datasets: list[DatasetDecl]


def _label(number: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"dataset {name!r}" if isinstance(name, str) else f"dataset entry {number}"


def load(path: Path = DECLARATION) -> dict[str, DatasetDecl]:
    """Every declared dataset by name, each with its steward department."""
    raw = read_yaml(path) or {}
    decl = validate(CatalogSchema, raw, path, label=labelled_items("datasets", raw, _label))
    systems = {s.system: s for s in load_systems()}
    out: dict[str, DatasetDecl] = {}
    for ds in decl.datasets:
        system = systems.get(ds.system)
        if system is None:
            raise DeclarationError(f"{path}: dataset {ds.name!r}: no source system {ds.system!r}")
        if system.steward is None:
            raise DeclarationError(
                f"{path}: dataset {ds.name!r}: schemas/sources/{ds.system}.yml declares no steward"
            )
        if ds.name in out:
            raise DeclarationError(f"{path}: dataset {ds.name!r} is declared twice")
        out[ds.name] = ds.model_copy(update={"steward": system.steward})
    return out


@cache
def datasets() -> dict[str, DatasetDecl]:
    """The shipped declaration, read once per process."""
    return load()
