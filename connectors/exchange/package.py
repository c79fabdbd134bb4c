"""PX packages: build them, and check them the way the platform will.

A package is a directory ``{package_id}/`` with CSV data parts, ``manifest.json`` and
``manifest.sig`` (PX-1.0 §2). :func:`build_package` writes one deterministically (same inputs,
same bytes) and atomically (``.tmp`` directory renamed when complete). :func:`inspect_package`
is the one implementation of the file-level rules PX-E001..E006: the school runs it before
sending (:func:`verify_package`) and the simulated province runs it on receipt, then reuses
the parsed rows it returns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

import campusdx
from campusdx.core import atomic
from campusdx.core.clock import BEIJING  # PX datetimes are Beijing time without a zone
from campusdx.core.profile import Profile
from campusdx.exchange.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_SIGNATURE_BYTES,
    UUID_PATTERN,
    Manifest,
    Signature,
    describe,
    load_json,
)
from campusdx.exchange.signing import file_digests, sign, verify

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,29}")
"""What a field code looks like; anything else in a bad header is not echoed (it may be data)."""


class PackageBuildError(ValueError):
    """A package cannot be built; the message names dataset, file, line and field, never PII."""


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
class Package:
    """A built package in the outbox."""

    package_id: str
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str


@dataclass(frozen=True)
class Part:
    """A parsed data part: its header and its records as (first file line, values)."""

    name: str
    header: tuple[str, ...]
    records: list[tuple[int, list[str]]]


@dataclass
class Inspection:
    """What :func:`inspect_package` found: the manifest, the problems and the parsed parts."""

    path: Path
    manifest: dict[str, Any] | None = None
    manifest_bytes: bytes | None = None
    problems: list[Problem] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    batch_id: str | None = None
    """The manifest's batch id when it is a UUID, even if the manifest is otherwise invalid (so a
    REJECTED receipt can name the batch it answers)."""


class CsvDialect(NamedTuple):
    delimiter: str
    quote: str
    line_ending: str


RFC4180 = CsvDialect(",", '"', "\n")


def _dialect(profile: Profile) -> CsvDialect:
    return CsvDialect(profile.delimiter, profile.quote, profile.line_ending)


# --------------------------------------------------------------------------- writing


def csv_line(values: Sequence[str], dialect: CsvDialect = RFC4180) -> str:
    """One RFC 4180 line: a value is quoted only when it holds the delimiter, a quote, CR or LF.

    Written by hand because :mod:`csv` with ``lineterminator="\\n"`` leaves a bare CR unquoted.
    """
    specials = (dialect.delimiter, dialect.quote, "\r", "\n")
    q = dialect.quote
    out = [q + v.replace(q, q + q) + q if any(s in v for s in specials) else v for v in values]
    return dialect.delimiter.join(out) + dialect.line_ending


def table_from_rows(
    profile: Profile, dataset_code: str, rows: Iterable[Mapping[str, str | None]], mode: str = "FULL"
) -> pa.Table:
    """A table shaped for :func:`build_package` from rows given as {field code: value}.

    Columns follow the PX header (plus ``CZLX`` in DELTA); a field a row leaves out is empty.
    A key that is not in the header is an error, so a misspelt field code cannot vanish.
    """
    header = profile.header(dataset_code, mode)
    rows = list(rows)
    for number, row in enumerate(rows, start=1):
        unknown = set(row) - set(header)
        if unknown:
            raise PackageBuildError(f"{dataset_code}: row {number} has unknown field(s) {sorted(unknown)}")
    return pa.table({code: pa.array([row.get(code) for row in rows], pa.string()) for code in header})


def _check_columns(dataset: str, table: pa.Table, header: Sequence[str]) -> None:
    if tuple(table.column_names) != tuple(header):
        raise PackageBuildError(
            f"{dataset}: table columns {table.column_names} differ from the PX header {list(header)}"
        )
    for name, col_type in zip(table.column_names, table.schema.types, strict=True):
        if not (
            pa.types.is_string(col_type) or pa.types.is_large_string(col_type) or pa.types.is_null(col_type)
        ):
            raise PackageBuildError(f"{dataset}: column {name} is {col_type}, expected strings")


def _rows(table: pa.Table) -> Iterator[list[str]]:
    """The table's rows as lists of strings, a null being the empty string."""
    for batch in table.to_batches(max_chunksize=50_000):
        columns = [c.to_pylist() for c in batch.columns]
        for row in zip(*columns, strict=True):
            yield ["" if v is None else v for v in row]


