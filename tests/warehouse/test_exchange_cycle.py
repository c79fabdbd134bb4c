"""The exchange, complete, on the demo campus: under the embedded default (directory gateway) and
over SFTP to a real OpenSSH server on 127.0.0.1, a first run sends a FULL package of each of the
seven datasets, all ACCEPTED; after ``advance --days 30`` a second run sends DELTA packages; each
time the province simulator's platform data equals the warehouse feeds exactly, per dataset.

One campus is built; a copy of its home (before anything is published) is the SFTP school. After
the advance, the second home takes the rebuilt warehouse and gate results of the first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict

import pytest

from campusdx import pipeline
from campusdx.core import settings
from campusdx.core.profile import load_profile
from campusdx.core.settings import REPO_ROOT
from campusdx.demo.province import Province
from campusdx.exchange.publisher import open_ledger
from tests.conftest import start_sshd
from tests.warehouse.conftest import build, campusdx, dbt, gate

DATASETS = ("ZZJG", "ZY", "JZGJBXX", "XSJBXX", "XJYD", "CWKMYE", "GDZC")


@pytest.fixture(scope="module")
def schools(tmp_path_factory):
    """(directory home, SFTP home, the SFTP settings file); the sshd stops at the end."""
    local = build(tmp_path_factory.mktemp("exchange-directory"))
    remote = tmp_path_factory.mktemp("exchange-sftp") / "home"
    shutil.copytree(local.home, remote)
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
    province = Province.for_home(paths)
    try:
        province.process_inbox()
    finally:
        province.close()
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


def test_after_30_days_the_second_run_sends_deltas_over_both_transports(schools, monkeypatch):
    local, remote, sftp_settings = schools
    if not any((settings.Paths(local).exchange / "state").glob("*/*.post.parquet")):
        pytest.fail("the first run did not publish (run the whole module)", pytrace=False)
    campusdx(local, "advance", "--days", "30")
    campusdx(local, "extract")
    dbt(local, "build")
    gate(local)
    shutil.copy(local / "warehouse.duckdb", remote / "warehouse.duckdb")
    shutil.rmtree(remote / "quality")
    shutil.copytree(local / "quality", remote / "quality")
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
