"""Source-system declarations: ``schemas/sources/<system>.yml`` read into typed objects.

Every YAML declaration of the platform (source systems and their files, the send policy, the rule
catalogue, the approvals, the code-set registry, the PX profile) is checked by a pydantic model:
unknown keys are errors (``extra="forbid"``), types and constraints are declared on the fields.
:func:`validate` runs a model and turns a :class:`pydantic.ValidationError` into the loader's own
error, worded ``<file>: <entry>: <key> <problem>`` (:func:`describe`), so a message still names the
file, the entry and the key.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from campusdx.core import settings
from campusdx.core.settings import SCHEMAS

DELETE_MODES = ("none", "key_snapshot")


class DeclarationError(ValueError):
    """A source declaration is malformed; the message names the file and the entry."""


# -- validating declarations ----------------------------------------------------------------


class Declared(BaseModel):
    """Base of the declaration models: an unknown key is an error; a model is a checked value."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Wording:
    """How :func:`describe` words each kind of problem (a loader keeps its messages' wording).

    Placeholders: ``where`` (file, entry and the path down to the problem), ``key`` (the key with
    the problem), ``problem``, ``value`` (repr of the value), ``keys`` (``'a', 'b'``), ``key_list``
    (``['a', 'b']``), ``names`` (``a, b``) and ``known`` (the keys the model knows).
    """

    key: str = "{where}: {key} {problem}"
    whole: str = "{where}: {problem}"
    missing: str = "{where} lacks {keys}"
    unknown: str = "{where}: unknown key(s) {key_list}; known keys: {known}"
    problems: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The problem per pydantic error type (e.g. ``int_type``), instead of pydantic's own words."""


Labeller = Callable[[tuple[Any, ...]], tuple[str | None, tuple[Any, ...]]]
"""Maps an error's location to (the entry's label, the location left inside the entry)."""


