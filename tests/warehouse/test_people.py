"""The warehouse's people, codes and feeds against the simulator's ground truth (dirt.json)."""

from __future__ import annotations

import json
import sqlite3

from campusdx.core.codes import load_code_sets
from campusdx.core.profile import load_profile


def test_unmapped_codes_are_exactly_the_injected_unknown_codes(warehouse):
    injected = [d for d in warehouse.dirt["dirt"] if d["kind"] in ("unknown_code", "orphan_department")]
    assert {d["value"] for d in injected} == {"穿青人", "X299"}, "the demo campus carries both kinds"
    rows = warehouse.rows(
        "select source_system, model_name, source_column, source_value, row_count, first_seen <= last_seen "
        "from audit.unmapped_codes"
    )
    assert {(r[0], r[3]) for r in rows} == {("student", d["value"]) for d in injected}, (
        "all of them, nothing else"
    )
    in_students = {(r[2], r[3]): r[4] for r in rows if r[1] == "stg_student__students"}
    expected: dict[tuple[str, str], int] = {}
    for d in injected:
        expected[(d["field"], d["value"])] = expected.get((d["field"], d["value"]), 0) + 1
    assert in_students == expected, "each value with the number of student rows holding it"
    assert all(r[5] for r in rows)


def test_a_person_in_three_systems_is_one_row_with_all_three_ids(warehouse):
    people = warehouse.dirt["people"]
    in_three = [p for p in people if {"hr", "student", "finance"} <= p.keys()]
    assert in_three, "the demo campus has staff who are PhD students and payees"
    found = {
        r[0]: r[1:]
        for r in warehouse.rows(
            "select id_number, staff_no, student_no, payee_no, len(staff_nos), len(student_nos), "
            "len(payee_nos) from marts.dim_person where id_type_code = '1'"
        )
    }
    for person in people:
        assert found[person["id_no"]][:3] == (person["hr"], person.get("student"), person["finance"])
        assert found[person["id_no"]][3:] == (1, 1 if "student" in person else 0, 1)
    keys = warehouse.rows("select count(*), count(distinct k_person) from marts.dim_person")[0]
    assert keys[0] == keys[1]


def test_every_injected_conflict_is_listed_and_nothing_else(warehouse):
    truth = warehouse.dirt["conflicts"]
    assert {c["attribute"] for c in truth} == {"birth_date", "full_name"}
    injected = {(f"1:{c['id_no']}", c["attribute"]): c["values"] for c in truth}
    listed: dict[tuple[str, str], dict[str, str]] = {}
    for person, attribute, system, value in warehouse.rows(
        "select person_key, attribute, source_system, fact_value from marts.person_conflicts"
    ):
        listed.setdefault((person, attribute), {})[system] = value
    assert listed.keys() == injected.keys(), "every injected conflict, and no other"
    for key, values in injected.items():
        assert values.items() <= listed[key].items(), "each system's value as the source holds it"
        # a third system that agrees with 人事 is listed too, with 人事's value
        assert {v for s, v in listed[key].items() if s not in values} <= {values["hr"]}
    # the declared authority decides: 人事 over 学籍 and 财务
    chosen = warehouse.rows("select distinct chosen_system from marts.person_conflicts")
    assert chosen == [("hr",)]
    believed = dict(
        warehouse.rows(
            "select id_number, cast(birth_date as varchar) from marts.dim_person "
            "where k_person in (select person_key from marts.person_conflicts where attribute = 'birth_date')"
        )
    )
    assert believed == {c["id_no"]: c["values"]["hr"] for c in truth if c["attribute"] == "birth_date"}


def test_every_model_states_its_grain_has_a_tested_key_and_a_description(warehouse):
    manifest = json.loads((warehouse.home / "dbt-target" / "manifest.json").read_text(encoding="utf-8"))
    nodes = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] in ("model", "snapshot") and n["package_name"] == "campusdx"
    ]
    assert len(nodes) > 30
    keyed: set[str] = set()
    for test in manifest["nodes"].values():
        if test["resource_type"] == "test" and test.get("test_metadata", {}).get("name") in (
            "unique",
            "unique_combination",
        ):
            keyed.update(test["depends_on"]["nodes"])
    missing = [
        n["name"] for n in nodes if "grain" not in n["description"].lower() or n["unique_id"] not in keyed
    ]
    assert missing == [], "models without a stated grain or a tested key"


