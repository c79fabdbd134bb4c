"""The platform's side of PX-1.0: the simulated province applies every rule and writes receipts.

Packages are built with the real builder and delivered through the directory gateway; tampered
packages are resealed here with hashlib/hmac directly, so that exactly one rule breaks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from pathlib import Path

import pytest

from campusdx.core.profile import load_profile
from campusdx.demo.province import Province, available_code_sets
from campusdx.demo.province.__main__ import main as province_main
from campusdx.exchange.gateway import DirectoryGateway
from campusdx.exchange.package import build_package, table_from_rows, verify_package
from campusdx.exchange.publisher import collect_receipts, publish_dataset

KEY = bytes(range(32))
KEY_ID = "demo-4161010704"
RECEIPT_KEYS = [
    "package_id", "batch_id", "status", "received_at",
    "rows_received", "rows_accepted", "rows_rejected", "errors",
]  # fmt: skip
ID_FEMALE_1949 = "11010519491231002X"  # valid test vector: born 1949-12-31, sequence 002 (even: female)
ID_BAD_CHECK = "110105194912310021"  # the same with its check character flipped
ID_MALE_1991 = "360426199101010071"  # valid test vector: born 1991-01-01, sequence 007 (odd: male)


@pytest.fixture(scope="module")
def profile():
    return load_profile()


def code_sets(profile) -> dict[str, set[str]]:
    """Small, fixed code lists (the inline profile sets plus a few national ones)."""
    sets = {cs.id: set(cs.codes) for cs in profile.code_sets.values() if cs.codes}
    sets.update(
        MZM={f"{i:02d}" for i in range(1, 57)} | {"97", "98"},
        GJDQM={"156", "392"},
        PYCCM={"1", "2", "3", "4"},
        XSDQZTM={"01", "02", "05"},
        ZYDM={"080901", "081501K"},
        KJKM={"1001", "1002", "4001", "5001"},
    )
    return sets


@pytest.fixture
def world(tmp_path, profile):
    """A gateway, a province behind it, and a helper to build and deliver packages."""
    province = Province(
        tmp_path / "gateway", tmp_path / "province", profile, {KEY_ID: KEY}, code_sets(profile)
    )
    gateway = DirectoryGateway(tmp_path / "gateway", profile.gateway)
    yield _World(tmp_path, profile, province, gateway)
    province.close()


class _World:
    def __init__(self, tmp_path: Path, profile, province: Province, gateway: DirectoryGateway) -> None:
        self.tmp, self.profile, self.province, self.gateway = tmp_path, profile, province, gateway

    def build(self, dataset, rows, sequence=1, *, mode="FULL", batch_id=None, key=KEY, encoding="UTF-8"):
        return build_package(
            self.profile,
            dataset,
            mode,
            table_from_rows(self.profile, dataset, rows, mode),
            school_code="4161010704",
            sequence=sequence,
            batch_id=batch_id or str(uuid.uuid4()),
            as_of="2026-11-22",
            generated_at="2026-11-22 03:00:00",
            key=key,
            key_id=KEY_ID,
            encoding=encoding,
            out_dir=self.tmp / "outbox" / uuid.uuid4().hex,
        )

    def send(self, dataset, rows, sequence=1, **kw):
        package = self.build(dataset, rows, sequence, **kw)
        self.gateway.upload(package.path)
        return package

    def process(self) -> list[dict]:
        return self.province.process_inbox()

    def one(self, dataset, rows, sequence=1, **kw) -> dict:
        self.send(dataset, rows, sequence, **kw)
        [receipt] = self.process()
        return receipt


def org(dwh: str, name: str = "计算机学院", **extra: str) -> dict[str, str]:
    return {"DWH": dwh, "DWMC": name, "DWLBM": "20", "SFSY": "1", **extra}


ORGS = [org("1000", "西安科技大学", DWLBM="10"), org("1001", SJDWH="1000")]


def student(xh: str, **extra: str) -> dict[str, str]:
    row = {
        "XH": xh, "XM": "张三", "XBM": "2", "CSRQ": "1949-12-31", "MZM": "01", "SFZJLXM": "1",
        "SFZJH": ID_FEMALE_1949, "GJDQM": "156", "DWH": "1001", "ZYDM": "080901", "PYCCM": "3",
        "XZ": "4.0", "NJ": "2024", "RXRQ": "2024-09-01", "XSDQZTM": "01", "SFZX": "1",
        "GXSJ": "2026-11-01 08:00:00",
    }  # fmt: skip
    return {**row, **extra}


def balance(kmdm: str, start: str, debit: str, credit: str, end: str, **extra: str) -> dict[str, str]:
    row = {"KJND": "2026", "KJQJ": "10", "KMDM": kmdm, "KMMC": "科目", "DWH": "1000", "QCYE": start}
    return {**row, "JFFSE": debit, "DFFSE": credit, "QMYE": end, "YEFX": "J", **extra}


def found(receipt: dict) -> set[tuple]:
    return {(e["rule"], e["line"], e["field"]) for e in receipt["errors"]}


def rules(receipt: dict) -> set[str]:
    return {e["rule"] for e in receipt["errors"]}


def reseal(path: Path, edit=None, key: bytes = KEY) -> None:
    """Recompute every file's bytes/sha256/sm3 in the manifest (after ``edit``) and re-sign it."""
    manifest = json.loads((path / "manifest.json").read_bytes())
    for entry in manifest["files"]:
        data = (path / entry["name"]).read_bytes()
        entry.update(
            bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), sm3=hashlib.new("sm3", data).hexdigest()
        )
    if edit:
        edit(manifest)
    raw = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    (path / "manifest.json").write_bytes(raw)
    signature = hmac.new(key, raw, "sm3").hexdigest()
    (path / "manifest.sig").write_text(
        json.dumps({"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": signature})
    )


