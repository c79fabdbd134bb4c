"""The quality gate: each rule family catches its fault, under its rule ID; clean rows pass."""

import json
import os
import re

import duckdb
import pyarrow.parquet as pq
import pytest

from campusdx.core.profile import load_profile
from campusdx.core.settings import Paths
from campusdx.quality import datadocs
from campusdx.quality.gate import Gate, read_verdict
from campusdx.quality.rules import load_rules

CLEAN = {
    "XH": "2201010001",
    "XM": "张三",
    "XBM": "1",
    "CSRQ": "2004-01-27",
    "MZM": "01",
    "SFZJLXM": "1",
    "SFZJH": "11010520040127001X",  # born 2004-01-27, 17th digit odd: male, as CSRQ and XBM say
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
    "K-NOORG": ("DWH", "404", "CDX-E016"),  # no such 单位号 in ZZJG
    "K-HELDORG": ("DWH", "999", "CDX-E016"),  # a 单位号 whose ZZJG row is itself quarantined
    "K-NJ": ("NJ", "2021", "CDX-E102"),
    "K-SFZX": ("SFZX", "0", "CDX-E103"),
    "K-BIRTH": ("CSRQ", "2004-01-28", "CDX-W102"),  # warnings: reported, not quarantined
    "K-SEX": ("XBM", "2", "CDX-W103"),
}
WARNED = {"K-BIRTH", "K-SEX", "K-OLD"}
ORGS = {  # ZZJG, judged first: 201 is clean, 999 lacks its required 单位名称
    "O-201": {
        "DWH": "201",
        "DWMC": "计算机学院",
        "DWJC": None,
        "SJDWH": None,
        "DWLBM": "20",
        "XQH": None,
        "JLRQ": None,
        "SFSY": "1",
    },
    "O-999": {
        "DWH": "999",
        "DWMC": None,
        "DWJC": None,
        "SJDWH": "201",
        "DWLBM": "20",
        "XQH": None,
        "JLRQ": None,
        "SFSY": "1",
    },
}


