"""The quality gate: each rule family catches its fault, under its rule ID; clean rows pass."""

import json

import duckdb
import pyarrow.parquet as pq
import pytest

from campusdx.settings import Paths
from connectors.exchange.profile import load_profile
from expectations.gate import Gate, read_verdict
from expectations.rules import load_rules

CLEAN = {
    "XH": "2201010001",
    "XM": "张三",
    "XBM": "1",
    "CSRQ": "2004-01-27",
    "MZM": "01",
    "SFZJLXM": "1",
    "SFZJH": "11010519491231002X",
    "GJDQM": "156",
    "ZZMMM": "03",
    "SYDM": "610116",
    "DWH": "201",
    "ZYDM": "081501",
    "PYCCM": "3",
    "XZ": "4",
    "NJ": "2022",
    "BH": "01012201",
    "RXRQ": "2022-09-01",
    "XSDQZTM": "01",
    "SFZX": "1",
    "GXSJ": "2026-07-26 10:43:38",
}
FAULTS = {  # record key -> (field, bad value, rule expected to catch it)
    "K-REQ": ("XM", "", "CDX-E010"),
    "K-CODE": ("MZM", "57", "CDX-E011"),
    "K-DATE": ("CSRQ", "2004/1/27", "CDX-E012"),
    "K-ID": ("SFZJH", "110105194912310021", "CDX-E013"),
    "K-LEN": ("BH", "X" * 21, "CDX-E015"),
}


def _warehouse(path, rows):
    fields = load_profile().dataset("XSJBXX").field_codes
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema intermediate")
        columns = ", ".join(f"{f.lower()} varchar" for f in fields)
        conn.execute(
            f"create table intermediate.int_px__xsjbxx (record_key varchar, batch_id varchar, {columns})"
        )
        for key, row in rows.items():
            conn.execute(
                f"insert into intermediate.int_px__xsjbxx values ({', '.join('?' * (len(fields) + 2))})",
                [key, "b1", *[row[f] for f in fields]],
            )


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    rows = {f"K-OK{i}": {**CLEAN, "XH": f"22010100{i:02d}"} for i in range(40)}
    for n, (key, (field, value, _)) in enumerate(FAULTS.items()):
        rows[key] = {**CLEAN, "XH": f"230101{n:04d}", field: value}
    rows["K-DUP1"] = {**CLEAN, "XH": "DUPLICATE"}
    rows["K-DUP2"] = {**CLEAN, "XH": "DUPLICATE"}
    # a passport holder: the ID-number rule applies only when SFZJLXM is 1
    rows["K-PASSPORT"] = {**CLEAN, "XH": "2401010001", "SFZJLXM": "A", "SFZJH": "E12345678"}
    paths = Paths(home)
    _warehouse(paths.warehouse, rows)
    verdict = Gate(paths).check("XSJBXX")
    findings = pq.read_table(paths.quality / "findings" / "XSJBXX.parquet").to_pylist()
    return paths, verdict, findings


def test_each_fault_is_caught_by_its_rule_and_nothing_else(judged):
    _, _, findings = judged
    caught = {(f["record_key"], f["rule_id"]) for f in findings}
    expected = {(key, rule) for key, (_, _, rule) in FAULTS.items()}
    expected |= {("K-DUP1", "CDX-E014"), ("K-DUP2", "CDX-E014")}
    assert caught == expected


def test_findings_name_field_value_and_lineage(judged):
    _, _, findings = judged
    by_key = {f["record_key"]: f for f in findings}
    assert by_key["K-CODE"]["field"] == "MZM" and by_key["K-CODE"]["value"] == "57"
    assert by_key["K-ID"]["source_system"] == "student" and by_key["K-ID"]["batch_id"] == "b1"


def test_verdict_is_written_and_tolerance_applies(judged):
    paths, verdict, _ = judged
    assert verdict.rows_checked == 48 and verdict.rows_quarantined == 7
    # one failing expectation per family at fault: required, code set, format, ID number, length, key
    assert verdict.checks_failed == 6 and verdict.checks_passed > 0
    # 7 of 48 rows is above the default 5 % tolerance: the dataset is blocked, the message says why
    assert verdict.status == "blocked" and "7 of 48" in verdict.blocking[0]
    assert read_verdict("XSJBXX", paths).failures == verdict.failures
    assert json.loads((paths.quality / "gate" / "XSJBXX.json").read_text())["status"] == "blocked"


def test_data_docs_are_built(judged):
    paths, _, _ = judged
    assert (paths.quality / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()


def test_every_rule_explains_itself():
    for rule in load_rules().rules:
        assert rule.id and rule.what and rule.why and rule.fix
        assert rule.severity in ("error", "warning")
