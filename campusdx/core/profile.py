"""The PX interface profile as typed, frozen objects.

``schemas/exchange/<profile>/datasets.yaml`` (the province's own file, copied byte for byte) and
``profile.yml`` (everything else the profile fixes, plus this school's settings) are read into one
:class:`Profile`. Code that builds, checks or receives packages asks the profile instead of
hard-coding names, so another province's variant is a data edit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from campusdx.core.declarations import Declared, labelled_items, validate
from campusdx.core.settings import SCHEMAS

PROFILE_DIR = SCHEMAS / "exchange" / "px-1.0"
"""Directory of the profile the school follows."""

_TYPE_RE = re.compile(r"(?P<kind>string|decimal|date|datetime|integer)(?:\((?P<args>[0-9, ]+)\))?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DECIMAL_RE = re.compile(r"-?(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
_INTEGER_RE = re.compile(r"-?[0-9]+")


class ProfileError(ValueError):
    """The profile files are malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class FieldType:
    """A PX value type: ``string(n)``, ``date``, ``datetime``, ``decimal(p,s)`` or ``integer``."""

    kind: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def parse(cls, text: str) -> FieldType:
        """Read a type as written in datasets.yaml, e.g. ``decimal(18,2)``."""
        m = _TYPE_RE.fullmatch(str(text).strip())
        if not m:
            raise ValueError(f"unknown type {text!r}")
        kind = m["kind"]
        args = [int(a) for a in m["args"].split(",")] if m["args"] else []
        if kind == "string" and len(args) == 1:
            return cls(kind, length=args[0])
        if kind == "decimal" and len(args) == 2 and args[1] <= args[0]:
            return cls(kind, precision=args[0], scale=args[1])
        if kind in ("date", "datetime", "integer") and not args:
            return cls(kind)
        raise ValueError(f"bad arguments in type {text!r}")

    def too_long(self, value: str) -> bool:
        """True when a string is longer than its length (characters, not bytes) (PX-E015)."""
        return self.length is not None and len(value) > self.length

    def format_error(self, value: str) -> str | None:
        """Why a non-empty value does not match this type's format (PX-E012), or None."""
        if self.kind == "date":
            return None if parse_px_date(value) else "not a date YYYY-MM-DD"
        if self.kind == "datetime":
            return None if _valid_datetime(value) else "not a datetime YYYY-MM-DD HH:MM:SS"
        if self.kind == "integer":
            return None if _INTEGER_RE.fullmatch(value) else "not an integer (plain digits)"
        if self.kind == "decimal":
            return self._decimal_error(value)
        return None

    def _decimal_error(self, value: str) -> str | None:
        m = _DECIMAL_RE.fullmatch(value)
        if not m:
            return f"not a decimal({self.precision},{self.scale}) (plain digits, '.', '-')"
        if len(m["frac"] or "") > self.scale:
            return f"more than {self.scale} decimals"
        if len(m["int"].lstrip("0")) > self.precision - self.scale:
            return f"more than {self.precision - self.scale} integer digits"
        return None


def parse_px_date(value: str) -> date | None:
    """The date a PX ``date`` value (``YYYY-MM-DD``) names, or None when it is not one."""
    if not _DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_px_decimal(value: str) -> Decimal | None:
    """The number a PX ``decimal``/``integer`` value names (plain digits, '.', '-'), or None."""
    return Decimal(value) if _DECIMAL_RE.fullmatch(value) else None


def _valid_datetime(value: str) -> bool:
    if not _DATETIME_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)  # the pattern fixed the shape; this checks the calendar
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Field:
    """One column of a dataset, in file order."""

    code: str
    name: str
    type: FieldType
    required: bool
    code_set: str | None = None


@dataclass(frozen=True)
class Reference:
    """A field that must name an existing ``dataset.field`` on the platform (PX-E016)."""

    dataset: str
    field: str


