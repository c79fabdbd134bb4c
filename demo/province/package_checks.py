"""PX-1.0 package checks from the interface profile alone: PX-E001..E006 and PX-E008.

Standard library only (SM3 from OpenSSL 3 through :mod:`hashlib`), and no campusdx import, so
one implementation serves two readers of a package that must not share the school's code:

- the simulated province (:mod:`campusdx.demo.province.simulator`) judges every package with
  it before its row checks, and takes the parsed rows it returns;
- ``scripts/verify_px_package.py`` runs this file by path (:func:`runpy.run_path`), so an
  auditor needs nothing but Python and this file.

It is written from PROVINCIAL_EXCHANGE.md, never from the publisher's own checks
(``campusdx.exchange.package``): a defect in the school's builder or pre-send check is seen
here instead of being repeated. What a province's variant may change (spec, datasets and their
fields, school codes, encodings, algorithms, part names, keys a manifest must hold) is a
:class:`Terms`; :data:`PX_1_0` is the profile as published, and the simulator builds its own
from the declarations (``campusdx.core.profile``).

Nothing in a package is trusted: manifest.json is checked for types, bounds and formats before
any value of it is used; every file is read through :func:`read_in_package`, which opens only
regular files directly inside the package directory; and no message quotes what a file holds
(except a header made of field codes) nor depends on what exists outside the package.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

SPEC = "PX-1.0"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
"""A manifest larger than this is not read (it lists at most MAX_PARTS parts)."""
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_PARTS = 10_000
"""Parts per package: 10,000 parts of 200,000 rows are two billion rows."""
MAX_FIELDS = 500
MAX_SEQUENCE = 999_999
"""``package_id`` writes the sequence with six digits (§1)."""
MAX_COUNT = 1 << 40
"""The largest ``rows``, ``bytes`` or ``total_rows`` read."""
MAX_TEXT = 200
"""The longest ``spec``, ``producer.name``, ``producer.version`` or ``alg``."""
MAX_MESSAGES = 10
"""Manifest problems listed one by one; more are counted."""

HMAC_DIGESTS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}
"""Signature algorithms of §2.3 -> :mod:`hashlib` digest names."""
MODES = ("FULL", "DELTA")

CODE = re.compile(r"[A-Z][A-Z0-9_]{0,29}")
"""A dataset or field code (datasets.yaml)."""
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
SCHOOL_CODE = re.compile(r"[0-9]{10}")
KEY_ID = re.compile(r"[\x21-\x7e]{1,128}")
"""A key id: printable ASCII without spaces."""
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")
"""A file name the checks may open: no separator, not absolute."""
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Terms:
    """What the package checks take from an interface profile (defaults: PX-1.0 as published).

    ``school_codes`` and ``datasets`` (dataset code -> field codes in file order) are what the
    platform knows; None means "not known here" (an auditor's script): then any school passes,
    and a data file's header is checked against the manifest's own ``fields``.
    """

    spec: str = SPEC
    manifest_file: str = "manifest.json"
    signature_file: str = "manifest.sig"
    manifest_keys: tuple[str, ...] = (
        "spec", "school_code", "dataset", "mode", "sequence", "batch_id", "as_of", "generated_at",
        "encoding", "fields", "files", "total_rows", "producer",
    )  # fmt: skip
    file_keys: tuple[str, ...] = ("name", "rows", "bytes", "sha256", "sm3")
    part_template: str = "{dataset}.{part:03d}.csv"
    max_rows_per_part: int = 200_000
    encodings: tuple[str, ...] = ("UTF-8", "GB18030")
    signature_algorithms: tuple[str, ...] = ("HMAC-SM3", "HMAC-SHA256")
    delimiter: str = ","
    quote: str = '"'
    op_column: str = "CZLX"
    school_codes: frozenset[str] | None = None
    datasets: Mapping[str, tuple[str, ...]] | None = None


PX_1_0 = Terms()


@dataclass(frozen=True)
class Problem:
    """One breach of a PX rule found in a package (``line`` counts file lines, header = 1)."""

    rule: str
    file: str | None
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file or "package"
        if self.line is not None:
            where += f" line {self.line}"
        return f"{self.rule} {where}: {self.message}"


@dataclass(frozen=True)
class Part:
    """A data part that passed its checks: header and records as (first file line, values).

    A record's line is the file line it starts on as §4 counts them: the header is line 1,
    lines end with LF (inside a quoted value too), a CR alone or before the LF is no line break.
    """

    name: str
    header: tuple[str, ...]
    records: list[tuple[int, list[str]]]


@dataclass
class Inspection:
    """What :func:`inspect` found: the manifest (when valid), the problems and the parsed parts."""

    path: Path
    manifest: dict[str, Any] | None = None
    manifest_bytes: bytes | None = None
    problems: list[Problem] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    batch_id: str | None = None
    """The manifest's batch id when it is a UUID, even if the manifest is otherwise invalid (so a
    REJECTED receipt can name the batch it answers)."""


class Refused(Exception):
    """A name that is not a regular file directly inside the package (never opened)."""


# --------------------------------------------------------------------------- reading


def read_in_package(package: Path | str, name: str, limit: int) -> bytes | None:
    """At most ``limit + 1`` bytes of the file ``name`` directly inside ``package``; None when
    there is no such file.

    The one way these checks open a file of a package. ``name`` must be a plain file name; the
    file must be a regular file, not a symbolic link (checked on the path, and again by
    ``O_NOFOLLOW`` when it is opened), not hard-linked elsewhere, and resolve inside the package.
    Anything else raises :class:`Refused` without opening anything.
    """
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name) or name.strip(".") == "":
        raise Refused("is not a plain file name")
    root = Path(os.path.realpath(package))
    target = root / name
    if not Path(os.path.realpath(target)).is_relative_to(root) or target.is_symlink():
        raise Refused("is a symbolic link, not a file of the package")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        raise Refused("cannot be read as a file of the package") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused("is not a regular file")
        if info.st_nlink > 1:  # a hard link may be another name of a file outside the package
            raise Refused("has other hard links, not a file of the package alone")
        chunks, left = [], limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_json(data: bytes) -> tuple[Any, str | None, int | None]:
    """(value, None, None) for UTF-8 JSON, else (None, why, line). Never raises: deep nesting,
    huge numbers and bad bytes are all answered with a reason that quotes nothing."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "is not UTF-8", None
    try:
        return json.loads(text), None, None
    except json.JSONDecodeError as exc:
        return None, f"is not JSON: {exc.msg}", exc.lineno
    except (ValueError, RecursionError):  # e.g. an integer of thousands of digits, deep nesting
        return None, "is not JSON this platform can read (too deep or a number too large)", None