def csv_rows(table: pa.Table, dialect: CsvDialect = RFC4180) -> bytes:
    """The table's rows as CSV text in UTF-8, exactly as :func:`csv_line` writes each row, but
    computed a column at a time in Arrow (a value is quoted only when it holds the delimiter, the
    quote, CR or LF; a null is the empty string)."""
    if table.num_rows == 0:
        return b""
    special = "[" + re.escape(dialect.delimiter + dialect.quote) + "\r\n]"
    d, q, nothing, end_of_line = (
        pa.scalar(v, pa.large_string()) for v in (dialect.delimiter, dialect.quote, "", dialect.line_ending)
    )
    doubled = dialect.quote * 2
    cells = []
    for column in table.columns:
        values = pc.cast(column, pa.large_string())
        needs = pc.fill_null(pc.match_substring_regex(values, special), False)
        if pc.any(needs).as_py():  # most columns never need a quote: skip the work for them
            escaped = pc.replace_substring(values, dialect.quote, doubled)
            values = pc.if_else(needs, pc.binary_join_element_wise(q, escaped, q, nothing), values)
        cells.append(pc.fill_null(values, nothing))
    lines = pc.binary_join_element_wise(*cells, d)
    lines = pc.binary_join_element_wise(lines, nothing, end_of_line)
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = lines.buffers()[1]
    start, end = (
        int.from_bytes(offsets[8 * i : 8 * i + 8], "little")
        for i in (lines.offset, lines.offset + len(lines))
    )
    return lines.buffers()[2].to_pybytes()[start:end]