@dataclass(frozen=True)
class CodeSet:
    """A code set: inline codes (profile sets) or only a standard's name (national sets).

    ``format``, ``prefix`` and ``suffixes`` come from profile.yml: how a value is matched when the
    set is a list of codes held elsewhere, and what a code looks like when the list is missing.
    """

    id: str
    name: str = ""
    standard: str = ""
    note: str = ""
    codes: Mapping[str, str] | None = None
    format: str | None = None
    prefix: int | None = None
    suffixes: tuple[str, ...] = ()

    def normalize(self, value: str) -> str:
        """The part of a value (or of a listed code) that identifies the code.

        KJKM compares the first 4 characters of KMDM; ZYDM compares the 6 digits with or without
        the K/T suffix, so ``080901`` and ``080901K`` name the same major.
        """
        return _normalize_code(value, self.prefix, self.suffixes)

    def matches(self, value: str, codes: Iterable[str]) -> bool:
        """True when ``value`` names one of ``codes`` (both normalized; cached per frozenset)."""
        return self.normalize(value) in _normalized_codes(frozenset(codes), self.prefix, self.suffixes)

    def format_ok(self, value: str) -> bool:
        """True when ``value`` looks like a code of this set (always True without a format)."""
        return self.format is None or re.fullmatch(self.format, value) is not None


def _normalize_code(value: str, prefix: int | None, suffixes: tuple[str, ...]) -> str:
    key = value[:prefix] if prefix else value
    return key[:-1] if suffixes and key[-1:] in suffixes else key


@functools.lru_cache(maxsize=64)
def _normalized_codes(codes: frozenset[str], prefix: int | None, suffixes: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_normalize_code(c, prefix, suffixes) for c in codes)


@dataclass(frozen=True)
class Dataset:
    """One PX dataset: its fields in file order, key, references and plain-words rules."""

    code: str
    name: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    references: Mapping[str, Reference]
    rules: tuple[str, ...]

    @property
    def field_codes(self) -> tuple[str, ...]:
        """The header of a FULL data file."""
        return tuple(f.code for f in self.fields)

    def field(self, code: str) -> Field:
        """The field named ``code``."""
        for f in self.fields:
            if f.code == code:
                return f
        raise KeyError(f"dataset {self.code} has no field {code!r}")


@dataclass(frozen=True)
class GatewayLayout:
    """Directory names on the gateway (§3)."""

    inbox: str = "inbox"
    receipts: str = "receipts"
    part_suffix: str = ".part"


@dataclass(frozen=True)
class PersonChecks:
    """Which fields the person checks of §5 read (PX-E013, PX-W101..W103)."""

    id_number: str = "SFZJH"
    id_type: str = "SFZJLXM"
    resident_id_type: str = "1"
    birth_date: str = "CSRQ"
    sex: str = "XBM"
    sex_odd: str = "1"
    sex_even: str = "2"
    min_age: int = 15
    max_age: int = 100


