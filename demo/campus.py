"""The simulated campus: four source systems with their own local codes, generated from a seed.

Each system is written the way its vendor would keep it: its own table and column names, its
own codes for gender, status, department and major, dates as text. Normalising them to the
national and school standards is therefore real work for the warehouse. A small, seeded share
of rows carries injected dirt; every injected fault is recorded in ``dirt.json`` (kind, system,
table, key, field, value, and the rule ID the pipeline owes it) so tests can demand that the
pipeline finds exactly these and nothing else. ``dirt.json`` also lists the people recorded in
several systems (staff who are PhD students; every staff member is a finance payee) and the
facts two systems record differently for one of them (``conflicts``: a birth date, a name), the
ground truth for identity resolution.

The same seed and scale always give byte-identical databases, so the demo can be re-run.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from campusdx.core.idnumbers import check_character, is_valid_ric

SYSTEMS = ("hr", "student", "finance", "asset")
"""The systems simulated, in the order they are written (finance needs hr's staff): exactly the
systems declared under schemas/sources (tests/test_campus.py holds it to that)."""
CLOCK = datetime(2026, 11, 1, 8, 0, 0)
"""The simulated "now": every modification timestamp lies before it."""

# Sizes at scale 1 (the real university); the demo default is DEMO_SIZES.
FULL_SIZES = {"students": 35_000, "staff": 3_500, "assets": 150_000, "vouchers": 500_000}
DEMO_SIZES = {"students": 2_000, "staff": 300, "assets": 3_000, "vouchers": 4_000}
DIRT_RATE = 0.01

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华鹏辉玲婷雪琳晨宇浩然子涵欣怡梓轩博文思远嘉豪雨萱"
)
# County codes that stdnum.cn.loc accepts for every birth year used here (1960-2008).
REGIONS = [
    "610322",
    "610323",
    "610324",
    "610326",
    "610327",
    "610328",
    "610329",
    "610330",
    "610331",
    "110101",
    "110102",
    "110105",
    "110106",
    "110108",
    "140121",
    "140122",
    "422822",
    "422823",
    "510121",
    "510321",
    "620121",
    "620122",
    "640121",
    "640122",
    "650121",
]

# 人事 (HR) keeps the organisation tree; its org_id is the school's 单位号.
ORGS = [
    # org_id, name, short, parent, kind (HR's own words), campus, founded
    ("001", "西安科技大学", "西科大", None, "其他", "01", "1958-09-01"),
    ("101", "党委办公室", "党办", "001", "党政", "01", "1958-09-01"),
    ("102", "校长办公室", "校办", "001", "党政", "01", "1958-09-01"),
    ("103", "人事处", "人事处", "001", "党政", "01", "1960-03-01"),
    ("104", "财务处", "财务处", "001", "党政", "01", "1960-03-01"),
    ("105", "国有资产管理处", "资产处", "001", "党政", "01", "1995-07-01"),
    ("106", "教务处", "教务处", "001", "党政", "01", "1958-09-01"),
    ("201", "能源学院", "能源", "001", "院系", "01", "1999-05-01"),
    ("202", "安全科学与工程学院", "安全", "001", "院系", "01", "1999-05-01"),
    ("203", "机械工程学院", "机械", "001", "院系", "02", "1999-05-01"),
    ("204", "电气与控制工程学院", "电控", "001", "院系", "02", "1999-05-01"),
    ("205", "计算机科学与技术学院", "计算机", "001", "院系", "01", "2003-06-01"),
    ("206", "建筑与土木工程学院", "建工", "001", "院系", "01", "1999-05-01"),
    ("207", "测绘科学与技术学院", "测绘", "001", "院系", "01", "1999-05-01"),
    ("208", "管理学院", "管理", "001", "院系", "01", "1999-05-01"),
    ("209", "理学院", "理学院", "001", "院系", "02", "2001-04-01"),
    ("210", "外国语学院", "外语", "001", "院系", "02", "2001-04-01"),
    ("301", "西部煤矿安全研究院", "煤安院", "001", "科研", "01", "2008-10-01"),
    ("401", "图书馆", "图书馆", "001", "教辅", "01", "1958-09-01"),
    ("402", "网络与信息技术中心", "网信中心", "001", "教辅", "01", "2005-01-01"),
    ("501", "后勤保障处", "后勤", "001", "直属", "01", "1990-01-01"),
]
ORG_KIND_IN_USE = {o[0]: "Y" for o in ORGS}
COLLEGES = [o[0] for o in ORGS if o[4] == "院系"]
OFFICES = [o[0] for o in ORGS if o[0] != "001"]

# 学工 (student affairs) has its own department codes: X + HR code, plus one legacy code.
STUDENT_DEPTS = {f"X{c}": c for c in COLLEGES}

# 学工's majors: 校内专业号 -> (name, college, national code per the 本科专业目录, years).
MAJORS = {
    "0101": ("采矿工程", "201", "081501", "4"),
    "0102": ("矿物加工工程", "201", "081503", "4"),
    "0201": ("安全工程", "202", "082901", "4"),
    "0301": ("机械设计制造及其自动化", "203", "080202", "4"),
    "0401": ("电气工程及其自动化", "204", "080601", "4"),
    "0402": ("自动化", "204", "080801", "4"),
    "0501": ("计算机科学与技术", "205", "080901", "4"),
    "0502": ("数据科学与大数据技术", "205", "080910T", "4"),
    "0601": ("土木工程", "206", "081001", "4"),
    "0701": ("测绘工程", "207", "081201", "4"),
    "0801": ("工商管理", "208", "120201K", "4"),
    "0802": ("会计学", "208", "120203K", "4"),
    "0901": ("数学与应用数学", "209", "070101", "4"),
    "1001": ("英语", "210", "050201", "4"),
}

# Local codes of each system (the crosswalks in schemas/crosswalks/ map them to the standards).
HR_GENDER = ("男", "女")
STUDENT_GENDER = ("M", "F")
NATIONS = ["汉族"] * 40 + ["回族", "满族", "蒙古族", "土家族", "苗族", "壮族"]
HR_POLITICS = ["中共党员"] * 4 + ["群众"] * 3 + ["中共预备党员", "九三学社社员", "民盟盟员"]
STUDENT_POLITICS = ["TY"] * 6 + ["QZ"] * 3 + ["DY", "YBDY"]
HR_CATEGORY = ["专任教师"] * 6 + ["行政人员", "教辅人员", "工勤人员", "科研人员"]
HR_ESTABLISHMENT = {
    "专任教师": "教学",
    "行政人员": "行政",
    "教辅人员": "教辅",
    "工勤人员": "工勤",
    "科研人员": "科研",
}
HR_EDUCATION = [("博士研究生毕业", "博士"), ("硕士研究生毕业", "硕士"), ("大学本科毕业", "学士")]
HR_TITLES = {
    # the HR office types titles by hand: the same 职称 appears in several spellings
    "专任教师": ["教授", "副教授", "副教授", "副 教授", "副教授（高校）", "讲师", "讲师", "助教"],
    "科研人员": ["研究员", "副研究员"],
    "教辅人员": ["高级实验师", "实验师", "高级工程师", "工程师"],
    "行政人员": [None, None, "工程师"],
    "工勤人员": [None],
}
HR_STATUS = ["在职"] * 18 + ["退休", "调出"]
STUDENT_STATUS = ["ZD"] * 30 + ["XX", "FX", "TX"]
STUDENT_LEVEL = "BK"
# Doctoral programmes (校内专业号 9xxx, 层次 BS) -> (name, college, 学科专业目录 code, years): some
# teaching staff study for a doctorate at their own university, so they are in both systems.
DOCTORAL_MAJORS = {
    "9101": ("采矿工程", "201", "081901", "4"),
    "9201": ("安全科学与工程", "202", "083700", "4"),
    "9501": ("计算机科学与技术", "205", "081200", "4"),
}
DOCTORAL_STAFF_EVERY = 25
"""Staff number i with i % 25 == 7 (and a valid ID number) is also a PhD student."""
# 学籍异动 the student system records for a student's current status (local category, reason).
STATUS_CHANGES = {"XX": ("休学", "疾病"), "FX": ("复学", None), "TX": ("退学", "个人原因")}
MAJOR_CHANGE_RATE = 0.02
ASSET_USE = ["在用"] * 8 + ["闲置", "待报废"]
ASSET_CLASSES = {  # 资产处's local category -> (name pattern, value range)
    "JSJ": ("台式计算机", (3_000, 9_000)),
    "BJB": ("便携式计算机", (4_000, 12_000)),
    "SYY": ("实验仪器", (5_000, 300_000)),
    "JJ": ("办公家具", (300, 5_000)),
    "TS": ("图书", (20, 300)),
    "CL": ("公务用车", (80_000, 300_000)),
}
BUILDINGS = [
    ("01001", "行政楼", "01"),
    ("01002", "图书馆", "01"),
    ("01003", "第一教学楼", "01"),
    ("01004", "实验楼", "01"),
    ("02001", "临潼校区综合楼", "02"),
    ("02002", "临潼校区实训中心", "02"),
]
# 财务: school sub-accounts below the 政府会计制度 一级科目 (first four characters).
ACCOUNTS = [
    ("1001", "库存现金", "借"),
    ("100201", "银行存款-工商银行", "借"),
    ("100202", "银行存款-建设银行", "借"),
    ("1212", "应收账款", "借"),
    ("1601", "固定资产", "借"),
    ("2201", "应付职工薪酬", "贷"),
    ("2302", "应付账款", "贷"),
    ("4001", "财政拨款收入", "贷"),
    ("4101", "事业收入", "贷"),
    ("500101", "业务活动费用-工资福利", "借"),
    ("500102", "业务活动费用-商品和服务", "借"),
    ("5101", "单位管理费用", "借"),
]


@dataclass
class Dirt:
    """One injected fault: tests expect the pipeline to find exactly these."""

    kind: str
    system: str
    table: str
    key: str
    field: str
    value: str | None
    """The faulty value as the source holds it (for ``duplicate_key``: the repeated key)."""
    expect: str = "CDX-E013"
    """What the pipeline owes this fault: a rule ID that must quarantine the row, or
    ``normalised`` (the warehouse repairs it: the row reaches the feed with the standard value)."""


@dataclass
class Campus:
    """What one generation wrote, for the summary and the tests."""

    seed: int
    sizes: dict[str, int]
    rows: dict[str, int] = field(default_factory=dict)
    dirt: list[Dirt] = field(default_factory=list)
    people: list[dict] = field(default_factory=list)
    """Every staff member's keys in each system they appear in: {"id_no", "hr", "finance"} and,
    for those who are PhD students, "student"."""
    conflicts: list[dict] = field(default_factory=list)
    """Facts two systems record differently for one person (一人一号 must list them):
    {"id_no", "attribute", "values": {system: value as that system holds it}}."""
    staff: list[tuple] = field(default_factory=list, repr=False)
    """(工号, name, ID number) of every staff member, from 人事 to 财务's payee master."""
    doctoral: list[tuple] = field(default_factory=list, repr=False)
    """Staff who are also PhD students: (工号, name, male, birth, ID number, 民族), from 人事 to 学工."""


def sizes_for(scale: float | None) -> dict[str, int]:
    """Row targets: the demo default when scale is None, else ``scale`` x the real university."""
    if scale is None:
        return dict(DEMO_SIZES)
    if scale <= 0:
        raise ValueError(f"--scale must be positive, got {scale}")
    minimum = {"students": 300, "staff": 50, "assets": 60, "vouchers": 60}
    return {k: max(minimum[k], round(v * scale)) for k, v in FULL_SIZES.items()}


class _Gen:
    """Seeded helpers shared by the four systems."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.issued: set[str] = set()

    def pick(self, seq):
        return seq[self.rnd.randrange(len(seq))]

    def name(self) -> str:
        given = "".join(self.pick(GIVEN) for _ in range(self.rnd.choice((1, 2, 2))))
        return self.pick(SURNAMES) + given

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rnd.randrange((end - start).days + 1))

    def stamp(self, start: date) -> str:
        """A modification timestamp between ``start`` and the simulated clock."""
        span = int((CLOCK - datetime.combine(start, datetime.min.time())).total_seconds())
        moment = CLOCK - timedelta(seconds=self.rnd.randrange(max(span, 1)))
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def id_number(self, birth: date, male: bool, check: str | None = None) -> str:
        """A valid 18-digit 公民身份号码 (GB 11643) for the birth date and sex (and check character)."""
        for _ in range(1000):  # a region code must have existed on the birth date (stdnum.cn.loc)
            seq = self.rnd.randrange(0, 500) * 2 + (1 if male else 0)
            body = f"{self.pick(REGIONS)}{birth:%Y%m%d}{seq:03d}"
            number = body + check_character(body)
            if is_valid_ric(number) and (check is None or number[-1] == check) and number not in self.issued:
                self.issued.add(number)  # one number, one person: a shared number is a conflict
                return number
        raise RuntimeError(f"no region in REGIONS was in use on {birth}")

    def dirty(self, index: int) -> bool:
        """Inject a fault into this row? At the seeded rate, and always in row 3 of a table, so a
        tiny campus still carries every kind of fault."""
        return self.rnd.random() < DIRT_RATE or index == 3


FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
# (kind, field, what the pipeline owes it), applied to one student row each (row 10 + 3k) and
# then at the seeded rate: the catalogue of dirt the student system really holds.
STUDENT_DIRT = [
    ("id_lower_x", "zjhm", "normalised"),
    ("id_full_width", "zjhm", "normalised"),
    ("name_spaces", "xm", "normalised"),
    ("date_slashes", "csrq", "normalised"),
    ("date_compact", "csrq", "normalised"),
    ("date_chinese", "csrq", "normalised"),
    ("rare_character", "xm", "normalised"),
    ("date_zero", "csrq", "CDX-E010"),
    ("unknown_code", "mz", "CDX-E010"),
    ("orphan_department", "yxdm", "CDX-E010"),
    ("required_empty", "xm", "CDX-E010"),
]
STUDENT_COLUMNS = [
    "xh",
    "xm",
    "xbdm",
    "csrq",
    "mz",
    "zjlx",
    "zjhm",
    "gj",
    "zzmm",
    "syd",
    "yxdm",
    "zyh",
    "nj",
    "bh",
    "rxrq",
    "xjzt",
    "gxsj",
]


def _soil(g: _Gen, row: list, kind: str, birth: date, male: bool) -> None:
    """Apply one kind of dirt to a student row (a list in STUDENT_COLUMNS order), in place."""
    at = {name: i for i, name in enumerate(STUDENT_COLUMNS)}
    if kind == "id_lower_x":
        row[at["zjhm"]] = g.id_number(birth, male, check="X").replace("X", "x")
    elif kind == "id_full_width":
        row[at["zjhm"]] = row[at["zjhm"]].translate(FULL_WIDTH_DIGITS)
    elif kind == "name_spaces":
        row[at["xm"]] = f" {row[at['xm']]}  "
    elif kind == "date_slashes":
        row[at["csrq"]] = f"{birth.year}/{birth.month}/{birth.day}"
    elif kind == "date_compact":
        row[at["csrq"]] = f"{birth:%Y%m%d}"
    elif kind == "date_chinese":
        row[at["csrq"]] = f"{birth.year}年{birth.month}月{birth.day}日"
    elif kind == "rare_character":
        row[at["xm"]] = RARE_NAME
    elif kind == "date_zero":
        row[at["csrq"]] = "0000-00-00"
    elif kind == "unknown_code":
        row[at["mz"]] = "穿青人"  # not in GB/T 3304 nor in any crosswalk
    elif kind == "orphan_department":
        row[at["yxdm"]] = "X299"  # a department the student system's own list does not have
    elif kind == "required_empty":
        row[at["xm"]] = ""


PAYEE_NAME_CONFLICT_EVERY = 40
"""Payee number n with n % 40 == 3 carries another spelling of the staff member's name."""
HOMOPHONES = {"伟": "玮", "芳": "方", "娜": "纳", "静": "婧", "丽": "莉", "强": "蔷", "磊": "垒", "军": "君"}


def _homophone(name: str) -> str:
    """The name with its last character replaced by one that sounds alike (王伟 -> 王玮)."""
    last = name[-1]
    return name[:-1] + HOMOPHONES.get(last, "玥" if last != "玥" else "悦")


def _misread_birth(birth: date) -> date:
    """The birth date with day and month swapped, or a year off when that is no other date."""
    if birth.day <= 12 and birth.day != birth.month:
        return birth.replace(month=birth.day, day=birth.month)
    return (
        birth.replace(year=birth.year + 1)
        if not (birth.month == 2 and birth.day == 29)
        else birth - timedelta(days=1)
    )


def _break_check_digit(id_no: str) -> str:
    """The same number with a check character that does not verify."""
    good = id_no[-1]
    return id_no[:-1] + ("0" if good != "0" else "1")


def _write(conn: sqlite3.Connection, table: str, columns: list[str], rows: list[tuple]) -> int:
    marks = ",".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)
    return len(rows)


