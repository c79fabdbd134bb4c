"""The province checks packages with its own code, not the publisher's.

``demo/province/package_checks.py`` implements PX-E001..E006 and E008 from the profile, with the
standard library only; the simulated province and ``scripts/verify_px_package.py`` both run it.
Here a defect is planted in the publisher (its digest function, or its whole pre-send check),
the publisher sends the package as sound, and the province rejects it with the PX rule.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from campusdx.demo.province import Province
from campusdx.demo.province import package_checks as px
from campusdx.exchange import package as publisher_checks
from campusdx.exchange.gateway import DirectoryGateway
from campusdx.exchange.package import build_package, table_from_rows, verify_package
from campusdx.exchange.publisher import collect_receipts, publish_dataset

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "verify_px_package.py"
KEY = bytes(range(32))
KEY_ID = "demo-4161010704"
ORGS = [
    {"DWH": "1000", "DWMC": "西安科技大学", "DWLBM": "10", "SFSY": "1"},
    {"DWH": "1001", "DWMC": "计算机学院", "DWLBM": "20", "SFSY": "1", "SJDWH": "1000"},
]


def _build(profile, out_dir: Path, key: bytes = KEY) -> Path:
    return build_package(
        profile,
        "ZZJG",
        "FULL",
        table_from_rows(profile, "ZZJG", ORGS),
        school_code="4161010704",
        sequence=1,
        batch_id=str(uuid.uuid4()),
        as_of="2026-11-22",
        generated_at="2026-11-22 03:00:00",
        key=key,
        key_id=KEY_ID,
        out_dir=out_dir,
    ).path


def _judge(profile, root: Path, package: Path) -> dict:
    """Deliver ``package`` through a directory gateway and let a province answer it."""
    DirectoryGateway(root / "gateway", profile.gateway).upload(package)
    province = Province(root / "gateway", root / "province", profile, {KEY_ID: KEY}, {})
    try:
        [receipt] = province.process_inbox()
    finally:
        province.close()
    return receipt


def _flip_last_value_byte(package: Path) -> None:
    part = package / "ZZJG.001.csv"
    data = bytearray(part.read_bytes())
    data[-2] ^= 0x01  # a digit of SFSY on the last line; the line and the CSV stay well-formed
    part.write_bytes(bytes(data))


# --------------------------------------------------------------------------- planted defects


def test_a_digest_the_publisher_gets_wrong_is_sent_by_it_and_rejected_by_the_province(
    exchange_home, profile, monkeypatch
):
    """The builder and the pre-send check share the publisher's digest function: a bug in it
    writes a wrong sm3 into the manifest and then agrees with itself."""
    real = publisher_checks.file_digests

    def wrong_sm3(data: bytes) -> tuple[str, str]:
        sha256, _ = real(data)
        return sha256, hashlib.new("sm3", data + b"\n").hexdigest()

    monkeypatch.setattr(publisher_checks, "file_digests", wrong_sm3)
    sent = publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", ORGS), as_of="2026-11-22")
    assert sent.action == "sent"  # the publisher's own check found nothing
    package = exchange_home.gateway / profile.gateway.inbox / sent.package_id
    key = bytes.fromhex((exchange_home.secrets / "px-hmac.key").read_text(encoding="ascii"))
    assert verify_package(package, profile, key) == []

    province = Province.for_home(exchange_home, profile)
    try:
        [receipt] = province.process_inbox()
    finally:
        province.close()
    assert receipt["status"] == "REJECTED"
    assert [(e["rule"], e["file"]) for e in receipt["errors"]] == [("PX-E003", "ZZJG.001.csv")]
    assert "sm3 differs" in receipt["errors"][0]["message"]
    assert "sha256" not in receipt["errors"][0]["message"]
    assert collect_receipts(timeout_s=1, poll_s=0.05)[0].status == "REJECTED"


def test_a_corrupted_part_passes_a_publisher_that_checks_nothing_and_the_province_rejects_it(
    profile, tmp_path, monkeypatch
):
    """The publisher's checker is made to pass everything; the province does not call it."""
    monkeypatch.setattr(
        publisher_checks,
        "inspect_package",
        lambda path, *_a, **_k: publisher_checks.Inspection(Path(path)),
    )
    package = _build(profile, tmp_path / "outbox")
    _flip_last_value_byte(package)
    assert verify_package(package, profile, KEY) == []  # the blind publisher

    receipt = _judge(profile, tmp_path, package)
    assert (receipt["status"], receipt["rows_accepted"]) == ("REJECTED", 0)
    assert [(e["rule"], e["file"]) for e in receipt["errors"]] == [("PX-E003", "ZZJG.001.csv")]
    assert "sha256 differs" in receipt["errors"][0]["message"]


