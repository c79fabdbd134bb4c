"""Simulated daily life on the campus: what the source systems see day after day.

``advance(urls, days)`` moves each system's clock forward one day at a time and applies what a
university's systems record in a day: new hires and leavers (人事), 学籍异动 and the student
record changes they cause (学工/学籍), new vouchers and voided ones (财务), purchases, disposals
and mistaken cards removed (资产), and the asset office's export files (a new inventory check
CSV now and then, an edited rooms workbook). Database changes are inserts, updates stamped with
the system's own modification time, and physical deletes, through SQLAlchemy, so the same code
drives the SQLite files of the embedded default and real PostgreSQL or MariaDB databases.

Volumes follow the campus's size, as a real university's do (at scale 1, about 35,000
students, 500,000 vouchers over three years and 150,000 asset cards): a working day posts the
ledger's yearly volume over 250 working days (about 670 vouchers and 2,000 lines at scale 1, five
or so vouchers on the demo's campus), a weekend day a twentieth of that; the asset office buys
and disposes of cards in proportion to its register; on the enrolment days (1 to 3 September)
the student system admits and registers the year's cohort, a quarter of the undergraduates, a
third of it each day (about 2,900 students a day at scale 1). Small counts are rounded at random,
so the demo's small campus still sees a voucher or a purchase most days. Rows go in as batches.

Each system's simulated date is kept in ``clock.json`` beside the simulated campus (the day
after its newest modification timestamp the first time), so advancing twice by 15 days is the
same as advancing once by 30, and the same database and seed give the same changes.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from campusdx.demo.campus import (
    HR_CATEGORY,
    HR_EDUCATION,
    HR_ESTABLISHMENT,
    HR_GENDER,
    HR_POLITICS,
    HR_TITLES,
    MAJORS,
    NATIONS,
    REGIONS,
    ROOM_USES,
    STUDENT_GENDER,
    STUDENT_POLITICS,
    VOUCHER_TEMPLATES,
    _Gen,
    inventory_rows,
    write_inventory,
)

STAMP = {"hr": "modified_at", "student": "gxsj", "finance": "xgsj", "asset": "xgsj"}

WORKING_DAYS = 250
"""Working days a year: a day's volume is a year's over these."""
WEEKEND_SHARE = 0.05
"""What a weekend day brings, as a share of a working day."""
LEDGER_YEARS = 3
"""The years the generated ledger spans (2024 to 2026): its vouchers over these are a year's."""
ENROLMENT_DAYS = (1, 2, 3)
"""The days of September on which the year's cohort registers, a third of it each day."""


class _Day:
    """One system's connection on one simulated day, with typed timestamps."""

    def __init__(
        self,
        conn: sa.Connection,
        today: date,
        g: _Gen,
        counts: Counter,
        system: str,
        exports: Path | None = None,
    ) -> None:
        self.conn, self.today, self.g, self.counts, self.system = conn, today, g, counts, system
        self.exports = exports  # the folder this system's office drops its export files into
        self._types: dict[tuple[str, str], sa.types.TypeEngine] = {}

    def volume(self, per_year: float) -> int:
        """How many of something today brings, of ``per_year`` spread over the working days (a
        weekend day a twentieth of a working day's), rounded at random."""
        return self.rounded(per_year / WORKING_DAYS * (1 if self.today.weekday() < 5 else WEEKEND_SHARE))

    def rounded(self, mean: float) -> int:
        """``mean`` rounded at random (up with the probability of its fraction): on average
        ``mean``, so that a small campus still sees the rare event now and then."""
        whole = int(mean)
        return whole + (1 if self.g.rnd.random() < mean - whole else 0)

    def stamp(self, table: str, column: str, hour: int | None = None) -> object:
        """A moment of today, as the column wants it (text in SQLite, a timestamp elsewhere)."""
        moment = datetime.combine(self.today, datetime.min.time()) + timedelta(
            hours=hour if hour is not None else 8 + self.g.rnd.randrange(10),
            minutes=self.g.rnd.randrange(60),
            seconds=self.g.rnd.randrange(60),
        )
        kind = self._type(table, column)
        return moment if isinstance(kind, sa.DateTime) else moment.strftime("%Y-%m-%d %H:%M:%S")

    def _type(self, table: str, column: str):
        if (table, column) not in self._types:
            for col in sa.inspect(self.conn).get_columns(table):
                self._types[(table, col["name"])] = col["type"]
        return self._types[(table, column)]

    def run(self, sql: str, rows: list[dict] | None = None, **params) -> sa.CursorResult:
        """``sql`` with ``params``, or once per row of ``rows`` (one batch)."""
        return self.conn.execute(sa.text(sql), rows if rows is not None else params)

    def keys(self, sql: str, **params) -> list:
        return [r[0] for r in self.run(sql, **params)]

    def count(self, what: str, n: int = 1) -> None:
        self.counts[f"{self.system}.{what}"] += n


