"""The file extractor: CSV/XLSX exports into the landing zone."""

import json
import logging
import shutil
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pyarrow.parquet as pq
import pytest

from campusdx.core.declarations import DeclarationError, load_system
from campusdx.sources.files import FileDecl, FileExtractError, extract_file, load_file_decls
from campusdx.sources.landing import Landing

SYSTEM = "asset"
HEADER = "资产编号,资产名称,使用单位,价值,修改时间\n"


def _decl(**changes) -> FileDecl:
    fields = {
        "name": "zc_kp_export",
        "path": "{home}/exports/zc_kp_*.csv",
        "format": "csv",
        "primary_key": ("资产编号",),
        "encoding": "gbk",
    }
    return FileDecl(**{**fields, **changes})


def _drop(home, name, text, encoding):
    path = home / "exports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _rows(landing, batch):
    return pq.read_table(landing.data_path(SYSTEM, batch.table, batch.batch_id)).to_pylist()


def _manifest(landing, batch):
    return json.loads(landing.manifest_path(SYSTEM, batch.table, batch.batch_id).read_text(encoding="utf-8"))


def _land(tmp_path, decl, **kwargs):
    landing = Landing(tmp_path / "landing")
    return landing, extract_file(SYSTEM, decl, tmp_path, landing, **kwargs)


def test_gbk_csv_lands_every_character_exactly(tmp_path):
    text = (
        HEADER + "ZC0001,联想台式计算机,资产管理处,4999.00,2026-01-05 08:00:00\n"
        'ZC0002,"办公桌, 实木",信息化处,,2026-01-06\n'
        'ZC0003,"投影仪\r\n（多媒体教室）",  教务处 ,1200,2026-01-07\n'
        "ZC0004,鑫淼犇,后勤集团,0.50,\n"
    )
    path = _drop(tmp_path, "zc_kp_20260107.csv", text, "gbk")
    landing, [batch] = _land(tmp_path, _decl())
    rows = _rows(landing, batch)
    assert [r["资产名称"] for r in rows] == [
        "联想台式计算机",
        "办公桌, 实木",
        "投影仪\r\n（多媒体教室）",
        "鑫淼犇",
    ]
    assert rows[2]["使用单位"] == "  教务处 ", "values land exactly as in the file, spaces included"
    assert rows[0]["价值"] == "4999.00" and rows[1]["价值"] is None and rows[3]["修改时间"] is None
    assert [r["_source_line"] for r in rows] == [2, 3, 4, 6], "the quoted newline makes record 3 two lines"
    assert {r["_source_file"] for r in rows} == {"zc_kp_20260107.csv"}
    assert {r["_batch_id"] for r in rows} == {batch.batch_id}
    manifest = _manifest(landing, batch)
    assert manifest["mode"] == "file" and manifest["source"]["encoding"] == "gbk"
    assert manifest["source"]["bytes"] == path.stat().st_size
    assert all(c["type"] == "string" for c in manifest["columns"] if not c["name"].startswith("_"))


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式机,资产处,1,2026-01-01\n", "utf-8-sig")
    landing, [batch] = _land(tmp_path, _decl(encoding="utf-8"))
    [row] = _rows(landing, batch)
    assert row["资产编号"] == "ZC0001"
    assert _manifest(landing, batch)["source"]["encoding"] == "utf-8-sig"