HR_DDL = """
CREATE TABLE hr_org (            -- 组织机构
  org_id TEXT PRIMARY KEY,       -- 单位号
  org_name TEXT NOT NULL,        -- 单位名称
  org_short TEXT,                -- 单位简称
  parent_id TEXT,                -- 上级单位号
  org_kind TEXT,                 -- 单位性质(人事系统自定义)
  campus TEXT,                   -- 校区
  founded TEXT,                  -- 成立日期
  in_use TEXT,                   -- 是否启用 Y/N
  modified_at TEXT NOT NULL      -- 修改时间
);
CREATE TABLE hr_staff (          -- 教职工
  staff_no TEXT PRIMARY KEY,     -- 工号
  name TEXT NOT NULL,            -- 姓名
  gender TEXT,                   -- 性别 男/女
  birth_date TEXT,               -- 出生日期
  nation TEXT,                   -- 民族(名称)
  id_type TEXT,                  -- 证件类型(名称)
  id_no TEXT,                    -- 证件号码
  nationality TEXT,              -- 国籍(名称)
  politics TEXT,                 -- 政治面貌(名称)
  native_place TEXT,             -- 籍贯(行政区划码)
  org_id TEXT,                   -- 所在单位
  category TEXT,                 -- 教职工类别(名称)
  establishment TEXT,            -- 编制类别(名称)
  education TEXT,                -- 最高学历(名称)
  degree TEXT,                   -- 最高学位(名称)
  title TEXT,                    -- 专业技术职务(名称)
  hire_date TEXT,                -- 来校日期
  status TEXT,                   -- 当前状态(名称)
  modified_at TEXT NOT NULL      -- 修改时间
);
"""


