"""The SFTP gateway against a real OpenSSH server on 127.0.0.1 (``campusdx.demo.sshd``), the province
simulator serving the directory that server exposes.

Without OpenSSH (``scripts/install-openssh.sh`` installs it) these tests skip with that reason,
except under ``CI=true``, where that is a failure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from campusdx.core.profile import load_profile
from campusdx.demo.province import Province
from campusdx.exchange import sftp as sftp_module
from campusdx.exchange.package import table_from_rows
from campusdx.exchange.publisher import collect_receipts, open_ledger, publish_feed
from campusdx.exchange.sftp import SftpError, SftpGateway, SftpSettings
from tests.conftest import start_sshd


@pytest.fixture(scope="module")
def profile():
    return load_profile()


@pytest.fixture
def sshd(tmp_path):
    """A fresh sshd whose SFTP root is the gateway directory of this test's home."""
    server, _ = start_sshd(tmp_path / "sshd", tmp_path / "home" / "gateway")
    yield server
    server.stop()


@pytest.fixture
def server(sshd):
    """How the school reaches that sshd."""
    return sshd.endpoint


@pytest.fixture
def home(exchange_home):
    return exchange_home


def gateway_for(endpoint, **changes) -> SftpGateway:
    fields = dict(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        key_file=endpoint.key_file,
        known_hosts=endpoint.known_hosts,
        remote_root=endpoint.remote_root,
        timeout_s=10,
    )
    return SftpGateway(SftpSettings(**{**fields, **changes}))


def orgs(profile, *codes):
    return table_from_rows(
        profile, "ZZJG", [{"DWH": c, "DWMC": f"单位{c}", "DWLBM": "10", "SFSY": "1"} for c in codes]
    )


def answer(home, profile) -> list[dict]:
    province = Province.for_home(home, profile)
    try:
        return province.process_inbox()
    finally:
        province.close()


def platform_keys(home, profile) -> list[str]:
    province = Province.for_home(home, profile)
    try:
        return [row["DWH"] for row in province.current("ZZJG")]
    finally:
        province.close()


def test_full_then_delta_over_sftp_with_receipts_polled_over_sftp(server, home, profile):
    gateway = gateway_for(server)
    first = publish_feed("ZZJG", orgs(profile, "1000", "1001"), as_of="2026-12-03", gateway=gateway)
    assert (Path(server.root) / "inbox" / first.package_id / "manifest.json").is_file()
    assert not list((Path(server.root) / "inbox").glob("*.part"))
    assert [r["status"] for r in answer(home, profile)] == ["ACCEPTED"]
    [got] = collect_receipts(gateway=gateway, timeout_s=5, poll_s=0.1)
    assert (got.package_id, got.status) == (first.package_id, "ACCEPTED")
    second = publish_feed("ZZJG", orgs(profile, "1000", "1002"), as_of="2026-12-04", gateway=gateway)
    assert (second.mode, second.rows) == ("DELTA", 2)
    answer(home, profile)
    assert collect_receipts(gateway=gateway, timeout_s=5, poll_s=0.1)[0].status == "ACCEPTED"
    assert platform_keys(home, profile) == ["1000", "1002"]


@pytest.mark.parametrize("side", ["school", "gateway"])
def test_a_connection_cut_mid_upload_is_resumed_and_the_package_is_applied_once(
    side, sshd, server, home, profile, monkeypatch, caplog
):
    gateway = gateway_for(server)
    real_rename, calls = sftp_module._rename, []

    def cut_after_the_first_file(sftp, source, target):
        calls.append(target)
        if len(calls) == 2:  # the network goes away mid-upload, on our side or the province's
            if side == "school":
                sftp.get_channel().get_transport().close()
            else:
                assert sshd.drop_connections() >= 1
        return real_rename(sftp, source, target)

    monkeypatch.setattr(sftp_module, "_rename", cut_after_the_first_file)
    with pytest.raises(Exception):  # noqa: B017 (whatever paramiko raises for a dead transport)
        publish_feed("ZZJG", orgs(profile, "1000", "1001"), as_of="2026-12-03", gateway=gateway)
    monkeypatch.setattr(sftp_module, "_rename", real_rename)
    inbox = Path(server.root) / "inbox"
    [part] = inbox.glob("*.part")
    assert len(list(part.iterdir())) >= 1 and answer(home, profile) == []  # the platform ignores .part
    with open_ledger(home, profile) as ledger:
        [entry] = ledger.packages("ZZJG")
    assert (entry.status, entry.attempts) == ("BUILT", 0)
    caplog.set_level("INFO", logger="campusdx.exchange.sftp")
    again = publish_feed("ZZJG", orgs(profile, "1000", "1001"), as_of="2026-12-03", gateway=gateway)
    assert (again.action, again.batch_id) == ("resent", entry.batch_id)
    assert "1 of 3 files were already complete" in caplog.text
    assert [r["status"] for r in answer(home, profile)] == ["ACCEPTED"]
    assert collect_receipts(gateway=gateway, timeout_s=5, poll_s=0.1)[0].status == "ACCEPTED"
    assert platform_keys(home, profile) == ["1000", "1001"]
    province = Province.for_home(home, profile)
    try:  # applied once: one batch, sequence 1
        applied = [tuple(r) for r in province.store._db.execute("SELECT sequence, batch_id FROM batches")]
    finally:
        province.close()
    assert applied == [(1, entry.batch_id)]


def test_an_unknown_or_changed_host_key_is_refused_before_anything_is_sent(server, home, profile, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(SftpError, match="host key is not pinned"):
        publish_feed(
            "ZZJG",
            orgs(profile, "1000"),
            as_of="2026-12-03",
            gateway=gateway_for(server, known_hosts=str(empty)),
        )
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = Path(f"{other}.pub").read_text().split()[:2]
    changed = tmp_path / "changed_known_hosts"
    changed.write_text(f"[127.0.0.1]:{server.port} {kind} {key}\n")
    with pytest.raises(SftpError, match="host key CHANGED"):
        gateway_for(server, known_hosts=str(changed)).receipt("anything")
    assert not (Path(server.root) / "inbox").exists() or not any((Path(server.root) / "inbox").iterdir())


def test_a_wrong_client_key_is_refused(server, tmp_path):
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(SftpError, match="SSH failed"):
        gateway_for(server, key_file=str(stranger)).receipt("anything")
