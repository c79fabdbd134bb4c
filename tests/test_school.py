"""The school coding standard (schemas/school): it loads, refuses broken edits with a message naming
the file and entry, the demo campus's codes follow it, and the dbt test follows_school_rule fails
exactly the values that break a rule."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from campusdx.core.idnumbers import is_valid_ric
from campusdx.core.school import SchoolStandardError, check_org_tree, load_standard
from campusdx.core.settings import DBT_PROJECT, SCHEMAS, executable
from campusdx.demo.campus import DOCTORAL_MAJORS, MAJORS, ORPHAN_STAFF_NO, SYSTEMS, generate

SCHOOL = SCHEMAS / "school"
RULES = ("SCH-XQ", "SCH-DWH", "SCH-GH", "SCH-ZYH", "SCH-XH", "SCH-XH-BK", "SCH-XH-YJS")
RULES += ("SCH-BH", "SCH-LY", "SCH-FJH", "SCH-FJ")


@pytest.fixture(scope="module")
def standard():
    return load_standard()


def test_standard_loads_with_every_rule_and_campus(standard):
    assert set(standard.rules) == set(RULES)
    assert standard.campuses.keys() == {"01", "02"}
    assert standard.info["owner"] == "信息化建设与管理处"
    assert standard.info["school_code"] == "4161010704"
    assert standard.org["root"] == "001"


def test_seed_and_standard_agree_on_the_rule_ids():
    with (SCHOOL / "school_code_rules.csv").open(encoding="utf-8") as fh:
        seed = [row["code"] for row in csv.DictReader(fh)]
    described = yaml.safe_load((SCHOOL / "standard.yml").read_text(encoding="utf-8"))["codes"]
    assert seed == list(described)


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (
            "SCH-GH",
            ["19900000", "20251234"],
            ["2025123", "202512345", "18991234", "2025123X", "２０２５１２３４"],
        ),
        ("SCH-DWH", ["001", "101", "210", "501", "901"], ["000", "002", "100", "601", "1010", "01"]),
        ("SCH-XH", ["22010100001", "24950100123"], ["2201010000", "22000100001", "22010000001"]),
        ("SCH-LY", ["01001", "02999"], ["01000", "0100", "010001"]),
        ("SCH-FJ", ["01001101", "02002999"], ["01001001", "0100110", "01001100"]),
    ],
)
def test_patterns_accept_and_refuse(standard, rule, good, bad):
    assert [v for v in good if not standard.follows(rule, v)] == []
    assert [v for v in bad if standard.follows(rule, v)] == []
    assert not standard.follows(rule, None)


# --- broken edits are refused, naming the file and the entry ---------------------------------


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "school"
    shutil.copytree(SCHOOL, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _refused(directory: Path) -> str:
    with pytest.raises(SchoolStandardError) as caught:
        load_standard(directory)
    return str(caught.value)


def test_the_copy_loads_unchanged(copy):
    assert set(load_standard(copy).rules) == set(RULES)


def test_a_pattern_that_does_not_compile_is_refused(copy):
    _edit(copy / "school_code_rules.csv", ",(19|20)[0-9]{2}[0-9]{4},", ",(19|20[0-9]{2}[0-9]{4},")
    message = _refused(copy)
    assert "school_code_rules.csv:4" in message and "SCH-GH" in message and "does not compile" in message


def test_a_pattern_only_python_understands_is_refused(copy):
    _edit(copy / "school_code_rules.csv", ",[0-9]{2},", ",(?=[0-9])[0-9]{2},")
    message = _refused(copy)
    assert "standard.yml: codes.SCH-XQ" in message and "DuckDB" in message


def test_an_unknown_campus_is_refused(copy):
    _edit(copy / "standard.yml", 'examples: ["01001", "01004", "02002"]', 'examples: ["01001", "03002"]')
    message = _refused(copy)
    assert "standard.yml: codes.SCH-LY" in message
    assert "'03' is not in campuses.csv" in message


def test_a_campus_removed_while_still_referenced_is_refused(copy):
    _edit(copy / "campuses.csv", "02,临潼校区,陕西省西安市临潼区\n", "")
    message = _refused(copy)
    assert "codes.SCH-XQ" in message and "'02' is not in campuses.csv" in message
    assert "codes.SCH-FJ" in message or "codes.SCH-LY" in message


def test_a_duplicate_rule_id_is_refused(copy):
    with (copy / "school_code_rules.csv").open("a", encoding="utf-8") as fh:
        fh.write("SCH-GH,工号（旧）,人事,[0-9]{6},旧的六位工号。\n")
    message = _refused(copy)
    assert "school_code_rules.csv:13: duplicate rule ID 'SCH-GH' (first on line 4)" in message


def test_a_duplicate_campus_is_refused(copy):
    with (copy / "campuses.csv").open("a", encoding="utf-8") as fh:
        fh.write("01,骊山校区,陕西省西安市临潼区\n")
    assert "campuses.csv:4: duplicate campus '01' (first on line 2)" in _refused(copy)


def test_an_example_its_pattern_rejects_is_refused(copy):
    _edit(copy / "standard.yml", 'examples: ["19900000", "20250035", "19990999"]', 'examples: ["2025035"]')
    message = _refused(copy)
    assert "standard.yml: codes.SCH-GH: example '2025035' does not match its own pattern" in message


def test_a_rule_without_details_and_details_without_rule_are_refused(copy):
    _edit(copy / "standard.yml", "  SCH-FJH:\n", "  SCH-FJX:\n")
    message = _refused(copy)
    assert "codes: no entry for rule SCH-FJH" in message
    assert "codes.SCH-FJX: not a rule of school_code_rules.csv" in message


def test_an_unquoted_code_is_refused(copy):
    _edit(copy / "standard.yml", 'examples: ["01", "02"]', "examples: [01, 02]")
    assert "codes.SCH-XQ.examples: expected a list of quoted strings" in _refused(copy)


def test_a_px_field_that_does_not_exist_is_refused(copy):
    _edit(copy / "standard.yml", "px_fields: [JZGJBXX.GH, GDZC.SYRGH]", "px_fields: [JZGJBXX.GHH]")
    assert "codes.SCH-GH: px_fields: 'JZGJBXX.GHH' is not a field" in _refused(copy)


# --- the organisation tree rules --------------------------------------------------------------

TREE = [("001", None, "90"), ("101", "001", "10"), ("201", "001", "20"), ("401", "001", "40")]


def test_a_good_tree_has_no_problem(standard):
    assert check_org_tree(TREE, standard) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ([("202", None, "20")], "SCH-DWH-T1: 单位号 '202' has no 上级单位号"),
        ([("202", "299", "20")], "SCH-DWH-T3: 单位号 '202': 上级单位号 '299' does not exist"),
        ([("301", "302", "30"), ("302", "301", "30")], "SCH-DWH-T4: cycle of 上级单位号: 301 -> 302 -> 301"),
        ([("302", "001", "20")], "SCH-DWH-T5: 单位号 '302' has 单位类别码 '20'; its first digit means '30'"),
        ([("101", "001", "10")], "SCH-DWH-T2: 单位号 '101' appears more than once"),
        ([("2010", "001", "20")], "SCH-DWH-T2: 单位号 '2010' does not follow SCH-DWH"),
    ],
)
def test_a_broken_tree_is_reported(standard, change, expected):
    problems = check_org_tree(TREE + change, standard)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_tree_without_its_root_is_reported(standard):
    assert check_org_tree(TREE[1:], standard)[0].startswith("SCH-DWH-T1: the root '001'")


# --- the demo campus follows the standard -----------------------------------------------------


@pytest.fixture(scope="module")
def campus(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("campus")
    generate(home)
    return home


def _rows(campus: Path, system: str, sql: str) -> list[tuple]:
    with sqlite3.connect(campus / f"{system}.sqlite") as conn:
        return conn.execute(sql).fetchall()


def _breaking(standard, rule: str, values) -> list:
    return sorted({v for v in values if v is not None and not standard.follows(rule, v)})


def _crosswalk(name: str, field: str) -> dict[str, str]:
    with (SCHEMAS / "crosswalks" / f"{name}.csv").open(encoding="utf-8") as fh:
        return {r["source_value"]: r["code"] for r in csv.DictReader(fh) if r["field"] == field}


def test_demo_org_tree_and_unit_codes_follow_the_standard(standard, campus):
    orgs = _rows(campus, "hr", "select org_id, parent_id, org_kind, campus from hr_org")
    kinds = _crosswalk("xwalk_hr", "org_kind")
    assert check_org_tree([(o, p, kinds.get(k)) for o, p, k, _ in orgs], standard) == []
    assert {c for *_, c in orgs} <= standard.campuses.keys()
    staff_orgs = [r[0] for r in _rows(campus, "hr", "select org_id from hr_staff")]
    ledger = [r[0] for r in _rows(campus, "finance", "select bmdm from gl_fl")]
    cards = [r[0] for r in _rows(campus, "asset", "select sydw from zc_kp")]
    assert _breaking(standard, "SCH-DWH", staff_orgs + ledger + cards) == []


def test_demo_staff_numbers_follow_the_standard(standard, campus):
    staff = [r[0] for r in _rows(campus, "hr", "select staff_no from hr_staff")]
    payees = [r[0] for r in _rows(campus, "finance", "select gh from gl_wlgr")]
    assert len(staff) == 300
    assert _breaking(standard, "SCH-GH", staff + payees) == []


def test_the_orphan_custodian_is_well_formed_but_never_issued(standard, campus):
    """19990999 is a 1999-series number with a 4-digit sequence: the format is right, so SCH-GH
    cannot catch it; what is wrong is that 人事 never issued it (CDX-E016, the reference
    GDZC.SYRGH -> JZGJBXX.GH)."""
    dirt = json.loads((campus / "dirt.json").read_text(encoding="utf-8"))["dirt"]
    orphans = {d["value"] for d in dirt if d["kind"] == "orphan_custodian"}
    assert orphans == {ORPHAN_STAFF_NO}
    custodians = {r[0] for r in _rows(campus, "asset", "select syr from zc_kp")}
    assert ORPHAN_STAFF_NO in custodians
    assert standard.follows("SCH-GH", ORPHAN_STAFF_NO)
    assert _breaking(standard, "SCH-GH", custodians) == []
    assert ORPHAN_STAFF_NO not in {r[0] for r in _rows(campus, "hr", "select staff_no from hr_staff")}


def test_demo_student_numbers_follow_the_standard(standard, campus):
    students = _rows(campus, "student", "select xh, zyh, nj, bh from xg_xsxx")
    doctoral = [s for s in students if s[1].startswith("9")]
    undergraduates = [s for s in students if not s[1].startswith("9")]
    assert doctoral and undergraduates
    assert _breaking(standard, "SCH-XH", [s[0] for s in students]) == []
    assert _breaking(standard, "SCH-XH-BK", [s[0] for s in undergraduates]) == []
    assert _breaking(standard, "SCH-XH-YJS", [s[0] for s in doctoral]) == []
    assert [s[0] for s in undergraduates if standard.follows("SCH-XH-YJS", s[0])] == []
    assert _breaking(standard, "SCH-BH", [s[3] for s in students]) == []
    # the 学号 carries the 年级 and the 校内专业号 it was issued under (the generator issues none later)
    assert [s[0] for s in students if s[0][:2] != s[2][-2:] or s[0][2:6] != s[1]] == []
    changes = _rows(campus, "student", "select xh, ydqzy, ydhzy from xg_xjyd")
    assert _breaking(standard, "SCH-XH", [c[0] for c in changes]) == []
    assert _breaking(standard, "SCH-ZYH", [z for c in changes for z in c[1:]]) == []


def test_demo_majors_follow_the_standard_and_the_crosswalk_maps_them(standard, campus):
    majors = _rows(campus, "student", "select zyh, yxdm, cc from xg_zy")
    assert _breaking(standard, "SCH-ZYH", [m[0] for m in majors]) == []
    # 本科: first two digits = the college's 单位号 without its family digit; 研究生: 9 + its last digit
    assert [z for z, (_, college, *_) in MAJORS.items() if z[:2] != college[1:]] == []
    assert [z for z, (_, college, *_) in DOCTORAL_MAJORS.items() if z[:2] != "9" + college[2]] == []
    mapped = _crosswalk("xwalk_student", "major")
    assert _breaking(standard, "SCH-ZYH", mapped) == []
    assert {m[0] for m in majors} == mapped.keys()


def test_demo_buildings_and_rooms_follow_the_standard(standard, campus):
    from openpyxl import load_workbook

    buildings = _rows(campus, "asset", "select lydm, xqdm from zc_ly")
    assert _breaking(standard, "SCH-LY", [b[0] for b in buildings]) == []
    assert [b for b in buildings if b[0][:2] != b[1] or b[1] not in standard.campuses] == []
    placed = [r[0] for r in _rows(campus, "asset", "select cfdd from zc_kp")]
    assert _breaking(standard, "SCH-LY", placed) == []
    book = load_workbook(campus / "exports" / "asset" / "zc_fj.xlsx", read_only=True)
    header, *rooms = list(book["房间"].iter_rows(values_only=True))
    at = {name: i for i, name in enumerate(header)}
    codes = [r[at["房间编码"]] for r in rooms]
    assert len(codes) == 90
    assert _breaking(standard, "SCH-FJ", codes) == []
    assert _breaking(standard, "SCH-FJH", [r[at["房间号"]] for r in rooms]) == []
    assert {r[at["楼宇代码"]] for r in rooms} == {b[0] for b in buildings}
    assert [c for c, r in zip(codes, rooms, strict=True) if c != r[at["楼宇代码"]] + r[at["房间号"]]] == []


def test_staff_hired_while_the_campus_lives_follow_the_standard(standard, tmp_path):
    from campusdx.demo.life import advance

    generate(tmp_path, scale=0.002)
    before = {r[0] for r in _rows(tmp_path, "hr", "select staff_no from hr_staff")}
    advance({s: f"sqlite:///{tmp_path / s}.sqlite" for s in SYSTEMS}, 10, tmp_path / "clock.json")
    hired = {r[0] for r in _rows(tmp_path, "hr", "select staff_no from hr_staff")} - before
    assert hired
    assert _breaking(standard, "SCH-GH", hired) == []


# --- the dbt generic test follows_school_rule -------------------------------------------------

PROJECT = """
name: school_rule_check
version: "1.0.0"
config-version: 2
profile: school_rule_check
seed-paths: ["seeds"]
macro-paths: ["macros"]
seeds:
  school_rule_check:
    +column_types: {code: varchar, staff_no: varchar, org_id: varchar}