# --------------------------------------------------------------------------- manifest (§2.2)


def _text(value: Any, pattern: re.Pattern[str] | None = None, *, low: int = 0, high: int = MAX_TEXT) -> bool:
    return (
        type(value) is str
        and low <= len(value) <= high
        and (pattern is None or pattern.fullmatch(value) is not None)
    )


def _count(value: Any, low: int = 0, high: int = MAX_COUNT) -> bool:
    return type(value) is int and low <= value <= high  # a bool is no count


def _px_date(value: Any) -> bool:
    if not _text(value, DATE, high=10):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _px_datetime(value: Any) -> bool:
    if not _text(value, DATETIME, high=19):
        return False
    try:
        datetime.fromisoformat(value)  # the pattern fixed the shape; this checks the calendar
    except ValueError:
        return False
    return True


_MANIFEST_FORMATS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "spec": (_text, f"a string of at most {MAX_TEXT} characters"),
    "school_code": (lambda v: _text(v, SCHOOL_CODE), "10 digits"),
    "dataset": (lambda v: _text(v, CODE), "a dataset code"),
    "mode": (lambda v: type(v) is str and v in MODES, f"one of {list(MODES)}"),
    "sequence": (lambda v: _count(v, 1, MAX_SEQUENCE), f"an integer 1..{MAX_SEQUENCE}"),
    "batch_id": (lambda v: _text(v, UUID), "a UUID"),
    "as_of": (_px_date, "a PX date YYYY-MM-DD"),
    "generated_at": (_px_datetime, "a PX datetime YYYY-MM-DD HH:MM:SS"),
    "encoding": (lambda v: _text(v, low=1, high=32), "a string of 1..32 characters"),
    "fields": (
        lambda v: type(v) is list and 0 < len(v) <= MAX_FIELDS and all(_text(f, CODE) for f in v),
        f"a list of 1..{MAX_FIELDS} field codes",
    ),
    "total_rows": (_count, "a count"),
    "producer": (
        lambda v: type(v) is dict and _text(v.get("name")) and _text(v.get("version")),
        "an object with name and version",
    ),
}
"""Each key of §2.2 but ``files``: how its value is checked, and what it must be."""