def _hr(conn: sqlite3.Connection, g: _Gen, campus: Campus) -> list[tuple[str, str, str]]:
    """人事: the org tree and the staff. Returns (工号, org, category) for the other systems."""
    conn.executescript(HR_DDL)
    org_rows = [(*o, ORG_KIND_IN_USE[o[0]], f"{o[6]} 09:00:00") for o in ORGS]
    campus.rows["hr.hr_org"] = _write(
        conn,
        "hr_org",
        [
            "org_id",
            "org_name",
            "org_short",
            "parent_id",
            "org_kind",
            "campus",
            "founded",
            "in_use",
            "modified_at",
        ],
        org_rows,
    )
    staff, people = [], []
    for i in range(campus.sizes["staff"]):
        staff_no = f"{1990 + i % 36}{i // 36:04d}"  # 工号: issue year + sequence in that year (SCH-GH)
        male = g.rnd.random() < 0.6
        birth = g.day(date(1962, 1, 1), date(1998, 12, 31))
        category = g.pick(HR_CATEGORY)
        education, degree = g.pick(HR_EDUCATION)
        org = g.pick(COLLEGES) if category in ("专任教师", "科研人员") else g.pick(OFFICES)
        hire = g.day(max(birth + timedelta(days=365 * 23), date(1985, 7, 1)), date(2026, 9, 1))
        id_no = g.id_number(birth, male)
        name = g.name()
        nation = g.pick(NATIONS)
        if g.dirty(i):
            id_no = _break_check_digit(id_no)
            campus.dirt.append(Dirt("invalid_id_check_digit", "hr", "hr_staff", staff_no, "id_no", id_no))
        elif i % DOCTORAL_STAFF_EVERY == 7:  # a master's graduate now studying for a doctorate here
            education, degree = HR_EDUCATION[1]
            campus.doctoral.append((staff_no, name, male, birth, id_no, nation))
        staff.append(
            (
                staff_no,
                name,
                HR_GENDER[0 if male else 1],
                birth.isoformat(),
                nation,
                "居民身份证",
                id_no,
                "中国",
                g.pick(HR_POLITICS),
                g.pick(REGIONS),
                org,
                category,
                HR_ESTABLISHMENT[category],
                education,
                degree,
                g.pick(HR_TITLES[category]),
                hire.isoformat(),
                g.pick(HR_STATUS),
                g.stamp(hire),
            )
        )
        people.append((staff_no, org, category))
        campus.staff.append((staff_no, name, id_no))
    campus.rows["hr.hr_staff"] = _write(
        conn,
        "hr_staff",
        [
            "staff_no",
            "name",
            "gender",
            "birth_date",
            "nation",
            "id_type",
            "id_no",
            "nationality",
            "politics",
            "native_place",
            "org_id",
            "category",
            "establishment",
            "education",
            "degree",
            "title",
            "hire_date",
            "status",
            "modified_at",
        ],
        staff,
    )
    return people


