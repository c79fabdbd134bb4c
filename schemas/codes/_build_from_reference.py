"""One-off: derive the code-set CSVs in this folder from the reference tables.

This records *how* each CSV was made. Nothing runs it at run time: the pipeline reads only the CSVs
and ``code_sets.yml`` committed beside it (``campusdx.core.codes``). Run it again only to rebuild the
CSVs from a new copy of the reference tables, then review the diff by hand:

    python schemas/codes/_build_from_reference.py /path/to/reference/codes

The reference folder is the project's raw material (``jyt1001/``, ``gb2260/``, ``finance/``); see
its README for where those public copies came from. Every defect fixed and every row transcribed
by hand is listed below and in ``code_sets.yml``; the hand-built subsets (ZYDM, ZCFL) are
transcribed here, not derived.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from pathlib import Path

OUT = Path(__file__).resolve().parent

Rows = list[tuple[str, str]]

# --- Corrections to the JY/T 1001 warehouse copy (each one listed in code_sets.yml) ------------

# XLM (GB/T 4658-2006): the second "63" is 初中肄业, which the standard codes 73; and 80 小学教育
# (the category row of 81/83) is missing from the copy.
XL_FIX_SECOND_63_TO = "73"
XL_MISSING = [("80", "小学教育")]

# XWM (GB/T 6864-2003): names garbled in the copy, checked against two independent transcriptions
# of the standard's table.
XW_NAME_FIXES = {
    "212": "管理学博士学位",
    "245": "临床医学博士专业学位",
    "248": "兽医博士专业学位",
    "250": "口腔医学博士专业学位",
    "312": "管理学硕士学位",
    "345": "临床医学硕士专业学位",
    "412": "管理学学士学位",
}

# MZM (GB/T 3304-1991): the copy adds 81 穿青人族 (not in the standard, not accepted by PX-1.0).
# 97 其他 and 98 外国血统中国籍人士 are kept: the PX-1.0 profile accepts them.
MZ_DROP = {"81"}
# 36: the nationality was renamed 毛难族 -> 毛南族 by the State Council in 1986.
MZ_NAME_FIXES = {"36": "毛南族"}

# JZGLBM: the copy's name for 50 is the code itself ("50").
JZGLB_NAME_FIXES = {"50": "聘请校外教师"}

# GJDQM: the copy is GB/T 2659-2000 (239 codes). ISO 3166-1 numeric codes assigned since then,
# carried by GB/T 2659.1-2022; Chinese names from the iso-codes project's zh_CN translation.
GJDQ_ADDED = [
    ("248", "奥兰群岛"),
    ("499", "黑山"),
    ("531", "库拉索"),
    ("534", "荷属圣马丁"),
    ("535", "博奈尔、圣尤斯特歇斯岛和萨巴"),
    ("652", "圣巴泰勒米岛"),
    ("663", "法属圣马丁"),
    ("688", "塞尔维亚"),
    ("728", "南苏丹"),
    ("729", "苏丹"),
    ("831", "根西岛"),
    ("832", "泽西岛"),
    ("833", "曼岛"),
]

# --- ZYJSZWM (GB/T 8561-2001): the copy holds only the 56 series rows (x0). The position rows
# below were transcribed from two independent public copies of the standard's table, which agree
# row for row; third digit: 1 正高, 2 副高, 3 中级, 4 助理级, 5 员级.
ZYJSZW_POSITIONS_TEXT = """
011教授 012副教授 013讲师（高校） 014助教（高校）
022高级讲师（中专） 023讲师（中专） 024助理讲师（中专） 025教员（中专）
032高级讲师（技校） 033讲师（技校） 034助理讲师（技校） 035教员（技校）
042高级实习指导教师 043一级实习指导教师 044二级实习指导教师 045三级实习指导教师
052高级教师（中学） 053一级教师（中学） 054二级教师（中学） 055三级教师（中学）
072高级实验师 073实验师 074助理实验师 075实验员
082高级工程师 083工程师 084助理工程师 085技术员
091农业技术推广研究员（农艺） 092高级农艺师 093农艺师 094助理农艺师 095农业技术员
101农业技术推广研究员（兽医） 102高级兽医师 103兽医师 104助理兽医师 105兽医技术员
111农业技术推广研究员（畜牧） 112高级畜牧师 113畜牧师 114助理畜牧师 115畜牧技术员
122高级经济师 123经济师 124助理经济师 125经济员
132高级会计师 133会计师 134助理会计师 135会计员
142高级统计师 143统计师 144助理统计师 145统计员
151编审 152副编审 153编辑 154助理编辑
163技术编辑 164助理技术编辑 165技术设计员
173一级校对 174二级校对 175三级校对
181译审 182副译审 183翻译 184助理翻译
191高级记者 192主任记者 193记者 194助理记者
201高级编辑 202主任编辑 203编辑 204助理编辑
221播音指导 222主任播音员 223一级播音员 224二级播音员 225三级播音员
231主任医师 232副主任医师 233主治医师 234医师 235医士
241主任药师 242副主任药师 243主管药师 244药师 245药士
251主任护师 252副主任护师 253主管护师 254护师 255护士
261主任技师 262副主任技师 263主管技师 264技师 265技士
272高级工艺美术师 273工艺美术师 274助理工艺美术师 275工艺美术员
281一级演员 282二级演员 283三级演员 284四级演员
291一级演奏员 292二级演奏员 293三级演奏员 294四级演奏员
301一级编剧 302二级编剧 303三级编剧 304四级编剧
311一级导演 312二级导演 313三级导演 314四级导演
321一级指挥 322二级指挥 323三级指挥 324四级指挥
331一级作曲 332二级作曲 333三级作曲 334四级作曲
341一级美术师 342二级美术师 343三级美术师 344美术员
351一级舞美设计师 352二级舞美设计师 353三级舞美设计师 354舞美设计员
362主任舞台技师 363舞台技师 364舞台技术员
371国家级教练 372高级教练 373一级教练 374二级教练 375三级教练
391一级律师 392二级律师 393三级律师 394四级律师 395律师助理
401一级公证员 402二级公证员 403三级公证员 404四级公证员 405公证助理员
413高级教师（小学） 414一级教师（小学） 415二级教师（小学） 416三级教师（小学）
422高级船长 423船长（大副） 424二副 425三副
432高级轮机长 433轮机长（大管轮） 434二管轮 435三管轮
442高级电机员 443通用电机员（一等电机员） 444二等电机员
452高级报务员 453通用报务员 454二等报务员 455限用报务员
462一级飞行员 463二级飞行员 464三级飞行员 465四级飞行员
472一级领航员 473二级领航员 474三级领航员 475四级领航员
482一级飞行通信员 483二级飞行通信员 484三级飞行通信员 485四级飞行通信员
492一级飞行机械员 493二级飞行机械员 494三级飞行机械员 495四级飞行机械员
502高级引航员 503一、二级引航员 504三、四级引航员
611研究员（自然科学） 612副研究员（自然科学） 613助理研究员（自然科学）
614研究实习员（自然科学）
621研究员（社会科学） 622副研究员（社会科学） 623助理研究员（社会科学）
624研究实习员（社会科学）
641研究馆员（图书） 642副研究馆员（图书） 643馆员（图书） 644助理馆员（图书）
645管理员（图书）
651研究馆员（文博） 652副研究馆员（文博） 653馆员（文博） 654助理馆员（文博）
655管理员（文博）
661研究馆员（档案） 662副研究馆员（档案） 663馆员（档案） 664助理馆员（档案）
665管理员（档案）
671研究馆员（群众文化） 672副研究馆员（群众文化） 673馆员（群众文化）
674助理馆员（群众文化） 675管理员（群众文化）
682高级审计师 683审计师 684助理审计师 685审计员
691主任法医师 692副主任法医师 693主检法医师 694法医师 695法医士
982高级政工师 983政工师 984助理政工师 985政工员
"""
ZYJSZW_POSITIONS: Rows = [(token[:3], token[3:]) for token in ZYJSZW_POSITIONS_TEXT.split()]

# --- ZYDM: hand-built SUBSET of 普通高等学校本科专业目录 for a mining and engineering university.
# Every code and name below has stood unchanged in the catalogue since at least its 2020 edition.
# Never derived from the reference's edu_hb_bzkzy (the pre-2012 catalogue).
ZYDM_SUBSET: Rows = [
    ("020101", "经济学"),
    ("020301K", "金融学"),
    ("020401", "国际经济与贸易"),
    ("030101K", "法学"),
    ("030503", "思想政治教育"),
    ("050101", "汉语言文学"),
    ("050201", "英语"),
    ("070101", "数学与应用数学"),
    ("070102", "信息与计算科学"),
    ("070202", "应用物理学"),
    ("070302", "应用化学"),
    ("070504", "地理信息科学"),
    ("070801", "地球物理学"),
    ("070901", "地质学"),
    ("071201", "统计学"),
    ("080202", "机械设计制造及其自动化"),
    ("080204", "机械电子工程"),
    ("080207", "车辆工程"),
    ("080301", "测控技术与仪器"),
    ("080401", "材料科学与工程"),
    ("080601", "电气工程及其自动化"),
    ("080701", "电子信息工程"),
    ("080703", "通信工程"),
    ("080717T", "人工智能"),
    ("080801", "自动化"),
    ("080803T", "机器人工程"),
    ("080901", "计算机科学与技术"),
    ("080902", "软件工程"),
    ("080903", "网络工程"),
    ("080904K", "信息安全"),
    ("080905", "物联网工程"),
    ("080910T", "数据科学与大数据技术"),
    ("081001", "土木工程"),
    ("081002", "建筑环境与能源应用工程"),
    ("081003", "给排水科学与工程"),
    ("081005T", "城市地下空间工程"),
    ("081201", "测绘工程"),
    ("081202", "遥感科学与技术"),
    ("081301", "化学工程与工艺"),
    ("081401", "地质工程"),
    ("081402", "勘查技术与工程"),
    ("081403", "资源勘查工程"),
    ("081501", "采矿工程"),
    ("081503", "矿物加工工程"),
    ("082502", "环境工程"),
    ("082503", "环境科学"),
    ("082801", "建筑学"),
    ("082901", "安全工程"),
    ("120102", "信息管理与信息系统"),
    ("120103", "工程管理"),
    ("120105", "工程造价"),
    ("120201K", "工商管理"),
    ("120202", "市场营销"),
    ("120203K", "会计学"),
    ("120204", "财务管理"),
    ("120206", "人力资源管理"),
    ("120402", "行政管理"),
    ("120601", "物流管理"),
    ("120701", "工业工程"),
    ("130502", "视觉传达设计"),
    ("130503", "环境设计"),
    ("130504", "产品设计"),
]

# --- ZCFL: hand-built SUBSET, 7-digit codes with first digit 1..6 as PX-1.0 requires. That code
# structure is GB/T 14885-2010's (GB/T 14885-2022 codes are letter-prefixed, e.g. A010000). Only
# 大类 rows whose code and name appear in the 2010 standard's table of contents are included;
# leaf (小类) codes and the 大类 of 门类 4 (文物和陈列品) are NOT included. 5010000 图书 and
# 6010000 家具用具 were added for the university's books and furniture from the table of contents
# as widely reproduced (5.5 图书、档案; 5.6 家具、用具、装具及动植物): check them against the
# official text. See README.md.
ZCFL_SUBSET: Rows = [
    ("1010000", "土地、海域及无居民海岛"),
    ("1020000", "房屋"),
    ("1030000", "构筑物"),
    ("2010000", "计算机设备及软件"),
    ("2020000", "办公设备"),
    ("2030000", "车辆"),
    ("2040000", "图书档案设备"),
    ("2100000", "机械设备"),
    ("2200000", "电气设备"),
    ("2310000", "通信设备"),
    ("2320000", "广播、电视、电影设备"),
    ("2400000", "仪器仪表"),
    ("2410000", "电子和通信测量仪器"),
    ("2420000", "计量标准器具及量具、衡器"),
    ("3010000", "探矿、采矿、选矿和造块设备"),
    ("3100000", "工程机械"),
    ("3220000", "医疗设备"),
    ("3240000", "安全生产设备"),
    ("5010000", "图书"),
    ("6010000", "家具用具"),
]


def read_table(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a reference table, cells stripped (the jyt1001 copies use CRLF)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(fh, delimiter=delimiter)
        ]


def jy(ref: Path, table: str) -> Rows:
    """(code, name) of a jyt1001 table; the name is MC, or c1 where the conversion lost the header."""
    rows = read_table(ref / "jyt1001" / f"edu_hb_{table}.csv")
    return [(r["DM"], r["MC"] if "MC" in r else r["c1"]) for r in rows]


def fix_names(rows: Rows, fixes: dict[str, str]) -> Rows:
    missing = set(fixes) - {code for code, _ in rows}
    if missing:
        raise SystemExit(f"name fixes for codes not in the table: {sorted(missing)}")
    return [(code, fixes.get(code, name)) for code, name in rows]


def build_xl(ref: Path) -> Rows:
    rows, seen63 = [], False
    for code, name in jy(ref, "xl"):
        if code == "63":
            if seen63:
                code = XL_FIX_SECOND_63_TO
            seen63 = True
        rows.append((code, name))
    at = next(i for i, (code, _) in enumerate(rows) if code == "81")
    return rows[:at] + XL_MISSING + rows[at:]


def build_zyjszw(ref: Path) -> Rows:
    series = jy(ref, "syzc")
    heads = {code[:2] for code, _ in series}
    orphans = [code for code, _ in ZYJSZW_POSITIONS if code[:2] not in heads]
    if orphans:
        raise SystemExit(f"ZYJSZWM positions without a series row in the reference: {orphans}")
    out: Rows = []
    for code, name in series:
        out.append((code, name))
        out.extend(p for p in ZYJSZW_POSITIONS if p[0][:2] == code[:2])
    return out


def build_all(ref: Path) -> dict[str, Rows]:
    """File name -> rows, for every derived code set."""
    mz = [(c, n) for c, n in jy(ref, "mz") if c not in MZ_DROP]
    gb2260 = read_table(ref / "gb2260" / "mca_201904.tsv", delimiter="\t")
    kjkm = read_table(ref / "finance" / "gov_accounting_chart_l1_2017.csv")
    gjdq = sorted(jy(ref, "gjdq") + GJDQ_ADDED, key=lambda row: row[0])
    return {
        "gb_t_2261_1__xb.csv": jy(ref, "xb"),
        "gb_t_3304__mz.csv": fix_names(mz, MZ_NAME_FIXES),
        "gb_t_2659__gjdq.csv": gjdq,
        "gb_t_4762__zzmm.csv": jy(ref, "zzmm"),
        "jy_t_1001__sfzjlx.csv": jy(ref, "sfzjlx"),
        "gb_t_2260__xzqh.csv": [(r["Code"], r["Name"]) for r in gb2260],
        "gb_t_4658__xl.csv": build_xl(ref),
        "gb_t_6864__xw.csv": fix_names(jy(ref, "xw"), XW_NAME_FIXES),
        "gb_t_8561__zyjszw.csv": build_zyjszw(ref),
        "jy_t_1001__jzglb.csv": fix_names(jy(ref, "jzglb"), JZGLB_NAME_FIXES),
        "jy_t_1001__bzlb.csv": jy(ref, "bzlb"),
        "jy_t_1001__jzgdqzt.csv": jy(ref, "jzgdqzt"),
        "jy_t_1001__pycc.csv": jy(ref, "pycc"),
        "jy_t_1001__xsdqzt.csv": jy(ref, "xsdqzt"),
        "jy_t_1001__xjydlb.csv": jy(ref, "xjydlb"),
        "jy_t_1001__xjydyy.csv": jy(ref, "xjydyy"),
        "jy_t_1001__syzk.csv": jy(ref, "syzk"),
        "gov_accounting_2017__kjkm_l1.csv": [(r["code"], r["name"]) for r in kjkm],
        "gb_t_14885__zcfl_subset.csv": ZCFL_SUBSET,
        "moe_bkzyml__zydm_subset.csv": ZYDM_SUBSET,
    }


def check(name: str, rows: Iterable[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for code, label in rows:
        if not code or not label or code in seen:
            raise SystemExit(f"{name}: empty or duplicate row {code!r},{label!r}")
        seen.add(code)


def write(name: str, rows: Rows) -> None:
    with (OUT / name).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["code", "name"])
        writer.writerows(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    ref = Path(argv[0])
    for name, rows in build_all(ref).items():
        check(name, rows)
        write(name, rows)
        print(f"{name}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