def _warehouse(path, rows, dataset="XSJBXX"):
    fields = load_profile().dataset(dataset).field_codes
    table = f"feeds_candidates.feed_px_candidates__{dataset.lower()}"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema if not exists feeds_candidates")
        columns = ", ".join(f"{f.lower()} varchar" for f in fields)
        conn.execute(f"create table {table} (record_key varchar, batch_id varchar, {columns})")
        for key, row in rows.items():
            conn.execute(
                f"insert into {table} values ({', '.join('?' * (len(fields) + 2))})",
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
    # PX-W101: 126 years old (a passport, so the ID-number checks do not apply)
    rows["K-OLD"] = {**CLEAN, "XH": "2401010002", "SFZJLXM": "A", "SFZJH": "E12345679", "CSRQ": "1900-01-01"}
    paths = Paths(home)
    _warehouse(paths.warehouse, rows)
    _warehouse(paths.warehouse, ORGS, "ZZJG")
    gate = Gate(paths, approvals_file=home / "no-approvals.yml")  # no approval: no tolerance
    gate.check("ZZJG", run_id="gate-test-1")
    verdict = gate.check("XSJBXX", run_id="gate-test-2")
    findings = pq.read_table(paths.quality / "findings" / "XSJBXX.parquet").to_pylist()
    return paths, verdict, findings


def test_each_fault_is_caught_by_its_rule_and_nothing_else(judged):
    _, _, findings = judged
    caught = {(f["record_key"], f["rule_id"]) for f in findings}
    expected = {(key, rule) for key, (_, _, rule) in FAULTS.items()}
    expected |= {("K-DUP1", "CDX-E014"), ("K-DUP2", "CDX-E014"), ("K-OLD", "CDX-W101")}
    assert caught == expected
    warned = {f["record_key"] for f in findings if f["severity"] == "warning"}
    assert warned == WARNED


def test_findings_name_field_value_and_lineage(judged):
    _, _, findings = judged
    by_key = {f["record_key"]: f for f in findings}
    assert by_key["K-CODE"]["field"] == "MZM" and by_key["K-CODE"]["value"] == "57"
    assert by_key["K-ID"]["source_system"] == "student" and by_key["K-ID"]["batch_id"] == "b1"
    # a personal field's value is kept masked, with its keyed fingerprint; others have none
    assert by_key["K-ID"]["value"] == "110105************" and len(by_key["K-ID"]["value_fingerprint"]) == 64
    assert by_key["K-CODE"]["value_fingerprint"] is None


def test_no_stored_validation_result_or_page_names_a_personal_value(judged):
    paths, _, _ = judged
    stored = [p for p in (paths.quality / "gx").rglob("*") if p.suffix in (".json", ".html")]
    assert any("validations" in p.parts for p in stored)
    for page in stored:
        assert "110105194912310021" not in page.read_text(encoding="utf-8"), page


def test_verdict_is_written_and_tolerance_applies(judged):
    paths, verdict, _ = judged
    assert verdict.rows_checked == 55 and verdict.rows_quarantined == 11
    # one failing expectation per family at fault (required, code set, format, ID number, length,
    # key, reference), per business rule (E102, E103) and per person check (W101..W103)
    assert verdict.checks_failed == 12 and verdict.checks_passed > 0
    assert verdict.warnings == {"CDX-W101": 1, "CDX-W102": 1, "CDX-W103": 1}
    # without an approval no error rule tolerates a failure: blocked, and the message says why
    assert verdict.status == "blocked"
    assert "CDX-E016 failed on 2 of 55 rows (3.6%), above its tolerance 0 (no approval)" in verdict.blocking
    assert sorted(b.split()[0] for b in verdict.blocking) == sorted(
        {rule for _, _, rule in FAULTS.values() if rule.startswith("CDX-E")} | {"CDX-E014"}
    )
    assert read_verdict("XSJBXX", paths).failures == verdict.failures
    assert json.loads((paths.quality / "gate" / "XSJBXX.json").read_text())["status"] == "blocked"


def test_data_docs_are_built_and_load_nothing_from_the_network(judged):
    paths, _, _ = judged
    site = paths.quality / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (site / "index.html").exists()
    if not datadocs.available():
        message = "Data Docs assets not installed (run `make`: npm ci in expectations/datadocs)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pages = sorted(site.rglob("*.html"))
    assert any("validations" in p.parts for p in pages) and any("expectations" in p.parts for p in pages)
    for page in pages:
        assert datadocs.remote_loads(page) == [], page
        # every script, stylesheet and image a page names is a file of the site
        for link in re.findall(r'<(?:script|link|img)\b[^>]*?(?:src|href)="([^"#?]+)', page.read_text()):
            assert (page.parent / link).resolve().is_file(), f"{page.relative_to(site)} names {link}"


def test_every_rule_explains_itself():
    for rule in load_rules().rules:
        assert rule.id and rule.what and rule.why and rule.fix
        assert rule.severity in ("error", "warning")


def test_every_px_rule_is_enforced_by_a_project_rule_before_sending():
    book = load_rules()
    enforced = {rule.px_rule for rule in book.rules if rule.px_rule}
    px_rules = {f"PX-E0{n}" for n in range(10, 18)} | {"PX-W101", "PX-W102", "PX-W103"}
    assert px_rules <= enforced, sorted(px_rules - enforced)
    # every plain-words dataset rule of the profile, word for word, and for its datasets
    covered = {(dataset, rule.px_text) for rule in book.rules if rule.px_text for dataset in rule.datasets}
    for code, dataset in load_profile().datasets.items():
        for text in dataset.rules:
            assert (code, text) in covered, (code, text)


def test_the_business_rules_catch_their_faults_and_pass_clean_rows():
    """Each vectorised rule on a row that breaks it and a row that keeps it."""
    import pandas as pd

    from campusdx.quality.row_rules import ROW_RULES

    cases = {
        "lxrq_not_before_csrq": ({"LXRQ": "1979-12-31", "CSRQ": "1980-01-01"}, {"LXRQ": "2005-09-01"}),
        "major_change_names_both": (
            {"YDLBM": "23", "YDQZYDM": "080901", "YDHZYDM": "080901"},
            {"YDHZYDM": "080902"},
        ),
        "period_in_year": ({"KJQJ": "13"}, {"KJQJ": "12"}),
        "balance_identity": (
            {"QCYE": "10.00", "JFFSE": "5.00", "DFFSE": "2.00", "QMYE": "13.01", "YEFX": "J"},
            {"QMYE": "13.00"},
        ),
        "asset_value_not_negative": ({"JZ": "-0.01"}, {"JZ": "0.00"}),
        "asset_count_at_least_one": ({"SL": "0"}, {"SL": "1"}),
        "xz_fits_pycc": ({"XZ": "3.0", "PYCCM": "3"}, {"XZ": "5.0"}),  # 本科: 4-5 years
    }
    for name, (broken, fix) in cases.items():
        frame = pd.DataFrame([broken, {**broken, **fix}])
        assert ROW_RULES[name](frame).tolist() == [False, True], name
    # a 贷 account closes the other way
    credit = {"QCYE": "10.00", "JFFSE": "5.00", "DFFSE": "2.00", "QMYE": "7.00", "YEFX": "D"}
    assert ROW_RULES["balance_identity"](pd.DataFrame([credit])).tolist() == [True]
    # 学制 by 培养层次: 博士 up to 6 years, 专科 not 4; an unknown level or a missing 学制 is not judged
    study = pd.DataFrame({"XZ": ["6", "4", "9", None], "PYCCM": ["1", "4", "9", "3"]})
    assert ROW_RULES["xz_fits_pycc"](study).tolist() == [True, False, True, True]


def test_gate_status_prints_the_verdicts_as_a_table_and_as_json(judged, monkeypatch, capsys):
    from campusdx.cli import main

    paths, _, _ = judged
    monkeypatch.setenv("CAMPUSDX_HOME", str(paths.home))
    assert main(["gate-status"]) == 1  # a blocked dataset: a non-zero exit for scripts
    out = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.out.splitlines() if line and not line.startswith(" ")}
    assert lines["XSJBXX"].split()[1:4] == ["blocked", "55", "11"]
    assert lines["ZZJG"].split()[1:4] == ["blocked", "2", "1"]
    assert "CDX-E016 x2" in lines["XSJBXX"] and "CDX-W101 x1" in lines["XSJBXX"]
    assert "blocked: CDX-E016 failed on 2 of 55 rows" in out.out
    assert "CDX-E016  Correct the reference at its source" in out.out
    assert "not judged yet: CWKMYE, GDZC, JZGJBXX, XJYD, ZY" in out.err
    assert main(["gate-status", "--json"]) == 1
    verdicts = json.loads(capsys.readouterr().out)
    assert sorted(verdicts) == ["XSJBXX", "ZZJG"] and verdicts["XSJBXX"]["failures"]["CDX-E016"] == 2


