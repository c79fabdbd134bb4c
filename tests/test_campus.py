"""The simulated campus: deterministic, with its own local codes and exactly the recorded dirt."""

import csv
import json
import sqlite3
from collections import Counter
from decimal import Decimal

import pytest

from campusdx.core.declarations import load_systems
from campusdx.core.idnumbers import is_valid_ric
from campusdx.demo.campus import DOCTORAL_MAJORS, SYSTEMS, generate, sizes_for
from campusdx.demo.life import advance

KEY_COLUMN = {"hr_staff": "staff_no", "xg_xsxx": "xh", "zc_kp": "zcbh"}


@pytest.fixture(scope="module")
def campus(tmp_path_factory):
    """The demo-size campus (the one `make demo` generates) and its ground truth."""
    home = tmp_path_factory.mktemp("campus")
    generate(home)
    return home, json.loads((home / "dirt.json").read_text(encoding="utf-8"))


def test_the_simulated_systems_are_the_declared_ones():
    assert sorted(SYSTEMS) == sorted(d.system for d in load_systems())


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
    doctoral = sum(1 for p in campus.people if "student" in p)
    assert len(rows) == campus.sizes["staff"] + campus.sizes["students"] + doctoral
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


def test_every_kind_of_dirt_is_present_and_recorded_as_the_source_holds_it(campus):
    home, truth = campus
    kinds = {d["kind"] for d in truth["dirt"]}
    assert kinds >= {
        "invalid_id_check_digit",
        "id_lower_x",
        "id_full_width",
        "name_spaces",
        "date_slashes",
        "date_compact",
        "date_chinese",
        "date_zero",
        "unknown_code",
        "duplicate_key",
        "orphan_department",
        "orphan_custodian",
        "required_empty",
        "negative_value",
        "rare_character",
    }
    for d in truth["dirt"]:
        assert d["expect"] == "normalised" or d["expect"].startswith("CDX-"), d
        if d["table"] not in KEY_COLUMN:
            continue
        with sqlite3.connect(home / f"{d['system']}.sqlite") as conn:
            (held,) = conn.execute(
                f"select {d['field']} from {d['table']} where {KEY_COLUMN[d['table']]} = ?", [d["key"]]
            ).fetchone()
        if isinstance(held, int | float):  # NUMERIC affinity: SQLite keeps -3469.20 as -3469.2
            assert Decimal(str(held)) == Decimal(d["value"]), d
        else:
            assert held == d["value"], d


def test_duplicate_keys_in_the_inventory_export_are_exactly_the_recorded_ones(campus):
    home, truth = campus
    with open(home / "exports" / "asset" / "zc_pd_20261031.csv", encoding="gbk", newline="") as fh:
        keys = Counter(row["盘点单号"] for row in csv.DictReader(fh))
    repeated = {k for k, n in keys.items() if n > 1}
    assert repeated == {d["key"] for d in truth["dirt"] if d["kind"] == "duplicate_key"}
    assert repeated


def test_staff_studying_for_a_doctorate_are_the_same_person_in_both_systems(campus):
    home, truth = campus
    doctoral = [p for p in truth["people"] if "student" in p]
    assert doctoral, "the demo campus has staff who are PhD students"
    hr = sqlite3.connect(home / "hr.sqlite")
    student = sqlite3.connect(home / "student.sqlite")
    conflicts = {
        (c["id_no"], c["attribute"]): c["values"] for c in truth["conflicts"] if "student" in c["values"]
    }
    for person in doctoral:
        staff = hr.execute(
            "select id_no, name, birth_date, nation from hr_staff where staff_no = ?", [person["hr"]]
        ).fetchone()
        enrolled = student.execute(
            "select zjhm, xm, csrq, mz, zyh from xg_xsxx where xh = ?", [person["student"]]
        ).fetchone()
        assert staff[0] == enrolled[0] == person["id_no"] and staff[3] == enrolled[3]
        for i, attribute in ((1, "full_name"), (2, "birth_date")):
            recorded = conflicts.get((person["id_no"], attribute))
            if recorded:  # an injected conflict: each system holds the value the truth says
                assert (staff[i], enrolled[i]) == (recorded["hr"], recorded["student"]) and staff[
                    i
                ] != enrolled[i]
            else:
                assert staff[i] == enrolled[i]
        assert enrolled[4] in DOCTORAL_MAJORS
        assert is_valid_ric(person["id_no"])
    kinds = {(c["attribute"], tuple(sorted(c["values"]))) for c in truth["conflicts"]}
    assert kinds == {
        ("birth_date", ("hr", "student")),
        ("full_name", ("hr", "student")),
        ("full_name", ("finance", "hr")),
    }