_FILE_FORMATS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (lambda v: _text(v, low=1, high=100), "a file name"),
    "rows": (_count, "a count"),
    "bytes": (_count, "a count"),
    "sha256": (lambda v: _text(v, HEX64), "64 hex digits"),
    "sm3": (lambda v: _text(v, HEX64), "64 hex digits"),
}


def manifest_errors(raw: Any, terms: Terms = PX_1_0) -> list[str]:
    """Why a parsed manifest.json is not a PX manifest (PX-E001), naming keys, never values.

    Types, bounds and formats of every key of §2.2 first; then, for a well-formed manifest, the
    keys the profile requires (a variant may require more), the part names
    ``{dataset}.{nnn}.csv`` numbered from 1 and the rows a part may hold.
    """
    if type(raw) is not dict:
        return ["manifest.json is not a JSON object"]
    errors = _format_errors(raw, _MANIFEST_FORMATS, "")
    files = raw.get("files")
    if "files" not in raw:
        errors.append("required key missing: files")
    elif type(files) is not list or not 0 < len(files) <= MAX_PARTS:
        errors.append(f"files: not a list of 1..{MAX_PARTS} entries")
    else:
        for number, entry in enumerate(files):
            if type(entry) is not dict:
                errors.append(f"files[{number}]: not an object")
            else:
                errors += _format_errors(entry, _FILE_FORMATS, f"files[{number}].")
    if errors:
        return errors[:MAX_MESSAGES] + (
            [f"... and {len(errors) - MAX_MESSAGES} more"] if len(errors) > MAX_MESSAGES else []
        )
    errors = [f"required key missing: {k}" for k in terms.manifest_keys if k not in raw]
    for number, entry in enumerate(files, start=1):
        errors += [
            f"required key missing: files[{number - 1}].{k}" for k in terms.file_keys if k not in entry
        ]
        expected = terms.part_template.format(dataset=raw["dataset"], part=number)
        if entry["name"] != expected:
            errors.append(f"files[{number - 1}].name is not the part name {expected}")
        if entry["rows"] > terms.max_rows_per_part:
            errors.append(f"files[{number - 1}].rows exceeds {terms.max_rows_per_part} rows per part")
    return errors


def _format_errors(
    raw: dict[str, Any], formats: Mapping[str, tuple[Callable[[Any], bool], str]], prefix: str
) -> list[str]:
    errors = []
    for key, (ok, what) in formats.items():
        if key not in raw:
            errors.append(f"required key missing: {prefix}{key}")
        elif not ok(raw[key]):
            errors.append(f"{prefix}{key}: not {what}")
    return errors


def identity_errors(manifest: Mapping[str, Any], terms: Terms = PX_1_0) -> list[str]:
    """PX-E008: the spec, and the school and the dataset where the platform knows them."""
    errors = []
    if manifest["spec"] != terms.spec:
        errors.append(f"spec is not {terms.spec}")
    if terms.school_codes is not None and manifest["school_code"] not in terms.school_codes:
        errors.append(f"unknown school_code {manifest['school_code']}")
    if terms.datasets is not None and manifest["dataset"] not in terms.datasets:
        errors.append(f"unknown dataset {manifest['dataset']}")
    return errors


# --------------------------------------------------------------------------- the package


