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
from typing import Any

import yaml

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


def load_profile(directory: Path | str | None = None) -> Profile:
    """Read the profile in ``directory`` (default: the school's, ``schemas/exchange/px-1.0``)."""
    return _load(Path(directory or PROFILE_DIR).resolve())


@functools.lru_cache(maxsize=8)
def _load(directory: Path) -> Profile:
    path = directory / "profile.yml"
    raw = _read_yaml(path)
    try:
        return _build(directory, raw, _read_yaml(directory / raw["datasets_file"]))
    except (KeyError, TypeError, ValueError) as exc:
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


def _build(directory: Path, raw: dict[str, Any], spec_doc: dict[str, Any]) -> Profile:
    if spec_doc.get("spec") != raw["spec"]:
        raise ValueError(f"datasets file is for {spec_doc.get('spec')!r}, profile is {raw['spec']!r}")
    code_sets = _code_sets(spec_doc.get("code_sets") or {}, raw)
    datasets = {code: _dataset(code, d, code_sets) for code, d in spec_doc["datasets"].items()}
    _check_references(datasets)
    pkg, csv, sig, rec = raw["package"], raw["csv"], raw["signature"], raw["receipts"]
    profile = Profile(
        spec=raw["spec"],
        directory=directory,
        datasets=MappingProxyType(datasets),
        code_sets=MappingProxyType(code_sets),
        package_id_template=pkg["id_template"],
        mode_letters=MappingProxyType(dict(pkg["mode_letters"])),
        part_template=pkg["part_template"],
        max_rows_per_part=int(pkg["max_rows_per_part"]),
        manifest_file=pkg["manifest_file"],
        signature_file=pkg["signature_file"],
        manifest_keys=tuple(pkg["manifest_keys"]),
        file_keys=tuple(pkg["file_keys"]),
        encodings=tuple(csv["encodings"]),
        default_encoding=csv["default_encoding"],
        delimiter=csv["delimiter"],
        quote=csv["quote"],
        line_ending=csv["line_ending"],
        op_column=raw["delta"]["op_column"],
        ops=MappingProxyType(dict(raw["delta"]["ops"])),
        signature_algorithms=tuple(sig["allowed"]),
        default_signature=sig["default"],
        gateway=GatewayLayout(**raw["gateway"]),
        send_order=tuple(raw.get("send_order") or ()),
        receipt_statuses=tuple(rec["statuses"]),
        delivered_statuses=tuple(rec["delivered"]),
        school_codes=tuple(str(c) for c in raw["platform"]["school_codes"]),
        school_code=str(raw["school"]["school_code"]),
        key_id=str(raw["school"]["key_id"]),
        pii_fields=frozenset(raw.get("pii_fields") or ()),
        producer=str(raw.get("producer") or "campusdx"),
        person_checks=_person_checks(raw.get("person_checks") or {}),
    )
    _check_consistency(profile)
    return profile


def _code_sets(raw_sets: dict[str, Any], raw: dict[str, Any]) -> dict[str, CodeSet]:
    formats = raw.get("code_set_formats") or {}
    match = raw.get("code_set_match") or {}
    out = {}
    for set_id, d in raw_sets.items():
        codes = d.get("codes")
        if isinstance(codes, list):
            codes = {str(c): "" for c in codes}
        rule = match.get(set_id) or {}
        out[set_id] = CodeSet(
            id=set_id,
            name=str(d.get("name", "")),
            standard=str(d.get("standard", "")),
            note=str(d.get("note", "")),
            codes=MappingProxyType({str(k): str(v) for k, v in codes.items()}) if codes else None,
            format=formats.get(set_id),
            prefix=rule.get("prefix"),
            suffixes=tuple(rule.get("suffixes") or ()),
        )
    return out


def _dataset(code: str, d: dict[str, Any], code_sets: Mapping[str, CodeSet]) -> Dataset:
    fields = tuple(_field(code, f, code_sets) for f in d["fields"])
    codes = {f.code for f in fields}
    pk = tuple(d["primary_key"])
    if not pk or not set(pk) <= codes:
        raise ValueError(f"dataset {code}: primary key {pk} is not a subset of its fields")
    refs = {}
    for field, target in (d.get("references") or {}).items():
        ds, _, tf = str(target).partition(".")
        if field not in codes or not tf:
            raise ValueError(f"dataset {code}: bad reference {field}: {target}")
        refs[field] = Reference(ds, tf)
    return Dataset(code, str(d["name"]), fields, pk, MappingProxyType(refs), tuple(d.get("rules") or ()))


def _field(dataset: str, f: dict[str, Any], code_sets: Mapping[str, CodeSet]) -> Field:
    try:
        ftype = FieldType.parse(f["type"])
    except ValueError as exc:
        raise ValueError(f"dataset {dataset} field {f.get('code')}: {exc}") from None
    code_set = f.get("code_set")
    if code_set is not None and code_set not in code_sets:
        raise ValueError(f"dataset {dataset} field {f['code']}: unknown code set {code_set}")
    return Field(str(f["code"]), str(f["name"]), ftype, bool(f.get("required")), code_set)


def _person_checks(raw: dict[str, Any]) -> PersonChecks:
    sex = raw.get("sex_codes") or {}
    ages = raw.get("age_range") or (PersonChecks.min_age, PersonChecks.max_age)
    plain = {
        k: str(v)
        for k, v in raw.items()
        if k in ("id_number", "id_type", "resident_id_type", "birth_date", "sex")
    }
    return PersonChecks(
        **plain,
        sex_odd=str(sex.get("odd", PersonChecks.sex_odd)),
        sex_even=str(sex.get("even", PersonChecks.sex_even)),
        min_age=int(ages[0]),
        max_age=int(ages[1]),
    )


def _check_references(datasets: Mapping[str, Dataset]) -> None:
    for ds in datasets.values():
        for field, ref in ds.references.items():
            if ref.dataset not in datasets or ref.field not in datasets[ref.dataset].field_codes:
                raise ValueError(f"dataset {ds.code}: {field} refers to unknown {ref.dataset}.{ref.field}")


def _check_consistency(p: Profile) -> None:
    if p.default_encoding not in p.encodings:
        raise ValueError(f"default encoding {p.default_encoding} is not among {p.encodings}")
    if p.default_signature not in p.signature_algorithms:
        raise ValueError(f"default signature {p.default_signature} is not among {p.signature_algorithms}")
    if not set(p.delivered_statuses) <= set(p.receipt_statuses):
        raise ValueError("receipts.delivered names a status not in receipts.statuses")
    unknown = [c for c in p.send_order if c not in p.datasets]
    if unknown:
        raise ValueError(f"send_order names unknown datasets {unknown}")
    if set(p.mode_letters) != {"FULL", "DELTA"}:
        raise ValueError("package.mode_letters must name FULL and DELTA")
