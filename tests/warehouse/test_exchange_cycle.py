"""The exchange, complete, on the demo campus: under the embedded default (directory gateway) and
over SFTP to a real OpenSSH server on 127.0.0.1, a first run sends a FULL package of each of the
seven datasets, all ACCEPTED; after ``advance --days 30`` a second run sends DELTA packages; each
time the province simulator's platform data equals the warehouse feeds exactly, per dataset.

Nothing is built here: the directory school is a copy of the session's ``warehouse`` home, the
SFTP school a copy of that (before anything is published). For the second run the directory
school takes the sources, landing zone, warehouse and gate results of ``advanced_warehouse``
(the same campus 30 days on, built from a copy of the same home), and the SFTP school the
rebuilt warehouse and gate results of the first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict

import pytest

from campusdx import pipeline
from campusdx.core import settings, snapshots
from campusdx.core.profile import load_profile
from campusdx.core.settings import REPO_ROOT
from campusdx.demo.province import Province
from campusdx.exchange.publisher import open_ledger
from tests.conftest import answer, start_sshd
from tests.warehouse.conftest import copy_home

DATASETS = ("ZZJG", "ZY", "JZGJBXX", "XSJBXX", "XJYD", "CWKMYE", "GDZC")

# What `make demo` prints for the default seed at the default size (demo/runner.py, print_summary,
# up to "Where to look", whose paths differ per home): datasets, rows, verdicts, receipts. Taken
# from `campusdx demo` at commit 24f0ff5, before the package moved to campusdx/core and
# campusdx/pipeline; the first directory run here takes the same steps without Airflow.
DEMO_SUMMARY = """\
Landing zone (rows in the latest batch / batches so far)
  asset.zc_ly                     6 / 1
  asset.zc_kp                  3000 / 1
  finance.gl_kmb                 12 / 1
  finance.gl_pz                4000 / 1
  finance.gl_fl               12114 / 1
  finance.gl_wlgr               300 / 1
  hr.hr_org                      21 / 1
  hr.hr_staff                   300 / 1
  student.xg_yx                  10 / 1
  student.xg_zy                  17 / 1
  student.xg_xjyd               314 / 1
  student.xg_xsxx              2012 / 1

Warehouse (rows)
  feeds.feed_px__cwkmye                        8187
  feeds.feed_px__gdzc                          2902
  feeds.feed_px__jzgjbxx                        295
  feeds.feed_px__xjyd                           309
  feeds.feed_px__xsjbxx                        1970
  feeds.feed_px__zy                              14
  feeds.feed_px__zzjg                            21
  marts.dim_asset                              3000
  marts.dim_building                              6
  marts.dim_major                                17
  marts.dim_org                                  21
  marts.dim_person                             2300
  marts.dim_staff                               300
  marts.dim_student                            2012
  marts.fct_account_balance_monthly            8187
  marts.fct_asset_change                       3000
  marts.fct_ledger_entry                      12114
  marts.fct_student_status_change               314
  marts.mart_stats__fixed_assets                 98
  marts.mart_stats__staff                       178
  marts.mart_stats__students                    178
  marts.person_conflicts                         38
  quality.quarantine                            140
  staging.stg_asset__asset_card_versions       3000
  staging.stg_asset__asset_cards               3000
  staging.stg_asset__buildings                    6
  staging.stg_asset__inventory_check_conflicts        2
  staging.stg_asset__inventory_checks           298
  staging.stg_asset__rooms                       90
  staging.stg_finance__accounts                  12
  staging.stg_finance__payees                   300
  staging.stg_finance__voucher_lines          12114
  staging.stg_finance__vouchers                4000
  staging.stg_hr__org                            21
  staging.stg_hr__staff                         300
  staging.stg_student__departments               10
  staging.stg_student__majors                    17
  staging.stg_student__status_changes           314
  staging.stg_student__students                2012