def _chunks(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    """Rows in chunks of at most ``size``; always at least one (possibly empty) chunk."""
    chunk = list(islice(rows, size))
    yield chunk
    while chunk := list(islice(rows, size)):
        yield chunk


def _encode_part(
    header: Sequence[str],
    rows: Iterable[list[str]],
    *,
    dialect: CsvDialect,
    encoding: str,
    where: tuple[str, str],
    pii: frozenset[str],
) -> bytes:
    """The bytes of one data part; an unencodable character names file, line and field."""
    buf = bytearray(csv_line(header, dialect).encode(encoding))
    line = 2
    for values in rows:
        text = csv_line(values, dialect)
        try:
            buf += text.encode(encoding)
        except UnicodeEncodeError:
            raise _unencodable(values, header, encoding, where, line, pii) from None
        line += len(_LINE_BREAK.findall(text))
    return bytes(buf)


def _unencodable(
    values: Sequence[str],
    header: Sequence[str],
    encoding: str,
    where: tuple[str, str],
    line: int,
    pii: frozenset[str],
) -> PackageBuildError:
    dataset, file = where
    for code, value in zip(header, values, strict=True):
        try:
            value.encode(encoding)
        except UnicodeEncodeError as exc:
            what = (
                "a character of this personal-data value"
                if code in pii
                else f"character U+{ord(value[exc.start]):04X}"
            )
            return PackageBuildError(
                f"{dataset}: {file} line {line} field {code}: {what} cannot be encoded in {encoding}"
            )
    return PackageBuildError(f"{dataset}: {file} line {line}: the line cannot be encoded in {encoding}")


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The exact bytes of manifest.json: key order as given, UTF-8, no ASCII escaping."""
    return (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def px_date(value: date | str) -> str:
    """``YYYY-MM-DD`` for a date (strings pass through)."""
    return value.isoformat() if isinstance(value, date) else str(value)


def px_datetime(value: datetime | str) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time (aware datetimes are converted; strings pass)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(BEIJING)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def build_package(
    profile: Profile,
    dataset_code: str,
    mode: str,
    table: pa.Table,
    *,
    school_code: str,
    sequence: int,
    batch_id: str,
    as_of: date | str,
    generated_at: datetime | str,
    key: bytes,
    key_id: str,
    alg: str = "HMAC-SM3",
    encoding: str = "UTF-8",
    out_dir: Path | str,
) -> Package:
    """Write package ``{package_id}`` into ``out_dir`` and return it.

    ``table`` holds the dataset's field codes in order (plus ``CZLX`` in DELTA), all strings,
    already formatted per the PX types. The same arguments always give the same bytes.
    """
    dataset = profile.dataset(dataset_code)
    _check_options(profile, mode, encoding, alg, sequence)
    header = profile.header(dataset_code, mode)
    _check_columns(dataset_code, table, header)
    package_id = profile.package_id(school_code, dataset_code, mode, sequence)
    out_dir = Path(out_dir)
    final = out_dir / package_id
    if final.exists():
        raise PackageBuildError(f"{dataset_code}: package {package_id} already exists in {out_dir}")
    tmp = out_dir / f"{package_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        files = _write_parts(profile, dataset_code, header, table, encoding, tmp)
        manifest = {
            "spec": profile.spec,
            "school_code": school_code,
            "dataset": dataset_code,
            "mode": mode,
            "sequence": sequence,
            "batch_id": batch_id,
            "as_of": px_date(as_of),
            "generated_at": px_datetime(generated_at),
            "encoding": encoding,
            "fields": list(dataset.field_codes),
            "files": files,
            "total_rows": sum(f["rows"] for f in files),
            "producer": {"name": profile.producer, "version": campusdx.__version__},
        }
        data = manifest_bytes(manifest)
        atomic.write_file(tmp / profile.manifest_file, data)
        signature = {"alg": alg, "key_id": key_id, "signature": sign(data, key, alg)}
        atomic.write_file(tmp / profile.signature_file, (json.dumps(signature) + "\n").encode("utf-8"))
        atomic.fsync_dir(tmp)
        os.rename(tmp, final)
        atomic.fsync_dir(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Package(package_id, final, manifest, hashlib.sha256(data).hexdigest())


def _check_options(profile: Profile, mode: str, encoding: str, alg: str, sequence: int) -> None:
    if mode not in profile.mode_letters:
        raise PackageBuildError(f"mode {mode!r} is not one of {sorted(profile.mode_letters)}")
    if encoding not in profile.encodings:
        raise PackageBuildError(f"encoding {encoding!r} is not allowed (allowed: {list(profile.encodings)})")
    if alg not in profile.signature_algorithms:
        raise PackageBuildError(f"signature {alg!r} is not allowed ({list(profile.signature_algorithms)})")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise PackageBuildError(f"sequence must be a positive integer, got {sequence!r}")


def _write_parts(
    profile: Profile,
    dataset_code: str,
    header: Sequence[str],
    table: pa.Table,
    encoding: str,
    directory: Path,
) -> list[dict[str, Any]]:
    """Write the data parts; return their manifest entries."""
    files = []
    size = profile.max_rows_per_part
    dialect = _dialect(profile)
    for number, start in enumerate(range(0, max(table.num_rows, 1), size), start=1):
        name = profile.part_name(dataset_code, number)
        chunk = table.slice(start, size)
        data = csv_line(header, dialect).encode("utf-8") + csv_rows(chunk, dialect)
        if encoding.upper() not in ("UTF-8", "UTF8"):
            try:
                data = data.decode("utf-8").encode(encoding)
            except UnicodeEncodeError:  # the row-by-row writer names the line and the field
                _encode_part(
                    header,
                    _rows(chunk),
                    dialect=dialect,
                    encoding=encoding,
                    where=(dataset_code, name),
                    pii=profile.pii_fields,
                )
                raise
        atomic.write_file(directory / name, data)
        sha256, sm3 = file_digests(data)
        files.append({"name": name, "rows": chunk.num_rows, "bytes": len(data), "sha256": sha256, "sm3": sm3})
    return files


def content_fingerprint(table: pa.Table) -> str:
    """SHA-256 of the data a package of ``table`` carries: header and rows as canonical CSV text.

    Independent of sequence, batch id, generation time, encoding and part split, so equal
    fingerprints mean "this package would carry exactly what that one carried".
    """
    digest = hashlib.sha256(csv_line(table.column_names).encode("utf-8"))
    for batch in table.to_batches(max_chunksize=200_000):
        digest.update(csv_rows(pa.Table.from_batches([batch])))
    return digest.hexdigest()


# --------------------------------------------------------------------------- checking


def verify_package(
    path: Path | str, profile: Profile, key: bytes, *, expected_fields: Sequence[str] | None = None
) -> list[Problem]:
    """Problems under PX-E001..E006 in the package at ``path`` (empty list = fit to send).

    ``expected_fields`` overrides the dataset's field list from the profile (the header must be
    these, plus ``CZLX`` in DELTA).
    """
    return inspect_package(path, profile, lambda _key_id: key, expected_fields=expected_fields).problems


def inspect_package(
    path: Path | str,
    profile: Profile,
    key_for: Callable[[str], bytes | None],
    *,
    expected_fields: Sequence[str] | None = None,
) -> Inspection:
    """Check manifest, signature and data files (PX-E001..E006, E008) and parse the data parts.

    ``key_for`` maps the ``key_id`` of manifest.sig to a key (None = unknown key). The parts of
    files that passed their checks are returned for row-level checks.

    Nothing in the package is trusted: manifest.json is validated (types, bounds, formats, part
    names; :mod:`campusdx.exchange.manifest`) before any value of it is used, and every file
    is read through :func:`read_in_package`, which opens only regular files directly inside the
    package directory. No file outside the package is ever opened, and no message depends on
    what exists outside it.
    """
    insp = Inspection(Path(path))
    _read_manifest(insp, profile)
    if insp.manifest is None:
        return insp
    insp.problems += _signature_problems(insp, profile, key_for)
    manifest = insp.manifest
    if manifest["dataset"] not in profile.datasets:
        return insp  # PX-E008 already said so; its parts cannot be named
    if manifest["encoding"] not in profile.encodings:
        insp.problems.append(Problem("PX-E006", None, None, "encoding is not one of the allowed encodings"))
        return insp
    fields = tuple(expected_fields) if expected_fields is not None else _expected_fields(profile, manifest)
    if list(manifest["fields"]) != list(fields):
        insp.problems.append(Problem("PX-E005", None, None, f"manifest fields differ from {list(fields)}"))
    header = (*fields, profile.op_column) if manifest["mode"] == "DELTA" else fields
    for entry in manifest["files"]:
        _check_file(insp, profile, entry, header)
    listed = sum(e["rows"] for e in manifest["files"])
    if manifest["total_rows"] != listed:
        insp.problems.append(
            Problem(
                "PX-E004", None, None, f"total_rows {manifest['total_rows']} != sum of file rows {listed}"
            )
        )
    return insp


def _expected_fields(profile: Profile, manifest: dict[str, Any]) -> tuple[str, ...]:
    """The profile's field list for the manifest's (known) dataset."""
    return profile.dataset(manifest["dataset"]).field_codes


MAX_FETCH_BYTES = 1 << 30
"""The largest package file a gateway's ``fetch`` copies back (a part holds at most 200,000 rows)."""


