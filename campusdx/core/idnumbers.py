"""公民身份号码 (GB 11643) checks, one place for everyone: gate, simulator, generator.

python-stdnum (``stdnum.cn.ric``) does the work: check digit, birth date, and a region code
that existed at the birth date. Its ``is_valid`` raises ``KeyError`` instead of answering
False for a region code that names a prefecture but no county (seen with stdnum 2.2), so
callers use :func:`is_valid_ric` rather than calling stdnum directly.
"""

from __future__ import annotations

from functools import lru_cache

from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError
from stdnum.util import isdigits

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

    The checks are stdnum's ``ric.validate``, in its order and with its messages (length,
    digits, check digit, birth date, region at birth), each done by stdnum's own function. Only
    the region lookup, the slow part (about 0.1 ms a number), is asked once per region code and
    birth year: its answer depends on nothing else. Cached too: the gate asks three rules about
    each number."""
    if not value:
        return "empty"
    try:
        number = ric.compact(value)
        if len(number) != 18:
            raise InvalidLength()
        if not isdigits(number[:-1]):
            raise InvalidFormat()
        if number[-1] != ric.calc_check_digit(number):
            raise InvalidChecksum()
        ric.get_birth_date(number)
        problem = _region_problem(number)
    except ValidationError as exc:
        return exc.message
    return problem


_REGIONS: dict[tuple[str, str], str | None] = {}


def _region_problem(number: str) -> str | None:
    """stdnum's region-at-birth check, asked once per region code and birth year (it reads
    nothing else of the number)."""
    key = (number[:6], number[6:10])
    if key not in _REGIONS:
        try:
            ric.get_birth_place(number)
            _REGIONS[key] = None
        except ValidationError as exc:
            _REGIONS[key] = exc.message
        except KeyError:  # stdnum: region code without a county entry
            _REGIONS[key] = "The number's region code is not a known county."
    return _REGIONS[key]


def is_valid_ric(value: str | None) -> bool:
    """True when ``value`` is a valid 公民身份号码."""
    return ric_problem(value) is None


def check_character(first17: str) -> str:
    """The check character for the first 17 digits (GB 11643)."""
    return ric.calc_check_digit(first17 + "0")