def _clock(conn: sa.Connection, table: str, column: str) -> date:
    newest = conn.execute(sa.text(f"select max({column}) from {table}")).scalar()
    newest = newest if isinstance(newest, datetime) else datetime.fromisoformat(str(newest))
    return newest.date() + timedelta(days=1)


def _hr_day(d: _Day) -> None:
    staff = d.keys("select staff_no from hr_staff order by staff_no")
    if d.g.rnd.random() < 0.3:  # a new hire
        # 工号 (SCH-GH): the year + a sequence; at most one hire a day, numbered 5000 + day of the
        # year, above what the initial campus issues in any year (fewer than 500 even at scale 5)
        number = f"{d.today.year}{5000 + d.today.timetuple().tm_yday:04d}"
        category = d.g.pick(HR_CATEGORY)
        education, degree = d.g.pick(HR_EDUCATION)
        birth = d.g.day(date(1975, 1, 1), date(1998, 12, 31))
        male = d.g.rnd.random() < 0.6
        d.run(
            "insert into hr_staff (staff_no, name, gender, birth_date, nation, id_type, id_no, nationality, "
            "politics, native_place, org_id, category, establishment, education, degree, title, hire_date, "
            "status, modified_at) values (:no, :name, :gender, :birth, :nation, '居民身份证', :id_no, "
            "'中国', :politics, :place, :org, :category, :est, :edu, :degree, :title, :hired, "
            "'在职', :stamp)",
            no=number,
            name=d.g.name(),
            gender=HR_GENDER[0 if male else 1],
            birth=birth.isoformat(),
            nation=d.g.pick(NATIONS),
            id_no=d.g.id_number(birth, male),
            politics=d.g.pick(HR_POLITICS),
            place=d.g.pick(REGIONS),
            org=d.g.pick(["201", "202", "205", "103"]),
            category=category,
            est=HR_ESTABLISHMENT[category],
            edu=education,
            degree=degree,
            title=d.g.pick(HR_TITLES[category]),
            hired=d.today.isoformat(),
            stamp=d.stamp("hr_staff", "modified_at"),
        )
        d.count("hr_staff inserted")
    if staff and d.g.rnd.random() < 0.4:  # a promotion or a leaver
        who = d.g.pick(staff)
        if d.g.rnd.random() < 0.5:
            d.run(
                "update hr_staff set title = '副教授', modified_at = :s where staff_no = :k",
                s=d.stamp("hr_staff", "modified_at"),
                k=who,
            )
        else:
            d.run(
                "update hr_staff set status = '调出', modified_at = :s where staff_no = :k",
                s=d.stamp("hr_staff", "modified_at"),
                k=who,
            )
        d.count("hr_staff updated")
    if staff and d.g.rnd.random() < 0.05:  # a record entered by mistake, removed
        d.run("delete from hr_staff where staff_no = :k", k=d.g.pick(staff))
        d.count("hr_staff deleted")