APPROVAL = """
approvals:
  - id: APR-2026-07
    rule: CDX-E013
    dataset: XSJBXX
    max_share: 0.05
    approved_by: 学生工作部 学籍科
    approved_on: 2026-01-01
    valid_until: 2026-06-30
    reason: 20 students' ID cards are being re-checked with the public security bureau.
  - id: CDX-POLICY-1
    rule: "*"
    max_share: 0.01
    approved_by: 数据治理办公室
    approved_on: 2026-01-01
    valid_until: 2027-12-31
    reason: a standing policy
"""


@pytest.fixture
def one_bad_id(tmp_path):
    rows = {f"K-OK{i}": {**CLEAN, "XH": f"22010100{i:02d}"} for i in range(40)}
    rows["K-ID"] = {**CLEAN, "XH": "2301010001", "SFZJH": "110105194912310021"}  # 1 of 41: 2.4 %
    paths = Paths(tmp_path / "home")
    paths.home.mkdir()
    _warehouse(paths.warehouse, rows)
    _warehouse(paths.warehouse, ORGS, "ZZJG")
    approvals = tmp_path / "approvals.yml"
    approvals.write_text(APPROVAL, encoding="utf-8")
    return paths, approvals


def test_an_approval_relaxes_its_rule_until_its_last_day_and_then_stops_by_itself(one_bad_id):
    from datetime import UTC, datetime

    paths, approvals = one_bad_id
    gate = Gate(paths, approvals_file=approvals)
    # 2026-06-30 23:00 in Beijing: the approval's last day, in force
    last_day = gate.check("XSJBXX", now=datetime(2026, 6, 30, 15, 0, tzinfo=UTC))
    assert last_day.status == "passed" and last_day.failures == {"CDX-E013": 1}
    assert "approval APR-2026-07, until 2026-06-30" in last_day.tolerances["CDX-E013"]
    # 2026-07-01 00:00 in Beijing: expired; the standing 1 % policy is all that is left
    expired = gate.check("XSJBXX", now=datetime(2026, 6, 30, 16, 0, tzinfo=UTC))
    assert expired.status == "blocked" and expired.failures == {"CDX-E013": 1}
    assert expired.blocking == [
        "CDX-E013 failed on 1 of 41 rows (2.4%), above its tolerance "
        "1.0% (approval CDX-POLICY-1, until 2027-12-31)"
    ]
    # the failing row is held back either way
    findings = pq.read_table(paths.quality / "findings" / "XSJBXX.parquet").to_pylist()
    assert [(f["record_key"], f["rule_id"]) for f in findings] == [("K-ID", "CDX-E013")]


