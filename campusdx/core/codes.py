"""National and industry code sets (性别, 民族, 学历, 专业代码, ...) as data.

The code sets live under ``schemas/codes/``: one ``code,name`` CSV per set and a registry,
``code_sets.yml``, that maps each PX-1.0 code-set id (``XBM``, ``MZM``, ...) to its file, the
standard and edition it follows, where the rows came from and whether the file is a subset. This
module reads them and refuses a file that could silently mislead a check: a wrong header, an empty
or duplicate code. Every error names the file and the line, so the person who edited the CSV can
fix it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StrictBool

from campusdx.core import settings
from campusdx.core.declarations import Declared, Wording, labelled_items, read_yaml, validate

REGISTRY = "code_sets.yml"
HEADER = ["code", "name"]


class CodeSetError(ValueError):
    """A code-set file or the registry is malformed."""


def _directory(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else settings.SCHEMAS / "codes"


class CodeSetEntry(Declared):
    """One entry of the registry (every key required; see code_sets.yml for their meaning)."""

    file: str
    name: Any
    standard: Any
    edition: Any
    source: Any
    subset: StrictBool
    notes: Any


class Registry(Declared):
    """``code_sets.yml``: code-set id -> entry."""

    code_sets: Annotated[dict[str, CodeSetEntry], Field(min_length=1)]


_WORDING = Wording(
    missing="{where}: missing {names}",
    problems={"bool_type": "must be true or false, not {value}"},
)


def code_set_info(directory: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The registry: code-set id -> {file, name, standard, edition, source, subset, notes}."""
    path = _directory(directory) / REGISTRY
    try:
        document = read_yaml(path, CodeSetError)
    except FileNotFoundError as exc:
        raise CodeSetError(f"{path}: registry not found") from exc
    label = labelled_items("code_sets", document, lambda set_id, _entry: f"code set {set_id}")
    validate(Registry, document, path, CodeSetError, label=label, wording=_WORDING)
    return document["code_sets"]


def read_code_file(path: str | Path) -> dict[str, str]:
    """{code: name} of one ``code,name`` CSV, in file order, after checking every line.

    Codes are text (leading zeros kept); surrounding spaces are an error, not trimmed, because a
    code with a stray space would never match. A UTF-8 byte-order mark (Excel) is tolerated.
    """
    path = Path(path)
    codes: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise CodeSetError(f"{path}: file not found") from exc
    with fh:
        reader = csv.reader(fh)
        try:
            for row in reader:
                line = reader.line_num
                if line == 1:
                    if row != HEADER:
                        raise CodeSetError(f"{path}:1: header must be exactly 'code,name', found {row!r}")
                    continue
                if not row:
                    raise CodeSetError(f"{path}:{line}: empty line")
                if len(row) != 2:
                    raise CodeSetError(f"{path}:{line}: expected 2 fields (code,name), found {len(row)}")
                code, name = row
                if not code.strip():
                    raise CodeSetError(f"{path}:{line}: empty code")
                if code != code.strip() or name != name.strip():
                    raise CodeSetError(f"{path}:{line}: code {code!r}: leading or trailing spaces")
                if not name:
                    raise CodeSetError(f"{path}:{line}: code {code!r}: empty name")
                if code in codes:
                    raise CodeSetError(
                        f"{path}:{line}: duplicate code {code!r} (first on line {first_seen[code]})"
                    )
                codes[code] = name
                first_seen[code] = line
        except UnicodeDecodeError as exc:
            raise CodeSetError(f"{path}: not UTF-8: {exc}") from exc
        except csv.Error as exc:
            raise CodeSetError(f"{path}:{reader.line_num}: {exc}") from exc
    if reader.line_num == 0:
        raise CodeSetError(f"{path}:1: empty file, header 'code,name' expected")
    if not codes:
        raise CodeSetError(f"{path}: no codes after the header")
    return codes


def load_code_sets(directory: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Every registered code set: id -> {code: name}, in file order.

    ``directory`` defaults to ``schemas/codes`` in the repository.
    """
    root = _directory(directory)
    return {set_id: read_code_file(root / entry["file"]) for set_id, entry in code_set_info(root).items()}
