"""The code sets under schemas/codes/ and their loader (campusdx.core.codes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from campusdx.core import settings
from campusdx.core.codes import CodeSetError, code_set_info, load_code_sets, read_code_file

CODES_DIR = settings.SCHEMAS / "codes"

# The national and industry code sets PX-1.0 fields refer to (datasets.yaml, `code_sets:`), less
# the profile sets it defines inline (SF, DWLB, YEFX, ZZZT).
PX_NATIONAL_SETS = {
    "XBM", "MZM", "GJDQM", "ZZMMM", "SFZJLXM", "XZQH", "XLM", "XWM", "ZYJSZWM", "JZGLBM", "BZLBM",
    "JZGDQZTM", "PYCCM", "XSDQZTM", "YDLBM", "YDYYM", "SYZKM", "ZYDM", "KJKM", "ZCFL",
}  # fmt: skip


@pytest.fixture(scope="module")
def sets() -> dict[str, dict[str, str]]:
    return load_code_sets()


@pytest.fixture(scope="module")
def info() -> dict[str, dict]:
    return code_set_info()


# --- the registry ------------------------------------------------------------------------------


def test_registry_covers_exactly_the_px_national_sets(info):
    assert set(info) == PX_NATIONAL_SETS


def test_every_registry_entry_has_its_file_and_provenance(info):
    for set_id, entry in info.items():
        assert (CODES_DIR / entry["file"]).is_file(), set_id
        assert re.fullmatch(r"[a-z0-9_]+\.csv", entry["file"]), entry["file"]
        for key in ("name", "standard", "edition", "source"):
            assert isinstance(entry[key], str) and entry[key].strip(), (set_id, key)
        assert isinstance(entry["notes"], list) and entry["notes"], set_id


def test_every_csv_in_the_folder_is_registered(info):
    registered = {entry["file"] for entry in info.values()}
    assert {p.name for p in CODES_DIR.glob("*.csv")} == registered


def test_hand_built_subsets_are_marked_as_subsets(info):
    assert {set_id for set_id, entry in info.items() if entry["subset"]} == {"ZCFL", "ZYDM"}


def test_decisions_are_recorded_in_the_notes(info):
    mz_notes = " ".join(info["MZM"]["notes"])
    assert "97" in mz_notes and "98" in mz_notes and "81" in mz_notes
    assert "73" in " ".join(info["XLM"]["notes"])
    assert "2022" in info["ZCFL"]["edition"] and "2010" in info["ZCFL"]["edition"]
    assert "bzkzy" in " ".join(info["ZYDM"]["notes"])


# --- every set ---------------------------------------------------------------------------------


def test_every_set_loads_non_empty(sets):
    assert set(sets) == PX_NATIONAL_SETS
    for set_id, codes in sets.items():
        assert codes, set_id


def test_no_duplicate_codes_and_clean_rows_in_the_files(info):
    for entry in info.values():
        lines = (CODES_DIR / entry["file"]).read_text(encoding="utf-8").splitlines()
        assert lines[0] == "code,name"
        codes = [line.split(",", 1)[0] for line in lines[1:]]
        assert len(codes) == len(set(codes)), entry["file"]
        assert all(code and code == code.strip() for code in codes), entry["file"]


def test_names_are_trimmed_and_non_empty(sets):
    for set_id, codes in sets.items():
        for code, name in codes.items():
            assert name and name == name.strip(), (set_id, code)


def test_codes_have_the_width_px_declares(sets):
    # Field widths in PX-1.0 datasets.yaml: string(n) of the fields using each set.
    widths = {"XBM": 1, "MZM": 2, "GJDQM": 3, "ZZMMM": 2, "SFZJLXM": 1, "XZQH": 6, "XLM": 2, "XWM": 3,
              "ZYJSZWM": 3, "JZGLBM": 2, "BZLBM": 2, "JZGDQZTM": 2, "PYCCM": 1, "XSDQZTM": 2, "YDLBM": 2,
              "YDYYM": 2, "SYZKM": 1, "ZYDM": 8, "ZCFL": 7}  # fmt: skip
    for set_id, width in widths.items():
        too_long = [code for code in sets[set_id] if len(code) > width]
        assert not too_long, (set_id, too_long)


# --- particular sets ---------------------------------------------------------------------------


def test_xbm_is_exactly_gb_t_2261_1(sets):
    assert set(sets["XBM"]) == {"0", "1", "2", "9"}


def test_mzm_has_56_nationalities_plus_97_98_and_no_81(sets):
    mz = sets["MZM"]
    assert [code for code in mz if code not in ("97", "98")] == [f"{n:02d}" for n in range(1, 57)]
    assert mz["97"] == "其他" and mz["98"] == "外国血统中国籍人士"
    assert "81" not in mz
    assert "穿青人族" not in mz.values()
    assert mz["01"] == "汉族" and mz["36"] == "毛南族"


def test_xlm_fixes_the_63_defect(sets):
    xl = sets["XLM"]
    lines = (CODES_DIR / code_set_info()["XLM"]["file"]).read_text(encoding="utf-8").splitlines()
    assert sum(1 for line in lines if line.startswith("63,")) == 1
    assert xl["63"] == "普通高中肄业"
    assert xl["73"] == "初中肄业"
    assert xl["80"] == "小学教育"
    assert list(xl)[-6:] == ["71", "73", "80", "81", "83", "90"]


def test_xwm_names_are_corrected(sets):
    xw = sets["XWM"]
    assert xw["212"] == "管理学博士学位"
    assert xw["345"] == "临床医学硕士专业学位"
    assert xw["412"] == "管理学学士学位"
    assert {"2", "3", "4"} <= set(xw)


def test_zzmmm_and_sfzjlxm_match_the_px_lists(sets):
    assert list(sets["ZZMMM"]) == [f"{n:02d}" for n in range(1, 14)]
    assert list(sets["SFZJLXM"]) == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "Z"]


def test_gjdqm_is_3_digit_numeric_with_china_and_newer_states(sets):
    gj = sets["GJDQM"]
    assert all(re.fullmatch(r"\d{3}", code) for code in gj)
    assert gj["156"] == "中国"
    assert gj["688"] == "塞尔维亚" and gj["728"] == "南苏丹"
    assert list(gj) == sorted(gj)


def test_xzqh_is_the_current_6_digit_list(sets):
    xz = sets["XZQH"]
    assert all(re.fullmatch(r"\d{6}", code) for code in xz)
    assert xz["610000"] == "陕西省"
    assert xz["610116"] == "长安区"
    assert len(xz) > 3000


def test_zyjszwm_has_series_and_positions(sets):
    zc = sets["ZYJSZWM"]
    assert all(re.fullmatch(r"\d{3}", code) for code in zc)
    assert zc["010"] == "高等学校教师"
    assert [zc[c] for c in ("011", "012", "013", "014")] == ["教授", "副教授", "讲师（高校）", "助教（高校）"]
    assert zc["072"] == "高级实验师" and zc["082"] == "高级工程师" and zc["611"] == "研究员（自然科学）"
    series = {code[:2] for code in zc if code.endswith("0")}
    assert all(code[:2] in series for code in zc), "every position sits under a series row"


def test_jzglbm_50_has_its_name(sets):
    assert sets["JZGLBM"]["50"] == "聘请校外教师"


def test_px_rule_codes_exist(sets):
    # Rules in datasets.yaml rely on these codes.
    assert sets["XSDQZTM"]["01"] == "在读" and sets["XSDQZTM"]["05"] == "复学"
    assert sets["YDLBM"]["23"] == "转专业"


def test_zydm_codes_follow_the_catalogue_pattern(sets):
    zy = sets["ZYDM"]
    assert all(re.fullmatch(r"\d{6}[KT]?", code) for code in zy), [c for c in zy if len(c) > 7]
    assert zy["081501"] == "采矿工程"
    assert zy["082901"] == "安全工程"
    assert zy["080901"] == "计算机科学与技术"
    assert zy["120203K"] == "会计学"
    assert zy["080910T"] == "数据科学与大数据技术"
    assert "120203" not in zy, "K/T suffix is part of the code"


def test_zcfl_codes_are_7_digits_starting_1_to_6(sets):
    assert all(re.fullmatch(r"[1-6]\d{6}", code) for code in sets["ZCFL"])


def test_kjkm_codes_are_4_characters(sets):
    kj = sets["KJKM"]
    assert len(kj) == 103
    assert all(len(code) == 4 and code.isdigit() for code in kj)
    assert kj["1001"] == "库存现金" and kj["8701"] == "非财政拨款结余分配"
    assert sum(code[0] in "12345" for code in kj) == 77


# --- the loader refuses bad files ---------------------------------------------------------------


def _registry(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "code_sets.yml").write_text(
        "code_sets:\n"
        "  XBM:\n"
        "    file: xb.csv\n"
        "    name: 性别\n"
        "    standard: GB/T 2261.1-2003\n"
        '    edition: "2003"\n'
        "    source: test\n"
        "    subset: false\n"
        "    notes: [test]\n",
        encoding="utf-8",
    )
    (tmp_path / "xb.csv").write_text(csv_text, encoding="utf-8")
    return tmp_path


def test_loader_reads_a_good_directory_in_file_order(tmp_path):
    directory = _registry(tmp_path, "code,name\n9,未说明的性别\n01,男性\n")
    assert load_code_sets(directory) == {"XBM": {"9": "未说明的性别", "01": "男性"}}
    assert list(load_code_sets(directory)["XBM"]) == ["9", "01"]


def test_loader_rejects_a_duplicate_code_naming_file_and_line(tmp_path):
    directory = _registry(tmp_path, "code,name\n1,男性\n2,女性\n1,男\n")
    with pytest.raises(CodeSetError, match=r"xb\.csv:4: duplicate code '1' \(first on line 2\)"):
        load_code_sets(directory)


@pytest.mark.parametrize("header", ["DM,MC", "code,name,extra", "name,code", "code"])
def test_loader_rejects_a_bad_header(tmp_path, header):
    directory = _registry(tmp_path, f"{header}\n1,男性\n")
    with pytest.raises(CodeSetError, match=r"xb\.csv:1: header must be exactly 'code,name'"):
        load_code_sets(directory)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,男性\n,女性\n", r"xb\.csv:3: empty code"),
        ("1,男性\n 2,女性\n", r"xb\.csv:3: code ' 2': leading or trailing spaces"),
        ("1,男性\n2,\n", r"xb\.csv:3: code '2': empty name"),
        ("1,男性\n2,女性,x\n", r"xb\.csv:3: expected 2 fields"),
        ("", r"xb\.csv: no codes"),
    ],
)
def test_loader_rejects_bad_rows(tmp_path, body, message):
    directory = _registry(tmp_path, "code,name\n" + body)
    with pytest.raises(CodeSetError, match=message):
        load_code_sets(directory)


def test_loader_keeps_leading_zeros_and_tolerates_a_bom(tmp_path):
    path = tmp_path / "mz.csv"
    path.write_bytes("\ufeffcode,name\n01,汉族\n".encode())
    assert read_code_file(path) == {"01": "汉族"}


def test_loader_names_a_missing_file(tmp_path):
    directory = _registry(tmp_path, "code,name\n1,男性\n")
    (directory / "xb.csv").unlink()
    with pytest.raises(CodeSetError, match=r"xb\.csv: file not found"):
        load_code_sets(directory)


def test_registry_entry_missing_keys_is_rejected(tmp_path):
    (tmp_path / "code_sets.yml").write_text("code_sets:\n  XBM:\n    file: xb.csv\n", encoding="utf-8")
    with pytest.raises(CodeSetError, match=r"code set XBM: missing name, standard"):
        code_set_info(tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    colour: red\n", r"code set XBM: unknown key\(s\) \['colour'\]"),
        ("    subset: 'no'\n", r"code set XBM: subset must be true or false, not 'no'"),
    ],
)
def test_registry_entry_unknown_key_or_bad_subset_is_rejected(tmp_path, extra, message):
    directory = _registry(tmp_path, "code,name\n1,男性\n")
    registry = directory / "code_sets.yml"
    text = registry.read_text(encoding="utf-8").replace("    subset: false\n", "")
    registry.write_text(
        text + extra + ("    subset: false\n" if "subset" not in extra else ""), encoding="utf-8"
    )
    with pytest.raises(CodeSetError, match=message):
        code_set_info(directory)
