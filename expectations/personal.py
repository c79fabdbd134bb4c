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

import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from campusdx.core import pseudonyms
from campusdx.core.profile import Profile
from campusdx.core.settings import Paths

KEY_FILE = "quality-fingerprint.key"

# Declared field names (datasets.yaml ``name``) that say what kind of personal value a field holds.
_ID_NAME = re.compile(r"(证件号|身份证号|证件号码)$")
_PERSON_NAME = re.compile(r"姓名$")
_PHONE_NAME = re.compile(r"(电话|手机)")


def personal_fields(profile: Profile) -> dict[str, str]:
    """Field code -> kind (``id``, ``name``, ``phone``, ``date`` of birth or ``other``) of every
    personal field."""
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
    if code == profile.person_checks.birth_date:  # with region and sex it narrows the ID number
        return "date"
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
    if kind == "date":  # the year only, as analysts see birth dates
        return text[:4] + "*" * (n - 4) if n > 4 else "*" * n
    if kind == "id" and n >= 18:
        return text[:6] + "*" * (n - 6)
    keep = n // 4  # short numbers and anything else: about a quarter at most
    return text[:keep] + "*" * (n - keep)


def fingerprint(value: Any, key: bytes) -> str | None:
    """HMAC-SHA256 of the value under ``key`` (hex); None stays None."""
    if value is None:
        return None
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def protect(
    value: Any,
    field: str | None,
    kinds: Mapping[str, str],
    key: bytes,
    *,
    known: Collection[str] | None = None,
) -> tuple[str | None, str | None]:
    """A finding's ``(value, value_fingerprint)``: a personal field's value masked, with its
    keyed fingerprint; any other field's value as text, with no fingerprint.

    ``known``: the fields the value may come from, when the field is named from outside (a
    province's receipt): a value under any other field name, or none, is masked as ``other``.
    """
    value = None if value is None else str(value)
    kind = kinds.get(field) if field else None
    if not kind and known is not None and field not in known:
        kind = "other"
    if not kind:
        return value, None
    return mask(value, kind), fingerprint(value, key)


def fingerprint_key(paths: Paths) -> bytes:
    """The home's fingerprint key, generated on first use (mode 0600; never logged); several
    gates starting at once all read the one key that was created."""
    return _key(paths.secrets / KEY_FILE)


@cache
def _key(path: Path) -> bytes:
    return pseudonyms.ensure_key(path, "quality fingerprint key")


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