def test_utf8_bom_in_a_file_declared_gbk_is_an_error(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式机,资产处,1,2026-01-01\n", "utf-8-sig")
    with pytest.raises(FileExtractError, match=r"zc_kp_1\.csv: line 1 .*byte-order mark"):
        _land(tmp_path, _decl())


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
def test_rare_character_survives_gb18030_and_utf8(tmp_path, encoding):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,䶮的台灯,资产处,1,2026-01-01\n", encoding)
    landing, [batch] = _land(tmp_path, _decl(encoding=encoding))
    assert _rows(landing, batch)[0]["资产名称"] == "䶮的台灯"


def test_rare_character_in_a_file_declared_gbk_names_file_and_line(tmp_path):
    good = HEADER + "ZC0001,台式机,资产处,1,2026-01-01\n"
    _drop(tmp_path, "zc_kp_1.csv", good, "gbk")
    _drop(
        tmp_path,
        "zc_kp_2.csv",
        HEADER + "ZC0002,台灯,资产处,1,2026-01-01\nZC0003,䶮的台灯,资产处,1,\n",
        "gb18030",
    )
    landing = Landing(tmp_path / "landing")
    with pytest.raises(FileExtractError) as caught:
        extract_file(SYSTEM, _decl(), tmp_path, landing)
    message = str(caught.value)
    assert "asset.zc_kp_export" in message and "zc_kp_2.csv" in message and "line 3" in message
    assert [b.source_file for b in caught.value.landed] == ["zc_kp_1.csv"], "the good file still lands"
    manifests = list(landing.manifests(SYSTEM, "zc_kp_export"))
    assert [m["source"]["file"] for m in manifests] == ["zc_kp_1.csv"]
    assert not list(landing.table_dir(SYSTEM, "zc_kp_export").glob("*.tmp"))
    # declared as what it is, the same file lands intact
    [batch] = extract_file(SYSTEM, _decl(encoding="gb18030"), tmp_path, landing)
    assert [r["资产名称"] for r in _rows(landing, batch)] == ["台灯", "䶮的台灯"]


def test_auto_detects_a_gbk_file(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,联想台式计算机,国有资产管理处,1,2026-01-01\n", "gbk")
    landing, [batch] = _land(tmp_path, _decl(encoding="auto"))
    assert _rows(landing, batch)[0]["使用单位"] == "国有资产管理处"
    source = _manifest(landing, batch)["source"]
    assert source["encoding_declared"] == "auto"
    assert source["encoding_detected"] in {"gbk", "gb2312", "gb18030"}
    assert source["encoding"] == "gb18030", "decoded as GB18030, the superset"


def test_auto_detects_a_utf8_file(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,联想台式计算机,国有资产管理处,1,2026-01-01\n", "utf-8")
    landing, [batch] = _land(tmp_path, _decl(encoding="auto"))
    assert _rows(landing, batch)[0]["资产名称"] == "联想台式计算机"
    assert _manifest(landing, batch)["source"]["encoding"] == "utf-8"


def test_xlsx_values_land_as_deterministic_text(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "说明"
    sheet = workbook.create_sheet("资产卡片")
    sheet.append(["资产编号", "资产名称", "取得日期", "修改时间", "数量", "价值", "整数价值", "备注"])
    sheet.append(
        ["ZC0001", "联想台式计算机", date(2024, 3, 5), datetime(2026, 1, 5, 8, 30), 3, 4999.5, 1200.0, None]
    )
    sheet.append([None] * 8)  # a blank row is skipped
    sheet.append(["00123", "办公桌", datetime(2023, 9, 1), None, 12, Decimal("0.1"), 0, "二手"])
    (tmp_path / "exports").mkdir()
    workbook.save(tmp_path / "exports" / "zc_kp_1.xlsx")
    decl = FileDecl(
        name="zc_kp_export",
        path="{home}/exports/*.xlsx",
        format="xlsx",
        primary_key=("资产编号",),
        sheet="资产卡片",
    )
    landing, [batch] = _land(tmp_path, decl)
    rows = _rows(landing, batch)
    assert [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows] == [
        {
            "资产编号": "ZC0001",
            "资产名称": "联想台式计算机",
            "取得日期": "2024-03-05",
            "修改时间": "2026-01-05 08:30:00",
            "数量": "3",
            "价值": "4999.5",
            "整数价值": "1200",
            "备注": None,
        },
        {
            "资产编号": "00123",
            "资产名称": "办公桌",
            "取得日期": "2023-09-01 00:00:00",  # a date-time cell keeps its time, even midnight
            "修改时间": None,
            "数量": "12",
            "价值": "0.1",
            "整数价值": "0",
            "备注": "二手",
        },
    ]
    assert [r["_source_line"] for r in rows] == [2, 4]
    source = _manifest(landing, batch)["source"]
    assert (source["format"], source["sheet"], source["encoding"]) == ("xlsx", "资产卡片", None)


def test_same_file_dropped_twice_lands_nothing(tmp_path):
    text = HEADER + "ZC0001,台式机,资产处,1,2026-01-01\n"
    path = _drop(tmp_path, "zc_kp_1.csv", text, "gbk")
    landing, first = _land(tmp_path, _decl())
    assert len(first) == 1
    assert extract_file(SYSTEM, _decl(), tmp_path, landing) == []
    shutil.copy(path, tmp_path / "exports" / "zc_kp_1_copy.csv")  # same bytes under another name
    assert extract_file(SYSTEM, _decl(), tmp_path, landing) == []
    assert len(list(landing.manifests(SYSTEM, "zc_kp_export"))) == 1


def test_changed_file_lands_as_a_new_batch(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式机,资产处,1,2026-01-01\n", "gbk")
    landing, [first] = _land(tmp_path, _decl())
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式计算机,资产处,1,2026-02-01\n", "gbk")
    [second] = extract_file(SYSTEM, _decl(), tmp_path, landing)
    assert second.batch_id > first.batch_id and second.sha256 != first.sha256
    assert _rows(landing, second)[0]["资产名称"] == "台式计算机"
    assert len(list(landing.manifests(SYSTEM, "zc_kp_export"))) == 2


def test_missing_declared_column_names_system_table_file_and_column(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", "资产编号,资产名称\nZC0001,台式机\n", "gbk")
    landing = Landing(tmp_path / "landing")
    with pytest.raises(FileExtractError, match=r"asset\.zc_kp_export: file zc_kp_1\.csv: .*'使用单位'"):
        extract_file(SYSTEM, _decl(columns=("资产编号", "资产名称", "使用单位")), tmp_path, landing)
    assert list(landing.manifests(SYSTEM, "zc_kp_export")) == []


def test_new_column_lands_and_is_reported(tmp_path, caplog):
    _drop(tmp_path, "zc_kp_1.csv", "资产名称,资产编号,存放地点\n台式机,ZC0001,主楼101\n", "gbk")
    with caplog.at_level(logging.WARNING, logger="campusdx.sources.files"):
        landing, [batch] = _land(tmp_path, _decl(columns=("资产编号", "资产名称")))
    assert batch.new_columns == ("存放地点",)
    manifest = _manifest(landing, batch)
    assert manifest["new_columns"] == ["存放地点"]
    assert [c["name"] for c in manifest["columns"]][:3] == ["资产编号", "资产名称", "存放地点"]
    assert _rows(landing, batch)[0]["存放地点"] == "主楼101"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("position(s) [3]" in m for m in warnings), "named by position"
    assert not any("存放地点" in m for m in warnings), "the header's own cells stay out of the log"


def test_rows_read_equal_rows_landed_per_batch(tmp_path):
    for n, name in [(7, "zc_kp_1.csv"), (0, "zc_kp_2.csv")]:
        body = "".join(f"ZC{i:04d},台式机{i},资产处,{i},2026-01-01\n" for i in range(n))
        _drop(tmp_path, name, HEADER + body, "gbk")
    landing, batches = _land(tmp_path, _decl(), chunk_rows=3)
    assert [b.rows for b in batches] == [7, 0]
    for batch in batches:
        data = pq.ParquetFile(landing.data_path(SYSTEM, batch.table, batch.batch_id))
        assert data.metadata.num_rows == _manifest(landing, batch)["rows"] == batch.rows
    assert pq.ParquetFile(landing.data_path(SYSTEM, "zc_kp_export", batches[0].batch_id)).num_row_groups == 3


def test_duplicate_keys_land_and_are_counted(tmp_path):
    body = "ZC0001,台式机,资产处,1,\nZC0002,台灯,资产处,1,\nZC0001,台式机,资产处,1,\n"
    body += "ZC0001,台式机,,1,\n,无编号,,,\n"  # ZC0001 three times: 2 duplicates; one row without key
    _drop(tmp_path, "zc_kp_1.csv", HEADER + body, "gbk")
    landing, [batch] = _land(tmp_path, _decl())
    manifest = _manifest(landing, batch)
    assert (manifest["rows"], manifest["duplicate_keys"], manifest["null_keys"]) == (5, 2, 1)
    assert batch.duplicate_keys == 2


def test_a_row_with_too_few_fields_names_its_line(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式机,资产处,1,\nZC0002,台灯\n", "gbk")
    with pytest.raises(FileExtractError, match=r"zc_kp_1\.csv: line 3: 2 fields, the header has 5"):
        _land(tmp_path, _decl())


def test_load_file_decls_reads_the_files_key(tmp_path):
    path = tmp_path / "asset.yml"
    path.write_text(
        """
system: asset
tables:
  - {name: zc_kp, primary_key: [zcbh]}
files:
  - name: zc_kp_export
    path: "{home}/sources/exports/asset/zc_kp_*.csv"
    format: csv
    encoding: GBK
    delimiter: ","
    primary_key: [资产编号]
    columns: [资产编号, 资产名称]
  - name: zc_kp_sheet
    path: "{home}/sources/exports/asset/*.xlsx"
    sheet: 资产卡片
    primary_key: 资产编号
""",
        encoding="utf-8",
    )
    csv_decl, xlsx_decl = load_file_decls(path)
    assert csv_decl == FileDecl(
        name="zc_kp_export",
        path="{home}/sources/exports/asset/zc_kp_*.csv",
        format="csv",
        primary_key=("资产编号",),
        encoding="gbk",
        columns=("资产编号", "资产名称"),
    )
    assert (xlsx_decl.format, xlsx_decl.sheet, xlsx_decl.primary_key) == ("xlsx", "资产卡片", ("资产编号",))
    assert csv_decl.pattern(tmp_path) == f"{tmp_path}/sources/exports/asset/zc_kp_*.csv"


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ("{name: x, path: a.csv}", "'primary_key' is required"),
        ("{name: x, path: a.csv, primary_key: [k], encoding: big5}", "encoding must be one of"),
        ("{name: x, path: a.csv, primary_key: [k], delimeter: ';'}", "unknown key"),
        ("{name: x, path: a.xlsx, primary_key: [k], encoding: gbk}", "do not apply to format 'xlsx'"),
        ("{name: x, path: a.csv, primary_key: [k], columns: [a]}", "not among the declared columns"),
        ("{name: zc_kp, path: a.csv, primary_key: [k]}", "named under both tables and files"),
        ("{name: x-y, path: a.csv, primary_key: [k]}", "name must match pattern"),
        ("{name: x, path: 'a{b}.csv', primary_key: [k]}", r"path may hold \{home\} and no other braces"),
        ("{name: x, path: a.csv, primary_key: [k, k]}", r"primary_key names \['k'\] more than once"),
        (
            "{name: x, path: a.csv, primary_key: [k], delimiter: ';;'}",
            "delimiter must have at most 1 character",
        ),
        ("{name: x, path: a.txt, primary_key: [k]}", r"format must be one of \['csv', 'xlsx'\], not 'txt'"),
    ],
)
def test_malformed_entry_names_file_and_entry(tmp_path, entry, complaint):
    path = tmp_path / "asset.yml"
    path.write_text(
        f"tables: [{{name: zc_kp, primary_key: [zcbh]}}]\nfiles:\n  - {entry}\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=complaint) as caught:
        load_file_decls(path)
    assert str(path) in str(caught.value)
    if "both" not in complaint:
        assert "files entry 1 ('" in str(caught.value)


def test_a_declaration_names_every_problem_at_once_with_its_key(tmp_path):
    path = tmp_path / "asset.yml"
    path.write_text(
        "system: asset\nconnection: {default_url: 'sqlite://', user: etl}\n"
        "tables:\n  - {name: zc_kp, primary_key: [], lookback: -1, deletes: all}\n"
        "files:\n  - {name: x, path: a.csv, primary_key: [k], encoding: big5, colour: red}\n",
        encoding="utf-8",
    )
    with pytest.raises(DeclarationError) as system:
        load_system(path)
    assert str(system.value).replace(f"; {path}", f"\n{path}").splitlines() == [
        f"{path}: connection: unknown key(s) ['user']; known keys: ['airflow_conn_id', 'default_url']",
        f"{path}: table 'zc_kp': primary_key must not be empty",
        f"{path}: table 'zc_kp': lookback must be greater than or equal to 0, not -1",
        f"{path}: table 'zc_kp': deletes must be one of 'none' or 'key_snapshot', not 'all'",
    ]
    with pytest.raises(DeclarationError) as files:
        load_file_decls(path)
    assert f"{path}: files entry 1 ('x'): encoding must be one of" in str(files.value)
    assert f"{path}: files entry 1 ('x'): unknown key(s) ['colour']; known keys: ['columns'," in str(
        files.value
    )


def test_a_symbolic_link_in_the_export_folder_is_refused_by_name(tmp_path):
    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式机,信息中心,5000,2026-01-01\n", "gbk")
    secret = tmp_path / "elsewhere" / "passwd.csv"
    secret.parent.mkdir()
    secret.write_bytes((HEADER + "ZC9999,别处,别处,1,2026-01-01\n").encode("gbk"))
    (tmp_path / "exports" / "zc_kp_2.csv").symlink_to(secret)
    (tmp_path / "exports" / "linked").symlink_to(secret.parent, target_is_directory=True)
    decl = _decl(path="{home}/exports/**/zc_kp_*.csv")
    (tmp_path / "elsewhere" / "zc_kp_3.csv").write_bytes(secret.read_bytes())
    landing = Landing(tmp_path / "landing")
    with pytest.raises(FileExtractError) as failed:
        extract_file(SYSTEM, decl, tmp_path, landing)
    message = str(failed.value)
    assert "file zc_kp_2.csv: refused" in message and "is a symbolic link" in message
    assert (
        "file zc_kp_3.csv: refused" in message
        and f"{tmp_path / 'exports' / 'linked'} is a symbolic" in message
    )
    [batch] = failed.value.landed
    assert batch.source_file == "zc_kp_1.csv" and [r["资产编号"] for r in _rows(landing, batch)] == ["ZC0001"]


def test_a_file_swapped_for_a_symbolic_link_after_the_listing_is_not_followed(tmp_path, monkeypatch):
    """The folder is checked for links when listed; a file replaced by a link after that check
    is still refused when it is opened (O_NOFOLLOW), and nothing of the link's target lands."""
    from campusdx.sources import files

    _drop(tmp_path, "zc_kp_1.csv", HEADER + "ZC0001,台式机,信息中心,5000,2026-01-01\n", "gbk")
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_bytes((HEADER + "ZC9999,别处,别处,1,2026-01-01\n").encode("gbk"))
    export = tmp_path / "exports" / "zc_kp_1.csv"
    checked = files.FileDecl.linked

    def swap_after_check(self, home, path):
        found = checked(self, home, path)
        if path == export:  # the race: swapped between the check and the open
            path.unlink()
            path.symlink_to(secret)
        return found

    monkeypatch.setattr(files.FileDecl, "linked", swap_after_check)
    landing = Landing(tmp_path / "landing")
    with pytest.raises(FileExtractError, match=r"zc_kp_1\.csv is a symbolic link; refused"):
        extract_file(SYSTEM, _decl(), tmp_path, landing)
    assert not list((tmp_path / "landing").rglob("*.parquet"))


def test_a_header_mismatch_names_declared_columns_not_the_headers_cells(tmp_path):
    # an export saved without its header: the first line is a person's data
    _drop(tmp_path, "zc_kp_1.csv", "ZC0001,张三,110101199003074514,5000\nZC0002,李四,x,1\n", "gbk")
    decl = _decl(columns=("资产编号", "资产名称", "使用单位", "价值"))
    with pytest.raises(FileExtractError) as failed:
        _land(tmp_path, decl)
    message = str(failed.value)
    assert (
        "declared column(s) ['资产编号', '资产名称', '使用单位', '价值'] missing from the header" in message
    )
    assert "4 named columns, 0 of the 4 declared" in message
    for cell in ("ZC0001", "张三", "110101199003074514", "5000"):
        assert cell not in message
    _drop(tmp_path, "zc_kp_1.csv", "资产编号,张三,张三\nZC0001,a,b\n", "gbk")
    with pytest.raises(FileExtractError, match=r"positions \[2, 3\] share a name") as twice:
        _land(tmp_path, _decl())
    assert "张三" not in str(twice.value)