class PackageFileRefused(Exception):
    """A name that is not a regular file directly inside the package (never opened)."""


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")


MAX_FETCH_FILES = 1000
"""The most files a gateway's ``fetch`` copies back from one package directory."""


def plain_name(name: object) -> bool:
    """A plain file name: letters, digits, ``_``, ``.`` and ``-``, no separator, not ``.``/``..``."""
    return isinstance(name, str) and bool(_PLAIN_NAME.fullmatch(name)) and name.strip(".") != ""


def read_in_package(package: Path, name: str, limit: int) -> bytes | None:
    """At most ``limit + 1`` bytes of the file ``name`` directly inside ``package``; None when
    there is no such file.

    The one way the checks open a file. ``name`` must be a plain file name (no separator, no
    ``..``, not absolute); the file must be a regular file, not a symbolic link (checked on the
    path, and again by ``O_NOFOLLOW`` when it is opened), not hard-linked elsewhere, and resolve
    inside the package.
    Anything else raises :class:`PackageFileRefused` without opening anything.
    """
    if not plain_name(name):
        raise PackageFileRefused("is not a plain file name")
    root = Path(os.path.realpath(package))
    target = root / name
    if not Path(os.path.realpath(target)).is_relative_to(root) or target.is_symlink():
        raise PackageFileRefused("is a symbolic link, not a file of the package")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        raise PackageFileRefused("cannot be read as a file of the package") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PackageFileRefused("is not a regular file")
        if info.st_nlink > 1:  # a hard link may be another name of a file outside the package
            raise PackageFileRefused("has other hard links, not a file of the package alone")
        chunks, left = [], limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_manifest(insp: Inspection, profile: Profile) -> None:
    """Load and validate manifest.json into ``insp``, or add PX-E001 problems."""
    name = profile.manifest_file
    try:
        data = read_in_package(insp.path, name, MAX_MANIFEST_BYTES)
    except PackageFileRefused as exc:
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
    if isinstance(raw, dict) and isinstance(raw.get("batch_id"), str) and _UUID.fullmatch(raw["batch_id"]):
        insp.batch_id = raw["batch_id"]
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        insp.problems += [Problem("PX-E001", name, None, e) for e in describe(exc)]
        return
    errors = _profile_errors(manifest, raw, profile)
    if errors:
        insp.problems += [Problem("PX-E001", name, None, e) for e in errors]
        return
    insp.problems += [Problem("PX-E008", name, None, e) for e in _identity_errors(manifest, profile)]
    insp.manifest, insp.manifest_bytes = raw, data