@dataclass(frozen=True)
class Profile:
    """Everything an interface profile fixes, plus this school's own settings."""

    spec: str
    directory: Path
    datasets: Mapping[str, Dataset]
    code_sets: Mapping[str, CodeSet]
    package_id_template: str
    mode_letters: Mapping[str, str]
    part_template: str
    max_rows_per_part: int
    manifest_file: str
    signature_file: str
    manifest_keys: tuple[str, ...]
    file_keys: tuple[str, ...]
    encodings: tuple[str, ...]
    default_encoding: str
    delimiter: str
    quote: str
    line_ending: str
    op_column: str
    ops: Mapping[str, str]
    signature_algorithms: tuple[str, ...]
    default_signature: str
    gateway: GatewayLayout
    send_order: tuple[str, ...]
    receipt_statuses: tuple[str, ...]
    delivered_statuses: tuple[str, ...]
    school_codes: tuple[str, ...]
    school_code: str
    key_id: str
    pii_fields: frozenset[str]
    producer: str
    person_checks: PersonChecks

    def dataset(self, code: str) -> Dataset:
        """The dataset ``code``; a clear error for an unknown one."""
        try:
            return self.datasets[code]
        except KeyError:
            raise KeyError(f"profile {self.spec} has no dataset {code!r}") from None

    @property
    def dataset_order(self) -> tuple[str, ...]:
        """Send/processing order: ``send_order`` first, then datasets.yaml order."""
        rest = [c for c in self.datasets if c not in self.send_order]
        return (*self.send_order, *rest)

    def publish_order(self, datasets: list[str]) -> list[tuple[str, list[str]]]:
        """Each of ``datasets`` in send order with those of them it must wait for (the datasets
        its fields reference)."""
        order = []
        for code in [c for c in self.dataset_order if c in datasets]:
            refs = {r.dataset for r in self.dataset(code).references.values()} - {code}
            order.append((code, sorted(r for r in refs if r in datasets)))
        return order

    def header(self, dataset: str, mode: str) -> tuple[str, ...]:
        """The header of a data file: the field codes, plus the op column in DELTA."""
        codes = self.dataset(dataset).field_codes
        return (*codes, self.op_column) if mode == "DELTA" else codes

    def package_id(self, school_code: str, dataset: str, mode: str, sequence: int) -> str:
        """``{school_code}-{dataset}-{F|D}-{sequence:06d}`` (per the template)."""
        letter = self.mode_letters[mode]
        return self.package_id_template.format(
            school_code=school_code, dataset=dataset, mode_letter=letter, sequence=sequence
        )

    def part_name(self, dataset: str, part: int) -> str:
        """File name of data part ``part`` (numbered from 1)."""
        return self.part_template.format(dataset=dataset, part=part)


# -- loading: the two files checked by pydantic models (campusdx.core.declarations) ----------


def _text(value: object) -> object:
    """A number where text is meant (a code written unquoted) is its text."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_text)]
Names = list[Text]


class _SchoolSection(Declared):
    school_code: Text
    key_id: Text


class _PlatformSection(Declared):
    school_codes: Names


class _PackageSection(Declared):
    id_template: str
    mode_letters: dict[str, str]
    part_template: str
    max_rows_per_part: Annotated[int, pydantic.Field(gt=0)]
    manifest_file: str
    signature_file: str
    manifest_keys: Names
    file_keys: Names

    @field_validator("mode_letters")
    @classmethod
    def _full_and_delta(cls, letters: dict[str, str]) -> dict[str, str]:
        if set(letters) != {"FULL", "DELTA"}:
            raise ValueError("must name FULL and DELTA")
        return letters


def _among(listed: str):
    """A validator: the value is one of the field ``listed`` (declared before it)."""

    def check(value: str, info: ValidationInfo) -> str:
        allowed = info.data.get(listed)
        if allowed is not None and value not in allowed:
            raise ValueError(f"{value} is not among {listed} {tuple(allowed)}")
        return value

    return AfterValidator(check)


class _CsvSection(Declared):
    encodings: Annotated[Names, pydantic.Field(min_length=1)]
    default_encoding: Annotated[str, _among("encodings")]
    delimiter: str
    quote: str
    line_ending: str


class _DeltaSection(Declared):
    op_column: str
    ops: dict[str, str]


class _SignatureSection(Declared):
    allowed: Annotated[Names, pydantic.Field(min_length=1)]
    default: Annotated[str, _among("allowed")]


class _GatewaySection(Declared):
    inbox: str = GatewayLayout.inbox
    receipts: str = GatewayLayout.receipts
    part_suffix: str = GatewayLayout.part_suffix


def _statuses(delivered: list[str], info: ValidationInfo) -> list[str]:
    unknown = [d for d in delivered if d not in info.data.get("statuses", delivered)]
    if unknown:
        raise ValueError(f"names {unknown}, not among statuses")
    return delivered


class _ReceiptsSection(Declared):
    statuses: Names
    delivered: Annotated[Names, AfterValidator(_statuses)]


class _CodeSetMatch(Declared):
    prefix: Annotated[int, pydantic.Field(gt=0)] | None = None
    suffixes: tuple[Text, ...] = ()


class _SexCodes(Declared):
    odd: Text = PersonChecks.sex_odd
    even: Text = PersonChecks.sex_even


class _PersonChecksSection(Declared):
    id_number: Text = PersonChecks.id_number
    id_type: Text = PersonChecks.id_type
    resident_id_type: Text = PersonChecks.resident_id_type
    birth_date: Text = PersonChecks.birth_date
    sex: Text = PersonChecks.sex
    sex_codes: _SexCodes | None = None
    age_range: tuple[int, int] | None = None


class ProfileFile(Declared):
    """``profile.yml``: what the interface profile fixes besides its datasets, and this school's settings."""

    spec: str
    datasets_file: str
    school: _SchoolSection
    platform: _PlatformSection
    package: _PackageSection
    csv: _CsvSection
    delta: _DeltaSection
    signature: _SignatureSection
    gateway: _GatewaySection
    send_order: Names | None = None
    receipts: _ReceiptsSection
    code_set_match: dict[str, _CodeSetMatch | None] | None = None
    code_set_formats: dict[str, str] | None = None
    person_checks: _PersonChecksSection | None = None
    pii_fields: Names | None = None
    producer: str | None = None


