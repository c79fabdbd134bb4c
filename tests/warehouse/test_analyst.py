"""What analysts are given: the analyst schema (no names, masked 身份证件号), the restricted
schema, and the README's example questions answered on a built warehouse opened read-only."""

from __future__ import annotations

import json
import re

from campusdx.core.settings import REPO_ROOT
from tests.warehouse.conftest import dbt

PERSONAL = {"full_name", "id_number", "birth_date", "k_person", "person_key", "fact_value", "chosen_value"}


def _columns(built, schema: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table, column in built.rows(
        "select table_name, column_name from information_schema.columns where table_schema = ?", schema
    ):
        found.setdefault(table, set()).add(column)
    return found


def test_analyst_views_hold_no_names_and_only_masked_id_numbers(warehouse):
    views = _columns(warehouse, "analyst")
    assert {"persons", "students", "staff", "orgs", "majors", "stats_students"} <= views.keys()
    leaking = {view: columns & PERSONAL for view, columns in views.items() if columns & PERSONAL}
    assert leaking == {}, "names and full numbers only in the restricted schema"
    masked = warehouse.rows(
        "select id_number_masked from analyst.students where id_number_masked is not null"
    )
    full = {
        r[0] for r in warehouse.rows("select id_number from marts.dim_student where id_number is not null")
    }
    assert masked and all(re.fullmatch(r"[0-9]{6}\*{12}|[^*]{0,2}\*+", m) for (m,) in masked)
    assert not {m for (m,) in masked} & full

    def mask(n: str) -> str:  # 居民身份证号: the 行政区划 only; else at most 2 and a quarter
        shown = 6 if re.fullmatch(r"[0-9]{17}[0-9X]", n) else min(2, len(n) // 4)
        return n[:shown] + "*" * (len(n) - shown)

    assert {mask(n) for n in full} == {m for (m,) in masked}


def test_restricted_views_hold_what_analysts_do_not_see(warehouse):
    views = _columns(warehouse, "restricted")
    assert {"full_name", "id_number"} <= views["persons"] and "full_name" in views["students"]
    assert warehouse.rows("select count(*) from restricted.persons") == warehouse.rows(
        "select count(*) from analyst.persons"
    )


def _readme_queries() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## For analysts", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_the_readme_questions_are_answered_on_the_read_only_warehouse(warehouse):
    queries = _readme_queries()
    assert len(queries) == 3
    with warehouse.connect() as conn:  # read_only=True: nothing writes now
        answers = [conn.execute(q).fetchall() for q in queries]
    assert all(answers), "each question has an answer on the demo campus"
    undergraduates = {major: n for major, _, n in answers[0]}
    in_study_on_day = warehouse.rows(
        "select count(*) from analyst.students where valid_from <= date '2026-09-01' "
        "and (valid_to is null or valid_to > date '2026-09-01') "
        "and training_level_code = '3' and student_status_code = '01'"
    )[0][0]
    assert sum(undergraduates.values()) == in_study_on_day > 0
    doctoral_staff = sum(n for _, n in answers[1])
    people = warehouse.dirt["people"]
    assert doctoral_staff == sum(1 for p in people if "student" in p)


def test_dbt_docs_generate_catalogues_every_mart_and_feed(warehouse):
    """`dbt docs generate` works on the built warehouse and its catalog holds the marts' columns."""
    dbt(warehouse.home, "docs", "generate")
    target = warehouse.home / "dbt-target"
    catalog = json.loads((target / "catalog.json").read_text(encoding="utf-8"))
    assert not catalog.get("errors"), catalog.get("errors")
    names = {n["metadata"]["name"]: n for n in catalog["nodes"].values()}
    for model in ("dim_person", "dim_student", "fct_ledger_entry", "dim_asset", "feed_px__xsjbxx"):
        assert model in names, model
    assert "valid_from" in {c.lower() for c in names["dim_student"]["columns"]}
    assert (target / "index.html").stat().st_size > 10_000
