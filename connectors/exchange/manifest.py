"""What a PX-1.0 ``manifest.json`` and ``manifest.sig`` may hold (§2.2, §2.3), as pydantic models.

A package comes from outside (the school's own outbox may have been edited; the province gets
whatever was uploaded), so nothing in a manifest is used before it has been validated here:
types, bounds and formats. What depends on the profile (known datasets, part names, allowed
encodings and algorithms) is checked by :mod:`campusdx.exchange.package` after this.

Error messages name the field and the problem, never the value (it may be anything, including
personal data or a secret somebody tried to make us read).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator

from campusdx.core.profile import FieldType

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
"""A manifest larger than this is not read (it lists at most MAX_PARTS parts)."""
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_PARTS = 10_000
"""Parts per package: 10,000 parts of 200,000 rows are two billion rows."""
MAX_FIELDS = 500
MAX_SEQUENCE = 999_999
"""``package_id`` writes the sequence with six digits (§1)."""
MAX_BYTES = 1 << 40
MAX_TOTAL_ROWS = 1 << 40

CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,29}$"
"""A dataset or field code (datasets.yaml): upper-case letters, digits, underscore."""
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
HEX64_PATTERN = r"^[0-9a-fA-F]{64}$"
SCHOOL_CODE_PATTERN = r"^[0-9]{10}$"
KEY_ID_PATTERN = r"^[\x21-\x7e]{1,128}$"
"""A key id: printable ASCII without spaces."""

_Short = Annotated[StrictStr, Field(max_length=200)]


class FileEntry(BaseModel):
    """One entry of ``files``: a data part's name, data rows, bytes and digests."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    rows: Annotated[StrictInt, Field(ge=0, le=MAX_TOTAL_ROWS)]
    bytes: Annotated[StrictInt, Field(ge=0, le=MAX_BYTES)]
    sha256: Annotated[StrictStr, Field(pattern=HEX64_PATTERN)]
    sm3: Annotated[StrictStr, Field(pattern=HEX64_PATTERN)]


class Producer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: _Short
    version: _Short


class Manifest(BaseModel):
    """manifest.json of PX-1.0 (§2.2). Every key of the spec is required (PX-E001); keys the
    spec does not name are allowed and ignored (they are signed with the rest, so they lose
    nothing and a later profile may add some)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    spec: _Short
    school_code: Annotated[StrictStr, Field(pattern=SCHOOL_CODE_PATTERN)]
    dataset: Annotated[StrictStr, Field(pattern=CODE_PATTERN)]
    mode: Literal["FULL", "DELTA"]
    sequence: Annotated[StrictInt, Field(ge=1, le=MAX_SEQUENCE)]
    batch_id: Annotated[StrictStr, Field(pattern=UUID_PATTERN)]
    as_of: Annotated[StrictStr, Field(max_length=10)]
    generated_at: Annotated[StrictStr, Field(max_length=19)]
    encoding: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    fields: Annotated[
        list[Annotated[StrictStr, Field(pattern=CODE_PATTERN)]], Field(min_length=1, max_length=MAX_FIELDS)
    ]
    files: Annotated[list[FileEntry], Field(min_length=1, max_length=MAX_PARTS)]
    total_rows: Annotated[StrictInt, Field(ge=0, le=MAX_TOTAL_ROWS)]
    producer: Producer

    @field_validator("as_of")
    @classmethod
    def _date(cls, value: str) -> str:
        if FieldType("date").format_error(value):
            raise ValueError("not a PX date YYYY-MM-DD")
        return value

    @field_validator("generated_at")
    @classmethod
    def _datetime(cls, value: str) -> str:
        if FieldType("datetime").format_error(value):
            raise ValueError("not a PX datetime YYYY-MM-DD HH:MM:SS")
        return value


class Signature(BaseModel):
    """manifest.sig (§2.3): algorithm, key id and the HMAC as hex (64 digits for SM3 and
    SHA-256 alike). Checked before use: a non-ASCII or odd-length signature never reaches
    :func:`bytes.fromhex` or :func:`hmac.compare_digest`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alg: _Short
    key_id: Annotated[StrictStr, Field(pattern=KEY_ID_PATTERN)]
    signature: Annotated[StrictStr, Field(pattern=HEX64_PATTERN)]


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


def describe(exc: ValidationError, limit: int = 10) -> list[str]:
    """One line per problem: where (``files[0].sha256``) and what, never the value."""
    out = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        where = _where(error["loc"])
        if error["type"] == "missing":
            out.append(f"required key missing: {where}")
        else:
            out.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    extra = exc.error_count() - limit
    if extra > 0:
        out.append(f"... and {extra} more")
    return out


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text