class _CodeSetSpec(Declared):
    # The province's file holds flow mappings whose unquoted commas make stray keys (``{standard:
    # ... (current edition; 6 digits, optional K or T suffix)}``): they are left as the file has them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Text = ""
    standard: Text = ""
    note: Text = ""
    codes: dict[Text, Text] | list[Text] | None = None


class _FieldSpec(Declared):
    code: Text
    name: Text
    type: Annotated[FieldType, BeforeValidator(FieldType.parse)]
    required: bool = False
    code_set: str | None = None


class _DatasetSpec(Declared):
    name: Text
    primary_key: Annotated[Names, pydantic.Field(min_length=1)]
    fields: list[_FieldSpec]
    references: dict[str, Text] | None = None
    rules: Names | None = None

    @model_validator(mode="after")
    def _key_and_references_name_fields(self) -> _DatasetSpec:
        codes = {f.code for f in self.fields}
        if not set(self.primary_key) <= codes:
            raise ValueError(f"primary key {tuple(self.primary_key)} is not a subset of its fields")
        for field, target in (self.references or {}).items():
            if field not in codes or not target.partition(".")[2]:
                raise ValueError(f"bad reference {field}: {target}")
        return self


class DatasetsFile(Declared):
    """``datasets.yaml``, the province's own file: the datasets, their fields and code sets."""

    spec: str
    code_sets: dict[str, _CodeSetSpec] | None = None
    datasets: dict[str, _DatasetSpec]

    @model_validator(mode="after")
    def _known_code_sets(self) -> DatasetsFile:
        for code, dataset in self.datasets.items():
            for f in dataset.fields:
                if f.code_set is not None and f.code_set not in (self.code_sets or {}):
                    raise ValueError(f"dataset {code} field {f.code}: unknown code set {f.code_set}")
        return self


def _dataset_label(code: object, _raw: object) -> str:
    return f"dataset {code}"


def load_profile(directory: Path | str | None = None) -> Profile:
    """Read the profile in ``directory`` (default: the school's, ``schemas/exchange/px-1.0``)."""
    return _load(Path(directory or PROFILE_DIR).resolve())


@functools.lru_cache(maxsize=8)
def _load(directory: Path) -> Profile:
    path = directory / "profile.yml"
    raw = validate(ProfileFile, _read_yaml(path), path, ProfileError)
    spec_path = directory / raw.datasets_file
    spec_raw = _read_yaml(spec_path)
    label = labelled_items("datasets", spec_raw, _dataset_label)
    spec_doc = validate(DatasetsFile, spec_raw, spec_path, ProfileError, label=label)
    try:
        return _build(directory, raw, spec_doc)
    except ValueError as exc:
        raise ProfileError(f"{path}: {exc}") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read profile file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path} does not hold a mapping")
    return data


