"""Two runs that meet: two publishers of one dataset, two extractions of one table, each in its
own process on the same home. One holds the lock; the other fails at once naming the holder's
pid (an operator's command) or waits and then does the right thing (an Airflow task)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from campusdx.core import locks
from campusdx.exchange.ledger import Ledger, LedgerError
from campusdx.exchange.package import build_package, table_from_rows
from campusdx.exchange.publisher import collect_receipts, outbox_dir, publish_dataset, publish_lock
from campusdx.sources.landing import Landing

UNIQUE = "packages_dataset_sequence_unique"

# Each child signals it is ready, waits for the start file, then runs; a slow build (or
# commit) keeps the two runs inside each other's critical section whatever the start jitter.
PUBLISH_CHILD = """
import json, os, sys, time
from pathlib import Path
from campusdx.exchange import publisher
from campusdx.exchange.package import table_from_rows
from campusdx.core.profile import load_profile

build = publisher.build_package
def slow_build(*args, **kwargs):
    time.sleep(0.5)
    return build(*args, **kwargs)
publisher.build_package = slow_build
barrier, dwh = Path(sys.argv[1]), sys.argv[2]
row = {"DWH": dwh, "DWMC": "计算机学院", "DWLBM": "20", "SFSY": "1"}
table = table_from_rows(load_profile(), "ZZJG", [row])
(barrier / f"ready-{os.getpid()}").touch()
while not (barrier / "go").exists():
    time.sleep(0.002)
try:
    r = publisher.publish_dataset("ZZJG", table, as_of="2026-12-04")
    out = {"action": r.action, "sequence": r.sequence, "batch_id": r.batch_id}
except Exception as exc:
    out = {"error": type(exc).__name__, "message": str(exc)}
print(json.dumps({"pid": os.getpid(), **out}))
"""

EXTRACT_CHILD = """
import json, os, sys, time
from pathlib import Path
from campusdx.core.declarations import SystemDecl, TableDecl
from campusdx.sources.landing import Landing
from campusdx.sources.sql import extract_table

commit = Landing.commit
def slow_commit(self, *args, **kwargs):
    time.sleep(0.5)
    return commit(self, *args, **kwargs)
Landing.commit = slow_commit
barrier, db, landing = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
decl = SystemDecl("demo", "demo", None, f"sqlite:///{db}",
                  (TableDecl("lines", ("id",), "changed", deletes="key_snapshot"),), Path(db))
(barrier / f"ready-{os.getpid()}").touch()
while not (barrier / "go").exists():
    time.sleep(0.002)
try:
    r = extract_table(decl, decl.tables[0], decl.default_url, Landing(landing))
    out = {"rows": r.rows, "mode": r.mode, "batch_id": r.batch_id}
except Exception as exc:
    out = {"error": type(exc).__name__, "message": str(exc)}
print(json.dumps({"pid": os.getpid(), **out}))
"""


def _race(tmp_path: Path, code: str, args: list[list[str]], wait_s: str) -> list[dict]:
    """Start one child per argument list, release them together, return their reports."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), locks.LOCK_WAIT_ENV: wait_s}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(barrier), *a], env=env, stdout=subprocess.PIPE, text=True
        )
        for a in args
    ]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < len(children):
        assert time.monotonic() < deadline, "the children never got ready"
        time.sleep(0.01)
    (barrier / "go").touch()
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0, out
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def _consistent_outbox(home) -> list:
    """The ledger's packages; every package in the outbox matches the ledger's hashes."""
    with Ledger(home.exchange / "ledger.sqlite") as ledger:
        entries = ledger.packages("ZZJG")
    sequences = [(e.dataset, e.sequence) for e in entries if e.status != "REJECTED"]
    assert len(sequences) == len(set(sequences)), f"a sequence taken twice: {sequences}"
    for entry in entries:
        folder = outbox_dir(home) / entry.package_id
        assert hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest() == entry.manifest_sha256
        for f in entry.files:
            assert hashlib.sha256((folder / f["name"]).read_bytes()).hexdigest() == f["sha256"]
        inbox = home.gateway / "inbox" / entry.package_id
        assert (inbox / "manifest.json").read_bytes() == (folder / "manifest.json").read_bytes()
    return entries


