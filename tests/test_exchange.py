"""The school's side of PX-1.0: profile, package building, signing, gateway, ledger, publisher.

Hashes and signatures are recomputed here with hashlib/hmac directly, not with the code under
test. The platform's side (rules, receipts, tampering) is in test_province.py.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from campusdx.core.profile import PROFILE_DIR, FieldType, load_profile
from campusdx.demo.keys import ensure_demo_key
from campusdx.exchange.gateway import DirectoryGateway
from campusdx.exchange.ledger import Ledger
from campusdx.exchange.package import (
    PackageBuildError,
    Problem,
    build_package,
    content_fingerprint,
    table_from_rows,
    verify_package,
)
from campusdx.exchange.publisher import PublishError, collect_receipts, outbox_dir, publish_dataset
from campusdx.exchange.signing import KeyFileError, load_key

KEY = bytes(range(32))
SPEC_DIR = Path("/work/shared/exchange-spec")
MANIFEST_KEYS = [
    "spec", "school_code", "dataset", "mode", "sequence", "batch_id", "as_of", "generated_at",
    "encoding", "fields", "files", "total_rows", "producer",
]  # fmt: skip
BATCH = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.fixture(scope="module")
def profile():
    return load_profile()


def org(dwh: str, name: str = "计算机学院", **extra: str) -> dict[str, str]:
    """A valid ZZJG row."""
    return {"DWH": dwh, "DWMC": name, "DWLBM": "20", "SFSY": "1", **extra}


def build(
    profile, tmp_path: Path, rows, *, out: str = "out", mode: str = "FULL", dataset: str = "ZZJG", **kw
):
    args = dict(
        school_code="4161010704",
        sequence=1,
        batch_id=BATCH,
        as_of="2026-11-22",
        generated_at="2026-11-22 03:00:00",
        key=KEY,
        key_id="demo-4161010704",
        out_dir=tmp_path / out,
    )
    args.update(kw)
    table = rows if isinstance(rows, pa.Table) else table_from_rows(profile, dataset, rows, mode)
    return build_package(profile, dataset, mode, table, **args)


def files_of(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# --------------------------------------------------------------------------- profile


def test_datasets_yaml_is_a_byte_copy_of_the_spec():
    if not SPEC_DIR.is_dir():
        pytest.skip("the shared spec folder is not on this machine")
    assert (PROFILE_DIR / "datasets.yaml").read_bytes() == (SPEC_DIR / "datasets.yaml").read_bytes()


def test_profile_reads_every_dataset_with_types_keys_and_order(profile):
    assert profile.spec == "PX-1.0"
    assert profile.dataset_order[:2] == ("ZZJG", "ZY") and len(profile.dataset_order) == 7
    xz = profile.dataset("ZY").field("XZ")
    assert (xz.type.kind, xz.type.precision, xz.type.scale, xz.required) == ("decimal", 3, 1, True)
    assert profile.dataset("CWKMYE").primary_key == ("KJND", "KJQJ", "KMDM", "DWH")
    assert profile.dataset("GDZC").references["SYRGH"].dataset == "JZGJBXX"
    assert profile.dataset("XSJBXX").field("MZM").code_set == "MZM"
    assert profile.package_id("4161010704", "XSJBXX", "FULL", 1) == "4161010704-XSJBXX-F-000001"
    assert profile.package_id("4161010704", "XJYD", "DELTA", 12) == "4161010704-XJYD-D-000012"
    assert profile.header("ZZJG", "DELTA")[-1] == "CZLX"
    assert dict(profile.code_sets["SF"].codes) == {"1": "是", "0": "否"}
    zydm, kjkm = profile.code_sets["ZYDM"], profile.code_sets["KJKM"]
    assert zydm.matches("080901K", {"080901"}) and zydm.matches("081501", frozenset({"081501K"}))
    assert not zydm.matches("080902", {"080901"}) and not zydm.matches("080901X", {"080901"})
    assert kjkm.matches("100101", {"1001"}) and not kjkm.matches("1101", {"1001"})


@pytest.mark.parametrize(
    ("type_", "value", "ok"),
    [
        ("date", "2024-02-29", True),
        ("date", "2023-02-29", False),
        ("date", "2024-2-9", False),
        ("datetime", "2026-11-22 03:00:00", True),
        ("datetime", "2026-11-22T03:00:00", False),
        ("decimal(3,1)", "4.5", True),
        ("decimal(3,1)", "-4", True),
        ("decimal(3,1)", "4.55", False),
        ("decimal(3,1)", "123", False),
        ("decimal(18,2)", "1,000.00", False),
        ("integer", "12", True),
        ("integer", "1.0", False),
    ],
)
def test_field_type_formats(type_, value, ok):
    assert (FieldType.parse(type_).format_error(value) is None) is ok


# --------------------------------------------------------------------------- building


def test_same_inputs_give_the_same_bytes(profile, tmp_path):
    rows = [org("1000", "西安科技大学"), org("1001")]
    a = build(profile, tmp_path, rows, out="a")
    b = build(profile, tmp_path, rows, out="b")
    assert files_of(a.path) == files_of(b.path)
    assert sorted(files_of(a.path)) == ["ZZJG.001.csv", "manifest.json", "manifest.sig"]
    assert a.package_id == "4161010704-ZZJG-F-000001" and a.path.name == a.package_id
    assert not list((tmp_path / "a").glob("*.tmp"))
    raw = (a.path / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    assert list(manifest) == MANIFEST_KEYS
    assert list(manifest["files"][0]) == ["name", "rows", "bytes", "sha256", "sm3"]
    assert manifest["fields"] == list(profile.dataset("ZZJG").field_codes)
    assert (manifest["sequence"], manifest["total_rows"], manifest["encoding"]) == (1, 2, "UTF-8")
    assert a.manifest_sha256 == hashlib.sha256(raw).hexdigest()
    with pytest.raises(PackageBuildError, match="already exists"):
        build(profile, tmp_path, rows, out="a")


def test_hashes_and_signature_verify_independently(profile, tmp_path):
    pkg = build(profile, tmp_path, [org("1000", "西安科技大学")])
    manifest_bytes = (pkg.path / "manifest.json").read_bytes()
    for entry in json.loads(manifest_bytes)["files"]:
        data = (pkg.path / entry["name"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["sm3"] == hashlib.new("sm3", data).hexdigest()
    sig = json.loads((pkg.path / "manifest.sig").read_bytes())
    assert list(sig) == ["alg", "key_id", "signature"]
    assert sig["alg"] == "HMAC-SM3" and sig["key_id"] == "demo-4161010704"
    assert sig["signature"] == hmac.new(KEY, manifest_bytes, "sm3").hexdigest()
    assert verify_package(pkg.path, profile, KEY) == []

    pkg256 = build(profile, tmp_path, [org("1000")], out="sha", alg="HMAC-SHA256")
    sig = json.loads((pkg256.path / "manifest.sig").read_bytes())
    expected = hmac.new(KEY, (pkg256.path / "manifest.json").read_bytes(), hashlib.sha256).hexdigest()
    assert (sig["alg"], sig["signature"]) == ("HMAC-SHA256", expected)
    assert verify_package(pkg256.path, profile, KEY) == []


def test_quoting_of_comma_quote_cr_lf(profile, tmp_path):
    rows = [
        {"DWH": "1", "DWMC": "a,b", "DWJC": 'say "hi"', "SJDWH": "x\ry", "DWLBM": "p\nq", "SFSY": "1"},
        {"DWH": "2", "DWMC": "plain", "DWJC": "r\r\nn", "DWLBM": "20", "SFSY": None},
    ]
    pkg = build(profile, tmp_path, rows)
    data = (pkg.path / "ZZJG.001.csv").read_bytes()
    assert data == (
        b"DWH,DWMC,DWJC,SJDWH,DWLBM,XQH,JLRQ,SFSY\n"
        b'1,"a,b","say ""hi""","x\ry","p\nq",,,1\n'
        b'2,plain,"r\r\nn",,20,,,\n'
    )
    assert not data.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert parsed[1][:5] == ["1", "a,b", 'say "hi"', "x\ry", "p\nq"]
    assert parsed[2][2] == "r\r\nn"
    assert pkg.manifest["files"][0]["rows"] == 2
    assert verify_package(pkg.path, profile, KEY) == []