def _build(directory: Path, raw: ProfileFile, spec_doc: DatasetsFile) -> Profile:
    if spec_doc.spec != raw.spec:
        raise ValueError(f"datasets file is for {spec_doc.spec!r}, profile is {raw.spec!r}")
    code_sets = _code_sets(spec_doc.code_sets or {}, raw)
    datasets = {code: _dataset(code, d) for code, d in spec_doc.datasets.items()}
    _check_references(datasets)
    pkg, csv, sig, rec = raw.package, raw.csv, raw.signature, raw.receipts
    unknown = [c for c in raw.send_order or () if c not in datasets]
    if unknown:
        raise ValueError(f"send_order names unknown datasets {unknown}")
    return Profile(
        spec=raw.spec,
        directory=directory,
        datasets=MappingProxyType(datasets),
        code_sets=MappingProxyType(code_sets),
        package_id_template=pkg.id_template,
        mode_letters=MappingProxyType(dict(pkg.mode_letters)),
        part_template=pkg.part_template,
        max_rows_per_part=pkg.max_rows_per_part,
        manifest_file=pkg.manifest_file,
        signature_file=pkg.signature_file,
        manifest_keys=tuple(pkg.manifest_keys),
        file_keys=tuple(pkg.file_keys),
        encodings=tuple(csv.encodings),
        default_encoding=csv.default_encoding,
        delimiter=csv.delimiter,
        quote=csv.quote,
        line_ending=csv.line_ending,
        op_column=raw.delta.op_column,
        ops=MappingProxyType(dict(raw.delta.ops)),
        signature_algorithms=tuple(sig.allowed),
        default_signature=sig.default,
        gateway=GatewayLayout(**raw.gateway.model_dump()),
        send_order=tuple(raw.send_order or ()),
        receipt_statuses=tuple(rec.statuses),
        delivered_statuses=tuple(rec.delivered),
        school_codes=tuple(raw.platform.school_codes),
        school_code=raw.school.school_code,
        key_id=raw.school.key_id,
        pii_fields=frozenset(raw.pii_fields or ()),
        producer=raw.producer or "campusdx",
        person_checks=_person_checks(raw.person_checks or _PersonChecksSection()),
    )


def _code_sets(raw_sets: Mapping[str, _CodeSetSpec], raw: ProfileFile) -> dict[str, CodeSet]:
    formats = raw.code_set_formats or {}
    match = raw.code_set_match or {}
    out = {}
    for set_id, d in raw_sets.items():
        codes = {c: "" for c in d.codes} if isinstance(d.codes, list) else d.codes
        rule = match.get(set_id) or _CodeSetMatch()
        out[set_id] = CodeSet(
            id=set_id,
            name=d.name,
            standard=d.standard,
            note=d.note,
            codes=MappingProxyType(dict(codes)) if codes else None,
            format=formats.get(set_id),
            prefix=rule.prefix,
            suffixes=tuple(rule.suffixes),
        )
    return out


def _dataset(code: str, d: _DatasetSpec) -> Dataset:
    fields = tuple(Field(f.code, f.name, f.type, f.required, f.code_set) for f in d.fields)
    refs = {field: Reference(*str(target).split(".", 1)) for field, target in (d.references or {}).items()}
    return Dataset(code, d.name, fields, tuple(d.primary_key), MappingProxyType(refs), tuple(d.rules or ()))


def _person_checks(raw: _PersonChecksSection) -> PersonChecks:
    sex = raw.sex_codes or _SexCodes()
    ages = raw.age_range or (PersonChecks.min_age, PersonChecks.max_age)
    return PersonChecks(
        **raw.model_dump(include={"id_number", "id_type", "resident_id_type", "birth_date", "sex"}),
        sex_odd=sex.odd,
        sex_even=sex.even,
        min_age=ages[0],
        max_age=ages[1],
    )


def _check_references(datasets: Mapping[str, Dataset]) -> None:
    for ds in datasets.values():
        for field, ref in ds.references.items():
            if ref.dataset not in datasets or ref.field not in datasets[ref.dataset].field_codes:
                raise ValueError(f"dataset {ds.code}: {field} refers to unknown {ref.dataset}.{ref.field}")
