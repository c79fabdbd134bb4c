"""What a PX-1.0 receipt (回执, §4) may hold, checked before the school acts on it.

A receipt comes from the province over a directory or SFTP: it is input like any other. Before
the publisher records one in the ledger, or reads a PARTIAL's rejected rows from it, the receipt
is validated here (types, bounds, the status enum, the package and batch ids, the shape of every
error entry, and that its counts and findings agree with its status). A receipt that fails is a
:class:`ReceiptProblem` naming the receipt file and what is wrong, never quoting its content;
the package stays pending, as if no receipt had come.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from campusdx.core.profile import FieldType
from campusdx.exchange.manifest import UUID_PATTERN, describe, load_json

MAX_RECEIPT_BYTES = 256 * 1024 * 1024
"""A receipt larger than this is not read (it would list millions of findings)."""
MAX_ERRORS = 5_000_000
MAX_COUNT = 1 << 40
PACKAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
"""A plain name; :func:`validate_receipt` then requires the very package id it asked for."""
RULE_PATTERN = r"^PX-[EW][0-9]{3}$"
FILE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$"

_Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]


class ReceiptProblem(ValueError):
    """A receipt that cannot be used; the message names the receipt file and the problem."""


class Finding(BaseModel):
    """One entry of a receipt's ``errors``: the rule, where (file, line counted with the header
    as line 1, field), the offending value when the platform shows it, and a message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rule: Annotated[StrictStr, Field(pattern=RULE_PATTERN)]
    file: Annotated[StrictStr, Field(pattern=FILE_PATTERN)] | None = None
    line: Annotated[StrictInt, Field(ge=1, le=MAX_COUNT)] | None = None
    field: Annotated[StrictStr, Field(max_length=64)] | None = None
    value: Annotated[StrictStr, Field(max_length=1 << 20)] | None = None
    message: Annotated[StrictStr, Field(max_length=1 << 20)] = ""


class Receipt(BaseModel):
    """receipts/{package_id}.json (§4). ``package_id``, ``batch_id`` (null when the platform
    could not read one) and ``status`` are required; the counts, ``received_at`` and ``errors``
    may be absent (nothing is lost without them) but must be well-formed when present, and a
    PARTIAL must say which rows it rejected, or those rows would never be sent again."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    package_id: Annotated[StrictStr, Field(pattern=PACKAGE_ID_PATTERN)]
    batch_id: Annotated[StrictStr, Field(pattern=UUID_PATTERN)] | None
    status: Literal["ACCEPTED", "PARTIAL", "REJECTED", "DUPLICATE"]
    received_at: Annotated[StrictStr, Field(max_length=19)] | None = None
    rows_received: _Count | None = None
    rows_accepted: _Count | None = None
    rows_rejected: _Count | None = None
    errors: Annotated[list[Finding], Field(max_length=MAX_ERRORS)] = []

    @model_validator(mode="after")
    def _consistent(self) -> Receipt:
        if self.received_at is not None and FieldType("datetime").format_error(self.received_at):
            raise ValueError("received_at is not a PX datetime YYYY-MM-DD HH:MM:SS")
        row_errors = [e for e in self.errors if e.rule.startswith("PX-E")]
        counts = (self.rows_received, self.rows_accepted, self.rows_rejected)
        if (
            self.status in ("ACCEPTED", "PARTIAL")
            and None not in counts
            and counts[1] + counts[2] != counts[0]
        ):
            raise ValueError("rows_accepted + rows_rejected differ from rows_received")
        if self.status == "ACCEPTED" and (row_errors or self.rows_rejected):
            raise ValueError("an ACCEPTED receipt lists rejected rows")
        if self.status == "PARTIAL":
            if self.rows_rejected == 0:
                raise ValueError("a PARTIAL receipt rejects no rows")
            if not any(e.file and e.line for e in row_errors):
                raise ValueError("a PARTIAL receipt names no rejected row (rule PX-E..., file and line)")
        return self


def parse_receipt(data: bytes, source: str) -> Any:
    """The JSON of a receipt file's bytes; :class:`ReceiptProblem` when it is not JSON."""
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptProblem(f"receipt {source} is larger than {MAX_RECEIPT_BYTES} bytes")
    raw, why, _ = load_json(data)
    if why is not None:
        raise ReceiptProblem(f"receipt {source} {why}")
    if raw is None:  # None means "no receipt yet" to the caller: a null is a broken receipt
        raise ReceiptProblem(f"receipt {source} is JSON null, not a receipt")
    return raw


def validate_receipt(
    raw: Any, source: str, *, package_id: str, statuses: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The receipt ``raw`` (parsed JSON) as a plain dict of the keys §4 defines, or
    :class:`ReceiptProblem`. ``package_id`` is the package it must answer; ``statuses`` those
    the profile knows (default: all four of §4)."""
    try:
        receipt = Receipt.model_validate(raw)
    except ValidationError as exc:
        raise ReceiptProblem(f"receipt {source} is malformed: {'; '.join(describe(exc, limit=5))}") from None
    if receipt.package_id != package_id:
        raise ReceiptProblem(f"receipt {source} answers another package, not {package_id}")
    if statuses is not None and receipt.status not in statuses:
        raise ReceiptProblem(f"receipt {source} has a status the profile does not know")
    return receipt.model_dump(mode="json", exclude_unset=True)
