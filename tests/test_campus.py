"""The simulated campus: deterministic, with its own local codes and exactly the recorded dirt."""

import json
import sqlite3

from campusdx.idnumbers import is_valid_ric
from demo.campus import SYSTEMS, generate, sizes_for


def test_same_seed_gives_identical_databases(tmp_path):
    generate(tmp_path / "a", scale=0.002)
    generate(tmp_path / "b", scale=0.002)
    for system in SYSTEMS:
        assert (tmp_path / "a" / f"{system}.sqlite").read_bytes() == (
            tmp_path / "b" / f"{system}.sqlite"
        ).read_bytes()
    assert (tmp_path / "a" / "dirt.json").read_text() == (tmp_path / "b" / "dirt.json").read_text()


def test_other_seed_gives_other_people(tmp_path):
    generate(tmp_path / "a", scale=0.002, seed=1)
    generate(tmp_path / "b", scale=0.002, seed=2)
    names = [
        sqlite3.connect(tmp_path / d / "student.sqlite").execute("select xm from xg_xsxx").fetchall()
        for d in "ab"
    ]
    assert names[0] != names[1]


def test_sizes_follow_scale():
    assert sizes_for(None)["students"] == 2000 and sizes_for(None)["staff"] == 300
    assert sizes_for(1)["students"] == 35_000 and sizes_for(1)["assets"] == 150_000


def test_every_id_number_is_valid_except_the_recorded_dirt(tmp_path):
    campus = generate(tmp_path, scale=0.01)
    truth = json.loads((tmp_path / "dirt.json").read_text(encoding="utf-8"))
    dirty = {(d["system"], d["key"]) for d in truth["dirt"] if d["kind"] == "invalid_id_check_digit"}
    assert {s for s, _ in dirty} == {"hr", "student"}, "both systems carry dirt even at small scale"
    rows = [
        ("hr", k, v)
        for k, v in sqlite3.connect(tmp_path / "hr.sqlite").execute("select staff_no, id_no from hr_staff")
    ]
    rows += [
        ("student", k, v)
        for k, v in sqlite3.connect(tmp_path / "student.sqlite").execute("select xh, zjhm from xg_xsxx")
    ]
    assert len(rows) == campus.sizes["staff"] + campus.sizes["students"]
    for system, key, number in rows:
        assert is_valid_ric(number) is ((system, key) not in dirty), (system, key)


def test_systems_keep_their_own_local_codes(tmp_path):
    generate(tmp_path, scale=0.002)
    hr = {
        g for (g,) in sqlite3.connect(tmp_path / "hr.sqlite").execute("select distinct gender from hr_staff")
    }
    student = {
        g
        for (g,) in sqlite3.connect(tmp_path / "student.sqlite").execute("select distinct xbdm from xg_xsxx")
    }
    assert hr <= {"男", "女"} and student <= {"M", "F"}


def test_vouchers_balance(tmp_path):
    generate(tmp_path, scale=0.002)
    unbalanced = (
        sqlite3.connect(tmp_path / "finance.sqlite")
        .execute("select pzid from gl_fl group by pzid having round(sum(jfje) - sum(dfje), 2) != 0")
        .fetchall()
    )
    assert unbalanced == []