def test_the_seven_feeds_pass_the_structural_part_of_px_1_0(warehouse):
    profile = load_profile()
    code_sets = load_code_sets()
    checked = {}
    with warehouse.connect() as conn:
        for code in profile.dataset_order:
            dataset = profile.dataset(code)
            cursor = conn.execute(f"select * from feeds.feed_px__{code.lower()}")
            header = tuple(c[0] for c in cursor.description)
            assert header == dataset.field_codes, f"{code}: header in the profile's field order"
            rows = cursor.fetchall()
            assert rows, f"{code}: the demo campus fills every feed"
            problems = []
            for row in rows:
                for field, value in zip(dataset.fields, row, strict=True):
                    assert isinstance(value, str), f"{code}.{field.code} is text"
                    if value == "":
                        if field.required:
                            problems.append((field.code, "required", value))
                        continue
                    if field.type.too_long(value):
                        problems.append((field.code, "length", value))
                    elif field.type.format_error(value):
                        problems.append((field.code, "format", value))
                    elif field.code_set:
                        code_set = profile.code_sets[field.code_set]
                        codes = code_set.codes or code_sets.get(field.code_set)
                        ok = (
                            code_set.matches(value, codes) if codes is not None else code_set.format_ok(value)
                        )
                        if not ok:
                            problems.append((field.code, "code set", value))
            assert problems == [], f"{code}: {problems[:5]}"
            checked[code] = len(rows)
    assert set(checked) == {"ZZJG", "ZY", "JZGJBXX", "XSJBXX", "XJYD", "CWKMYE", "GDZC"}


def test_after_30_days_dim_student_holds_both_versions_of_every_changed_student(advanced_warehouse):
    built, before = advanced_warehouse
    after = {r[0]: r for r in built.rows("select * from staging.stg_student__students")}
    columns = [
        r[0]
        for r in built.rows(
            "select column_name from information_schema.columns "
            "where table_schema = 'staging' and table_name = 'stg_student__students' "
            "order by ordinal_position"
        )
    ]
    at = {c: i for i, c in enumerate(columns)}
    changed = [
        k
        for k in before["students"]
        if k in after and after[k][at["modified_at"]] != before["students"][k][at["modified_at"]]
    ]
    assert len(changed) >= 10, "a month of 学籍异动 changes student records"
    versions: dict[str, list[tuple]] = {}
    for row in built.rows(
        "select student_no, valid_from, valid_to, is_current, major_no, student_status_code "
        "from marts.dim_student order by student_no, valid_from"
    ):
        versions.setdefault(row[0], []).append(row[1:])
    for key in changed:
        history = versions[key]
        assert len(history) >= 2, key
        previous, current = history[-2], history[-1]
        assert previous[1] == current[0] == after[key][at["modified_at"]], (
            "one version ends when the next begins"
        )
        assert current[1] is None and current[2] and not previous[2]
        assert previous[3] == before["students"][key][at["major_no"]]
        assert current[3] == after[key][at["major_no"]]
    unchanged = [k for k in before["students"] if k in after and k not in changed]
    assert all(len(versions[k]) == 1 for k in unchanged)


def test_after_30_days_every_status_change_the_simulator_made_is_a_fact(advanced_warehouse):
    built, _ = advanced_warehouse
    with sqlite3.connect(built.home / "sources" / "student.sqlite") as conn:
        made = {r[0]: r[1] for r in conn.execute("select ydbh, ydlb from xg_xjyd")}
    assert any(k.startswith("YD2026") for k in made), "the month's 学籍异动 are there"
    facts = dict(built.rows("select change_no, change_kind_local from staging.stg_student__status_changes"))
    assert facts == made
    in_fact = {
        r[0]
        for r in built.rows(
            "select change_no from marts.fct_student_status_change where change_kind_code is not null"
        )
    }
    assert in_fact == set(made)
