"""Faults between the publisher and the province: each test ends with the platform holding exactly
the feed, every package applied once and in sequence order.

The publisher runs through ``publish_feed`` and ``collect_receipts`` (what the publish DAG's
tasks call); the province simulator is told to misbehave where the fault is on its side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from campusdx.demo.province import Province
from campusdx.exchange.package import table_from_rows
from campusdx.exchange.publisher import collect_receipts, open_ledger, publish_feed
from tests.conftest import answer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(exchange_home):
    return exchange_home


ROWS = [
    [("1000", "学校"), ("1001", "能源学院")],
    [("1000", "学校"), ("1001", "能源学院"), ("1002", "安全学院")],
    [("1000", "西安科技大学"), ("1002", "安全学院")],
]


def feed(profile, rows):
    return table_from_rows(
        profile, "ZZJG", [{"DWH": k, "DWMC": n, "DWLBM": "10", "SFSY": "1"} for k, n in rows]
    )


def assert_platform_holds(home, profile, rows) -> None:
    """The platform's ZZJG equals ``rows``; its batches are sequences 1..n, each applied once."""
    province = Province.for_home(home, profile)
    try:
        held = [(r["DWH"], r["DWMC"]) for r in province.current("ZZJG")]
        batches = province.store._db.execute(
            "SELECT sequence, batch_id FROM batches WHERE dataset = 'ZZJG' ORDER BY rowid"
        ).fetchall()
    finally:
        province.close()
    assert held == sorted(rows)
    sequences = [s for s, _ in batches]
    assert sequences == list(range(1, len(sequences) + 1)), sequences
    assert len({b for _, b in batches}) == len(batches)
    with open_ledger(home, profile) as ledger:
        delivered = [e for e in ledger.packages("ZZJG") if e.status in ledger.delivered]
    assert [e.sequence for e in delivered] == sequences


def run(home, profile, rows, **misbehave) -> str | None:
    publish_feed("ZZJG", feed(profile, rows), as_of="2026-12-03")
    answer(home, profile, **misbehave)
    got = collect_receipts(timeout_s=0.5, poll_s=0.05, datasets=["ZZJG"])
    return got[0].status if got else None


def test_publisher_killed_after_upload_before_the_ledger_update(home, profile):
    assert run(home, profile, ROWS[0]) == "ACCEPTED"
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from campusdx.exchange import gateway as gw
        from campusdx.exchange.package import table_from_rows
        from campusdx.core.profile import load_profile
        from campusdx.exchange.publisher import publish_feed
        real = gw.DirectoryGateway.upload
        def upload_then_die(self, path):
            real(self, path)
            os.kill(os.getpid(), signal.SIGKILL)  # after the upload, before record_sent
        gw.DirectoryGateway.upload = upload_then_die
        rows = {ROWS[1]!r}
        table = table_from_rows(load_profile(), "ZZJG",
            [{{"DWH": k, "DWMC": n, "DWLBM": "10", "SFSY": "1"}} for k, n in rows])
        publish_feed("ZZJG", table, as_of="2026-12-03")
        """
    )
    killed = subprocess.run([sys.executable, "-c", child], env=os.environ.copy(), capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    with open_ledger(home, profile) as ledger:
        built = ledger.packages("ZZJG")[-1]
    assert (built.status, built.attempts, built.mode) == ("BUILT", 0, "DELTA")
    assert [r["status"] for r in answer(home, profile)] == ["ACCEPTED"]  # the province took it meanwhile
    again = publish_feed("ZZJG", feed(profile, ROWS[1]), as_of="2026-12-03")
    assert (again.action, again.batch_id) == ("resent", built.batch_id)
    assert answer(home, profile) == []  # the same batch, already answered: nothing new to apply
    assert collect_receipts(timeout_s=0.5, poll_s=0.05)[0].status == "ACCEPTED"
    assert run(home, profile, ROWS[2]) == "ACCEPTED"
    assert_platform_holds(home, profile, ROWS[2])


def test_a_receipt_later_than_the_timeout_keeps_the_package_and_is_taken_when_it_comes(home, profile):
    assert run(home, profile, ROWS[0]) == "ACCEPTED"
    publish_feed("ZZJG", feed(profile, ROWS[1]), as_of="2026-12-03")
    assert answer(home, profile, receipt_delay_s=60) == []  # the province is slow today
    [late] = collect_receipts(timeout_s=0.3, poll_s=0.05)
    assert (late.action, late.status) == ("no_receipt", "SENT")
    again = publish_feed("ZZJG", feed(profile, ROWS[2]), as_of="2026-12-03")  # the next run
    assert (again.action, again.batch_id, again.rows) == ("resent", late.batch_id, late.rows)
    assert [r["status"] for r in answer(home, profile)] == ["ACCEPTED"]
    assert collect_receipts(timeout_s=0.5, poll_s=0.05)[0].status == "ACCEPTED"
    assert run(home, profile, ROWS[2]) == "ACCEPTED"  # and ROWS[2] goes as the next DELTA
    assert_platform_holds(home, profile, ROWS[2])


def test_one_rejected_answer_is_rebuilt_under_the_same_sequence(home, profile):
    assert run(home, profile, ROWS[0]) == "ACCEPTED"
    assert run(home, profile, ROWS[1], reject_once={"ZZJG"}) == "REJECTED"
    with open_ledger(home, profile) as ledger:
        rejected = ledger.packages("ZZJG")[-1]
        assert ledger.next_sequence("ZZJG") == 2
    assert run(home, profile, ROWS[1]) == "ACCEPTED"
    with open_ledger(home, profile) as ledger:
        rebuilt = ledger.packages("ZZJG")[-1]
    assert (rebuilt.sequence, rebuilt.package_id) == (2, rejected.package_id)
    assert rebuilt.batch_id != rejected.batch_id
    assert_platform_holds(home, profile, ROWS[1])


def test_the_same_package_sent_twice_is_a_duplicate_and_changes_nothing(home, profile):
    assert run(home, profile, ROWS[0]) == "ACCEPTED"
    sent = publish_feed("ZZJG", feed(profile, ROWS[1]), as_of="2026-12-03")
    assert [r["status"] for r in answer(home, profile)] == ["ACCEPTED"]
    receipt = home.gateway / "receipts" / f"{sent.package_id}.json"
    receipt.unlink()  # the receipt is lost on the way back; the school sends the package again
    again = publish_feed("ZZJG", feed(profile, ROWS[1]), as_of="2026-12-03")
    assert (again.action, again.batch_id) == ("resent", sent.batch_id)
    [duplicate] = answer(home, profile)
    assert (duplicate["status"], duplicate["batch_id"]) == ("DUPLICATE", sent.batch_id)
    assert json.loads(receipt.read_text(encoding="utf-8"))["status"] == "DUPLICATE"
    assert collect_receipts(timeout_s=0.5, poll_s=0.05)[0].status == "DUPLICATE"
    assert run(home, profile, ROWS[2]) == "ACCEPTED"
    assert_platform_holds(home, profile, ROWS[2])