_UUID = re.compile(UUID_PATTERN)


def _profile_errors(m: Manifest, raw: dict[str, Any], profile: Profile) -> list[str]:
    """PX-E001 beyond types: the keys the profile lists (a variant may require more), part
    names ``{dataset}.{nnn}.csv`` numbered from 1, parts of at most the profile's rows."""
    errors = [f"required key missing: {k}" for k in profile.manifest_keys if k not in raw]
    for number, (entry, raw_entry) in enumerate(zip(m.files, raw["files"], strict=True), start=1):
        errors += [
            f"required key missing: files[{number - 1}].{k}" for k in profile.file_keys if k not in raw_entry
        ]
        expected = profile.part_name(m.dataset, number)
        if entry.name != expected:
            errors.append(f"files[{number - 1}].name is not the part name {expected}")
        if entry.rows > profile.max_rows_per_part:
            errors.append(f"files[{number - 1}].rows exceeds {profile.max_rows_per_part} rows per part")
    return errors


def _identity_errors(m: Manifest, profile: Profile) -> list[str]:
    """PX-E008: the spec, the school and the dataset must be ones the profile knows."""
    errors = []
    if m.spec != profile.spec:
        errors.append(f"spec is not {profile.spec}")
    if m.school_code not in profile.school_codes:
        errors.append(f"unknown school_code {m.school_code}")
    if m.dataset not in profile.datasets:
        errors.append(f"unknown dataset {m.dataset}")
    return errors