def _student_day(d: _Day) -> None:
    if d.today.month == 9 and d.today.day in ENROLMENT_DAYS:
        _enrol(d)
    # undergraduates in study (校内专业号 9xxx are doctoral programmes: no 转专业 to a 本科 major)
    students = d.keys("select xh from xg_xsxx where xjzt = 'ZD' and zyh not like '9%' order by xh")
    # 学籍异动 (休学 or 转专业; the record follows): 4 % of the students a year, at least 500
    for changes in range(1, 1 + d.volume(max(500, len(students) * 0.04))):
        if not students:
            break
        xh = d.g.pick(students)
        row = d.run("select yxdm, zyh from xg_xsxx where xh = :k", k=xh).one()
        stamp = d.stamp("xg_xsxx", "gxsj")
        if d.g.rnd.random() < 0.6:
            kind, reason, after_dept, after_major = "休学", "疾病", row.yxdm, row.zyh
            d.run("update xg_xsxx set xjzt = 'XX', gxsj = :s where xh = :k", s=stamp, k=xh)
        else:
            after_major = d.g.pick([m for m in sorted(MAJORS) if m != row.zyh])
            kind, reason, after_dept = "转专业", "个人原因", f"X{MAJORS[after_major][1]}"
            d.run(
                "update xg_xsxx set zyh = :m, yxdm = :y, gxsj = :s where xh = :k",
                m=after_major,
                y=after_dept,
                s=stamp,
                k=xh,
            )
        d.run(
            "insert into xg_xjyd (ydbh, xh, ydlb, ydyy, ydrq, ydqyx, ydhyx, ydqzy, ydhzy, spwh, gxsj) "
            "values (:no, :xh, :kind, :reason, :day, :bd, :ad, :bm, :am, :ref, :s)",
            no=f"YD{d.today:%Y%m%d}{changes:04d}",
            xh=xh,
            kind=kind,
            reason=reason,
            day=d.today.isoformat(),
            bd=row.yxdm,
            ad=after_dept,
            bm=row.zyh,
            am=after_major,
            ref=f"西科大学字〔{d.today.year}〕{changes}号",
            s=stamp,
        )
        d.count("xg_xsxx updated")
        d.count("xg_xjyd inserted")
    if d.g.rnd.random() < 0.1:  # a 学籍异动 recorded twice by mistake, removed
        newest = d.keys("select ydbh from xg_xjyd order by ydbh desc limit 1")
        if newest:
            d.run("delete from xg_xjyd where ydbh = :k", k=newest[0])
            d.count("xg_xjyd deleted")


def _enrol(d: _Day) -> None:
    """One of the enrolment days: a third of the year's cohort (a quarter of the undergraduates)
    admitted and registered, 学号 and 班号 as the school's standard numbers them."""
    year = d.today.year
    earlier = "select count(*) from xg_xsxx where zyh not like '9%' and nj <> :y"  # the other grades
    undergraduates = d.keys(earlier, y=str(year))[0]
    first = d.keys("select count(*) from xg_xsxx where nj = :y", y=str(year))[0]
    majors = sorted(MAJORS)
    admitted = []
    for n in range(first, first + d.rounded(undergraduates / 4 / len(ENROLMENT_DAYS))):
        zyh, male = d.g.pick(majors), d.g.rnd.random() < 0.7
        birth = d.g.day(date(year - 20, 1, 1), date(year - 17, 12, 31))
        admitted.append(
            {
                "xh": f"{year % 100:02d}{zyh}{n:05d}",
                "xm": d.g.name(),
                "xbdm": STUDENT_GENDER[0 if male else 1],
                "csrq": birth.isoformat(),
                "mz": d.g.pick(NATIONS),
                "zjhm": d.g.id_number(birth, male),
                "zzmm": d.g.pick(STUDENT_POLITICS),
                "syd": d.g.pick(REGIONS),
                "yxdm": f"X{MAJORS[zyh][1]}",
                "zyh": zyh,
                "nj": str(year),
                "bh": f"{zyh}{year % 100:02d}{1 + n % 3:02d}",
                "rxrq": d.today.isoformat(),
                "gxsj": d.stamp("xg_xsxx", "gxsj"),
            }
        )
    if admitted:
        d.run(
            "insert into xg_xsxx (xh, xm, xbdm, csrq, mz, zjlx, zjhm, gj, zzmm, syd, yxdm, zyh, nj, bh, "
            "rxrq, xjzt, gxsj) values (:xh, :xm, :xbdm, :csrq, :mz, 'SFZ', :zjhm, 'CHN', :zzmm, :syd, "
            ":yxdm, :zyh, :nj, :bh, :rxrq, 'ZD', :gxsj)",
            admitted,
        )
        d.count("xg_xsxx inserted", len(admitted))