# --------------------------------------------------------------------------- accepted data


def test_accepted_full_is_taken_and_receipted_as_specified(world):
    package = world.send("ZZJG", ORGS)
    [receipt] = world.process()
    assert list(receipt) == RECEIPT_KEYS
    assert (receipt["package_id"], receipt["batch_id"]) == (package.package_id, package.manifest["batch_id"])
    counts = (receipt["rows_received"], receipt["rows_accepted"], receipt["rows_rejected"])
    assert (receipt["status"], counts) == ("ACCEPTED", (2, 2, 0))
    assert receipt["errors"] == []
    receipts = world.gateway.receipts
    assert json.loads((receipts / f"{package.package_id}.json").read_bytes()) == receipt
    assert sorted(p.name for p in receipts.iterdir()) == [f"{package.package_id}.json"]  # no temp files
    assert [r["DWH"] for r in world.province.current("ZZJG")] == ["1000", "1001"]
    assert world.process() == []  # answered packages are not processed again

    assert world.one("ZZJG", [org("1000", "西安科技大学", DWLBM="10")], 2)["status"] == "ACCEPTED"
    assert [r["DWH"] for r in world.province.current("ZZJG")] == ["1000"]  # FULL replaces


def test_delta_applies_inserts_updates_and_deletes_by_key(world):
    world.one("ZZJG", ORGS)
    delta = [
        {**org("1001", "新名称", SJDWH="1000"), "CZLX": "U"},
        {**org("1002", SJDWH="1000"), "CZLX": "I"},
        {"DWH": "1000", "CZLX": "D"},
        {**org("1003"), "CZLX": "X"},
    ]
    receipt = world.one("ZZJG", delta, 2, mode="DELTA")
    assert receipt["status"] == "PARTIAL" and found(receipt) == {("PX-E012", 5, "CZLX")}
    current = {r["DWH"]: r["DWMC"] for r in world.province.current("ZZJG")}
    assert current == {"1001": "新名称", "1002": "计算机学院"}


# --------------------------------------------------------------------------- tampering


def _flip_byte(path: Path) -> None:
    part = path / "ZZJG.001.csv"
    data = bytearray(part.read_bytes())
    data[-3] ^= 0x01
    part.write_bytes(bytes(data))


def _swap_header(path: Path) -> None:
    part = path / "ZZJG.001.csv"
    part.write_bytes(part.read_bytes().replace(b"DWH,DWMC,", b"DWMC,DWH,", 1))
    reseal(path)


def _bad_utf8(path: Path) -> None:
    part = path / "ZZJG.001.csv"
    part.write_bytes(part.read_bytes().replace("西安".encode(), b"\xff\xfe", 1))
    reseal(path)


def _bom(path: Path) -> None:
    part = path / "ZZJG.001.csv"
    part.write_bytes(b"\xef\xbb\xbf" + part.read_bytes())
    reseal(path)