STUDENT_DDL = """
CREATE TABLE xg_yx (             -- 院系(学工系统编码)
  yxdm TEXT PRIMARY KEY,         -- 院系代码
  yxmc TEXT NOT NULL,            -- 院系名称
  gxsj TEXT NOT NULL             -- 更新时间
);
CREATE TABLE xg_zy (             -- 专业
  zyh TEXT PRIMARY KEY,          -- 校内专业号
  zymc TEXT NOT NULL,            -- 专业名称
  yxdm TEXT,                     -- 院系代码
  xz TEXT,                       -- 学制(年)
  cc TEXT,                       -- 层次 BK/SS/BS
  zszt TEXT,                     -- 招生状态 1/0
  gxsj TEXT NOT NULL             -- 更新时间
);
CREATE TABLE xg_xjyd (           -- 学籍异动
  ydbh TEXT PRIMARY KEY,         -- 异动编号
  xh TEXT NOT NULL,              -- 学号
  ydlb TEXT,                     -- 异动类别(名称)
  ydyy TEXT,                     -- 异动原因(名称)
  ydrq TEXT,                     -- 异动日期
  ydqyx TEXT,                    -- 异动前院系(学工编码)
  ydhyx TEXT,                    -- 异动后院系(学工编码)
  ydqzy TEXT,                    -- 异动前校内专业号
  ydhzy TEXT,                    -- 异动后校内专业号
  spwh TEXT,                     -- 审批文号
  gxsj TEXT NOT NULL             -- 更新时间
);
CREATE TABLE xg_xsxx (           -- 学生信息
  xh TEXT PRIMARY KEY,           -- 学号
  xm TEXT NOT NULL,              -- 姓名
  xbdm TEXT,                     -- 性别 M/F
  csrq TEXT,                     -- 出生日期
  mz TEXT,                       -- 民族(名称)
  zjlx TEXT,                     -- 证件类型 SFZ/HZ/GA
  zjhm TEXT,                     -- 证件号码
  gj TEXT,                       -- 国籍(三字母码)
  zzmm TEXT,                     -- 政治面貌(学工编码)
  syd TEXT,                      -- 生源地(行政区划码)
  yxdm TEXT,                     -- 院系代码(学工)
  zyh TEXT,                      -- 校内专业号
  nj TEXT,                       -- 年级
  bh TEXT,                       -- 班号
  rxrq TEXT,                     -- 入学日期
  xjzt TEXT,                     -- 学籍状态(学工编码)
  gxsj TEXT NOT NULL             -- 更新时间
);
"""


