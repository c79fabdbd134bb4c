"""A PARTIAL receipt routes the rows the province rejected to the quarantine under its PX rule IDs;
they stay out of the feed while unchanged, and the feed still reconciles."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest

from campusdx import pipeline
from campusdx.core import settings
from campusdx.core.profile import load_profile
from campusdx.demo.province import Province, available_code_sets
from campusdx.exchange.publisher import exchange_key
from campusdx.quality.personal import personal_fields
from campusdx.quality.platform import platform_findings_file, prune
from tests.warehouse.conftest import Built, gate_only


def test_rows_the_province_rejects_are_quarantined_under_its_rules(warehouse, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(
        warehouse.home, home, symlinks=True, ignore=shutil.ignore_patterns("exchange", "gateway", "province")
    )
    monkeypatch.setenv("CAMPUSDX_HOME", str(home))
    monkeypatch.delenv("CAMPUSDX_SFTP_SETTINGS", raising=False)
    paths, profile = settings.Paths(home), load_profile()
    feed = pipeline.read_feed("ZZJG", paths).to_pylist()
    rarest, count = Counter(r["DWLBM"] for r in feed).most_common()[-1]
    sent = pipeline.publish("ZZJG", paths=paths)
    codes = available_code_sets(profile)
    codes["DWLB"] = set(codes["DWLB"]) - {rarest}  # this province does not know one unit type
    province = Province(paths.gateway, paths.province, profile, {profile.key_id: exchange_key(paths)}, codes)
    try:
        [receipt] = province.process_inbox()
    finally:
        province.close()
    assert (receipt["status"], receipt["rows_rejected"]) == ("PARTIAL", count)
    answered = pipeline.receipt("ZZJG", paths=paths)
    assert (answered["status"], answered["package_id"]) == ("PARTIAL", sent["package_id"])

    findings = pq.read_table(platform_findings_file(paths, "ZZJG")).to_pylist()
    rejected = {r["DWH"] for r in feed if r["DWLBM"] == rarest}
    assert {(f["record_key"], f["rule_id"], f["field"], f["value"]) for f in findings} == {
        (key, "PX-E011", "DWLBM", rarest) for key in rejected
    }
    gate_only(home, "ZZJG")  # the next warehouse run: the gate, then the quarantine and the feed
    built = Built(home)
    held = built.rows("select record_key, rule_id from quality.quarantine where dataset = 'ZZJG'")
    assert {(k, r) for k, r in held if r.startswith("PX-")} == {(key, "PX-E011") for key in rejected}
    assert not rejected & {r[0] for r in built.rows('select "DWH" from feeds.feed_px__zzjg')}
    counts = pipeline.reconcile_feed("ZZJG", paths)
    assert counts["held_rows"] >= len(rejected)

    # the row changes at the source (a new landing batch): it leaves the quarantine by itself
    with built.connect() as conn:
        current = dict(
            conn.execute(
                "select record_key, batch_id from feeds_candidates.feed_px_candidates__zzjg"
            ).fetchall()
        )
    moved = {k: ("a later batch" if k == min(rejected) else b) for k, b in current.items()}
    assert prune(paths, profile.dataset("ZZJG"), moved, personal_fields(profile)) == 1
    left = {f["record_key"] for f in pq.read_table(platform_findings_file(paths, "ZZJG")).to_pylist()}
    assert left == rejected - {min(rejected)}


def test_a_rejected_package_raises_the_alert_and_is_rebuilt_and_sent_at_once(
    warehouse, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    shutil.copytree(
        warehouse.home, home, symlinks=True, ignore=shutil.ignore_patterns("exchange", "gateway", "province")
    )
    monkeypatch.setenv("CAMPUSDX_HOME", str(home))
    monkeypatch.delenv("CAMPUSDX_SFTP_SETTINGS", raising=False)
    paths, profile = settings.Paths(home), load_profile()
    first = pipeline.publish("ZZJG", paths=paths)
    province = Province.for_home(paths, profile, reject_once={"ZZJG"})
    try:
        assert [r["status"] for r in province.process_inbox()] == ["REJECTED"]
    finally:
        province.close()
    with pytest.raises(
        pipeline.Rejected, match=r"PX-E003: simulated fault.*rebuilt and sent again as "
    ) as alert:
        pipeline.receipt("ZZJG", paths=paths)
    assert first["package_id"] in str(alert.value) and first["batch_id"] not in str(alert.value)
    province = Province.for_home(paths, profile)
    try:
        assert [r["status"] for r in province.process_inbox()] == ["ACCEPTED"]
    finally:
        province.close()
    answer = pipeline.receipt("ZZJG", paths=paths)
    assert (answer["status"], answer["package_id"], answer["sequence"]) == (
        "ACCEPTED",
        first["package_id"],
        1,
    )


def test_a_personal_value_the_province_echoes_is_masked_in_the_quarantine(warehouse, tmp_path, monkeypatch):
    """A real province may echo the rejected value (the simulator blanks 姓名 and 身份证件号):
    an ID number it sends back is kept masked, with its keyed fingerprint, never as it is."""
    home = tmp_path / "home"
    shutil.copytree(
        warehouse.home, home, symlinks=True, ignore=shutil.ignore_patterns("exchange", "gateway", "province")
    )
    monkeypatch.setenv("CAMPUSDX_HOME", str(home))
    monkeypatch.delenv("CAMPUSDX_SFTP_SETTINGS", raising=False)
    paths, profile = settings.Paths(home), load_profile()
    feed = pipeline.read_feed("XSJBXX", paths).to_pylist()
    victim = next(r for r in feed if len(r["SFZJH"]) == 18)
    sent = pipeline.publish("XSJBXX", paths=paths)
    province = Province.for_home(paths, profile, reject_rows={"XSJBXX": [victim["XH"]]})
    try:
        [receipt] = province.process_inbox()
    finally:
        province.close()
    assert receipt["status"] == "PARTIAL"
    # the province's receipt names the ID number field and echoes its value
    path = paths.gateway / profile.gateway.receipts / f"{sent['package_id']}.json"
    answer = json.loads(path.read_text(encoding="utf-8"))
    told = [e for e in answer["errors"] if "reject_rows" in e["message"]]
    assert len(told) == 1
    told[0].update(field="SFZJH", value=victim["SFZJH"])
    path.write_text(json.dumps(answer, ensure_ascii=False), encoding="utf-8")
    assert pipeline.receipt("XSJBXX", paths=paths)["status"] == "PARTIAL"

    findings = pq.read_table(platform_findings_file(paths, "XSJBXX")).to_pylist()
    assert victim["SFZJH"] not in json.dumps(findings, default=str, ensure_ascii=False)
    [finding] = [f for f in findings if f["rule_id"] == "PX-E017"]
    assert finding["record_key"] == victim["XH"] and finding["field"] == "SFZJH"
    assert finding["value"] == victim["SFZJH"][:6] + "*" * 12
    assert finding["value_fingerprint"]
    gate_only(home, "XSJBXX")
    built = Built(home)
    held = built.rows(
        "select value from quality.quarantine where record_key = ? and rule_id = 'PX-E017'", victim["XH"]
    )
    assert held and all(victim["SFZJH"] not in (v or "") for (v,) in held)