def test_parts_split_at_max_rows(profile, tmp_path):
    small = dataclasses.replace(profile, max_rows_per_part=2)
    pkg = build(small, tmp_path, [org(str(1000 + i)) for i in range(5)])
    files = pkg.manifest["files"]
    assert [f["name"] for f in files] == ["ZZJG.001.csv", "ZZJG.002.csv", "ZZJG.003.csv"]
    assert [f["rows"] for f in files] == [2, 2, 1] and pkg.manifest["total_rows"] == 5
    header = b"DWH,DWMC,DWJC,SJDWH,DWLBM,XQH,JLRQ,SFSY\n"
    for f in files:
        lines = (pkg.path / f["name"]).read_bytes().split(b"\n")
        assert lines[0] + b"\n" == header and len(lines) == f["rows"] + 2 and lines[-1] == b""
    assert verify_package(pkg.path, small, KEY) == []
    exact = build(small, tmp_path, [org(str(i)) for i in range(4)], out="exact")
    assert [f["rows"] for f in exact.manifest["files"]] == [2, 2]


def test_empty_full_has_one_header_only_part(profile, tmp_path):
    pkg = build(profile, tmp_path, [])
    assert [(f["name"], f["rows"]) for f in pkg.manifest["files"]] == [("ZZJG.001.csv", 0)]
    assert (pkg.path / "ZZJG.001.csv").read_bytes() == b"DWH,DWMC,DWJC,SJDWH,DWLBM,XQH,JLRQ,SFSY\n"
    assert pkg.manifest["total_rows"] == 0 and verify_package(pkg.path, profile, KEY) == []