Quality gate
  CWKMYE   passed   checks 26 passed / 0 failed; 8187 rows, 0 quarantined (no failures)
  GDZC     passed   checks 28 passed / 2 failed; 3000 rows, 98 quarantined (CDX-E016 x68, CDX-E107 x30)
  JZGJBXX  passed   checks 51 passed / 1 failed; 300 rows, 5 quarantined (CDX-E013 x5)
  XJYD     passed   checks 24 passed / 1 failed; 314 rows, 5 quarantined (CDX-E016 x5)
  XSJBXX   passed   checks 52 passed / 5 failed; 2000 rows, 30 quarantined (CDX-E010 x10, CDX-E013 x20)
  ZY       passed   checks 20 passed / 0 failed; 14 rows, 0 quarantined (no failures)
  ZZJG     passed   checks 17 passed / 0 failed; 21 rows, 0 quarantined (no failures)

Packages and receipts
  4161010704-CWKMYE-F-000001       ACCEPTED       8187 rows
  4161010704-GDZC-F-000001         ACCEPTED       2902 rows
  4161010704-JZGJBXX-F-000001      ACCEPTED        295 rows
  4161010704-XJYD-F-000001         ACCEPTED        309 rows
  4161010704-XSJBXX-F-000001       ACCEPTED       1970 rows
  4161010704-ZY-F-000001           ACCEPTED         14 rows
  4161010704-ZZJG-F-000001         ACCEPTED         21 rows
