#!/usr/bin/env python3
"""Verify a PX-1.0 package knowing only the interface profile (PROVINCIAL_EXCHANGE.md).

    python3 scripts/verify_px_package.py PACKAGE_DIR --key-file KEY_HEX_FILE [--fields F1,F2,...]

Standard library only (SM3 from OpenSSL 3 through hashlib), no campusdx code: what the province,
or anyone auditing a package, can run. The checks are the simulated province's own
(``demo/province/package_checks.py``, itself standard library only), run here by file path, so
the province and this script cannot drift apart; copy the two files together to use them
elsewhere. They parse manifest.json, recompute every file's bytes, sha256 and sm3, check
manifest.sig's HMAC (HMAC-SM3 or HMAC-SHA256) with the key, read each CSV in the declared
encoding (RFC 4180), count its data lines against ``rows`` and ``total_rows``, and check the
header against ``fields`` (plus CZLX in a DELTA; ``--fields`` also compares ``fields`` with the
dataset's field list). Exit 0 and one summary line when the package is sound; exit 1 and one
line per problem (with its PX rule) otherwise; exit 2 when it cannot be checked (no such package
directory, unreadable key file).

The package is not trusted: the manifest's keys, types and values are checked before any is
used, data parts must be named ``{dataset}.{nnn}.csv`` as the manifest lists them, and only
regular files directly inside the package directory are opened (no ``..``, no absolute path,
no symbolic link). Nothing read from a file is printed except a header made of field codes.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

CHECKS_FILE = Path(__file__).resolve().parents[1] / "demo" / "province" / "package_checks.py"
CHECKS = runpy.run_path(str(CHECKS_FILE))
"""The PX-1.0 package checks (a module's globals): ``inspect``, ``PX_1_0``, ``Problem``, ..."""


def verify(package: Path, key: bytes, fields: list[str] | None = None) -> tuple[list[str], int]:
    """(problems, data rows read). Never raises for anything a package holds."""
    insp = CHECKS["inspect"](package, CHECKS["PX_1_0"], lambda _key_id: key, expected_fields=fields)
    return [str(p) for p in insp.problems], sum(len(part.records) for part in insp.parts)


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