def _student(conn: sqlite3.Connection, g: _Gen, campus: Campus) -> None:
    """学工/学籍: departments and majors in the system's own codes, and the students."""
    conn.executescript(STUDENT_DDL)
    names = {o[0]: o[1] for o in ORGS}
    campus.rows["student.xg_yx"] = _write(
        conn,
        "xg_yx",
        ["yxdm", "yxmc", "gxsj"],
        [(local, names[hr], "2020-06-01 10:00:00") for local, hr in STUDENT_DEPTS.items()],
    )
    campus.rows["student.xg_zy"] = _write(
        conn,
        "xg_zy",
        ["zyh", "zymc", "yxdm", "xz", "cc", "zszt", "gxsj"],
        [
            (zyh, m[0], f"X{m[1]}", m[3], level, "1", "2020-06-01 10:00:00")
            for majors, level in ((MAJORS, STUDENT_LEVEL), (DOCTORAL_MAJORS, "BS"))
            for zyh, m in majors.items()
        ],
    )
    rows = []
    majors = sorted(MAJORS)
    for i in range(campus.sizes["students"]):
        year = 2022 + i % 4
        zyh = g.pick(majors)
        xh = f"{year % 100:02d}{zyh}{i // 4:05d}"  # 学号: 年级 + 校内专业号 + sequence in the grade (SCH-XH)
        male = g.rnd.random() < 0.7
        birth = g.day(date(year - 20, 1, 1), date(year - 17, 12, 31))
        id_no = g.id_number(birth, male)
        invalid_id = g.dirty(i)
        if invalid_id:
            id_no = _break_check_digit(id_no)
            campus.dirt.append(Dirt("invalid_id_check_digit", "student", "xg_xsxx", xh, "zjhm", id_no))
        enrolled = date(year, 9, 1 + g.rnd.randrange(5))
        row = [
            xh,
            g.name(),
            STUDENT_GENDER[0 if male else 1],
            birth.isoformat(),
            g.pick(NATIONS),
            "SFZ",
            id_no,
            "CHN",
            g.pick(STUDENT_POLITICS),
            g.pick(REGIONS),
            f"X{MAJORS[zyh][1]}",
            zyh,
            str(year),
            f"{zyh}{year % 100:02d}{1 + i % 3:02d}",
            enrolled.isoformat(),
            g.pick(STUDENT_STATUS),
            g.stamp(enrolled),
        ]
        fixed = (i - 10) // 3 if i >= 10 and (i - 10) % 3 == 0 and (i - 10) // 3 < len(STUDENT_DIRT) else None
        if not invalid_id and (fixed is not None or g.rnd.random() < DIRT_RATE / 2):
            kind, field, expect = STUDENT_DIRT[fixed] if fixed is not None else g.pick(STUDENT_DIRT)
            _soil(g, row, kind, birth, male)
            value = row[STUDENT_COLUMNS.index(field)]
            campus.dirt.append(Dirt(kind, "student", "xg_xsxx", xh, field, value, expect))
        rows.append(tuple(row))
    rows.extend(_doctoral_students(g, campus, len(rows)))
    campus.rows["student.xg_xjyd"] = _write(
        conn,
        "xg_xjyd",
        ["ydbh", "xh", "ydlb", "ydyy", "ydrq", "ydqyx", "ydhyx", "ydqzy", "ydhzy", "spwh", "gxsj"],
        _status_changes(g, rows),
    )
    campus.rows["student.xg_xsxx"] = _write(
        conn,
        "xg_xsxx",
        STUDENT_COLUMNS,
        rows,
    )


