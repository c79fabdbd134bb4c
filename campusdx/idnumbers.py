"""公民身份号码 (GB 11643) checks, one place for everyone: gate, simulator, generator.

python-stdnum (``stdnum.cn.ric``) does the work: check digit, birth date, and a region code
that existed at the birth date. Its ``is_valid`` raises ``KeyError`` instead of answering
False for a region code that names a prefecture but no county (seen with stdnum 2.2), so
callers use :func:`is_valid_ric` rather than calling stdnum directly.
"""

from __future__ import annotations

from functools import lru_cache

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")


def normalise(value: str | None) -> str | None:
    """Half-width digits, upper-case X, no blanks; None for an empty value."""
    if value is None:
        return None
    text = value.translate(FULL_WIDTH).replace(" ", "").strip().upper()
    return text or None


@lru_cache(maxsize=1 << 18)
def ric_problem(value: str | None) -> str | None:
    """Why ``value`` is not a valid 公民身份号码, or None when it is valid.

    Cached: the gate asks three rules (validity, birth date, sex) about each number, and stdnum's
    region lookup costs about 0.1 ms a number."""
    if not value:
        return "empty"
    try:
        ric.validate(value)
    except ValidationError as exc:
        return exc.message
    except KeyError:  # stdnum: region code without a county entry
        return "The number's region code is not a known county."
    return None


def is_valid_ric(value: str | None) -> bool:
    """True when ``value`` is a valid 公民身份号码."""
    return ric_problem(value) is None


def check_character(first17: str) -> str:
    """The check character for the first 17 digits (GB 11643)."""
    return ric.calc_check_digit(first17 + "0")