def inspect(
    path: Path | str,
    terms: Terms,
    key_for: Callable[[str], bytes | None],
    *,
    expected_fields: tuple[str, ...] | list[str] | None = None,
) -> Inspection:
    """Check manifest, signature and data files (PX-E001..E006, E008) and parse the data parts.

    ``key_for`` maps the ``key_id`` of manifest.sig to a key (None = unknown key).
    ``expected_fields`` overrides the dataset's field list (the header must be these, plus the
    op column in DELTA). The parts of files that passed their checks are returned, records
    numbered by file line, for the row checks.
    """
    insp = Inspection(Path(path))
    _read_manifest(insp, terms)
    if insp.manifest is None:
        return insp
    insp.problems += signature_problems(insp.path, insp.manifest_bytes or b"", terms, key_for)
    manifest = insp.manifest
    if terms.datasets is not None and manifest["dataset"] not in terms.datasets:
        return insp  # PX-E008 already said so; its parts cannot be named
    if manifest["encoding"] not in terms.encodings:
        insp.problems.append(Problem("PX-E006", None, None, "encoding is not one of the allowed encodings"))
        return insp
    if expected_fields is not None:
        fields = tuple(expected_fields)
    elif terms.datasets is not None:
        fields = tuple(terms.datasets[manifest["dataset"]])
    else:
        fields = tuple(manifest["fields"])
    if list(manifest["fields"]) != list(fields):
        insp.problems.append(Problem("PX-E005", None, None, f"manifest fields differ from {list(fields)}"))
    header = (*fields, terms.op_column) if manifest["mode"] == "DELTA" else fields
    for entry in manifest["files"]:
        _check_file(insp, terms, entry, header)
    listed = sum(e["rows"] for e in manifest["files"])
    if manifest["total_rows"] != listed:
        message = f"total_rows {manifest['total_rows']} != sum of file rows {listed}"
        insp.problems.append(Problem("PX-E004", None, None, message))
    return insp


def _read_manifest(insp: Inspection, terms: Terms) -> None:
    """Load and check manifest.json into ``insp``, or add PX-E001 problems."""
    name = terms.manifest_file
    try:
        data = read_in_package(insp.path, name, MAX_MANIFEST_BYTES)
    except Refused as exc:
        insp.problems.append(Problem("PX-E001", name, None, f"{name} {exc}"))
        return
    if data is None:
        insp.problems.append(Problem("PX-E001", name, None, f"{name} is missing"))
        return
    if len(data) > MAX_MANIFEST_BYTES:
        insp.problems.append(
            Problem("PX-E001", name, None, f"{name} is larger than {MAX_MANIFEST_BYTES} bytes")
        )
        return
    raw, why, line = load_json(data)
    if why is not None:
        insp.problems.append(Problem("PX-E001", name, line, f"{name} {why}"))
        return
    if type(raw) is dict and _text(raw.get("batch_id"), UUID):
        insp.batch_id = raw["batch_id"]
    errors = manifest_errors(raw, terms)
    if errors:
        insp.problems += [Problem("PX-E001", name, None, e) for e in errors]
        return
    insp.problems += [Problem("PX-E008", name, None, e) for e in identity_errors(raw, terms)]
    insp.manifest, insp.manifest_bytes = raw, data


def signature_problems(
    package: Path, manifest_bytes: bytes, terms: Terms, key_for: Callable[[str], bytes | None]
) -> list[Problem]:
    """PX-E002 (§2.3): manifest.sig present, well-formed, an allowed algorithm, a known key, and
    the HMAC of the exact bytes of manifest.json verifies (compared in constant time)."""
    name = terms.signature_file

    def problem(message: str) -> list[Problem]:
        return [Problem("PX-E002", name, None, message)]

    try:
        data = read_in_package(package, name, MAX_SIGNATURE_BYTES)
    except Refused as exc:
        return problem(f"{name} {exc}")
    if data is None:
        return problem(f"{name} is missing")
    raw, why, _ = load_json(data) if len(data) <= MAX_SIGNATURE_BYTES else (None, "is too large", None)
    if why is not None:
        return problem(f"{name} {why}")
    if type(raw) is not dict:
        return problem(f"{name} is not a JSON object")
    wrong = [
        f"{name}: {key} is missing or not {what}"
        for key, ok, what in (
            ("alg", _text(raw.get("alg")), "an algorithm name"),
            ("key_id", _text(raw.get("key_id"), KEY_ID), "a key id"),
            ("signature", _text(raw.get("signature"), HEX64), "64 hex digits"),
        )
        if not ok
    ]
    if wrong:
        return [Problem("PX-E002", name, None, w) for w in wrong]
    allowed = [a for a in terms.signature_algorithms if a in HMAC_DIGESTS]
    if raw["alg"] not in allowed:
        return problem(f"signature algorithm is not one of {allowed}")
    key = key_for(raw["key_id"])
    if key is None:
        return problem("unknown key_id")
    expected = hmac.new(key, manifest_bytes, HMAC_DIGESTS[raw["alg"]]).hexdigest()
    if not hmac.compare_digest(expected, raw["signature"].lower()):
        return problem("the HMAC does not verify with the key")
    return []


