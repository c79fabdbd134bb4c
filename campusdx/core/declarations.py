"""Source-system declarations: ``schemas/sources/<system>.yml`` read into typed objects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from campusdx.core.settings import SCHEMAS

DELETE_MODES = ("none", "key_snapshot")


class DeclarationError(ValueError):
    """A source declaration is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class TableDecl:
    """One table to extract: its key and the column that tells what changed."""

    name: str
    primary_key: tuple[str, ...]
    cursor: str | None = None
    description: str = ""
    enabled: bool = True
    lookback: float = 0
    """How far behind the watermark to read again (seconds for a time cursor, units for an id)."""
    deletes: str = "none"
    """How deleted rows are found: ``key_snapshot`` (compare all keys with the previous run) or ``none``."""
    snapshot_every_hours: float = 0
    """With ``key_snapshot``: take it when the last one is at least this old (0: every run)."""


@dataclass(frozen=True)
class SystemDecl:
    """One source system: how to reach it and which tables to take."""

    system: str
    title: str
    airflow_conn_id: str | None
    default_url: str
    tables: tuple[TableDecl, ...]
    path: Path
    authoritative_for: tuple[str, ...] = ()
    """The PX datasets whose rows come from this system (一数一源: one system per dataset)."""

    @property
    def enabled_tables(self) -> tuple[TableDecl, ...]:
        return tuple(t for t in self.tables if t.enabled)

    def table(self, name: str) -> TableDecl:
        for t in self.tables:
            if t.name == name:
                return t
        raise DeclarationError(f"{self.path}: system {self.system!r} declares no table {name!r}")

    def env_url_var(self) -> str:
        """Environment variable that overrides the URL, e.g. ``CAMPUSDX_SOURCE_HR_URL``."""
        return f"CAMPUSDX_SOURCE_{self.system.upper()}_URL"

    def url(self, home: Path) -> str:
        """The URL from the environment, else the embedded default under ``home``."""
        return os.environ.get(self.env_url_var()) or self.default_url.format(home=home)


def _table(path: Path, raw: dict) -> TableDecl:
    try:
        name = raw["name"]
        key = raw["primary_key"]
    except KeyError as missing:
        raise DeclarationError(f"{path}: a table entry lacks {missing}: {raw!r}") from None
    if isinstance(key, str):
        key = [key]
    if not key:
        raise DeclarationError(f"{path}: table {name!r} has an empty primary_key")
    deletes = raw.get("deletes", "none")
    if deletes not in DELETE_MODES:
        raise DeclarationError(
            f"{path}: table {name!r}: deletes must be one of {DELETE_MODES}, not {deletes!r}"
        )
    numbers = {}
    for option in ("lookback", "snapshot_every_hours"):
        try:
            numbers[option] = float(raw.get(option, 0))
        except (TypeError, ValueError):
            raise DeclarationError(f"{path}: table {name!r}: {option} must be a number") from None
        if numbers[option] < 0:
            raise DeclarationError(f"{path}: table {name!r}: {option} must not be negative")
    return TableDecl(
        name=name,
        primary_key=tuple(key),
        cursor=raw.get("cursor"),
        description=raw.get("description", ""),
        enabled=bool(raw.get("enabled", True)),
        lookback=numbers["lookback"],
        deletes=deletes,
        snapshot_every_hours=numbers["snapshot_every_hours"],
    )


def load_system(path: Path) -> SystemDecl:
    """Read one declaration file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DeclarationError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    for required in ("system", "connection", "tables"):
        if required not in raw:
            raise DeclarationError(f"{path}: missing top-level key {required!r}")
    conn = raw["connection"]
    if "default_url" not in conn:
        raise DeclarationError(f"{path}: connection.default_url is required")
    tables = tuple(_table(path, t) for t in raw["tables"])
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise DeclarationError(f"{path}: a table is declared twice: {names}")
    return SystemDecl(
        system=raw["system"],
        title=raw.get("title", raw["system"]),
        airflow_conn_id=conn.get("airflow_conn_id"),
        default_url=conn["default_url"],
        tables=tables,
        path=path,
        authoritative_for=tuple(raw.get("authoritative_for") or ()),
    )


def load_systems(directory: Path | None = None) -> list[SystemDecl]:
    """Every system declared under ``schemas/sources/``, in file-name order."""
    directory = directory or SCHEMAS / "sources"
    systems = [load_system(p) for p in sorted(directory.glob("*.yml"))]
    owners: dict[str, SystemDecl] = {}
    for decl in systems:
        for dataset in decl.authoritative_for:
            if dataset in owners:  # 一数一源: a second authority for one dataset is a declaration error
                raise DeclarationError(
                    f"{decl.path}: authoritative_for: {dataset} is already declared by "
                    f"{owners[dataset].path.name} (one source system per dataset)"
                )
            owners[dataset] = decl
    return systems


def source_system_of(dataset: str, systems: list[SystemDecl] | None = None) -> str | None:
    """The system authoritative for a PX dataset (its ``authoritative_for``), or None."""
    for decl in systems if systems is not None else load_systems():
        if dataset in decl.authoritative_for:
            return decl.system
    return None