def _no_label(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    return None, loc


def labelled_items(key: str, raw: object, label: Callable[[Any, object], str]) -> Labeller:
    """A labeller for the entries of ``raw[key]``: ``label(number from 1, entry)`` for a list,
    ``label(key, entry)`` for a mapping."""
    items = raw.get(key) if isinstance(raw, dict) else None

    def labeller(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
        if len(loc) >= 2 and loc[0] == key:
            if isinstance(items, list) and isinstance(loc[1], int) and loc[1] < len(items):
                return label(loc[1] + 1, items[loc[1]]), loc[2:]
            if isinstance(items, dict) and loc[1] in items:
                return label(loc[1], items[loc[1]]), loc[2:]
        return None, loc

    return labeller


def _path(loc: Iterable[Any]) -> str:
    return ".".join(f"#{part + 1}" if isinstance(part, int) else str(part) for part in loc)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("value_error", "assertion_error"):
        return str(error["ctx"]["error"])
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping, not {_short(error['input'])}"
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}, not {_short(error['input'])}"
    if kind in ("too_short", "string_too_short") and error["ctx"].get("min_length") == 1:
        return "must not be empty"
    text = re.sub(r"^(Input|String|List|Value|Dictionary|Tuple|Set|Object) should", "must", error["msg"])
    text = text.replace(" after validation", "")
    return text if kind in ("too_short", "too_long") else f"{text}, not {_short(error['input'])}"


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None`` and ``Annotated[X, ...]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _known(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys known to the model of the mapping at ``loc`` (walking down from ``model``)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        elif typing.get_origin(current) in (list, tuple, dict):
            current = typing.get_args(current)[-1]  # an item of a list, a value of a dict
        else:
            return []
    current = _unwrap(current)
    return (
        sorted(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []
    )


def describe(
    error: ValidationError,
    file: object,
    *,
    label: Labeller = _no_label,
    wording: Wording = Wording(),
    model: type[BaseModel] | None = None,
) -> str:
    """Every problem of ``error`` (:func:`problems`), joined by ``; ``."""
    return "; ".join(problems(error, file, label=label, wording=wording, model=model))


def problems(
    error: ValidationError,
    file: object,
    *,
    label: Labeller = _no_label,
    wording: Wording = Wording(),
    model: type[BaseModel] | None = None,
) -> list[str]:
    """Every problem of ``error``, each as ``<file>: <entry>: <key> <problem>``.

    ``label`` names the entry a location is in; ``wording`` words the problems; ``model`` (the
    model validated) lets an unknown key's message list the known ones. The missing keys of one
    mapping are named together, and so are its unknown keys.
    """
    lines: list[str | tuple[str, str, tuple[Any, ...]]] = []
    grouped: dict[tuple[str, str, tuple[Any, ...]], list[str]] = {}
    for err in error.errors():
        loc = tuple(err["loc"])
        entry, inner = label(loc)
        where = ": ".join(str(p) for p in (file, entry) if p is not None)
        if err["type"] in ("missing", "extra_forbidden") and inner:
            group = (err["type"], f"{where}: {_path(inner[:-1])}" if inner[:-1] else where, loc[:-1])
            if group not in grouped:
                lines.append(group)
            grouped.setdefault(group, []).append(str(inner[-1]))
            continue
        value = _short(err["input"])
        problem = (
            wording.problems[err["type"]].format(value=value) if err["type"] in wording.problems else None
        )
        words = {"where": where, "key": _path(inner), "problem": problem or _problem(err), "value": value}
        lines.append((wording.key if inner else wording.whole).format(**words))
    return [line if isinstance(line, str) else _group(line, grouped[line], wording, model) for line in lines]


def _group(group: tuple[str, str, tuple[Any, ...]], keys: list[str], wording: Wording, model) -> str:
    kind, where, loc = group
    words = {
        "where": where,
        "keys": ", ".join(repr(k) for k in keys),
        "key_list": repr(keys),
        "names": ", ".join(keys),
        "known": _known(model, loc),
    }
    return (wording.missing if kind == "missing" else wording.unknown).format(**words)


M = TypeVar("M", bound=BaseModel)


def validate(
    model: type[M],
    data: object,
    file: object,
    error: type[Exception] = DeclarationError,
    *,
    label: Labeller = _no_label,
    wording: Wording = Wording(),
    context: dict[str, Any] | None = None,
) -> M:
    """``data`` checked by ``model``; a problem raises ``error`` worded by :func:`describe`."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise error(describe(exc, file, label=label, wording=wording, model=model)) from None


def read_yaml(path: Path, error: type[Exception] = DeclarationError) -> Any:
    """The YAML document of ``path`` (None when empty); a syntax error raises ``error``."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None


# -- source systems ---------------------------------------------------------------------------


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
    steward: Steward | None = None
    """The department answering for the system's data: it approves grants of the sharing service."""

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
        return settings.source_url_var(self.system)

    def url(self, home: Path) -> str:
        """The URL from the environment, else the embedded default under ``home``."""
        return settings.current().source_url(self.system) or self.default_url.format(home=home)


def as_list(value: object) -> object:
    """A single name stands for a list of one."""
    return [value] if isinstance(value, str) else value


Names = Annotated[list[str], BeforeValidator(as_list), Field(min_length=1)]
NonNegative = Annotated[float, Field(ge=0)]


class TableSchema(Declared):
    """A ``tables:`` entry of a system declaration."""

    name: str
    primary_key: Names
    cursor: str | None = None
    description: str = ""
    enabled: bool = True
    lookback: NonNegative = 0
    deletes: Literal["none", "key_snapshot"] = "none"
    snapshot_every_hours: NonNegative = 0


class ConnectionSchema(Declared):
    """How to reach the system when no Airflow connection or environment variable says otherwise."""

    airflow_conn_id: str | None = None
    default_url: str


class Steward(Declared):
    """The department that answers for a system's data (its 单位号 in the organisation tree)."""

    org_id: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,16}$")]
    name: str


class SystemSchema(Declared):
    """One ``schemas/sources/<system>.yml``."""

    system: str
    title: str | None = None
    authoritative_for: list[str] | None = None
    steward: Steward | None = None
    connection: ConnectionSchema
    tables: list[TableSchema]
    files: Any = None
    """The system's export files: checked by ``campusdx.sources.files.load_file_decls``."""

    @model_validator(mode="after")
    def _tables_once(self) -> SystemSchema:
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError(f"a table is declared twice: {names}")
        return self


def _table_label(number: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"table {name!r}" if isinstance(name, str) else f"table entry {number}"


def load_system(path: Path) -> SystemDecl:
    """Read one declaration file."""
    raw = read_yaml(path) or {}
    decl = validate(SystemSchema, raw, path, label=labelled_items("tables", raw, _table_label))
    return SystemDecl(
        system=decl.system,
        title=decl.title if decl.title is not None else decl.system,
        airflow_conn_id=decl.connection.airflow_conn_id,
        default_url=decl.connection.default_url,
        tables=tuple(
            TableDecl(**{**t.model_dump(), "primary_key": tuple(t.primary_key)}) for t in decl.tables
        ),
        path=path,
        authoritative_for=tuple(decl.authoritative_for or ()),
        steward=decl.steward,
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
