"""The business rules of the gate that look at several fields of a row, vectorised over pandas.

Each rule is a function of a DataFrame (the dataset's candidate rows, PX field codes as columns,
missing values as None) returning a boolean Series: True where the row keeps the rule. A row
whose fields are missing or malformed keeps it here: those rows already fail CDX-E010/E012, and
one fault should carry one rule ID.

These are the project's own implementations, written from the plain-words rules of
``datasets.yaml`` and the person checks of the profile; the province simulator has its own, so
a test that both agree is a real check, not one function compared with itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation

import pandas as pd

from campusdx.core.idnumbers import is_valid_ric
from campusdx.core.profile import load_profile

RowRule = Callable[[pd.DataFrame], pd.Series]
DATE_FORMAT = "%Y-%m-%d"


def _dates(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, format=DATE_FORMAT, errors="coerce")


def _decimal(value) -> Decimal | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _present(column: pd.Series) -> pd.Series:
    return column.notna() & (column.astype(str).str.len() > 0)


def lxrq_not_before_csrq(rows: pd.DataFrame) -> pd.Series:
    """JZGJBXX: 来校日期 is not before 出生日期."""
    return ~(_dates(rows["LXRQ"]) < _dates(rows["CSRQ"]))


def nj_is_year_of_rxrq(rows: pd.DataFrame) -> pd.Series:
    """XSJBXX: 年级 is the four-digit year of 入学日期."""
    entered = _dates(rows["RXRQ"])
    return entered.isna() | (rows["NJ"].astype(str) == entered.dt.strftime("%Y"))


def sfzx_matches_status(rows: pd.DataFrame) -> pd.Series:
    """XSJBXX: 是否在校 is 1 exactly when 学生当前状态 is 01 在读 or 05 复学."""
    judged = _present(rows["SFZX"]) & _present(rows["XSDQZTM"])
    at_school = rows["XSDQZTM"].isin(["01", "05"])
    return ~judged | ((rows["SFZX"] == "1") == at_school)


def major_change_names_both(rows: pd.DataFrame) -> pd.Series:
    """XJYD: a 转专业 (23) names the major before and after, and they differ."""
    before, after = rows["YDQZYDM"], rows["YDHZYDM"]
    return (rows["YDLBM"] != "23") | (_present(before) & _present(after) & (before != after))


def period_in_year(rows: pd.DataFrame) -> pd.Series:
    """CWKMYE: 会计期间 is 01..12."""
    return ~_present(rows["KJQJ"]) | rows["KJQJ"].isin([f"{m:02d}" for m in range(1, 13)])


def balance_identity(rows: pd.DataFrame) -> pd.Series:
    """CWKMYE: closing = opening + debits - credits (借), or opening - debits + credits (贷), to the cent."""

    def keeps(start, debit, credit, end, direction) -> bool:
        amounts = [_decimal(v) for v in (start, debit, credit, end)]
        if None in amounts or direction not in ("J", "D"):
            return True
        start, debit, credit, end = amounts
        return end == (start + debit - credit if direction == "J" else start - debit + credit)

    columns = [rows[c] for c in ("QCYE", "JFFSE", "DFFSE", "QMYE", "YEFX")]
    return pd.Series([keeps(*values) for values in zip(*columns, strict=True)], index=rows.index, dtype=bool)


def asset_value_not_negative(rows: pd.DataFrame) -> pd.Series:
    """GDZC: 价值 JZ >= 0."""
    value = pd.to_numeric(rows["JZ"], errors="coerce")
    return ~(value < 0)


def asset_count_at_least_one(rows: pd.DataFrame) -> pd.Series:
    """GDZC: 数量 SL >= 1."""
    count = pd.to_numeric(rows["SL"], errors="coerce")
    return ~(count < 1)


def _resident_ids(rows: pd.DataFrame) -> pd.Series:
    """The rows whose 身份证件号 is a valid 公民身份号码 of a 居民身份证 holder."""
    checks = load_profile().person_checks
    resident = rows[checks.id_type] == checks.resident_id_type
    valid = rows[checks.id_number].map(lambda v: isinstance(v, str) and is_valid_ric(v)).astype(bool)
    return resident & valid


def birth_date_matches_id(rows: pd.DataFrame) -> pd.Series:
    """PX-W102: 出生日期 equals the birth date inside a valid 公民身份号码."""
    checks = load_profile().person_checks
    number = rows[checks.id_number].astype(str).str.upper()
    inside = pd.to_datetime(number.str.slice(6, 14), format="%Y%m%d", errors="coerce")
    birth = _dates(rows[checks.birth_date])
    judged = _resident_ids(rows) & birth.notna() & inside.notna()
    return ~judged | (birth == inside)


def sex_matches_id(rows: pd.DataFrame) -> pd.Series:
    """PX-W103: 性别码 is the sex the 17th digit of a valid 公民身份号码 gives (odd male, even female)."""
    checks = load_profile().person_checks
    digit = pd.to_numeric(rows[checks.id_number].astype(str).str.slice(16, 17), errors="coerce")
    expected = digit.mod(2).map({1: checks.sex_odd, 0: checks.sex_even})
    judged = _resident_ids(rows) & expected.notna()
    return ~judged | (rows[checks.sex] == expected)


def age_in_range(rows: pd.DataFrame, as_of: date | None = None) -> pd.Series:
    """PX-W101: the person is between the profile's ages (15..100) on the as-of date."""
    checks = load_profile().person_checks
    as_of = as_of or date.today()
    birth = _dates(rows[checks.birth_date])
    before_birthday = (birth.dt.month > as_of.month) | (
        (birth.dt.month == as_of.month) & (birth.dt.day > as_of.day)
    )
    age = as_of.year - birth.dt.year - before_birthday.astype(int)
    return birth.isna() | age.between(checks.min_age, checks.max_age)


# 培养层次码 (JY/T 1001) -> the 学制 in years it allows (CDX-W201).
STUDY_YEARS = {"1": (3, 6), "2": (2, 3), "3": (4, 5), "4": (2, 3)}


def xz_fits_pycc(rows: pd.DataFrame) -> pd.Series:
    """CDX-W201: 学制 XZ within the years STUDY_YEARS gives the 培养层次 PYCCM."""
    years = pd.to_numeric(rows["XZ"], errors="coerce")
    low = rows["PYCCM"].map({level: span[0] for level, span in STUDY_YEARS.items()})
    high = rows["PYCCM"].map({level: span[1] for level, span in STUDY_YEARS.items()})
    judged = years.notna() & low.notna()
    return ~judged | years.between(low, high)


ROW_RULES: dict[str, RowRule] = {
    "lxrq_not_before_csrq": lxrq_not_before_csrq,
    "nj_is_year_of_rxrq": nj_is_year_of_rxrq,
    "sfzx_matches_status": sfzx_matches_status,
    "major_change_names_both": major_change_names_both,
    "period_in_year": period_in_year,
    "balance_identity": balance_identity,
    "asset_value_not_negative": asset_value_not_negative,
    "asset_count_at_least_one": asset_count_at_least_one,
    "birth_date_matches_id": birth_date_matches_id,
    "sex_matches_id": sex_matches_id,
    "age_in_range": age_in_range,
    "xz_fits_pycc": xz_fits_pycc,
}