def test_gb18030_round_trip(profile, tmp_path):
    name = "地质与环境学院𠀀€"  # 𠀀 (U+20000) takes four bytes in GB18030
    pkg = build(profile, tmp_path, [org("1000", name)], encoding="GB18030")
    data = (pkg.path / "ZZJG.001.csv").read_bytes()
    assert pkg.manifest["encoding"] == "GB18030"
    assert name.encode("gb18030") in data and name.encode("utf-8") not in data
    assert list(csv.reader(io.StringIO(data.decode("gb18030"), newline="")))[1][1] == name
    assert verify_package(pkg.path, profile, KEY) == []


def test_unencodable_character_names_place_but_not_personal_data(profile, tmp_path):
    # GB18030 encodes every Unicode scalar value and Arrow strings cannot hold surrogates, so
    # under PX-1.0 itself nothing is unencodable; a province variant allowing GBK shows the error.
    variant = dataclasses.replace(profile, encodings=(*profile.encodings, "GBK"))
    with pytest.raises(PackageBuildError) as err:
        build(variant, tmp_path, [org("1000", "两\n行"), org("1001", "坏𠀀名")], encoding="GBK")
    # line = file line: the header is 1, the first row spans 2-3 (a quoted LF), the bad row is 4
    assert all(s in str(err.value) for s in ("ZZJG", "ZZJG.001.csv", "line 4", "DWMC", "U+20000", "GBK"))
    assert not list((tmp_path / "out").iterdir())  # the .tmp directory is gone

    student = {"XH": "1", "XM": "张𠀀三", "XBM": "1"}
    with pytest.raises(PackageBuildError) as err:
        build(variant, tmp_path, [student], dataset="XSJBXX", out="pii", encoding="GBK")
    message = str(err.value)
    assert "XSJBXX.001.csv line 2 field XM" in message
    assert "张" not in message and "三" not in message and "20000" not in message


def test_bad_table_shape_is_refused(profile, tmp_path):
    with pytest.raises(PackageBuildError, match="differ from the PX header"):
        build(profile, tmp_path, pa.table({"DWH": ["1"]}))
    with pytest.raises(PackageBuildError, match="unknown field"):
        table_from_rows(profile, "ZZJG", [{"DWH": "1", "CZLX": "I"}])
    ints = table_from_rows(profile, "ZZJG", [org("1")]).set_column(0, "DWH", pa.array([1]))
    with pytest.raises(PackageBuildError, match="expected strings"):
        build(profile, tmp_path, ints)
    with pytest.raises(PackageBuildError, match="encoding"):
        build(profile, tmp_path, [org("1")], encoding="GBK")