def test_without_any_approval_an_expired_one_is_named(one_bad_id, tmp_path):
    from datetime import UTC, datetime

    paths, _ = one_bad_id
    only = tmp_path / "only.yml"
    only.write_text(APPROVAL.split("  - id: CDX-POLICY-1")[0], encoding="utf-8")
    verdict = Gate(paths, approvals_file=only).check("XSJBXX", now=datetime(2026, 7, 2, tzinfo=UTC))
    assert verdict.blocking == [
        "CDX-E013 failed on 1 of 41 rows (2.4%), above its tolerance "
        "0 (approval APR-2026-07 expired on 2026-06-30)"
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        (("rule: CDX-E013", "rule: CDX-E999"), "rule 'CDX-E999' is not in expectations/rules.yml"),
        (("dataset: XSJBXX", "dataset: XSJB"), "dataset 'XSJB' is not in the profile"),
        (("max_share: 0.05", "max_share: 5"), "max_share 5.0 is not a share of rows between 0 and 1"),
        (
            ("valid_until: 2026-06-30", "valid_until: 2025-12-31"),
            "valid_until 2025-12-31 is before approved_on",
        ),
        (("    approved_by: 学生工作部 学籍科\n", ""), "approval APR-2026-07 lacks ['approved_by']"),
        (("valid_until: 2026-06-30", "valid_until: 30/6/2026"), "valid_until '30/6/2026' is not a date"),
    ],
)
def test_a_bad_approval_is_refused_naming_the_file_and_entry(tmp_path, change, message):
    from campusdx.quality.approvals import load_approvals

    path = tmp_path / "approvals.yml"
    path.write_text(APPROVAL.replace(*change), encoding="utf-8")
    book = load_rules()
    with pytest.raises(ValueError) as refused:
        load_approvals(path, rule_ids={r.id for r in book.rules}, datasets=set(load_profile().datasets))
    assert message in str(refused.value) and str(path) in str(refused.value)


def test_the_shipped_approvals_load():
    from campusdx.quality.approvals import APPROVALS_FILE, load_approvals

    assert load_approvals(APPROVALS_FILE, rule_ids={r.id for r in load_rules().rules}, datasets=None)


def test_the_summary_page_and_json_show_each_verdict_and_the_failures_per_run(judged):
    from html.parser import HTMLParser

    paths, _, _ = judged
    report = json.loads((paths.quality / "summary.json").read_text(encoding="utf-8"))
    assert sorted(report["datasets"]) == ["XSJBXX", "ZZJG"]
    assert [run["run_id"] for run in report["runs"]] == ["gate-test-1", "gate-test-2"]
    # ZZJG (run 1) holds back 999 for its missing 单位名称; XSJBXX (run 2) the rest
    assert report["failures_per_rule"]["CDX-E010"] == [1, 1]
    assert report["failures_per_rule"]["CDX-E016"] == [0, 2]
    assert report["failures_per_rule"]["CDX-W101"] == [0, 1]
    page = (paths.quality / "summary.html").read_text(encoding="utf-8")

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = []

        def handle_starttag(self, tag, attrs):
            if tag in ("a", "svg"):
                self.found.append((tag, dict(attrs).get("href")))

    parser = Links()
    parser.feed(page)
    assert ("a", report["data_docs"]) in parser.found and (paths.quality / report["data_docs"]).exists()
    assert sum(tag == "svg" for tag, _ in parser.found) == len(report["failures_per_rule"])
    assert "Correct the reference at its source" in page and "<script" not in page
    history = (paths.quality / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["dataset"] for line in history] == ["ZZJG", "XSJBXX"]


def test_vectorised_formats_answer_exactly_as_format_error():
    """The gate checks formats a column at a time (a strict pattern accepts the bulk, the rest go
    one by one); on every kind of value it must agree with FieldType.format_error."""
    import pandas as pd

    from campusdx.core.profile import FieldType
    from campusdx.quality.custom import formats_ok

    samples = [
        "2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31", "2024-13-01", "2024-1-05", "20240105",
        "2024-02-29 23:59:59", "2024-02-29 24:00:00", "1677-09-21 00:00:00", "0000-01-01 00:00:00",
        "0", "-0", "00", "007", "123", "-12345678901234567", "1.5", "1.", ".5", "1.234", "000012345678.12",
        "1e5", " 1", "1 ", "", "一", "１２",
    ]  # fmt: skip
    values = pd.Series(samples, dtype=object)
    for text in ("date", "datetime", "integer", "decimal(18,2)", "decimal(5,0)", "decimal(3,3)"):
        kind = FieldType.parse(text)
        assert formats_ok(values, kind).tolist() == [kind.format_error(v) is None for v in samples], text