def _doctoral_students(g: _Gen, campus: Campus, first: int) -> list[tuple]:
    """Staff members enrolled as PhD students: same person, same ID number, a 学号 of their own."""
    rows = []
    for n, (staff_no, name, male, birth, id_no, nation) in enumerate(campus.doctoral, start=first):
        year = 2022 + n % 4
        zyh = g.pick(sorted(DOCTORAL_MAJORS))
        xh = f"{year % 100:02d}{zyh}{n // 4:05d}"
        enrolled = date(year, 9, 1)
        recorded_birth, recorded_name = birth.isoformat(), name
        if (n - first) % 3 == 0:  # 学籍 keyed the birth date from a form with day and month swapped
            recorded_birth = _misread_birth(birth).isoformat()
            campus.conflicts.append(
                {
                    "id_no": id_no,
                    "attribute": "birth_date",
                    "values": {"hr": birth.isoformat(), "student": recorded_birth},
                }
            )
        elif (n - first) % 3 == 1:  # a homophone typed for the given name at enrolment
            recorded_name = _homophone(name)
            campus.conflicts.append(
                {"id_no": id_no, "attribute": "full_name", "values": {"hr": name, "student": recorded_name}}
            )
        record = {
            "xh": xh,
            "xm": recorded_name,
            "xbdm": STUDENT_GENDER[0 if male else 1],
            "csrq": recorded_birth,
            "mz": nation,
            "zjlx": "SFZ",
            "zjhm": id_no,
            "gj": "CHN",
            "zzmm": g.pick(STUDENT_POLITICS),
            "syd": g.pick(REGIONS),
            "yxdm": f"X{DOCTORAL_MAJORS[zyh][1]}",
            "zyh": zyh,
            "nj": str(year),
            "bh": f"{zyh}{year % 100:02d}01",
            "rxrq": enrolled.isoformat(),
            "xjzt": "ZD",
            "gxsj": g.stamp(enrolled),
        }
        rows.append(tuple(record[c] for c in STUDENT_COLUMNS))
        campus.people.append({"id_no": id_no, "hr": staff_no, "student": xh})
    return rows


def _status_changes(g: _Gen, students: list[tuple]) -> list[tuple]:
    """学籍异动 behind each student's status, plus 转专业 for a few (from another major)."""
    changes = []
    for row in students:
        xh, yxdm, zyh, enrolled, status = row[0], row[10], row[11], date.fromisoformat(row[14]), row[15]
        events = []
        last = CLOCK.date() - timedelta(days=30)
        middle = enrolled + (last - enrolled) / 2
        if status == "FX":
            events.append(("休学", "疾病", g.day(enrolled + timedelta(days=30), middle)))
        if status in STATUS_CHANGES:
            kind, reason = STATUS_CHANGES[status]
            events.append((kind, reason, g.day(middle + timedelta(days=1), last)))
        if zyh in MAJORS and g.rnd.random() < MAJOR_CHANGE_RATE:  # 转专业: undergraduates only
            before = g.pick([m for m in sorted(MAJORS) if m != zyh])
            events.append(("转专业", "个人原因", enrolled + timedelta(days=20)))
        for kind, reason, when in events:
            n = len(changes) + 1
            is_major = kind == "转专业"
            changes.append(
                (
                    f"YD{when.year}{n:06d}",
                    xh,
                    kind,
                    reason,
                    when.isoformat(),
                    f"X{MAJORS[before][1]}" if is_major else yxdm,
                    yxdm,
                    before if is_major else zyh,
                    zyh,
                    f"西科大学字〔{when.year}〕{n}号",
                    f"{when.isoformat()} 16:00:00",
                )
            )
    return changes


FINANCE_DDL = """
CREATE TABLE gl_kmb (            -- 会计科目表
  kmdm TEXT PRIMARY KEY,         -- 科目代码
  kmmc TEXT NOT NULL,            -- 科目名称
  yefx TEXT,                     -- 余额方向 借/贷
  xgsj TEXT NOT NULL             -- 修改时间
);
CREATE TABLE gl_pz (             -- 凭证
  pzid INTEGER PRIMARY KEY,      -- 凭证ID
  kjnd TEXT NOT NULL,            -- 会计年度
  kjqj TEXT NOT NULL,            -- 会计期间
  pzrq TEXT,                     -- 凭证日期
  xgsj TEXT NOT NULL             -- 修改时间
);
CREATE TABLE gl_wlgr (           -- 往来个人(收款人档案)
  grbh TEXT PRIMARY KEY,         -- 个人编号(财务系统编号)
  xm TEXT NOT NULL,              -- 姓名
  zjhm TEXT,                     -- 身份证号
  gh TEXT,                       -- 工号(本校职工)
  rylb TEXT,                     -- 人员类别 职工/学生/校外
  xgsj TEXT NOT NULL             -- 修改时间
);
CREATE TABLE gl_fl (             -- 凭证分录
  flid INTEGER PRIMARY KEY,      -- 分录ID
  pzid INTEGER NOT NULL,         -- 凭证ID
  hh INTEGER NOT NULL,           -- 行号
  kmdm TEXT NOT NULL,            -- 科目代码
  bmdm TEXT,                     -- 部门(单位号)
  jfje NUMERIC(18,2) NOT NULL,   -- 借方金额
  dfje NUMERIC(18,2) NOT NULL,   -- 贷方金额
  wldw TEXT,                     -- 往来个人(个人编号)
  xgsj TEXT NOT NULL             -- 修改时间
);
"""
# Balanced voucher templates: (debit account, credit account).
VOUCHER_TEMPLATES = [
    ("500101", "2201"),
    ("2201", "100201"),
    ("500102", "100201"),
    ("1601", "2302"),
    ("2302", "100202"),
    ("100201", "4001"),
    ("100202", "4101"),
    ("5101", "1001"),
    ("1212", "4101"),
]


