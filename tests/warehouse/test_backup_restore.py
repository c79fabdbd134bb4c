"""备份恢复 on the demo campus: the restore drill (a home lost after packages were sent that the
backup does not know) and backups refused, before anything is written, when a byte is flipped,
a file is missing or the key is wrong.

The drill: cycle 1 publishes FULLs; a backup; cycle 2 (the session's ``advanced_warehouse``, the
same campus 30 days on) sends DELTAs the backup does not know; the home is deleted (the campus
systems, the gateway and the province are other machines: moved aside and back); restore;
cycle 3 (one more day: extract, dbt build, reconcile, gate, publish)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil

import duckdb
import pytest

from campusdx.core import snapshots
from campusdx.core.profile import load_profile
from campusdx.core.settings import Paths
from campusdx.exchange.publisher import open_ledger
from campusdx.pipeline import backup, history
from tests.warehouse.conftest import campusdx, copy_home, dbt, gate
from tests.warehouse.test_exchange_cycle import DATASETS, assert_platform_equals_feeds, publish_all

PEERS = ("sources", "gateway", "province")
"""The other machines: the campus systems, the province's gateway and platform."""


def _receipts(home) -> dict[str, dict]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in (home / "gateway" / "receipts").glob("*.json")
    }


def test_restore_drill_reuses_skips_loses_and_doubles_nothing(
    warehouse, advanced_warehouse, tmp_path, monkeypatch
):
    home = copy_home(warehouse, tmp_path / "home").home
    key = backup.new_key(tmp_path / "backup.key")
    repository = tmp_path / "backups"

    first = publish_all(home, monkeypatch)  # cycle 1
    assert {c: s["receipt"]["status"] for c, s in first.items()} == dict.fromkeys(DATASETS, "ACCEPTED")
    taken = backup.backup(Paths(home), repository, keys=True, key_file=key)
    assert taken.snapshot == snapshots.current_id(Paths(home))

    advanced, _ = advanced_warehouse  # cycle 2: 30 days on, sent after the backup
    for folder in ("sources", "landing"):
        shutil.rmtree(home / folder)
        shutil.copytree(advanced.home / folder, home / folder)
    shutil.copytree(advanced.home / "quality", home / "quality", dirs_exist_ok=True)
    shutil.copy(advanced.path, home / "warehouse.duckdb")
    snapshots.publish(Paths(home), "cycle-2")
    second = publish_all(home, monkeypatch)
    after_backup = {c: s["package_id"] for c, s in second.items() if s["action"] == "sent"}
    assert {"XSJBXX", "XJYD", "GDZC"} <= set(after_backup), second

    peers = tmp_path / "peers"  # the disk is lost; the other machines are not
    peers.mkdir()
    for folder in PEERS:
        shutil.move(home / folder, peers / folder)
    shutil.rmtree(home)
    restored = backup.restore(repository, home, key_file=key)
    assert restored["backup_id"] == taken.backup_id
    for folder in PEERS:
        shutil.move(peers / folder, home / folder)

    campusdx(home, "advance", "--days", "1")  # cycle 3
    campusdx(home, "extract")
    dbt(home, "build")
    reconciled = json.loads(campusdx(home, "reconcile", "--json").stdout)
    assert reconciled and all(r["ok"] for r in reconciled), [r for r in reconciled if not r["ok"]]
    gate(home)
    third = publish_all(home, monkeypatch)

    receipts = _receipts(home)
    rules = {e.get("rule") for r in receipts.values() for e in r.get("errors") or []}
    assert "PX-E007" not in rules, "a sequence was reused or skipped"
    assert {r["status"] for r in receipts.values()} <= {"ACCEPTED", "PARTIAL"}, receipts
    assert_platform_equals_feeds(home)  # nothing lost, nothing doubled, on the province's side
    with open_ledger(Paths(home), load_profile()) as ledger:
        for code in DATASETS:
            delivered = [e for e in ledger.packages(code) if e.status in ledger.delivered]
            assert [e.sequence for e in delivered] == list(range(1, len(delivered) + 1)), code
            assert {e.package_id for e in delivered} == {k for k in receipts if f"-{code}-" in k}, code
            adopted = [e.package_id for e in delivered if e.adopted_at]
            assert adopted == ([after_backup[code]] if code in after_backup else []), code
            assert all(e.files for e in delivered), "the adopted packages' rows are on record"
    # the state the adoption proved is the base of the next DELTA: no FULL was needed
    assert {s["mode"] for s in third.values() if s["action"] == "sent"} == {"DELTA"}, third


@pytest.fixture(scope="module")
def one_backup(warehouse, tmp_path_factory):
    """A backup of the built demo home (no publish yet) and its key: (repository, key, home)."""
    base = tmp_path_factory.mktemp("one-backup")
    home = copy_home(warehouse, base / "home").home
    key = backup.new_key(base / "backup.key")
    repository = base / "backups"
    snapshots.pin(Paths(home), snapshots.current_id(Paths(home)), "kept for the annual report")
    backup.backup(Paths(home), repository, key_file=key)
    return repository, key, home