def _signature_problems(
    insp: Inspection, profile: Profile, key_for: Callable[[str], bytes | None]
) -> list[Problem]:
    """PX-E002: manifest.sig present, well-formed, allowed algorithm, known key, HMAC verifies."""
    name = profile.signature_file
    try:
        data = read_in_package(insp.path, name, MAX_SIGNATURE_BYTES)
    except PackageFileRefused as exc:
        return [Problem("PX-E002", name, None, f"{name} {exc}")]
    if data is None:
        return [Problem("PX-E002", name, None, f"{name} is missing")]
    raw, why, _ = load_json(data) if len(data) <= MAX_SIGNATURE_BYTES else (None, "is too large", None)
    if why is not None:
        return [Problem("PX-E002", name, None, f"{name} {why}")]
    try:
        sig = Signature.model_validate(raw)
    except ValidationError as exc:
        return [Problem("PX-E002", name, None, f"{name}: {e}") for e in describe(exc, limit=3)]
    if sig.alg not in profile.signature_algorithms:
        return [
            Problem(
                "PX-E002",
                name,
                None,
                f"signature algorithm is not one of {list(profile.signature_algorithms)}",
            )
        ]
    key = key_for(sig.key_id)
    if key is None:
        return [Problem("PX-E002", name, None, f"unknown key_id {sig.key_id!r}")]
    if not verify(insp.manifest_bytes or b"", key, sig.alg, sig.signature):
        return [Problem("PX-E002", name, None, "signature does not verify")]
    return []


def _check_file(insp: Inspection, profile: Profile, entry: dict[str, Any], header: Sequence[str]) -> None:
    """PX-E003..E006 for one listed file; a file that passes is parsed into ``insp.parts``."""
    name = entry["name"]
    try:
        data = read_in_package(insp.path, name, entry["bytes"])
    except PackageFileRefused as exc:
        insp.problems.append(Problem("PX-E003", name, None, f"listed file {exc}"))
        return
    if data is None:
        insp.problems.append(Problem("PX-E003", name, None, "listed file is missing"))
        return
    if len(data) != entry["bytes"]:
        insp.problems.append(Problem("PX-E003", name, None, "bytes differ from the manifest"))
        return
    sha256, sm3 = file_digests(data)
    differ = [
        k
        for k, ok in (("sha256", sha256 == entry["sha256"].lower()), ("sm3", sm3 == entry["sm3"].lower()))
        if not ok
    ]
    if differ:
        insp.problems.append(Problem("PX-E003", name, None, f"{', '.join(differ)} differ from the manifest"))
        return
    text = _decode(insp, name, data, insp.manifest["encoding"])
    if text is None:
        return
    part = _parse(insp, profile, name, text, header)
    if part is None:
        return
    if len(part.records) != entry["rows"]:
        insp.problems.append(
            Problem("PX-E004", name, None, f"{len(part.records)} data lines, manifest says {entry['rows']}")
        )
        return
    insp.parts.append(part)


def _decode(insp: Inspection, name: str, data: bytes, encoding: str) -> str | None:
    """The file's text, or None after adding a PX-E006 problem."""
    if encoding.upper() == "UTF-8" and data.startswith(_BOM):
        insp.problems.append(Problem("PX-E006", name, 1, "UTF-8 file starts with a BOM"))
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        insp.problems.append(Problem("PX-E006", name, line, f"bytes not valid in {encoding}: {exc.reason}"))
        return None


def _parse(insp: Inspection, profile: Profile, name: str, text: str, header: Sequence[str]) -> Part | None:
    """Parse CSV text; check the header (PX-E005) and the shape of each record."""
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=profile.delimiter, quotechar=profile.quote, strict=True
    )
    records: list[tuple[int, list[str]]] = []
    found_header: list[str] | None = None
    line = 1
    try:
        for values in reader:
            if found_header is None:
                found_header = values
            else:
                records.append((line, values))
            line = reader.line_num + 1
    except csv.Error as exc:
        insp.problems.append(
            Problem("PX-E004", name, line, f"CSV syntax error, rows cannot be counted: {exc}")
        )
        return None
    if found_header is None or tuple(found_header) != tuple(header):
        shown = [v if _CODE.fullmatch(v) else "?" for v in found_header or []]
        insp.problems.append(Problem("PX-E005", name, 1, f"header {shown} differs from {list(header)}"))
        return None
    ragged = [ln for ln, values in records if len(values) != len(header)]
    if ragged:
        shown = ", ".join(map(str, ragged[:5])) + (" ..." if len(ragged) > 5 else "")
        insp.problems.append(
            Problem("PX-E005", name, ragged[0], f"line(s) {shown} do not have {len(header)} values")
        )
        return None
    return Part(name, tuple(found_header), records)