def test_two_publishers_at_once_one_fails_fast_naming_the_holder(exchange_home, tmp_path, profile):
    first, second = _race(tmp_path, PUBLISH_CHILD, [["1000"], ["2000"]], wait_s="0")
    [sent] = [r for r in (first, second) if "action" in r]
    [busy] = [r for r in (first, second) if "error" in r]
    assert (sent["action"], sent["sequence"]) == ("sent", 1)
    assert busy["error"] == "Busy"
    assert f"another publish of ZZJG is running (pid {sent['pid']} " in busy["message"]
    [entry] = _consistent_outbox(exchange_home)
    assert (entry.batch_id, entry.sequence) == (sent["batch_id"], 1)
    again = publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", []), as_of="2026-12-04")
    assert (again.action, again.batch_id) == ("resent", sent["batch_id"]), "the next publish works"
    assert not list((exchange_home.home / "locks").glob("*.holder.json")), "holders clean up"


def test_two_publishers_at_once_the_second_waits_then_redelivers(exchange_home, tmp_path):
    reports = _race(tmp_path, PUBLISH_CHILD, [["1000"], ["2000"]], wait_s="60")
    assert sorted(r.get("action", r.get("error")) for r in reports) == ["resent", "sent"]
    assert len({r["batch_id"] for r in reports}) == 1, "the waiting one re-delivered the same package"
    [entry] = _consistent_outbox(exchange_home)
    assert (entry.sequence, entry.attempts) == (1, 2)


def test_receipts_wait_for_a_publish_of_their_dataset_and_the_lock_is_reentrant(exchange_home, profile):
    held, release = threading.Event(), threading.Event()

    def other_run():
        with publish_lock(exchange_home, "ZZJG", wait_s=0):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait(10)
    try:
        with pytest.raises(locks.Busy, match=rf"another publish of ZZJG is running \(pid {os.getpid()} "):
            collect_receipts(exchange_home, timeout_s=0, poll_s=0, datasets=["ZZJG"], lock_wait_s=0)
        assert collect_receipts(exchange_home, timeout_s=0, poll_s=0, datasets=["ZY"], lock_wait_s=0) == []
    finally:
        release.set()
        thread.join()
    table = table_from_rows(
        profile, "ZZJG", [{"DWH": "1000", "DWMC": "计算机学院", "DWLBM": "20", "SFSY": "1"}]
    )
    with publish_lock(exchange_home, "ZZJG", wait_s=0):  # a caller holding the lock publishes
        assert publish_dataset("ZZJG", table, as_of="2026-12-04", lock_wait_s=0).action == "sent"
    with pytest.raises(ValueError, match="cannot name a lock"):
        publish_lock(exchange_home, "../ZZJG", wait_s=0).__enter__()