def test_delta_header_ends_with_czlx(profile, tmp_path):
    pkg = build(profile, tmp_path, [{**org("1"), "CZLX": "I"}, {"DWH": "2", "CZLX": "D"}], mode="DELTA")
    assert pkg.package_id == "4161010704-ZZJG-D-000001"
    first = (pkg.path / "ZZJG.001.csv").read_bytes().split(b"\n")[0]
    assert first == b"DWH,DWMC,DWJC,SJDWH,DWLBM,XQH,JLRQ,SFSY,CZLX"
    assert pkg.manifest["fields"] == list(profile.dataset("ZZJG").field_codes)
    assert verify_package(pkg.path, profile, KEY) == []


def test_content_fingerprint_follows_the_data_only(profile):
    rows = [org("1000"), org("1001", "矿业工程学院")]
    table = table_from_rows(profile, "ZZJG", rows)
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])
    assert content_fingerprint(table) == content_fingerprint(chunked)
    changed = table_from_rows(profile, "ZZJG", [org("1000"), org("1001", "矿业工程学院 ")])
    assert content_fingerprint(changed) != content_fingerprint(table)
    # a null and an empty string are the same "no value", as in the CSV
    empty = table_from_rows(profile, "ZZJG", [{**org("1000"), "DWJC": ""}])
    null = table_from_rows(profile, "ZZJG", [org("1000")])
    assert content_fingerprint(empty) == content_fingerprint(null)


# --------------------------------------------------------------------------- key


def test_demo_key_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "secrets" / "px-hmac.key"
    key = ensure_demo_key(path)
    assert len(key) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == key.hex()
    assert ensure_demo_key(path) == key and load_key(path) == key