def _copy(repository, tmp_path):
    target = tmp_path / "backups"
    shutil.copytree(repository, target)
    return target


def _objects(repository):
    return sorted(p for p in (repository / "objects").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("victim", ["largest object", "manifest"])
def test_a_backup_with_a_flipped_byte_is_refused_before_anything_is_written(one_backup, victim, tmp_path):
    repository, key, _ = one_backup
    copy = _copy(repository, tmp_path)
    if victim == "manifest":
        target, names = next((copy / "backups").iterdir()), r"backup \d{8}T\d{6}Z's manifest"
    else:
        target, names = (
            max(_objects(copy), key=lambda p: p.stat().st_size),
            r"(landing|history|quality|exchange|snapshots)/[\w./-]+",
        )
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    home = tmp_path / "restored"
    with pytest.raises(backup.BackupError, match=names + r": (altered|truncated or malformed)"):
        backup.restore(copy, home, key_file=key)
    assert not home.exists() and not list(tmp_path.glob(".restored.restoring-*"))


def test_a_backup_missing_a_file_is_refused_naming_it(one_backup, tmp_path):
    repository, key, _ = one_backup
    copy = _copy(repository, tmp_path)
    manifest = backup.verify(copy, key_file=key)  # whole before
    batch = next(f for f in manifest["files"] if f["path"].endswith(".parquet") and "landing/" in f["path"])
    (copy / "objects" / batch["object"]).unlink()
    target = tmp_path / "restored"
    target.mkdir()  # an empty home: stays empty
    with pytest.raises(backup.BackupError, match=re.escape(batch["path"]) + r": missing from the backup"):
        backup.restore(copy, target, key_file=key)
    assert list(target.iterdir()) == []


def test_a_backup_under_another_key_is_refused(one_backup, tmp_path):
    repository, _, _ = one_backup
    other = backup.new_key(tmp_path / "other.key")
    target = tmp_path / "restored"
    with pytest.raises(backup.BackupError, match=r"the backup key does not open this repository"):
        backup.restore(repository, target, key_file=other)
    assert not target.exists()
    with pytest.raises(backup.BackupError, match=r"is not empty"):
        backup.restore(repository, repository, key_file=other)
    other.chmod(0o644)
    with pytest.raises(backup.BackupError, match=r"may be read by others"):
        backup.restore(repository, target, key_file=other)
    with pytest.raises(backup.BackupError, match=r"exists already"):
        backup.new_key(other)


def test_keys_only_when_asked_and_never_in_clear(one_backup, tmp_path):
    repository, key, home = one_backup
    secrets = sorted(p for p in (home / "secrets").iterdir() if p.is_file())
    assert secrets, "the demo home has keys"
    with_keys = tmp_path / "with-keys"
    backup.backup(Paths(home), with_keys, keys=True, key_file=key)
    for repo, asked in ((repository, False), (with_keys, True)):
        listed = backup.verify(repo, key_file=key)
        assert any(f["path"].startswith("secrets/") for f in listed["files"]) is asked
        assert not any(
            f["path"].endswith(".key") and not f["path"].startswith("secrets/") for f in listed["files"]
        )
        stored = b"".join(p.read_bytes() for p in repo.rglob("*") if p.is_file())
        for secret in secrets:
            value = secret.read_bytes().strip()
            assert len(value) >= 16 and value not in stored, secret.name
            with contextlib.suppress(ValueError):  # a hex key: its bytes are not there either
                assert bytes.fromhex(value.decode()) not in stored, secret.name
    restored = backup.restore(with_keys, tmp_path / "restored", key_file=key)
    assert restored["keys"] is True
    for secret in secrets:
        again = tmp_path / "restored" / "secrets" / secret.name
        assert again.read_bytes() == secret.read_bytes()
        assert again.stat().st_mode & 0o077 == 0, "a restored key is readable by its owner only"


def test_a_restore_brings_back_the_history_and_the_pinned_snapshots(one_backup, tmp_path):
    """The SCD2 history goes into the new build (the next warehouse run rebuilds the rest from the
    landing zone); a pinned snapshot comes back whole; no snapshot is current until that run."""
    repository, key, home = one_backup
    (pinned,) = [s for s in snapshots.listed(Paths(home)) if s.pinned]
    target = Paths(tmp_path / "restored")
    backup.restore(repository, target.home, key_file=key)
    assert snapshots.current_id(target) is None
    assert [(s.id, s.pinned) for s in snapshots.listed(target)] == [(pinned.id, True)]
    with snapshots.connect(Paths(home), pinned.id) as before, duckdb.connect(str(target.warehouse)) as after:
        tables = before.execute(
            "select table_name from information_schema.tables where table_schema = 'snapshots' order by 1"
        ).fetchall()
        assert [t for (t,) in tables] == ["snp_hr__staff", "snp_student__students"]
        for (table,) in tables:
            query = f"select * from snapshots.{table} order by all"
            assert after.execute(query).fetchall() == before.execute(query).fetchall(), table
    # the history's parts stay beside the build: the next export rewrites only what changed
    assert history.read_index(target)["snapshot"] == pinned.id
    assert all(path.is_file() for _, path in history.files(target, history.read_index(target)))