def test_lines_ending_in_cr_lf_are_e005_for_the_province_though_the_publishers_check_passes_them(
    profile, tmp_path
):
    """§2.1: lines end with LF. The publisher's CSV reader accepts CR LF silently; the province
    (and the verify script, which runs the same checks) names the breach."""
    package = _build(profile, tmp_path / "outbox")
    part = package / "ZZJG.001.csv"
    part.write_bytes(part.read_bytes().replace(b"\n", b"\r\n"))
    _reseal(package)
    assert verify_package(package, profile, KEY) == []
    receipt = _judge(profile, tmp_path, package)
    assert receipt["status"] == "REJECTED"
    assert [(e["rule"], e["file"], e["line"]) for e in receipt["errors"]] == [("PX-E005", "ZZJG.001.csv", 1)]


def _reseal(package: Path) -> None:
    """Digests and signature recomputed after an edit, with the standard library."""
    manifest = json.loads((package / "manifest.json").read_bytes())
    for entry in manifest["files"]:
        data = (package / entry["name"]).read_bytes()
        entry.update(
            bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), sm3=hashlib.new("sm3", data).hexdigest()
        )
    raw = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    (package / "manifest.json").write_bytes(raw)
    signature = hmac.new(KEY, raw, "sm3").hexdigest()
    (package / "manifest.sig").write_text(
        json.dumps({"alg": "HMAC-SM3", "key_id": KEY_ID, "signature": signature})
    )


# --------------------------------------------------------------------------- one implementation


def test_the_package_checks_import_the_standard_library_only():
    tree = ast.parse((REPO / "demo" / "province" / "package_checks.py").read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
    }
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_the_province_loads_no_module_of_the_exchange():
    code = (
        "import sys, campusdx.demo.province;"
        "print(sorted(m for m in sys.modules if m.startswith('campusdx.exchange')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "auditor.key"
    path.write_text(KEY.hex() + "\n", encoding="ascii")
    return path


def _script(package: Path, key_file: Path) -> subprocess.CompletedProcess:
    """The verify script as an auditor runs it: isolated, without site-packages (no campusdx)."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), str(package), "--key-file", str(key_file)],
        capture_output=True,
        text=True,
    )


def test_the_verify_script_runs_the_provinces_checks_without_campusdx(profile, tmp_path, key_file):
    package = _build(profile, tmp_path / "outbox")
    sound = _script(package, key_file)
    assert (sound.returncode, sound.stdout.strip()) == (0, f"{package.name}: sound (2 rows)"), sound.stderr
    _flip_last_value_byte(package)
    broken = _script(package, key_file)
    insp = px.inspect(package, px.PX_1_0, lambda _key_id: KEY)
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == [f"{package.name}: {p}" for p in insp.problems]
    assert [p.rule for p in insp.problems] == ["PX-E003"]


@pytest.mark.parametrize(
    "tamper,rule",
    [
        (_flip_last_value_byte, "PX-E003"),
        (lambda p: (p / "manifest.sig").unlink(), "PX-E002"),
        (lambda p: (p / "manifest.json").write_text("{"), "PX-E001"),
    ],
)
def test_script_and_province_name_the_same_rules(profile, tmp_path, key_file, tamper, rule):
    package = _build(profile, tmp_path / "outbox")
    tamper(package)
    output = _script(package, key_file).stdout
    receipt = _judge(profile, tmp_path, package)
    assert {e["rule"] for e in receipt["errors"]} == {rule}
    assert {line.split()[1] for line in output.splitlines()} == {rule}