"""
PROPERTIES = """
version: 2
seeds:
  - name: people
    columns:
      - name: staff_no
        data_tests:
          - follows_school_rule: {arguments: {rule: SCH-GH}, name: staff_no_follows}
          - follows_school_rule: {arguments: {rule: SCH-NOPE}, name: unknown_rule}
      - name: org_id
        data_tests:
          - follows_school_rule: {arguments: {rule: SCH-DWH}, name: org_id_follows}
"""
PEOPLE = "staff_no,org_id\n20250001,001\n2025001,201\n2025001,201\n19990999,\nX0250001,501\n,402\n"


def test_the_dbt_test_fails_exactly_the_values_that_break_the_rule(tmp_path):
    project = tmp_path / "project"
    (project / "seeds").mkdir(parents=True)
    (project / "macros").mkdir()
    (project / "dbt_project.yml").write_text(PROJECT, encoding="utf-8")
    (project / "profiles.yml").write_text(
        f"school_rule_check:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n"
        f"      path: '{tmp_path / 'check.duckdb'}'\n      threads: 1\n",
        encoding="utf-8",
    )
    shutil.copy(DBT_PROJECT / "macros" / "tests" / "follows_school_rule.sql", project / "macros")
    shutil.copy(SCHOOL / "school_code_rules.csv", project / "seeds")
    (project / "seeds" / "people.csv").write_text(PEOPLE, encoding="utf-8")
    (project / "seeds" / "_people.yml").write_text(PROPERTIES, encoding="utf-8")
    target = tmp_path / "target"
    result = subprocess.run(
        [executable("dbt"), "build", "--profiles-dir", str(project), "--target-path", str(target)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"},
    )
    assert result.returncode == 1, result.stdout[-3000:]  # the failing tests fail the build
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    outcome = {r["unique_id"].split(".")[2]: (r["status"], r["failures"]) for r in results}
    assert outcome["org_id_follows"] == ("pass", 0)
    assert outcome["staff_no_follows"] == ("fail", 2)  # 2025001 (twice: one failure) and X0250001
    assert outcome["unknown_rule"] == ("fail", 1)


def test_a_malformed_detail_is_refused_naming_its_key(copy):
    _edit(
        copy / "standard.yml", "{chars: 2, name: 类别内顺序号}", "{chars: 0, name: 类别内顺序号, colour: red}"
    )
    _edit(copy / "standard.yml", "  owner: 信息化建设与管理处\n", "")
    message = _refused(copy)
    assert "standard.yml: standard: missing owner" in message
    assert "standard.yml: codes.SCH-DWH.segments.#2.chars: must be greater than 0, not 0" in message
    assert "standard.yml: codes.SCH-DWH.segments.#2: unknown key(s) ['colour']" in message


def test_students_admitted_on_the_enrolment_days_follow_the_standard(standard, tmp_path):
    from campusdx.demo.life import ENROLMENT_DAYS, advance

    generate(tmp_path, scale=0.002)
    undergraduates = _rows(tmp_path, "student", "select count(*) from xg_xsxx where zyh not like '9%'")[0][0]
    (tmp_path / "clock.json").write_text(json.dumps({"student": "2027-08-31"}), encoding="utf-8")
    counts = advance({"student": f"sqlite:///{tmp_path / 'student.sqlite'}"}, 5, tmp_path / "clock.json")
    admitted = _rows(tmp_path, "student", "select xh, zjhm, bh, rxrq, xjzt from xg_xsxx where nj = '2027'")
    # a quarter of the undergraduates, a third of them on each enrolment day (rounded at random)
    assert abs(len(admitted) - undergraduates / 4) <= len(ENROLMENT_DAYS)
    assert len(admitted) == counts["student.xg_xsxx inserted"]
    assert {r[3] for r in admitted} == {f"2027-09-{day:02d}" for day in ENROLMENT_DAYS}
    assert {r[4] for r in admitted} <= {"ZD", "XX"}  # registered, some 休学 already
    assert _breaking(standard, "SCH-XH-BK", [r[0] for r in admitted]) == []
    assert _breaking(standard, "SCH-BH", [r[2] for r in admitted]) == []
    assert [r[1] for r in admitted if not is_valid_ric(r[1])] == []
