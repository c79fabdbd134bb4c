"""Custom Great Expectations for the PX-1.0 rules GX has no built-in for.

Importing this module registers the metrics and expectations with GX. The checks themselves
are the profile's own (``campusdx.core.profile``) and python-stdnum's, so the gate, the
publisher's pre-send check and the province simulator judge a value the same way.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)

from campusdx.core.codes import load_code_sets
from campusdx.core.idnumbers import is_valid_ric
from campusdx.core.profile import FieldType, load_profile
from campusdx.quality.row_rules import ROW_RULES, age_in_range


@cache
def code_set(code_set_id: str) -> tuple:
    """(CodeSet, codes) for a code set id: the profile's rule and the school's code list."""
    profile = load_profile()
    spec = profile.code_sets[code_set_id]
    codes = spec.codes if spec.codes is not None else load_code_sets().get(code_set_id)
    if codes is None:
        raise KeyError(f"code set {code_set_id} has no code list in schemas/codes/code_sets.yml")
    return spec, frozenset(codes)


# True: judge every value row by row (the benchmark's whole-table baseline, benchmarks/gate_bench.py)
ROW_BY_ROW = False


def _per_distinct(column: pd.Series, predicate) -> pd.Series:
    """``predicate`` of each value, computed once per distinct value (dates and codes repeat)."""
    text = column.astype(str)
    if ROW_BY_ROW:
        return text.map(predicate).astype(bool)
    verdicts = {value: bool(predicate(value)) for value in text.unique()}
    return text.map(verdicts).astype(bool)


def formats_ok(values: pd.Series, kind: FieldType) -> pd.Series:
    """``kind.format_error(v) is None`` for each value, vectorised: a strict pattern (and, for
    dates, pandas' own calendar check) accepts the well-formed bulk at once; each value it does
    not accept is judged one by one by ``format_error``, so the answer is exact."""
    if kind.kind in ("date", "datetime"):
        shape, layout = (
            ("[0-9]{4}-[0-9]{2}-[0-9]{2}", "%Y-%m-%d")
            if kind.kind == "date"
            else ("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", "%Y-%m-%d %H:%M:%S")
        )
        parsed = pd.to_datetime(values, format=layout, errors="coerce")  # pandas knows a year 0; Python not
        fast = values.str.fullmatch(shape) & parsed.notna() & (values.str.slice(0, 4) != "0000")
    elif kind.kind == "integer":
        fast = values.str.fullmatch("-?[0-9]+")
    elif kind.kind == "decimal":
        digits = kind.precision - kind.scale
        whole = f"(?:0+|0*[1-9][0-9]{{0,{digits - 1}}})" if digits > 0 else "0+"
        fraction = f"(?:\\.[0-9]{{1,{kind.scale}}})?" if kind.scale else ""
        fast = values.str.fullmatch(f"-?{whole}{fraction}")
    else:
        return pd.Series(True, index=values.index)
    fast = fast.fillna(False).astype(bool)
    slow = ~fast
    if slow.any():
        fast[slow] = values[slow].map(lambda v: kind.format_error(v) is None)
    return fast.astype(bool)


class ColumnValuesValidCnRic(ColumnMapMetricProvider):
    """True where a value is a valid 公民身份号码 (GB 11643: check digit, birth date, region)."""

    condition_metric_name = "column_values.valid_cn_ric"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return _per_distinct(column, is_valid_ric)


class ExpectColumnValuesToBeValidCnRic(ColumnMapExpectation):
    """Expect column values to be valid Chinese resident identity numbers (python-stdnum)."""

    map_metric: ClassVar[str] = "column_values.valid_cn_ric"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
    library_metadata: ClassVar[dict] = {
        "maturity": "production",
        "tags": ["campusdx", "pii"],
        "contributors": [],
    }


class ColumnValuesInPxCodeSet(ColumnMapMetricProvider):
    """True where a value belongs to a PX code set (with the set's prefix/suffix rule)."""

    condition_metric_name = "column_values.in_px_code_set"
    condition_value_keys = ("code_set",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, code_set, **kwargs):
        spec, codes = globals()["code_set"](code_set)
        return _per_distinct(column, lambda v: spec.matches(v, codes))


class ExpectColumnValuesToBeInPxCodeSet(ColumnMapExpectation):
    """Expect column values to be codes of the named PX code set (schemas/codes/)."""

    code_set: str
    map_metric: ClassVar[str] = "column_values.in_px_code_set"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "code_set")
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["campusdx"], "contributors": []}


class ColumnValuesMatchPxType(ColumnMapMetricProvider):
    """True where a value has the format of its PX type (date, datetime, decimal, integer)."""

    condition_metric_name = "column_values.match_px_type"
    condition_value_keys = ("px_type",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, px_type, **kwargs):
        kind = FieldType.parse(px_type)
        if ROW_BY_ROW:
            return _per_distinct(column, lambda v: kind.format_error(v) is None)
        return formats_ok(column.astype(str), kind)


class ExpectColumnValuesToMatchPxType(ColumnMapExpectation):
    """Expect column values to have the format PX-1.0 gives their type."""

    px_type: str
    map_metric: ClassVar[str] = "column_values.match_px_type"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "px_type")
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["campusdx"], "contributors": []}


class MulticolumnValuesKeepPxRule(MulticolumnMapMetricProvider):
    """True where a row keeps a business rule of ``campusdx.quality.row_rules`` (by name)."""

    condition_metric_name = "multicolumn_values.keep_px_rule"
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )
    condition_value_keys = ("rule", "as_of")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, rule, as_of=None, **kwargs):
        if rule == "age_in_range":
            return age_in_range(column_list, date.fromisoformat(as_of) if as_of else None)
        return ROW_RULES[rule](column_list)


class ExpectRowsToKeepPxRule(MulticolumnMapExpectation):
    """Expect every row to keep the named business rule over the listed fields."""

    rule: str
    as_of: str | None = None
    ignore_row_if: str = "never"
    map_metric: ClassVar[str] = "multicolumn_values.keep_px_rule"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "rule", "as_of", "ignore_row_if")
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["campusdx"], "contributors": []}


# Keys a reference may name, per target ("ZZJG.DWH"), set by the gate before it validates a
# dataset (the referenced dataset's rows that will be sent). Kept out of the expectation's
# arguments so the suite and Data Docs do not carry tens of thousands of keys.
REFERENCE_KEYS: dict[str, frozenset[str]] = {}


def _in_keys(column: pd.Series, keys: frozenset[str]) -> pd.Series:
    return column.astype(str).isin(keys)


class ColumnValuesResolvePxReference(ColumnMapMetricProvider):
    """True where a value names a key of the referenced dataset that will be on the platform."""

    condition_metric_name = "column_values.resolve_px_reference"
    condition_value_keys = ("target",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, target, **kwargs):
        if target not in REFERENCE_KEYS:
            raise KeyError(f"the keys of {target} were not loaded before validating a reference to it")
        return _in_keys(column, REFERENCE_KEYS[target])


class ExpectColumnValuesToResolvePxReference(ColumnMapExpectation):
    """Expect non-null column values to name a key of the referenced dataset (PX-E016)."""

    target: str
    map_metric: ClassVar[str] = "column_values.resolve_px_reference"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "target")
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["campusdx"], "contributors": []}
