#!/usr/bin/env python3
"""Verify a PX-1.0 package knowing only the interface profile (PROVINCIAL_EXCHANGE.md).

    python3 scripts/verify_px_package.py PACKAGE_DIR --key-file KEY_HEX_FILE [--fields F1,F2,...]

Standard library only (SM3 from OpenSSL 3 through hashlib), no campusdx code: what the province,
or anyone auditing a package, can run. It parses manifest.json, recomputes every file's bytes,
sha256 and sm3, checks manifest.sig's HMAC (HMAC-SM3 or HMAC-SHA256) with the key, reads each
CSV in the declared encoding (RFC 4180), counts its data lines against ``rows`` and
``total_rows``, and checks the header against ``fields`` (plus CZLX in a DELTA; ``--fields``
also compares ``fields`` with the dataset's field list). Exit 0 and one summary line when the
package is sound; exit 1 and one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import io
import json
import sys
from pathlib import Path

REQUIRED = [
    "spec", "school_code", "dataset", "mode", "sequence", "batch_id", "as_of", "generated_at",
    "encoding", "fields", "files", "total_rows", "producer",
]  # fmt: skip
HMAC_DIGESTS = {"HMAC-SM3": "sm3", "HMAC-SHA256": "sha256"}
ENCODINGS = {"UTF-8": "utf-8", "GB18030": "gb18030"}


def verify(package: Path, key: bytes, fields: list[str] | None = None) -> tuple[list[str], int]:
    """(problems, data rows read)."""
    problems: list[str] = []
    raw = (package / "manifest.json").read_bytes()
    manifest = json.loads(raw.decode("utf-8"))
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        return [f"manifest.json: missing {missing}"], 0
    if manifest["spec"] != "PX-1.0":
        problems.append(f"spec is {manifest['spec']!r}")
    signature = json.loads((package / "manifest.sig").read_text(encoding="utf-8"))
    digest = HMAC_DIGESTS.get(signature.get("alg"))
    if digest is None:
        problems.append(f"manifest.sig: unknown alg {signature.get('alg')!r}")
    elif not hmac.compare_digest(hmac.new(key, raw, digest).hexdigest(), str(signature.get("signature"))):
        problems.append("manifest.sig: the HMAC does not verify with this key")
    if fields is not None and manifest["fields"] != fields:
        problems.append(f"fields {manifest['fields']} differ from the dataset's {fields}")
    header = list(manifest["fields"]) + (["CZLX"] if manifest["mode"] == "DELTA" else [])
    encoding = ENCODINGS.get(manifest["encoding"])
    if encoding is None:
        return [*problems, f"encoding {manifest['encoding']!r} is not allowed"], 0
    total = 0
    for entry in manifest["files"]:
        data = (package / entry["name"]).read_bytes()
        if len(data) != entry["bytes"]:
            problems.append(f"{entry['name']}: {len(data)} bytes, manifest says {entry['bytes']}")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['name']}: sha256 differs")
        if hashlib.new("sm3", data).hexdigest() != entry["sm3"]:
            problems.append(f"{entry['name']}: sm3 differs")
        if data.startswith(b"\xef\xbb\xbf"):
            problems.append(f"{entry['name']}: starts with a byte order mark")
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            problems.append(f"{entry['name']}: not valid {manifest['encoding']} at byte {exc.start}")
            continue
        if text.split("\n", 1)[0].endswith("\r"):
            problems.append(f"{entry['name']}: lines end with CR LF, not LF")
        lines = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        if not lines or lines[0] != header:
            problems.append(f"{entry['name']}: header {lines[0] if lines else []} differs from {header}")
            continue
        rows = lines[1:]
        widths = {len(r) for r in rows}
        if widths - {len(header)}:
            problems.append(f"{entry['name']}: rows with {sorted(widths - {len(header)})} values")
        if len(rows) != entry["rows"]:
            problems.append(f"{entry['name']}: {len(rows)} data lines, manifest says {entry['rows']}")
        total += len(rows)
    if total != manifest["total_rows"]:
        problems.append(f"total_rows {manifest['total_rows']} != {total} data lines read")
    return problems, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--key-file", type=Path, required=True, help="the exchange key, hex, one line")
    parser.add_argument("--fields", help="the dataset's field codes, comma-separated, in order")
    args = parser.parse_args(argv)
    key = bytes.fromhex(args.key_file.read_text(encoding="ascii").strip())
    problems, rows = verify(args.package, key, args.fields.split(",") if args.fields else None)
    for problem in problems:
        print(f"{args.package.name}: {problem}")
    if not problems:
        print(f"{args.package.name}: sound ({rows} rows)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