def test_key_errors_name_the_file_never_the_key(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("zz-secret-material-zz")
    with pytest.raises(KeyFileError) as err:
        load_key(bad)
    assert str(bad) in str(err.value) and "secret-material" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


# --------------------------------------------------------------------------- gateway


def test_directory_gateway_uploads_atomically_and_safely_again(profile, tmp_path):
    pkg = build(profile, tmp_path, [org("1000")])
    gw = DirectoryGateway(tmp_path / "gw", profile.gateway)
    stale = gw.inbox / f"{pkg.package_id}.part"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("half an upload")
    gw.upload(pkg.path)
    target = gw.inbox / pkg.package_id
    assert files_of(target) == files_of(pkg.path)
    assert not stale.exists()
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    gw.upload(pkg.path)  # a re-send of the same package changes nothing
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before
    assert gw.receipt(pkg.package_id) is None
    gw.receipts.mkdir()
    (gw.receipts / f"{pkg.package_id}.json").write_text('{"status": "ACCEPTED"}')
    assert gw.receipt(pkg.package_id) == {"status": "ACCEPTED"}

    rebuilt = build(profile, tmp_path, [org("1001")], out="again", batch_id="other")
    gw.upload(rebuilt.path)  # same id, different package (after a rejection): replaced
    assert files_of(target) == files_of(rebuilt.path)
    assert sorted(p.name for p in gw.inbox.iterdir()) == [pkg.package_id]


# --------------------------------------------------------------------------- ledger


def test_ledger_sequences_come_from_delivered_packages(profile, tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        assert ledger.next_sequence("ZZJG") == 1
        first = build(profile, tmp_path, [org("1")], out="1", batch_id="b1")
        ledger.record_built(first, "fp1", "2026-11-22 03:00:00")
        assert [e.batch_id for e in ledger.pending("ZZJG")] == ["b1"]
        ledger.record_sent("b1", "2026-11-22 03:00:01")
        assert [e.attempts for e in ledger.awaiting_receipt()] == [1]
        ledger.record_receipt("b1", {"batch_id": "b1", "status": "REJECTED"}, "2026-11-22 03:01:00")
        assert ledger.next_sequence("ZZJG") == 1 and ledger.last_delivered("ZZJG") is None
        assert ledger.pending("ZZJG") == []

        again = build(profile, tmp_path, [org("1")], out="2", batch_id="b2")
        ledger.record_built(again, "fp2", "2026-11-22 04:00:00")
        ledger.record_sent("b2", "2026-11-22 04:00:01")
        ledger.record_receipt("b2", {"batch_id": "b2", "status": "PARTIAL"}, "2026-11-22 04:01:00")
        assert ledger.next_sequence("ZZJG") == 2 and ledger.next_sequence("ZY") == 1
        last = ledger.last_delivered("ZZJG")
        assert (last.batch_id, last.fingerprint, last.receipt["status"]) == ("b2", "fp2", "PARTIAL")
        assert [e.status for e in ledger.packages("ZZJG")] == ["REJECTED", "PARTIAL"]
    with Ledger(tmp_path / "ledger.sqlite") as reopened:  # durable
        assert reopened.next_sequence("ZZJG") == 2


# --------------------------------------------------------------------------- publisher


@pytest.fixture
def home(exchange_home):
    return exchange_home


def answer(home, status: str) -> None:
    """Play the province: answer every package in the inbox with ``status``."""
    receipts = home.gateway / "receipts"
    receipts.mkdir(parents=True, exist_ok=True)
    for package in (home.gateway / "inbox").iterdir():
        manifest = json.loads((package / "manifest.json").read_bytes())
        receipt = {"package_id": package.name, "batch_id": manifest["batch_id"], "status": status}
        (receipts / f"{package.name}.json").write_text(json.dumps(receipt))


def test_publisher_redelivers_a_pending_package_byte_identically(profile, home):
    table = table_from_rows(profile, "ZZJG", [org("1000")])
    first = publish_dataset("ZZJG", table, as_of="2026-11-22")
    assert (first.action, first.status, first.sequence) == ("sent", "SENT", 1)
    inbox_copy = home.gateway / "inbox" / first.package_id
    sent_bytes = files_of(inbox_copy)
    assert sent_bytes == files_of(outbox_dir(home) / first.package_id)

    for path in inbox_copy.iterdir():  # the upload was lost on the way
        path.unlink()
    inbox_copy.rmdir()
    other = table_from_rows(profile, "ZZJG", [org("1000"), org("1001")])
    again = publish_dataset("ZZJG", other, as_of="2026-11-23")
    assert (again.action, again.batch_id, again.sequence) == ("resent", first.batch_id, 1)
    assert files_of(inbox_copy) == sent_bytes

    assert [r.action for r in collect_receipts(timeout_s=0.2, poll_s=0.05)] == ["no_receipt"]
    answer(home, "ACCEPTED")
    assert collect_receipts(timeout_s=0, poll_s=0, datasets=["ZY"]) == []
    [got] = collect_receipts(timeout_s=1, poll_s=0.05)
    assert (got.action, got.status, got.batch_id) == ("receipt", "ACCEPTED", first.batch_id)
    with Ledger(home.exchange / "ledger.sqlite") as ledger:
        [entry] = ledger.packages("ZZJG")
        assert (entry.attempts, entry.status) == (2, "ACCEPTED")


def test_publisher_skips_unchanged_data_and_numbers_changes(profile, home):
    table = table_from_rows(profile, "ZZJG", [org("1000")])
    first = publish_dataset("ZZJG", table, as_of="2026-11-22")
    answer(home, "ACCEPTED")
    collect_receipts(timeout_s=1, poll_s=0.05)
    same = publish_dataset("ZZJG", table, as_of="2026-11-23")
    assert (same.action, same.sequence, same.package_id) == ("unchanged", 1, first.package_id)
    assert sorted(p.name for p in (home.gateway / "inbox").iterdir()) == [first.package_id]
    changed = publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [org("1001")]), as_of="2026-11-23")
    assert (changed.action, changed.sequence) == ("sent", 2)
    assert changed.package_id == "4161010704-ZZJG-F-000002" and changed.batch_id != first.batch_id