TAMPERING = {
    "changed byte": (_flip_byte, "PX-E003", None),
    "missing part": (lambda p: (p / "ZZJG.001.csv").unlink(), "PX-E003", None),
    "swapped header": (_swap_header, "PX-E005", 1),
    "row count": (lambda p: reseal(p, lambda m: m["files"][0].update(rows=3)), "PX-E004", None),
    "total rows": (lambda p: reseal(p, lambda m: m.update(total_rows=5)), "PX-E004", None),
    "invalid UTF-8": (_bad_utf8, "PX-E006", 2),
    "BOM": (_bom, "PX-E006", 1),
    "encoding not allowed": (lambda p: reseal(p, lambda m: m.update(encoding="GBK")), "PX-E006", None),
    "manifest missing": (lambda p: (p / "manifest.json").unlink(), "PX-E001", None),
    "manifest not JSON": (lambda p: (p / "manifest.json").write_text("{"), "PX-E001", 1),
    "key missing": (lambda p: reseal(p, lambda m: m.pop("as_of")), "PX-E001", None),
    "signature missing": (lambda p: (p / "manifest.sig").unlink(), "PX-E002", None),
    "manifest edited after signing": (lambda p: (p / "manifest.json").write_bytes(
        (p / "manifest.json").read_bytes().replace(b'"2026-11-22"', b'"2026-11-21"', 1)), "PX-E002", None),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_found_before_sending_and_rejected_by_the_platform(world, kind):
    tamper, rule, line = TAMPERING[kind]
    package = world.build("ZZJG", ORGS)
    tamper(package.path)
    problems = verify_package(package.path, world.profile, KEY)
    assert {p.rule for p in problems} == {rule}
    assert next(p.line for p in problems if p.rule == rule) == line
    world.gateway.upload(package.path)
    [receipt] = world.process()
    assert receipt["status"] == "REJECTED" and rules(receipt) == {rule}
    assert receipt["rows_accepted"] == 0 and world.province.current("ZZJG") == []
    # nothing was taken and sequence 1 is still free
    assert world.one("ZZJG", ORGS, 1)["status"] == "ACCEPTED"


def test_wrong_key_is_e002_for_school_and_platform(world):
    package = world.build("ZZJG", ORGS, key=b"\x01" * 32)
    assert [p.rule for p in verify_package(package.path, world.profile, KEY)] == ["PX-E002"]
    assert verify_package(package.path, world.profile, b"\x01" * 32) == []
    world.gateway.upload(package.path)
    [receipt] = world.process()
    assert (receipt["status"], rules(receipt)) == ("REJECTED", {"PX-E002"})
    assert world.one("ZZJG", ORGS, 1)["status"] == "ACCEPTED"


def test_unknown_school_dataset_or_spec_is_e008(world):
    package = world.build("ZZJG", ORGS)
    reseal(package.path, lambda m: m.update(spec="PX-2.0", school_code="9999999999"))
    world.gateway.upload(package.path)
    [receipt] = world.process()
    assert receipt["status"] == "REJECTED" and rules(receipt) == {"PX-E008"} and len(receipt["errors"]) == 2


# --------------------------------------------------------------------------- sequence and batches


def test_out_of_order_sequence_is_e007_and_order_is_restored_in_one_pass(world):
    early = world.one("ZZJG", ORGS, 2)
    assert (early["status"], rules(early)) == ("REJECTED", {"PX-E007"})
    assert "expected 1" in early["errors"][0]["message"]
    # sequence 2 and 1 of ZZJG and a ZY arriving together: ZZJG first, in sequence order
    world.send(
        "ZY",
        [
            {
                "XNZYH": "Z01",
                "ZYDM": "080901",
                "ZYMC": "计算机",
                "DWH": "1001",
                "XZ": "4",
                "PYCCM": "3",
                "SFZS": "1",
            }
        ],
    )
    world.send("ZZJG", ORGS, 2)
    world.send("ZZJG", ORGS, 1)
    receipts = world.process()
    assert [(r["package_id"][11:], r["status"]) for r in receipts] == [
        ("ZZJG-F-000001", "ACCEPTED"), ("ZZJG-F-000002", "ACCEPTED"), ("ZY-F-000001", "ACCEPTED"),
    ]  # fmt: skip


def test_same_batch_again_is_duplicate_and_changes_nothing(world):
    package = world.send("ZZJG", ORGS)
    assert world.process()[0]["status"] == "ACCEPTED"
    (world.gateway.receipts / f"{package.package_id}.json").unlink()  # the receipt was lost
    [again] = world.process()
    assert (again["status"], again["batch_id"], again["rows_accepted"]) == (
        "DUPLICATE",
        package.manifest["batch_id"],
        0,
    )
    assert world.one("ZZJG", ORGS[:1], 2)["status"] == "ACCEPTED"  # DUPLICATE consumed no sequence


def test_accepted_batch_with_other_content_is_e009(world):
    first = world.one("ZZJG", ORGS)
    receipt = world.one("ZZJG", ORGS[:1], 2, batch_id=first["batch_id"])
    assert (receipt["status"], rules(receipt)) == ("REJECTED", {"PX-E009"})


def test_parts_in_progress_are_ignored(world):
    package = world.build("ZZJG", ORGS)
    part = world.gateway.inbox / f"{package.package_id}.part"
    part.parent.mkdir(parents=True)
    package.path.rename(part)
    assert world.process() == []


# --------------------------------------------------------------------------- row rules


def test_bad_mzm_code_rejects_only_that_row(world):
    world.one("ZZJG", ORGS)
    receipt = world.one("XSJBXX", [student("1"), student("2", MZM="57"), student("3")])
    assert receipt["status"] == "PARTIAL"
    assert (receipt["rows_received"], receipt["rows_accepted"], receipt["rows_rejected"]) == (3, 2, 1)
    [error] = receipt["errors"]
    assert {k: error[k] for k in ("rule", "file", "line", "field", "value")} == {
        "rule": "PX-E011", "file": "XSJBXX.001.csv", "line": 3, "field": "MZM", "value": "57",
    }  # fmt: skip
    assert [r["XH"] for r in world.province.current("XSJBXX")] == ["1", "3"]


def test_invalid_resident_id_is_e013_without_echoing_it(world):
    world.one("ZZJG", ORGS)
    rows = [
        student("1"),
        student("2", SFZJH=ID_FEMALE_1949.lower()),  # a lower-case x is the same number
        student("3", SFZJH=ID_BAD_CHECK),
        student("4", SFZJLXM="2", SFZJH="军字第123号"),  # not a resident ID card: not checked
    ]
    receipt = world.one("XSJBXX", rows)
    assert receipt["status"] == "PARTIAL" and found(receipt) == {("PX-E013", 4, "SFZJH")}
    assert receipt["errors"][0]["value"] is None
    assert ID_BAD_CHECK not in json.dumps(receipt)


def test_person_warnings_keep_the_row(world):
    world.one("ZZJG", ORGS)
    rows = [
        student("1", SFZJH=ID_MALE_1991, CSRQ="1991-01-02", XBM="2"),
        student("2", SFZJLXM="3", SFZJH="X1", CSRQ="2015-01-01"),
    ]
    receipt = world.one("XSJBXX", rows)
    assert receipt["status"] == "ACCEPTED" and receipt["rows_accepted"] == 2
    assert found(receipt) == {("PX-W102", 2, "CSRQ"), ("PX-W103", 2, "XBM"), ("PX-W101", 3, "CSRQ")}


def test_reference_to_a_missing_unit_is_e016(world):
    world.one("ZZJG", ORGS)
    major = {
        "XNZYH": "Z01",
        "ZYDM": "081501K",
        "ZYMC": "采矿工程",
        "DWH": "1001",
        "XZ": "4",
        "PYCCM": "3",
        "SFZS": "1",
    }
    receipt = world.one("ZY", [major, {**major, "XNZYH": "Z02", "DWH": "9999"}])
    assert receipt["status"] == "PARTIAL" and found(receipt) == {("PX-E016", 3, "DWH")}
    orphan = world.one("ZZJG", [*ORGS, org("1002", SJDWH="8888")], 2)  # self-reference within a FULL
    assert found(orphan) == {("PX-E016", 4, "SJDWH")}


def test_value_rules_e010_e012_e014_e015_and_dataset_rules_e017(world):
    rows = [
        org("1000", DWLBM="10"),
        org("1001", DWMC=""),
        org("1002", DWLBM="1234"),
        org("1003", JLRQ="2024-13-01"),
        org("1004"),
        org("1004", "重复"),
    ]
    receipt = world.one("ZZJG", rows)
    assert found(receipt) == {
        ("PX-E010", 3, "DWMC"), ("PX-E015", 4, "DWLBM"), ("PX-E012", 5, "JLRQ"),
        ("PX-E014", 6, "DWH"), ("PX-E014", 7, "DWH"),
    }  # fmt: skip
    assert (receipt["rows_accepted"], receipt["rows_rejected"]) == (1, 5)
    students = [student("1", DWH="1000", NJ="2023"), student("2", DWH="1000", SFZX="0")]
    bad_year = world.one("XSJBXX", students)
    assert found(bad_year) == {("PX-E017", 2, "NJ"), ("PX-E017", 3, "SFZX")}


def test_cwkmye_double_entry_and_balance_identity(world):
    world.one("ZZJG", ORGS)
    unbalanced = world.one("CWKMYE", [balance("100101", "100.00", "50.00", "20.00", "130.00")])
    assert (unbalanced["status"], rules(unbalanced)) == ("REJECTED", {"PX-E017"})
    assert "2026-10" in unbalanced["errors"][0]["message"]
    rows = [
        balance("100101", "100.00", "50.00", "20.00", "130.00"),
        balance("1002", "0.00", "20.00", "50.00", "-30.01"),
        balance("9999", "0.00", "0", "0", "0"),
    ]
    receipt = world.one("CWKMYE", rows, 1)  # the rejected package did not consume sequence 1
    assert receipt["status"] == "PARTIAL"
    assert found(receipt) == {("PX-E017", 3, "QMYE"), ("PX-E011", 4, "KMDM")}


def test_missing_code_list_is_checked_for_format_only_and_said_once(tmp_path, profile, caplog):
    sets = {k: v for k, v in code_sets(profile).items() if k != "MZM"}
    with caplog.at_level(logging.WARNING, logger="campusdx.demo.province.simulator"):
        province = Province(tmp_path / "gw", tmp_path / "st", profile, {KEY_ID: KEY}, sets)
    try:
        notes = [r.getMessage() for r in caplog.records if "format only" in r.getMessage()]
        assert len(notes) == 1 and "MZM" in notes[0]
        world = _World(tmp_path, profile, province, DirectoryGateway(tmp_path / "gw", profile.gateway))
        world.one("ZZJG", ORGS)
        receipt = world.one("XSJBXX", [student("1", MZM="57"), student("2", MZM="5x")])
        assert found(receipt) == {("PX-E011", 3, "MZM")}
    finally:
        province.close()


def test_available_code_sets_include_profile_and_national_lists(profile):
    sets = available_code_sets(profile)
    assert sets["SF"] == {"0", "1"} and sets["YEFX"] == {"J", "D"} and "50" in sets["DWLB"]
    pytest.importorskip("campusdx.core.codes")
    assert {"01", "56", "97", "98"} <= sets["MZM"] and "57" not in sets["MZM"]


# --------------------------------------------------------------------------- publisher and platform


@pytest.fixture
def home(exchange_home):
    return exchange_home


def test_publisher_and_province_end_to_end(profile, home, capsys):
    orgs = table_from_rows(profile, "ZZJG", ORGS)
    sent = publish_dataset("ZZJG", orgs, as_of="2026-11-22")
    assert province_main(["once", "--home", str(home.home)]) == 0
    assert f"{sent.package_id}: ACCEPTED" in capsys.readouterr().out
    [receipt] = collect_receipts(timeout_s=1, poll_s=0.05)
    assert (receipt.status, receipt.receipt["rows_accepted"]) == ("ACCEPTED", 2)
    unchanged = publish_dataset("ZZJG", orgs, as_of="2026-11-23")
    assert (unchanged.action, unchanged.sequence) == ("unchanged", 1)


def test_rejected_package_is_rebuilt_under_its_sequence_and_accepted(profile, home):
    orgs = table_from_rows(profile, "ZZJG", ORGS)
    first = publish_dataset("ZZJG", orgs, as_of="2026-11-22")
    strict = Province(home.gateway, home.province, profile, {KEY_ID: b"\x02" * 32}, code_sets(profile))
    assert strict.process_inbox()[0]["status"] == "REJECTED"
    strict.close()
    assert collect_receipts(timeout_s=1, poll_s=0.05)[0].status == "REJECTED"
    second = publish_dataset("ZZJG", orgs, as_of="2026-11-22")
    assert (second.package_id, second.sequence) == (first.package_id, 1) and second.batch_id != first.batch_id
    province = Province.for_home(home, profile)
    try:
        [receipt] = province.process_inbox()
    finally:
        province.close()
    assert (receipt["status"], receipt["batch_id"]) == ("ACCEPTED", second.batch_id)
    assert collect_receipts(timeout_s=1, poll_s=0.05)[0].status == "ACCEPTED"


def test_serve_answers_then_stops_when_idle_or_told(world):
    world.send("ZZJG", ORGS)
    world.province.serve(poll_s=0.02, idle_exit_s=0.1)
    assert len(list(world.gateway.receipts.iterdir())) == 1
    stop = threading.Event()
    thread = threading.Thread(target=world.province.serve, kwargs={"poll_s": 0.02, "stop": stop})
    thread.start()
    world.send("ZZJG", ORGS[:1], 2)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