def _finance_day(d: _Day) -> None:
    next_voucher = (d.keys("select max(pzid) from gl_pz")[0] or 0) + 1
    next_line = (d.keys("select max(flid) from gl_fl")[0] or 0) + 1
    staff = d.keys("select distinct wldw from gl_fl where wldw is not null order by 1 limit 200")
    vouchers, lines = [], []
    posted = d.volume(d.keys("select count(*) from gl_pz")[0] / LEDGER_YEARS)
    for pzid in range(next_voucher, next_voucher + posted):
        stamp = d.stamp("gl_pz", "xgsj")
        vouchers.append(
            {
                "id": pzid,
                "y": str(d.today.year),
                "p": f"{d.today.month:02d}",
                "d": d.today.isoformat(),
                "s": stamp,
            }
        )
        debit, credit = d.g.pick(VOUCHER_TEMPLATES)
        payee = d.g.pick(staff) if staff and debit in ("500101", "2201") else None
        amounts = [round(d.g.rnd.uniform(100, 20_000), 2) for _ in range(1 + d.g.rnd.randrange(3))]
        total = sum(round(a * 100) for a in amounts) / 100  # balanced to the fen
        entries = [(debit, amount, 0, payee) for amount in amounts] + [(credit, 0, total, None)]
        for hh, (account, dr, cr, who) in enumerate(entries, start=1):
            lines.append(
                {
                    "id": next_line,
                    "v": pzid,
                    "hh": hh,
                    "k": account,
                    "dr": f"{dr:.2f}",
                    "cr": f"{cr:.2f}",
                    "w": who,
                    "s": stamp,
                }
            )
            next_line += 1
    if vouchers:
        d.run("insert into gl_pz (pzid, kjnd, kjqj, pzrq, xgsj) values (:id, :y, :p, :d, :s)", vouchers)
        d.run(
            "insert into gl_fl (flid, pzid, hh, kmdm, bmdm, jfje, dfje, wldw, xgsj) "
            "values (:id, :v, :hh, :k, '104', :dr, :cr, :w, :s)",
            lines,
        )
        d.count("gl_pz inserted", len(vouchers))
        d.count("gl_fl inserted", len(lines))
    # vouchers voided (header and lines deleted): one in a hundred of a day's, and on one day in
    # five, among the twenty newest
    recent = d.keys("select pzid from gl_pz order by pzid desc limit 20")
    for victim in d.g.rnd.sample(recent, min(len(recent), d.rounded(posted / 100 + 0.2))):
        d.run("delete from gl_fl where pzid = :v", v=victim)
        d.run("delete from gl_pz where pzid = :v", v=victim)
        d.count("gl_pz deleted")