def _check_file(insp: Inspection, terms: Terms, entry: dict[str, Any], header: tuple[str, ...]) -> None:
    """PX-E003..E006 for one listed file; a file that passes is parsed into ``insp.parts``."""
    name = entry["name"]

    def problem(rule: str, message: str, line: int | None = None) -> None:
        insp.problems.append(Problem(rule, name, line, message))

    try:
        data = read_in_package(insp.path, name, entry["bytes"])
    except Refused as exc:
        return problem("PX-E003", f"listed file {exc}")
    if data is None:
        return problem("PX-E003", "listed file is missing")
    if len(data) != entry["bytes"]:
        return problem("PX-E003", "bytes differ from the manifest")
    digests = {"sha256": hashlib.sha256(data).hexdigest(), "sm3": hashlib.new("sm3", data).hexdigest()}
    differ = [
        f"{alg} differs from the manifest" for alg, value in digests.items() if value != entry[alg].lower()
    ]
    if differ:
        return problem("PX-E003", "; ".join(differ))
    encoding = insp.manifest["encoding"] if insp.manifest else ""
    if encoding.upper() == "UTF-8" and data.startswith(BOM):
        return problem("PX-E006", "UTF-8 file starts with a BOM", 1)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return problem(
            "PX-E006", f"bytes not valid in {encoding}: {exc.reason}", data[: exc.start].count(b"\n") + 1
        )
    except LookupError:  # a variant allows an encoding this Python does not know
        return problem("PX-E006", f"encoding {encoding} cannot be read here")
    part = _parse(insp, terms, name, text, header)
    if part is None:
        return None
    if len(part.records) != entry["rows"]:
        return problem("PX-E004", f"{len(part.records)} data lines, manifest says {entry['rows']}")
    insp.parts.append(part)
    return None


def _parse(insp: Inspection, terms: Terms, name: str, text: str, header: tuple[str, ...]) -> Part | None:
    """RFC 4180 text (§2.1) as a :class:`Part`, or None after adding its problem: a syntax error
    (PX-E004: rows cannot be counted), a header other than ``header`` or a record of another
    width (PX-E005)."""
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=terms.delimiter, quotechar=terms.quote, strict=True
    )
    records: list[list[str]] = []
    lines: list[int] = []
    found_header: list[str] | None = None
    line = 1
    try:
        for values in reader:
            if found_header is None:
                found_header = values
            else:
                records.append(values)
                lines.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        insp.problems.append(
            Problem("PX-E004", name, line, f"CSV syntax error, rows cannot be counted: {exc}")
        )
        return None
    if found_header is None or tuple(found_header) != header:
        shown = [v if CODE.fullmatch(v) else "?" for v in found_header or []]
        insp.problems.append(Problem("PX-E005", name, 1, f"header does not match {list(header)}: {shown}"))
        return None
    if text.split("\n", 1)[0].endswith("\r"):
        insp.problems.append(
            Problem("PX-E005", name, 1, "the header line ends with CR LF; PX lines end with LF")
        )
        return None
    ragged = [ln for ln, values in zip(lines, records, strict=True) if len(values) != len(header)]
    if ragged:
        shown = ", ".join(map(str, ragged[:5])) + (" ..." if len(ragged) > 5 else "")
        message = f"line(s) {shown} do not have {len(header)} values"
        insp.problems.append(Problem("PX-E005", name, ragged[0], message))
        return None
    starts = _record_lines(text, terms)
    if len(starts) != len(records) + 1:
        message = "a CR outside quotes: records cannot be counted by LF-ended lines"
        insp.problems.append(Problem("PX-E004", name, None, message))
        return None
    return Part(name, tuple(found_header), list(zip(starts[1:], records, strict=True)))


def _record_lines(text: str, terms: Terms) -> list[int]:
    """The file line each record of ``text`` starts on, as §4 counts lines (only LF ends one);
    an empty list when the text cannot be read that way."""
    reader = csv.reader(
        io.StringIO(text, newline="\n"), delimiter=terms.delimiter, quotechar=terms.quote, strict=True
    )
    starts, line = [], 1
    try:
        for _ in reader:
            starts.append(line)
            line = reader.line_num + 1
    except csv.Error:
        return []
    return starts