def test_the_ledger_refuses_a_second_package_under_a_held_sequence(profile, tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record_built(build_one(profile, tmp_path, "b1"), "fp1", "t")
        with pytest.raises(LedgerError, match="sequence 1 of ZZJG is held by another package"):
            ledger.record_built(build_one(profile, tmp_path, "b2", dwh="2"), "fp2", "t")
        ledger.record_receipt("b1", {"batch_id": "b1", "status": "REJECTED"}, "t")
        ledger.record_built(build_one(profile, tmp_path, "b3", dwh="2"), "fp3", "t")
        ledger.record_receipt("b3", {"batch_id": "b3", "status": "ACCEPTED"}, "t")
        with pytest.raises(LedgerError, match="sequence 1 of ZZJG is not the next one"):
            ledger.record_built(build_one(profile, tmp_path, "b4", dwh="2"), "fp4", "t")
        assert [(e.batch_id, e.status) for e in ledger.packages("ZZJG")] == [
            ("b1", "REJECTED"),
            ("b3", "ACCEPTED"),
        ]


def test_an_old_ledger_with_a_sequence_taken_twice_is_refused_by_name(profile, tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.record_built(build_one(profile, tmp_path, "b1"), "fp1", "t")
    with sqlite3.connect(path) as db:  # a ledger from before the unique index...
        db.execute("DROP INDEX packages_dataset_sequence_unique")
    Ledger(path).close()  # ...gets it when opened
    with sqlite3.connect(path) as db:
        assert db.execute("select count(*) from sqlite_master where name = ?", [UNIQUE]).fetchone() == (1,)
        db.execute("DROP INDEX packages_dataset_sequence_unique")  # as one without it could end up
        db.execute(
            "INSERT INTO packages (package_id, dataset, mode, sequence, batch_id, fingerprint,"
            " manifest_sha256, files, rows, built_at, as_of, status)"
            " SELECT package_id, dataset, mode, sequence, 'b2', fingerprint,"
            " manifest_sha256, files, rows, built_at, as_of, 'SENT' FROM packages"
        )
    with pytest.raises(LedgerError, match=r"ZZJG sequence 1 \(batches b1, b2\)"):
        Ledger(path)


def build_one(profile, tmp_path, batch_id, *, dwh="1"):
    """A signed ZZJG package, sequence 1, in ``tmp_path/<batch_id>``."""
    row = {"DWH": dwh, "DWMC": "计算机学院", "DWLBM": "20", "SFSY": "1"}
    return build_package(
        profile,
        "ZZJG",
        "FULL",
        table_from_rows(profile, "ZZJG", [row]),
        school_code="4161010704",
        sequence=1,
        batch_id=batch_id,
        as_of="2026-11-22",
        generated_at="2026-11-22 03:00:00",
        key=bytes(range(32)),
        key_id="demo-4161010704",
        out_dir=tmp_path / batch_id,
    )


def _source(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("create table lines (id integer primary key, amount numeric(18,2), changed text)")
        conn.executemany(
            "insert into lines values (?, ?, ?)",
            ((i, f"{i % 1000}.25", f"2026-01-01 00:{i % 60:02d}:00") for i in range(rows)),
        )


def test_two_extractions_of_one_table_at_once(tmp_path):
    db, root = tmp_path / "src.sqlite", tmp_path / "home" / "landing"
    _source(db, 20_000)
    reports = _race(tmp_path, EXTRACT_CHILD, [[str(db), str(root)], [str(db), str(root)]], wait_s="0")
    [landed] = [r for r in reports if "rows" in r]
    [busy] = [r for r in reports if "error" in r]
    assert (landed["rows"], landed["mode"]) == (20_000, "full")
    assert busy["error"] == "Busy"
    assert f"another extraction of demo.lines is running (pid {landed['pid']} " in busy["message"]
    landing = Landing(root)
    folder = landing.table_dir("demo", "lines")
    assert [m["batch_id"] for m in landing.manifests("demo", "lines")] == [landed["batch_id"]]
    assert sorted(p.name for p in (folder / "_manifests").iterdir()) == [f"{landed['batch_id']}.json"]
    assert not list(folder.glob("*.tmp")) and len(list(folder.glob("*.parquet"))) == 1

    (tmp_path / "next").mkdir()
    [again] = _race(tmp_path / "next", EXTRACT_CHILD, [[str(db), str(root)]], wait_s="0")
    assert again["mode"] == "incremental", "the next extraction works"
    assert len(list(landing.manifests("demo", "lines"))) == 2


def test_the_operators_resend_fails_at_once_while_a_publish_runs(exchange_home, profile, capsys):
    from campusdx.cli import main

    row = {"DWH": "1000", "DWMC": "计算机学院", "DWLBM": "20", "SFSY": "1"}
    sent = publish_dataset("ZZJG", table_from_rows(profile, "ZZJG", [row]), as_of="2026-12-04")
    held, release = threading.Event(), threading.Event()

    def publishing():
        with publish_lock(exchange_home, "ZZJG", wait_s=0):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=publishing)
    thread.start()
    held.wait(10)
    try:
        started = time.monotonic()
        assert main(["exchange", "resend", sent.package_id]) == 1
        assert time.monotonic() - started < 5, "no waiting"
    finally:
        release.set()
        thread.join()
    assert f"another publish of ZZJG is running (pid {os.getpid()} " in capsys.readouterr().err
    assert main(["exchange", "resend", sent.package_id]) == 0