"""


@pytest.fixture(scope="module")
def schools(warehouse, tmp_path_factory):
    """(directory home, SFTP home, the SFTP settings file); the sshd stops at the end."""
    local = copy_home(warehouse, tmp_path_factory.mktemp("exchange-directory") / "home")
    remote = tmp_path_factory.mktemp("exchange-sftp") / "home"
    shutil.copytree(local.home, remote, symlinks=True)
    server, endpoint = start_sshd(remote.parent / "sshd", remote / "gateway")
    sftp_settings = remote.parent / "sftp.json"
    sftp_settings.write_text(json.dumps(asdict(endpoint)), encoding="utf-8")
    yield local.home, remote, sftp_settings
    server.stop()


def publish_all(home, monkeypatch, sftp_settings=None) -> dict[str, dict]:
    """What the publish DAG does for every dataset, the province answering after the uploads."""
    paths = settings.Paths(home)
    if sftp_settings:
        monkeypatch.setenv("CAMPUSDX_SFTP_SETTINGS", str(sftp_settings))
    else:
        monkeypatch.delenv("CAMPUSDX_SFTP_SETTINGS", raising=False)
    sent = {code: pipeline.publish(code, paths=paths) for code in DATASETS}
    answer(paths)
    for code in DATASETS:
        sent[code]["receipt"] = pipeline.receipt(code, paths=paths)
    return sent


def assert_platform_equals_feeds(home) -> None:
    paths = settings.Paths(home)
    profile = load_profile()
    province = Province.for_home(paths)
    try:
        for code in DATASETS:
            key = profile.dataset(code).primary_key
            feed = [
                {k: v or "" for k, v in row.items()} for row in pipeline.read_feed(code, paths).to_pylist()
            ]
            held = province.current(code)
            order = lambda r, key=key: tuple(r[k] for k in key)  # noqa: E731
            assert len(held) == len(feed), f"{code}: platform {len(held)} rows, feed {len(feed)}"
            assert sorted(held, key=order) == sorted(feed, key=order), (
                f"{code}: platform data differs from the feed"
            )
    finally:
        province.close()


@pytest.mark.parametrize("transport", ["directory", "sftp"])
def test_first_run_sends_seven_accepted_fulls(schools, transport, monkeypatch):
    local, remote, sftp_settings = schools
    home = local if transport == "directory" else remote
    sent = publish_all(home, monkeypatch, sftp_settings if transport == "sftp" else None)
    assert {c: (s["action"], s["mode"]) for c, s in sent.items()} == {c: ("sent", "FULL") for c in DATASETS}
    assert {c: s["receipt"]["status"] for c, s in sent.items()} == {c: "ACCEPTED" for c in DATASETS}
    assert_platform_equals_feeds(home)


def test_the_first_run_prints_the_summary_make_demo_prints(schools, capsys):
    """After the first run the demo's own summary of the directory school is, line for line,
    what `make demo` prints on the default campus."""
    from campusdx.demo.runner import print_summary, summary

    local, _, _ = schools
    paths = settings.Paths(local)
    if not any((paths.exchange / "state").glob("*/*.post.parquet")):
        pytest.fail("the first run did not publish (run the whole module)", pytrace=False)
    print_summary(paths, summary(paths))
    printed = capsys.readouterr().out.split("\nWhere to look", 1)[0]
    assert printed.strip("\n").splitlines() == DEMO_SUMMARY.strip("\n").splitlines()


def test_after_30_days_the_second_run_sends_deltas_over_both_transports(
    schools, advanced_warehouse, monkeypatch
):
    local, remote, sftp_settings = schools
    if not any((settings.Paths(local).exchange / "state").glob("*/*.post.parquet")):
        pytest.fail("the first run did not publish (run the whole module)", pytrace=False)
    # 30 days later, extracted, built and gated: the session's advanced_warehouse, which made
    # them from a copy of this same campus (advance --days 30, extract, dbt build, the gate)
    advanced, _ = advanced_warehouse
    for folder in ("sources", "landing"):
        shutil.rmtree(local / folder)
        shutil.copytree(advanced.home / folder, local / folder, symlinks=True)
    shutil.copytree(advanced.home / "quality", local / "quality", dirs_exist_ok=True, symlinks=True)
    shutil.copy(advanced.path, local / "warehouse.duckdb")
    shutil.copy(local / "warehouse.duckdb", remote / "warehouse.duckdb")
    shutil.rmtree(remote / "quality")
    shutil.copytree(local / "quality", remote / "quality")
    for home in (local, remote):  # the build published, as the warehouse run ends
        snapshots.publish(settings.Paths(home), "advanced")
    for home, via in ((local, None), (remote, sftp_settings)):
        sent = publish_all(home, monkeypatch, via)
        modes = {c: s.get("mode") for c, s in sent.items() if s["action"] == "sent"}
        assert modes and set(modes.values()) == {"DELTA"}, sent
        assert {"XSJBXX", "XJYD", "GDZC"} <= set(modes), "the simulated month changed students and assets"
        statuses = {c: s["receipt"]["status"] for c, s in sent.items() if s["action"] == "sent"}
        assert set(statuses.values()) == {"ACCEPTED"}, statuses
        assert_platform_equals_feeds(home)
        with open_ledger(settings.Paths(home), load_profile()) as ledger:
            for code in modes:
                assert [e.sequence for e in ledger.packages(code)] == [1, 2]


def test_a_sent_xsjbxx_package_verifies_with_a_script_that_knows_only_px_1_0(schools, tmp_path):
    local, _, _ = schools
    paths = settings.Paths(local)
    [package] = sorted((paths.exchange / "outbox").glob("4161010704-XSJBXX-F-*"))[:1]
    script = [sys.executable, "-I", str(REPO_ROOT / "scripts" / "verify_px_package.py")]
    key = ["--key-file", str(paths.secrets / "px-hmac.key")]
    fields = ["--fields", ",".join(load_profile().dataset("XSJBXX").field_codes)]
    sound = subprocess.run([*script, str(package), *key, *fields], capture_output=True, text=True)
    assert sound.returncode == 0 and "sound (" in sound.stdout, sound.stdout + sound.stderr
    tampered = tmp_path / package.name
    shutil.copytree(package, tampered)
    part = tampered / "XSJBXX.001.csv"
    data = bytearray(part.read_bytes())
    data[-2] = ord("9") if data[-2] != ord("9") else ord("8")
    part.write_bytes(bytes(data))
    broken = subprocess.run([*script, str(tampered), *key], capture_output=True, text=True)
    assert broken.returncode == 1 and "XSJBXX.001.csv: sha256 differs" in broken.stdout, broken.stdout
    wrong = tmp_path / "wrong.key"
    wrong.write_text("00" * 32)
    unsigned = subprocess.run(
        [*script, str(package), "--key-file", str(wrong)], capture_output=True, text=True
    )
    assert "the HMAC does not verify" in unsigned.stdout