def _finance(conn: sqlite3.Connection, g: _Gen, campus: Campus, staff: list[tuple[str, str, str]]) -> None:
    """财务: the account chart, vouchers and their balanced entry lines."""
    conn.executescript(FINANCE_DDL)
    campus.rows["finance.gl_kmb"] = _write(
        conn, "gl_kmb", ["kmdm", "kmmc", "yefx", "xgsj"], [(*a, "2024-01-01 09:00:00") for a in ACCOUNTS]
    )
    payees = _payees(conn, campus)
    vouchers, lines = [], []
    line_id = 0
    for pzid in range(1, campus.sizes["vouchers"] + 1):
        year = 2024 + (pzid * 3) // (campus.sizes["vouchers"] + 1)
        period = 1 + g.rnd.randrange(12 if year < CLOCK.year else CLOCK.month - 1)  # none in the future
        day = date(year, period, 1 + g.rnd.randrange(28))
        posted = datetime.combine(day + timedelta(days=2), datetime.min.time()) + timedelta(
            seconds=8 * 3600 + g.rnd.randrange(10 * 3600)
        )  # posted two days later, office hours, never after the clock
        stamp = min(posted, CLOCK - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        vouchers.append((pzid, str(year), f"{period:02d}", day.isoformat(), stamp))
        debit, credit = g.pick(VOUCHER_TEMPLATES)
        payee = payees[g.pick(staff)[0]] if debit in ("500101", "2201") else None
        dept = g.pick(OFFICES)
        amounts = [round(g.rnd.uniform(100, 50_000), 2) for _ in range(1 + g.rnd.randrange(3))]
        for hh, amount in enumerate(amounts, start=1):
            line_id += 1
            lines.append((line_id, pzid, hh, debit, dept, f"{amount:.2f}", "0.00", payee, stamp))
        line_id += 1
        total = f"{sum(round(a * 100) for a in amounts) / 100:.2f}"
        lines.append((line_id, pzid, len(amounts) + 1, credit, dept, "0.00", total, None, stamp))
    campus.rows["finance.gl_pz"] = _write(conn, "gl_pz", ["pzid", "kjnd", "kjqj", "pzrq", "xgsj"], vouchers)
    campus.rows["finance.gl_fl"] = _write(
        conn, "gl_fl", ["flid", "pzid", "hh", "kmdm", "bmdm", "jfje", "dfje", "wldw", "xgsj"], lines
    )


def _payees(conn: sqlite3.Connection, campus: Campus) -> dict[str, str]:
    """财务's payee master: every staff member, under the finance system's own 个人编号. Returns
    工号 -> 个人编号, and records each person's keys in ``campus.people``."""
    known = {p["hr"]: p for p in campus.people}
    rows, numbers, people = [], {}, []
    for n, (staff_no, name, id_no) in enumerate(campus.staff, start=1):
        numbers[staff_no] = f"GR{n:06d}"
        recorded = name
        if n % PAYEE_NAME_CONFLICT_EVERY == 3:  # 财务 keeps the name the bank account was opened in
            recorded = _homophone(name)
            campus.conflicts.append(
                {"id_no": id_no, "attribute": "full_name", "values": {"hr": name, "finance": recorded}}
            )
        rows.append((numbers[staff_no], recorded, id_no, staff_no, "职工", "2024-01-01 09:00:00"))
        person = known.get(staff_no, {"id_no": id_no, "hr": staff_no})
        people.append({**person, "finance": numbers[staff_no]})
    campus.people = people
    columns = ["grbh", "xm", "zjhm", "gh", "rylb", "xgsj"]
    campus.rows["finance.gl_wlgr"] = _write(conn, "gl_wlgr", columns, rows)
    return numbers


ASSET_DDL = """
CREATE TABLE zc_ly (             -- 楼宇
  lydm TEXT PRIMARY KEY,         -- 楼宇代码(校区+楼号)
  lymc TEXT NOT NULL,            -- 楼宇名称
  xqdm TEXT,                     -- 校区代码
  xgsj TEXT NOT NULL             -- 修改时间
);
CREATE TABLE zc_kp (             -- 资产卡片
  zcbh TEXT PRIMARY KEY,         -- 资产编号
  zcmc TEXT NOT NULL,            -- 资产名称
  flh TEXT,                      -- 分类号(资产处编码)
  sydw TEXT,                     -- 使用单位(单位号)
  syr TEXT,                      -- 使用人(工号)
  cfdd TEXT,                     -- 存放地点(楼宇代码)
  qdrq TEXT,                     -- 取得日期
  jz NUMERIC(18,2),              -- 价值
  sl INTEGER,                    -- 数量
  syzk TEXT,                     -- 使用状况(名称)
  zzzt TEXT,                     -- 在账状态(名称)
  xgsj TEXT NOT NULL             -- 修改时间
);
"""


def _asset(conn: sqlite3.Connection, g: _Gen, campus: Campus, staff: list[tuple[str, str, str]]) -> list[str]:
    """资产: buildings and asset cards held by departments and custodians."""
    conn.executescript(ASSET_DDL)
    campus.rows["asset.zc_ly"] = _write(
        conn, "zc_ly", ["lydm", "lymc", "xqdm", "xgsj"], [(*b, "2015-01-01 09:00:00") for b in BUILDINGS]
    )
    classes = sorted(ASSET_CLASSES)
    cards = []
    for i in range(campus.sizes["assets"]):
        flh = g.pick(classes)
        label, (low, high) = ASSET_CLASSES[flh]
        staff_no, org, _ = g.pick(staff)
        acquired = g.day(date(2005, 1, 1), date(2026, 10, 1))
        quantity = 1 if flh != "TS" else 1 + g.rnd.randrange(50)
        disposed = g.rnd.random() < 0.03
        number, value = f"ZC{acquired.year}{i:07d}", f"{g.rnd.uniform(low, high):.2f}"
        if g.dirty(i):  # a refund or correction keyed as a negative value
            value = f"-{value}"
            campus.dirt.append(Dirt("negative_value", "asset", "zc_kp", number, "jz", value, "CDX-E107"))
        elif i == 5 or g.rnd.random() < DIRT_RATE / 4:  # a custodian 人事 has never had
            staff_no = ORPHAN_STAFF_NO
            campus.dirt.append(
                Dirt("orphan_custodian", "asset", "zc_kp", number, "syr", staff_no, "CDX-E016")
            )
        cards.append(
            (
                number,
                label,
                flh,
                org,
                staff_no,
                g.pick(BUILDINGS)[0],
                acquired.isoformat(),
                value,
                quantity,
                "待报废" if disposed else g.pick(ASSET_USE),
                "已处置" if disposed else "在账",
                g.stamp(acquired),
            )
        )
    campus.rows["asset.zc_kp"] = _write(
        conn,
        "zc_kp",
        ["zcbh", "zcmc", "flh", "sydw", "syr", "cfdd", "qdrq", "jz", "sl", "syzk", "zzzt", "xgsj"],
        cards,
    )
    return [card[0] for card in cards]


ORPHAN_STAFF_NO = "19990999"
"""A 工号 of the 1999 series that 人事 never issued (sequences in a year stay below 500 up to scale 5)."""
ROOM_USES = ["教室", "实验室", "办公室", "会议室", "机房"]
RARE_NAME = "王䶮"
"""A name with a character outside GBK (U+4DAE): it survives UTF-8, GB18030 and XLSX only."""
INVENTORY_RESULTS = ["在位"] * 18 + ["不在位", "待核实"]


def write_exports(
    out_dir: Path, g: _Gen, campus: Campus, staff: list[tuple[str, str, str]], cards: list[str]
) -> None:
    """The asset office's exports: rooms as XLSX and an inventory check as a GBK CSV."""
    from openpyxl import Workbook

    folder = out_dir / "exports" / "asset"
    folder.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    sheet = book.active
    sheet.title = "房间"
    sheet.append(["房间编码", "楼宇代码", "房间号", "房间名称", "使用面积", "用途", "负责人", "修改时间"])
    rooms = 0
    for building, name, _campus in BUILDINGS:
        for floor in range(1, 4):
            for number in range(1, 6):
                room = f"{floor}{number:02d}"
                keeper = RARE_NAME if rooms == 3 else g.name()
                sheet.append(
                    [
                        f"{building}{room}",
                        building,
                        room,
                        f"{name}{room}室",
                        round(g.rnd.uniform(20, 180), 1),
                        g.pick(ROOM_USES),
                        keeper,
                        datetime(2026, 9, 1, 9, 0, 0),
                    ]
                )
                rooms += 1
    tmp = folder / "zc_fj.xlsx.tmp"
    book.save(tmp)
    tmp.replace(folder / "zc_fj.xlsx")
    campus.rows["asset.export.zc_fj"] = rooms
    checked = cards[: max(20, len(cards) // 10)]
    rows = inventory_rows(g, date(2026, 10, 31), checked, [s[0] for s in staff])
    # the export tool sometimes writes a line twice after an edit: same 盘点单号, another result
    twice = [[*rows[n][:3], "待核实" if rows[n][3] != "待核实" else "在位", *rows[n][4:]] for n in (3, 11)]
    for row in twice:
        campus.dirt.append(Dirt("duplicate_key", "asset", "zc_pd", row[0], "盘点单号", row[0], "CDX-E014"))
    rows[12:12] = twice
    write_inventory(folder / "zc_pd_20261031.csv", rows)
    campus.rows["asset.export.zc_pd"] = len(rows)


INVENTORY_HEADER = ["盘点单号", "资产编号", "盘点日期", "盘点结果", "盘点人工号", "备注"]


def inventory_rows(g: _Gen, day: date, cards: list[str], staff_nos: list[str]) -> list[list[str]]:
    """One inventory check (资产盘点) of ``cards`` on ``day``, numbered PD<yyyymmdd><n>."""
    return [
        [
            f"PD{day:%Y%m%d}{n:05d}",
            card,
            day.isoformat(),
            g.pick(INVENTORY_RESULTS),
            g.pick(staff_nos),
            "外借,已登记" if n % 25 == 0 else "",
        ]
        for n, card in enumerate(cards, start=1)
    ]


def write_inventory(path: Path, rows: list[list[str]]) -> None:
    """The asset office's GBK CSV export (CRLF, quoted where needed), written then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="gbk", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(INVENTORY_HEADER)
        writer.writerows(rows)
    tmp.replace(path)


def generate(out_dir: Path, *, seed: int = 20261122, scale: float | None = None) -> Campus:
    """Write the four source systems as SQLite databases under ``out_dir``.

    Existing databases are replaced (each written to a temporary name, then renamed), and the
    ground truth of injected dirt is written to ``dirt.json`` beside them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    campus = Campus(seed=seed, sizes=sizes_for(scale))
    g = _Gen(seed)
    staff: list[tuple[str, str, str]] = []
    for system in SYSTEMS:
        final = out_dir / f"{system}.sqlite"
        tmp = final.with_suffix(".sqlite.tmp")
        tmp.unlink(missing_ok=True)
        with sqlite3.connect(tmp) as conn:
            if system == "hr":
                staff = _hr(conn, g, campus)
            elif system == "student":
                _student(conn, g, campus)
            elif system == "finance":
                _finance(conn, g, campus, staff)
            else:
                cards = _asset(conn, g, campus, staff)
        conn.close()
        tmp.replace(final)
    write_exports(out_dir, g, campus, staff, cards)
    truth = {
        "seed": seed,
        "sizes": campus.sizes,
        "rows": campus.rows,
        "dirt": [asdict(d) for d in campus.dirt],
        "people": campus.people,
        "conflicts": campus.conflicts,
    }
    (out_dir / "dirt.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return campus