def _asset_day(d: _Day) -> None:
    cards = d.keys("select zcbh from zc_kp where zzzt = '在账' order by zcbh")
    staff = d.keys("select distinct syr from zc_kp where syr is not null order by 1 limit 200")
    register = d.keys("select count(*) from zc_kp")[0]
    bought = {f"ZC{d.today.year}{d.g.rnd.randrange(10_000_000):07d}" for _ in range(d.volume(register / 10))}
    taken = (
        set(d.keys("select zcbh from zc_kp where zcbh like :y", y=f"ZC{d.today.year}%")) if bought else set()
    )
    purchases = [
        {
            "k": number,
            "who": d.g.pick(staff) if staff else None,
            "d": d.today.isoformat(),
            "v": f"{d.g.rnd.uniform(3000, 9000):.2f}",
            "s": d.stamp("zc_kp", "xgsj"),
        }
        for number in sorted(bought - taken)
    ]
    if purchases:  # a ten-year turnover of the register
        d.run(
            "insert into zc_kp (zcbh, zcmc, flh, sydw, syr, cfdd, qdrq, jz, sl, syzk, zzzt, xgsj) "
            "values (:k, '台式计算机', 'JSJ', '205', :who, '01003', :d, :v, 1, '在用', '在账', :s)",
            purchases,
        )
        d.count("zc_kp inserted", len(purchases))
    disposed = d.g.rnd.sample(cards, min(len(cards), d.volume(register / 15)))
    if disposed:  # cards leave the register after fifteen years or so
        d.run(
            "update zc_kp set syzk = '待报废', zzzt = '已处置', xgsj = :s where zcbh = :k",
            [{"s": d.stamp("zc_kp", "xgsj"), "k": k} for k in disposed],
        )
        d.count("zc_kp updated", len(disposed))
    if cards and d.g.rnd.random() < 0.1:  # a card entered by mistake, removed
        d.run("delete from zc_kp where zcbh = :k", k=d.g.pick(cards))
        d.count("zc_kp deleted")
    if d.exports is not None and d.exports.is_dir():
        _asset_exports(d, cards, staff)


def _asset_exports(d: _Day, cards: list[str], staff: list[str]) -> None:
    """The asset office's files: now and then an inventory check (GBK CSV) of a few cards, and
    an edit of the rooms workbook (XLSX), each a new file content for the extractor."""
    if cards and staff and d.g.rnd.random() < 0.2:
        checked = sorted(d.g.rnd.sample(cards, min(20, len(cards))))
        rows = inventory_rows(d.g, d.today, checked, staff)
        write_inventory(d.exports / f"zc_pd_{d.today:%Y%m%d}.csv", rows)
        d.count("zc_pd exported", len(rows))
    book_path = d.exports / "zc_fj.xlsx"
    if book_path.exists() and d.g.rnd.random() < 0.1:  # a room changes use
        from openpyxl import load_workbook

        book = load_workbook(book_path)
        sheet = book["房间"]
        row = 2 + d.g.rnd.randrange(sheet.max_row - 1)
        sheet.cell(row, 6).value = d.g.pick(ROOM_USES)
        sheet.cell(row, 8).value = datetime.combine(d.today, datetime.min.time()) + timedelta(hours=10)
        tmp = book_path.with_name(book_path.name + ".tmp")
        book.save(tmp)
        tmp.replace(book_path)
        d.count("zc_fj updated")


DAYS = {
    "hr": ("hr_staff", _hr_day),
    "student": ("xg_xsxx", _student_day),
    "finance": ("gl_pz", _finance_day),
    "asset": ("zc_kp", _asset_day),
}


def advance(urls: dict[str, str], days: int, clock_file: Path, *, seed: int = 20261122) -> Counter:
    """Apply ``days`` simulated days to each system (``{system: SQLAlchemy URL}``); returns counts."""
    if days < 1:
        raise ValueError(f"--days must be at least 1, got {days}")
    clock = json.loads(clock_file.read_text(encoding="utf-8")) if clock_file.exists() else {}
    counts: Counter = Counter()
    exports = clock_file.parent / "exports"  # where demo.campus.write_exports put the files
    for system, url in urls.items():
        table, one_day = DAYS[system]
        engine = sa.create_engine(url)
        try:
            if system in clock:
                start = date.fromisoformat(clock[system])
            else:
                with engine.begin() as conn:
                    start = _clock(conn, table, STAMP[system])
            for offset in range(days):
                today = start + timedelta(days=offset)
                g = _Gen(seed)
                g.rnd = random.Random(f"{seed}-{system}-{today.isoformat()}")
                with engine.begin() as conn:  # one transaction per system per day
                    one_day(_Day(conn, today, g, counts, system, exports / system))
                clock[system] = (today + timedelta(days=1)).isoformat()
                clock_file.write_text(json.dumps(clock, indent=2) + "\n", encoding="utf-8")
        finally:
            engine.dispose()
    return counts