def test_publisher_rebuilds_a_rejected_sequence(profile, home):
    table = table_from_rows(profile, "ZZJG", [org("1000")])
    first = publish_dataset("ZZJG", table, as_of="2026-11-22")
    answer(home, "REJECTED")
    [got] = collect_receipts(timeout_s=1, poll_s=0.05)
    assert got.status == "REJECTED"
    assert not (outbox_dir(home) / first.package_id).exists()  # moved to outbox/retired
    second = publish_dataset("ZZJG", table, as_of="2026-11-22")
    assert (second.action, second.sequence, second.package_id) == ("sent", 1, first.package_id)
    assert second.batch_id != first.batch_id
    # the old REJECTED receipt under the same package id is not taken for the new batch
    assert [r.action for r in collect_receipts(timeout_s=0.1, poll_s=0.05)] == ["no_receipt"]


def test_publisher_uses_the_key_file_from_the_environment(profile, home, tmp_path, monkeypatch):
    key_file = tmp_path / "issued.key"
    key_file.write_text("ab" * 32)
    monkeypatch.setenv("CAMPUSDX_PX_KEY_FILE", str(key_file))
    result = publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [org("1")]), as_of="2026-11-22")
    path = home.gateway / "inbox" / result.package_id
    sig = json.loads((path / "manifest.sig").read_bytes())
    assert (
        sig["signature"] == hmac.new(b"\xab" * 32, (path / "manifest.json").read_bytes(), "sm3").hexdigest()
    )


def test_publisher_never_makes_up_a_key(profile, home):
    """Without the key the province issued, nothing is built or sent, and no key is created."""
    key = home.secrets / "px-hmac.key"
    key.unlink()
    with pytest.raises(KeyFileError, match=r"px-hmac\.key does not exist"):
        publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [org("1")]), as_of="2026-11-22")
    assert not key.exists()
    assert not (home.gateway / "inbox").exists() or not any((home.gateway / "inbox").iterdir())


def test_publisher_refuses_to_send_what_the_pre_send_check_rejects(profile, home, monkeypatch):
    problem = Problem("PX-E005", "ZZJG.001.csv", 1, "header differs")
    monkeypatch.setattr("campusdx.exchange.publisher.verify_package", lambda *a, **k: [problem])
    with pytest.raises(PublishError, match=r"not sent.*PX-E005 ZZJG.001.csv line 1"):
        publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [org("1")]), as_of="2026-11-22")
    assert not (home.gateway / "inbox").exists()
    assert not (outbox_dir(home) / "4161010704-ZZJG-F-000001").exists()
    with Ledger(home.exchange / "ledger.sqlite") as ledger:
        assert ledger.packages() == []


def test_publisher_will_not_redeliver_a_changed_outbox_copy(profile, home):
    sent = publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [org("1")]), as_of="2026-11-22")
    manifest = outbox_dir(home) / sent.package_id / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"2026-11-22", b"2026-11-23", 1))
    with pytest.raises(PublishError, match="missing or changed"):
        publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [org("1")]), as_of="2026-11-22")


def test_columnar_csv_writer_gives_exactly_the_row_by_row_bytes():
    """csv_rows (Arrow, a column at a time) against csv_line on every kind of awkward value,
    with chunked columns, a sliced table and a column of nulls only."""
    import random

    from campusdx.exchange.package import csv_line, csv_rows

    rng = random.Random(11)
    alphabet = ["a", "Z", "0", ",", '"', "\r", "\n", " ", "中", "𠀀", "#", "'", "\t", "é"]
    values = [
        None,
        "",
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(3000)),
    ]
    rng.shuffle(values)
    first = pa.chunked_array([values[:1000], values[1000:]], pa.string())
    second = pa.array(list(reversed(values)), pa.string())
    table = pa.table({"A": first, "B": second, "C": pa.nulls(len(values), pa.string())}).slice(7, 2500)
    expected = "".join(
        csv_line(["" if v is None else v for v in row.values()]) for row in table.to_pylist()
    ).encode("utf-8")
    assert csv_rows(table) == expected
    assert csv_rows(table.slice(0, 0)) == b""
