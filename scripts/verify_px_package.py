#!/usr/bin/env python3
"""Verify a PX-1.0 package knowing only the interface profile (PROVINCIAL_EXCHANGE.md).

    python3 scripts/verify_px_package.py PACKAGE_DIR --key-file KEY_HEX_FILE [--fields F1,F2,...]

Standard library only (SM3 from OpenSSL 3 through hashlib), no campusdx code: what the province,
or anyone auditing a package, can run. It parses manifest.json, recomputes every file's bytes,
sha256 and sm3, checks manifest.sig's HMAC (HMAC-SM3 or HMAC-SHA256) with the key, reads each
CSV in the declared encoding (RFC 4180), counts its data lines against ``rows`` and
``total_rows``, and checks the header against ``fields`` (plus CZLX in a DELTA; ``--fields``
also compares ``fields`` with the dataset's field list). Exit 0 and one summary line when the
package is sound; exit 1 and one line per problem otherwise; exit 2 when it cannot be checked
(no such package directory, unreadable key file).

The package is not trusted: the manifest's keys, types and values are checked before any is
used, data parts must be named ``{dataset}.{nnn}.csv`` as the manifest lists them, and only
regular files directly inside the package directory are opened (no ``..``, no absolute path,
no symbolic link). Nothing read from a file is printed except a header made of field codes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import io
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

REQUIRED = [
    "spec", "school_code", "dataset", "mode", "sequence", "batch_id", "as_of", "generated_at",
    "encoding", "fields", "files", "total_rows", "producer",
]  # fmt: skip
FILE_KEYS = ["name", "rows", "bytes", "sha256", "sm3"]
HMAC_DIGESTS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}
ENCODINGS = {"UTF-8": "utf-8", "GB18030": "gb18030"}
MODES = ("FULL", "DELTA")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_PARTS = 10_000
MAX_ROWS_PER_PART = 200_000
MAX_COUNT = 1 << 40
MAX_SEQUENCE = 999_999

CODE = re.compile(r"[A-Z][A-Z0-9_]{0,29}")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SCHOOL = re.compile(r"[0-9]{10}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")


class Refused(Exception):
    """A file the script will not open; the message never depends on what is outside."""


def read_in_package(package: Path, name: str, limit: int) -> bytes | None:
    """At most ``limit + 1`` bytes of the regular file ``name`` directly inside ``package``
    (None when missing). The only place this script opens a file of the package."""
    if not PLAIN_NAME.fullmatch(name) or name.strip(".") == "":
        raise Refused("is not a plain file name")
    root = Path(os.path.realpath(package))
    target = root / name
    if target.is_symlink() or not Path(os.path.realpath(target)).is_relative_to(root):
        raise Refused("is a symbolic link, not a file of the package")
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
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


def load_json(data: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(data.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "is not UTF-8"
    except json.JSONDecodeError as exc:
        return None, f"is not JSON ({exc.msg}, line {exc.lineno})"
    except (ValueError, RecursionError):
        return None, "is not JSON this script can read (too deep, or a number too large)"


def _count(value: Any, low: int = 0, high: int = MAX_COUNT) -> bool:
    return type(value) is int and low <= value <= high


def _string(value: Any, pattern: re.Pattern[str] | None = None, max_length: int = 200) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= max_length
        and (pattern is None or pattern.fullmatch(value) is not None)
    )


def manifest_problems(m: Any) -> list[str]:
    """What is missing or malformed in a parsed manifest; names keys, never quotes values."""
    if not isinstance(m, dict):
        return ["manifest.json is not a JSON object"]
    missing = [k for k in REQUIRED if k not in m]
    if missing:
        return [f"manifest.json: missing {missing}"]
    checks = [
        ("spec", _string(m["spec"])),
        ("school_code", _string(m["school_code"], SCHOOL)),
        ("dataset", _string(m["dataset"], CODE)),
        ("mode", m["mode"] in MODES if isinstance(m["mode"], str) else False),
        ("sequence", _count(m["sequence"], 1, MAX_SEQUENCE)),
        ("batch_id", _string(m["batch_id"], UUID)),
        ("as_of", _string(m["as_of"], DATE)),
        ("generated_at", _string(m["generated_at"], DATETIME)),
        ("encoding", _string(m["encoding"], max_length=32)),
        ("total_rows", _count(m["total_rows"])),
        (
            "fields",
            isinstance(m["fields"], list)
            and 0 < len(m["fields"]) <= 500
            and all(_string(f, CODE) for f in m["fields"]),
        ),
        (
            "producer",
            isinstance(m["producer"], dict)
            and _string(m["producer"].get("name"))
            and _string(m["producer"].get("version")),
        ),
    ]
    problems = [f"manifest.json: {key} has the wrong type or format" for key, ok in checks if not ok]
    files = m["files"]
    if not isinstance(files, list) or not 0 < len(files) <= MAX_PARTS:
        return [*problems, f"manifest.json: files is not a list of 1..{MAX_PARTS} entries"]
    for number, entry in enumerate(files, start=1):
        where = f"manifest.json: files[{number - 1}]"
        if not isinstance(entry, dict) or any(k not in entry for k in FILE_KEYS):
            problems.append(f"{where} lacks one of {FILE_KEYS}")
            continue
        if isinstance(m["dataset"], str) and CODE.fullmatch(m["dataset"]):
            expected = f"{m['dataset']}.{number:03d}.csv"
            if entry["name"] != expected:
                problems.append(f"{where}.name is not the part name {expected}")
        if not _count(entry["rows"], 0, MAX_ROWS_PER_PART) or not _count(entry["bytes"]):
            problems.append(f"{where}: rows (at most {MAX_ROWS_PER_PART}) and bytes must be counts")
        if not (_string(entry["sha256"], HEX64) and _string(entry["sm3"], HEX64)):
            problems.append(f"{where}: sha256 and sm3 must be 64 hex digits")
    return problems


def signature_problems(package: Path, raw: bytes, key: bytes) -> list[str]:
    try:
        data = read_in_package(package, "manifest.sig", MAX_SIGNATURE_BYTES)
    except Refused as exc:
        return [f"manifest.sig {exc}"]
    if data is None:
        return ["manifest.sig is missing"]
    signature, why = load_json(data) if len(data) <= MAX_SIGNATURE_BYTES else (None, "is too large")
    if why is not None:
        return [f"manifest.sig {why}"]
    if not isinstance(signature, dict):
        return ["manifest.sig is not a JSON object"]
    alg, value = signature.get("alg"), signature.get("signature")
    digest = HMAC_DIGESTS.get(alg) if isinstance(alg, str) else None
    if digest is None:
        return [f"manifest.sig: alg is not one of {list(HMAC_DIGESTS)}"]
    if not _string(value, HEX64):
        return ["manifest.sig: signature is not 64 hex digits"]
    if not hmac.compare_digest(hmac.new(key, raw, digest).hexdigest(), value.lower()):
        return ["manifest.sig: the HMAC does not verify with this key"]
    return []


def shown_header(cells: list[str]) -> str:
    """A header as it may be printed: only when every cell is a field code."""
    if cells and len(cells) <= 500 and all(CODE.fullmatch(c) for c in cells):
        return str(cells)
    return "(not shown: not a header of field codes)"


def verify(package: Path, key: bytes, fields: list[str] | None = None) -> tuple[list[str], int]:
    """(problems, data rows read). Never raises for anything a package holds."""
    try:
        raw = read_in_package(package, "manifest.json", MAX_MANIFEST_BYTES)
    except Refused as exc:
        return [f"manifest.json {exc}"], 0
    if raw is None:
        return ["manifest.json is missing"], 0
    if len(raw) > MAX_MANIFEST_BYTES:
        return [f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes"], 0
    manifest, why = load_json(raw)
    if why is not None:
        return [f"manifest.json {why}"], 0
    problems = manifest_problems(manifest)
    if problems:
        return problems, 0
    if manifest["spec"] != "PX-1.0":
        problems.append("spec is not PX-1.0")
    problems += signature_problems(package, raw, key)
    if fields is not None and manifest["fields"] != fields:
        problems.append(f"fields {manifest['fields']} differ from the dataset's {fields}")
    header = list(manifest["fields"]) + (["CZLX"] if manifest["mode"] == "DELTA" else [])
    encoding = ENCODINGS.get(manifest["encoding"])
    if encoding is None:
        return [*problems, f"encoding is not one of {list(ENCODINGS)}"], 0
    total = 0
    for entry in manifest["files"]:
        name = entry["name"]
        try:
            data = read_in_package(package, name, entry["bytes"])
        except Refused as exc:
            problems.append(f"{name} {exc}")
            continue
        if data is None:
            problems.append(f"{name}: listed but missing")
            continue
        if len(data) != entry["bytes"]:
            problems.append(f"{name}: bytes differ from the manifest's {entry['bytes']}")
            continue
        if hashlib.sha256(data).hexdigest() != entry["sha256"].lower():
            problems.append(f"{name}: sha256 differs")
        if hashlib.new("sm3", data).hexdigest() != entry["sm3"].lower():
            problems.append(f"{name}: sm3 differs")
        if data.startswith(b"\xef\xbb\xbf"):
            problems.append(f"{name}: starts with a byte order mark")
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            problems.append(f"{name}: not valid {manifest['encoding']} at byte {exc.start}")
            continue
        if text.split("\n", 1)[0].endswith("\r"):
            problems.append(f"{name}: lines end with CR LF, not LF")
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            lines = list(reader)
        except csv.Error:
            problems.append(f"{name}: CSV syntax error at line {reader.line_num}, rows cannot be counted")
            continue
        if not lines or lines[0] != header:
            problems.append(
                f"{name}: header does not match {header}: {shown_header(lines[0] if lines else [])}"
            )
            continue
        rows = lines[1:]
        widths = {len(r) for r in rows}
        if widths - {len(header)}:
            problems.append(f"{name}: rows with {sorted(widths - {len(header)})} values")
        if len(rows) != entry["rows"]:
            problems.append(f"{name}: {len(rows)} data lines, manifest says {entry['rows']}")
        total += len(rows)
    if total != manifest["total_rows"]:
        problems.append(f"total_rows {manifest['total_rows']} != {total} data lines read")
    return problems, total


def read_key(path: Path) -> bytes:
    """The key held as hex in ``path``; errors name the path, never the content."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(4097).decode("ascii").strip()
        key = bytes.fromhex(text)
    except OSError as exc:
        raise SystemExit(f"key file {path}: cannot be read ({exc.strerror})") from None
    except ValueError:  # not ASCII, not hex
        raise SystemExit(f"key file {path}: does not hold a hex key") from None
    if not key:
        raise SystemExit(f"key file {path}: holds no key")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--key-file", type=Path, required=True, help="the exchange key, hex, one line")
    parser.add_argument("--fields", help="the dataset's field codes, comma-separated, in order")
    args = parser.parse_args(argv)
    try:
        key = read_key(args.key_file)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    if not args.package.is_dir():
        print(f"{args.package}: not a package directory", file=sys.stderr)
        return 2
    try:
        problems, rows = verify(args.package, key, args.fields.split(",") if args.fields else None)
    except Exception as exc:  # a bug here must not look like a verdict, nor show any content
        print(f"{args.package.name}: cannot be verified ({type(exc).__name__})", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"{args.package.name}: {problem}")
    if not problems:
        print(f"{args.package.name}: sound ({rows} rows)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
