"""Personal data in the gate's artefacts: masked values and keyed fingerprints.

A failing value of a personal field (an ID number with one wrong digit is still a real person's
number) never reaches the quarantine, the findings files or the Data Docs as it is. The gate
keeps instead:

- a masked value that hides enough to matter (an 18-character 身份证号 keeps at most its first
  6 characters, a shorter number about a quarter, a name its first character, a phone number
  its first 3 and last 2 digits), and
- a fingerprint: HMAC-SHA256 of the value under a secret key of the home
  (``<home>/secrets/quality-fingerprint.key``, generated on first use, mode 0600, never
  logged), so the same value is recognised from one run to the next (``first_seen``) without
  being stored.

Which fields are personal comes from the declarations: the profile's ``pii_fields``, its person
checks' ID-number field, and any field whose declared name says it is a name, a phone number or
a document number.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from campusdx.settings import Paths
from connectors.exchange.profile import Profile

KEY_FILE = "quality-fingerprint.key"

# Declared field names (datasets.yaml ``name``) that say what kind of personal value a field holds.
_ID_NAME = re.compile(r"(证件号|身份证号|证件号码)$")
_PERSON_NAME = re.compile(r"姓名$")
_PHONE_NAME = re.compile(r"(电话|手机)")


def personal_fields(profile: Profile) -> dict[str, str]:
    """Field code -> kind (``id``, ``name``, ``phone`` or ``other``) of every personal field."""
    kinds: dict[str, str] = {}
    for dataset in profile.datasets.values():
        for field in dataset.fields:
            kind = _kind(field.code, field.name, profile)
            if kind:
                kinds[field.code] = kind
    for code in profile.pii_fields:
        kinds.setdefault(code, "other")
    return kinds


def _kind(code: str, name: str, profile: Profile) -> str | None:
    if code == profile.person_checks.id_number or _ID_NAME.search(name):
        return "id"
    if _PERSON_NAME.search(name):
        return "name"
    if _PHONE_NAME.search(name):
        return "phone"
    return "other" if code in profile.pii_fields else None


def mask(value: Any, kind: str) -> str | None:
    """The value with most of it hidden; None stays None."""
    if value is None:
        return None
    text = str(value)
    if not text:
        return text
    n = len(text)
    if kind == "name":
        return text[0] + "*" * max(n - 1, 1)
    if kind == "phone" and n >= 8:
        return text[:3] + "*" * (n - 5) + text[-2:]
    if kind == "id" and n >= 18:
        return text[:6] + "*" * (n - 6)
    keep = n // 4  # short numbers and anything else: about a quarter at most
    return text[:keep] + "*" * (n - keep)


def fingerprint(value: Any, key: bytes) -> str | None:
    """HMAC-SHA256 of the value under ``key`` (hex); None stays None."""
    if value is None:
        return None
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprint_key(paths: Paths) -> bytes:
    """The home's fingerprint key, generated on first use (mode 0600; never logged).

    Several gates may start at once: the key is written to a temporary file of this process
    and linked into place, so every process reads the one complete key that won."""
    return _read_or_create(paths.secrets / KEY_FILE)


@cache
def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process linked its key first: use it
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise RuntimeError(f"{path}: the quality fingerprint key is too short or empty")
    return bytes.fromhex(text)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------- GX validation results

# Keys of an expectation's ``result`` that list failing values.
_VALUE_LISTS = ("partial_unexpected_list", "unexpected_list")
_INDEX_LISTS = ("partial_unexpected_index_list", "unexpected_index_list")
_COUNTS = ("partial_unexpected_counts",)


def _columns(kwargs: Mapping[str, Any]) -> list[str]:
    if kwargs.get("column"):
        return [kwargs["column"]]
    if kwargs.get("column_list"):
        return list(kwargs["column_list"])
    return [kwargs[k] for k in ("column_A", "column_B") if kwargs.get(k)]


def _mask_entry(entry: Any, columns: list[str], kinds: Mapping[str, str]) -> Any:
    """One listed failing value: a scalar of a one-column expectation, a row (dict) or a tuple."""
    if isinstance(entry, Mapping):
        return {k: mask(v, kinds[k]) if k in kinds else v for k, v in entry.items()}
    if isinstance(entry, list | tuple) and len(columns) == len(entry) > 1:
        masked = (mask(v, kinds[c]) if c in kinds else v for c, v in zip(columns, entry, strict=True))
        return type(entry)(masked)
    if len(columns) == 1 and columns[0] in kinds:
        return mask(entry, kinds[columns[0]])
    personal = [c for c in columns if c in kinds]
    if personal:  # a shape we do not know: hide it whole rather than guess
        return None
    return entry


def scrub_validation(validation: Any, kinds: Mapping[str, str]) -> Any:
    """Mask the personal values in every expectation result of a suite validation result, in
    place (GX's ``ExpectationSuiteValidationResult``); returns it."""
    for outcome in validation.results:
        columns = _columns(outcome.expectation_config.kwargs)
        if not any(c in kinds for c in columns):
            continue
        scrub(outcome.result, columns, kinds)
    return validation


def scrub(result: dict, columns: list[str], kinds: Mapping[str, str]) -> dict:
    """Mask the failing values of personal ``columns`` listed in one expectation's ``result``."""
    for name in _VALUE_LISTS + _INDEX_LISTS:
        if result.get(name):
            result[name] = [_mask_entry(e, columns, kinds) for e in result[name]]
    for name in _COUNTS:
        if result.get(name):  # masked values that now look alike are counted together
            merged: dict[str, list] = {}
            for entry in result[name]:
                value = _mask_entry(entry.get("value"), columns, kinds)
                merged.setdefault(repr(value), [value, 0])[1] += entry.get("count", 0)
            result[name] = [{"value": value, "count": count} for value, count in merged.values()]
    if "observed_value" in result and len(columns) == 1 and columns[0] in kinds:
        observed = result["observed_value"]
        if isinstance(observed, str):
            result["observed_value"] = mask(observed, kinds[columns[0]])
    result.pop("unexpected_index_query", None)
    return result
