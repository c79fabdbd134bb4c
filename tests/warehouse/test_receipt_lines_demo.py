"""A PARTIAL receipt after multi-line values, on the demo campus: two asset names copied from an
office export hold LF and CR LF, and the province rejects an asset after them. The receipt's
line counts file lines (PX-1.0 §4), so it must be mapped on the bytes sent: exactly that asset
is quarantined, its neighbours (the multi-line ones included) are at the province, and once the
asset changes at the source the next cycle leaves the platform equal to the feeds."""

from __future__ import annotations

import shutil
import sqlite3

import pyarrow.parquet as pq

from campusdx import pipeline
from campusdx.core import settings
from campusdx.core.profile import load_profile
from campusdx.demo.province import Province
from campusdx.exchange.publisher import open_ledger
from campusdx.quality.platform import platform_findings_file
from tests.warehouse.conftest import Built, gate_only, rebuild_system
from tests.warehouse.test_exchange_cycle import DATASETS, assert_platform_equals_feeds

LF_NAME = "实验台\n(由资产处导出)"
CRLF_NAME = "投影仪\r\n备注: 三楼"


def cycle(paths, **misbehave) -> dict[str, dict]:
    """What the publish DAG does for every dataset, the province answering after the uploads."""
    sent = {code: pipeline.publish(code, paths=paths) for code in DATASETS}
    province = Province.for_home(paths, **misbehave)
    try:
        province.process_inbox()
    finally:
        province.close()
    return {code: {**sent[code], "receipt": pipeline.receipt(code, paths=paths)} for code in DATASETS}


def rebuild(home) -> None:
    """The next warehouse run, after only the asset system changed: extract asset, build what its
    sources feed, gate GDZC (the only dataset whose candidates it rebuilds), then its feed."""
    rebuild_system(home, "asset", "GDZC")


def test_a_rejection_after_multi_line_values_quarantines_exactly_that_row(warehouse, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(
        warehouse.home, home, symlinks=True, ignore=shutil.ignore_patterns("exchange", "gateway", "province")
    )
    monkeypatch.setenv("CAMPUSDX_HOME", str(home))
    monkeypatch.delenv("CAMPUSDX_SFTP_SETTINGS", raising=False)
    paths, built = settings.Paths(home), Built(home)
    feed = [r["ZCBH"] for r in pipeline.read_feed("GDZC", paths).to_pylist()]
    lf, crlf, rejected, after = feed[10:14]  # four neighbours, in package order
    with sqlite3.connect(home / "sources" / "asset.sqlite") as conn:
        for key, name in ((lf, LF_NAME), (crlf, CRLF_NAME)):
            conn.execute(
                "update zc_kp set zcmc = ?, xgsj = '2026-11-30 09:00:00' where zcbh = ?", [name, key]
            )
    rebuild(home)
    names = {r["ZCBH"]: r["ZCMC"] for r in pipeline.read_feed("GDZC", paths).to_pylist()}
    assert (names[lf], names[crlf]) == (LF_NAME, CRLF_NAME)  # our gate lets line breaks through

    first = cycle(paths, reject_rows={"GDZC": [rejected]})
    assert first["GDZC"]["receipt"]["status"] == "PARTIAL"
    errors = first["GDZC"]["receipt"]["receipt"]["errors"]
    assert [(e["rule"], e["value"]) for e in errors if not e["rule"].startswith("PX-W")] == [
        ("PX-E017", rejected)
    ]
    findings = pq.read_table(platform_findings_file(paths, "GDZC")).to_pylist()
    assert {(f["record_key"], f["rule_id"]) for f in findings} == {(rejected, "PX-E017")}
    province = Province.for_home(paths)
    try:
        held = {r["ZCBH"]: r for r in province.current("GDZC")}
    finally:
        province.close()
    assert rejected not in held and {lf, crlf, after} <= set(held)
    assert (held[lf]["ZCMC"], held[crlf]["ZCMC"]) == (LF_NAME, CRLF_NAME)
    assert set(held) == set(names) - {rejected}
    with open_ledger(paths, load_profile()) as ledger:
        last = ledger.last_delivered("GDZC")
    ours = pq.read_table(home / "exchange" / "state" / "GDZC" / f"{last.batch_id}.held.parquet")
    assert set(ours.column("ZCBH").to_pylist()) == set(held)  # our record of it is the same

    gate_only(home, "GDZC")  # the next warehouse run: the rejected asset is held back, its neighbours not
    quarantined = built.rows("select record_key, rule_id from quality.quarantine where dataset = 'GDZC'")
    assert {(k, r) for k, r in quarantined if r.startswith("PX-")} == {(rejected, "PX-E017")}
    out = {r[0] for r in built.rows('select "ZCBH" from feeds.feed_px__gdzc')}
    assert rejected not in out and {lf, crlf, after} <= out

    with sqlite3.connect(home / "sources" / "asset.sqlite") as conn:  # fixed at the source
        conn.execute("update zc_kp set xgsj = '2026-12-01 09:00:00' where zcbh = ?", [rejected])
    rebuild(home)
    second = cycle(paths)
    assert (second["GDZC"]["mode"], second["GDZC"]["receipt"]["status"]) == ("DELTA", "ACCEPTED")
    assert_platform_equals_feeds(home)
    assert not pq.read_table(platform_findings_file(paths, "GDZC")).num_rows