def test_every_staff_member_is_a_payee_under_the_finance_systems_own_number(campus):
    home, truth = campus
    hr = sqlite3.connect(home / "hr.sqlite").execute("select staff_no, name, id_no from hr_staff").fetchall()
    finance = sqlite3.connect(home / "finance.sqlite")
    payees = {
        gh: (no, xm, zjhm) for no, xm, zjhm, gh in finance.execute("select grbh, xm, zjhm, gh from gl_wlgr")
    }
    renamed = {c["id_no"]: c["values"] for c in truth["conflicts"] if "finance" in c["values"]}
    assert {no: id_no for no, _, id_no in hr} == {gh: p[2] for gh, p in payees.items()}
    expected = {no: renamed[id_no]["finance"] if id_no in renamed else name for no, name, id_no in hr}
    assert expected == {gh: p[1] for gh, p in payees.items()}
    assert renamed and all(v["hr"] != v["finance"] for v in renamed.values())
    assert {p["hr"]: p["finance"] for p in truth["people"]} == {gh: p[0] for gh, p in payees.items()}
    paid = {w for (w,) in finance.execute("select distinct wldw from gl_fl where wldw is not null")}
    assert paid and paid <= {p[0] for p in payees.values()}, "ledger lines name payees by 个人编号"


def test_hr_titles_come_in_the_spellings_people_type(campus):
    home, _ = campus
    titles = {
        t for (t,) in sqlite3.connect(home / "hr.sqlite").execute("select distinct title from hr_staff")
    }
    assert {"副教授", "副 教授", "副教授（高校）"} <= titles


def test_advance_drops_new_asset_exports(tmp_path):
    generate(tmp_path, scale=0.002)
    book = (tmp_path / "exports" / "asset" / "zc_fj.xlsx").read_bytes()
    urls = {s: f"sqlite:///{tmp_path / s}.sqlite" for s in SYSTEMS}
    counts = advance(urls, 30, tmp_path / "clock.json")
    files = sorted(p.name for p in (tmp_path / "exports" / "asset").glob("zc_pd_*.csv"))
    assert len(files) > 1, "inventory checks exported while the days pass"
    new_rows = 0
    for name in files[1:]:
        with open(tmp_path / "exports" / "asset" / name, encoding="gbk", newline="") as fh:
            new_rows += sum(1 for _ in csv.DictReader(fh))
    assert new_rows == counts["asset.zc_pd exported"]
    assert ((tmp_path / "exports" / "asset" / "zc_fj.xlsx").read_bytes() != book) == bool(
        counts["asset.zc_fj updated"]
    )


@pytest.mark.parametrize("scale", [None, 0.03])
def test_a_day_brings_what_a_university_of_the_campus_size_records(tmp_path, scale):
    """A working day posts a year's vouchers over 250 days (the generated ledger holds three
    years), each balanced; a weekend day a twentieth of that; the asset office buys a tenth of
    its register a year. Counts are rounded at random: within one of the mean."""
    from campusdx.demo.life import LEDGER_YEARS, WEEKEND_SHARE, WORKING_DAYS

    generate(tmp_path, scale=scale)
    finance = sqlite3.connect(tmp_path / "finance.sqlite")
    vouchers = finance.execute("select count(*) from gl_pz").fetchone()[0]
    cards = sqlite3.connect(tmp_path / "asset.sqlite").execute("select count(*) from zc_kp").fetchone()[0]
    urls = {s: f"sqlite:///{tmp_path / s}.sqlite" for s in ("finance", "asset")}
    clock = tmp_path / "clock.json"
    for day, share in (("2026-11-02", 1), ("2026-11-07", WEEKEND_SHARE)):  # a Monday, a Saturday
        clock.write_text(json.dumps(dict.fromkeys(urls, day)), encoding="utf-8")
        counts = advance(urls, 1, clock)
        posted = counts["finance.gl_pz inserted"]
        assert abs(posted - vouchers / LEDGER_YEARS / WORKING_DAYS * share) < 1, (day, posted)
        assert abs(counts["asset.zc_kp inserted"] - cards / 10 / WORKING_DAYS * share) < 1, day
    lines = finance.execute(
        "select pzid, sum(cast(jfje as decimal(18, 2))), sum(cast(dfje as decimal(18, 2))), count(*) "
        "from gl_fl where pzid > ? group by pzid",
        (vouchers,),
    ).fetchall()
    assert lines and all(round(dr, 2) == round(cr, 2) and 2 <= n <= 4 for _, dr, cr, n in lines)
