"""What makes a day's backup small: a DELTA's state is left out and made again after a restore,
and the SCD2 history is kept in parts of which a day rewrites only the changed ones."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from campusdx.core import snapshots
from campusdx.exchange import delta as states
from campusdx.pipeline import backup, history
from tests.test_delta import deliver, feed, org, platform, rows_of

PEERS = ("gateway", "province")
"""Other machines: the province's gateway and platform (not in a backup, not lost with the home)."""


def _lose_and_restore(paths, repository, key, tmp_path) -> dict:
    peers = tmp_path / "peers"
    peers.mkdir()
    there = [folder for folder in PEERS if (paths.home / folder).exists()]
    for folder in there:
        shutil.move(paths.home / folder, peers / folder)
    shutil.rmtree(paths.home)
    restored = backup.restore(repository, paths.home, key_file=key)
    for folder in there:
        shutil.move(peers / folder, paths.home / folder)
    return restored


def _in_backup(repository, key) -> dict[str, dict]:
    return {f["path"]: f for f in backup.verify(repository, key_file=key)["files"]}


def test_a_deltas_state_is_left_out_of_the_backup_and_made_again_after_the_restore(
    exchange_home, profile, tmp_path
):
    paths = exchange_home
    full, _ = deliver(paths, profile, [org("1000")])
    delta, status = deliver(paths, profile, [org("1000"), org("1001")])
    assert (full.mode, delta.mode, status) == ("FULL", "DELTA", "ACCEPTED")
    post = states.state_file(paths.exchange, "ZZJG", delta.batch_id, "post")
    key, repository = backup.new_key(tmp_path / "backup.key"), tmp_path / "backups"
    backup.backup(paths, repository, keys=True, key_file=key)

    taken = _in_backup(repository, key)
    state = f"exchange/state/ZZJG/{delta.batch_id}"
    assert f"{state}.post.parquet" not in taken, "a DELTA's state is derived: not in the backup"
    assert {f"{state}.sent.parquet", f"{state}.base"} <= set(taken)
    assert f"exchange/state/ZZJG/{full.batch_id}.post.parquet" in taken, "a FULL's state is its rows"

    _lose_and_restore(paths, repository, key, tmp_path)
    assert not post.exists()
    rows = [org("1001"), org("1002")]
    after, status = deliver(paths, profile, rows)
    assert (after.mode, after.rows, status) == ("DELTA", 2, "ACCEPTED"), "no FULL: the state was made again"
    assert platform(paths, profile) == rows_of(feed(profile, rows))


def _people(conn, count: int) -> None:
    conn.execute("create schema if not exists snapshots")
    conn.execute(
        "create table snapshots.snp_people as select md5(cast(range as varchar)) as dbt_scd_id,"
        " range as person_no, '姓名' || range as name, timestamp '2026-01-01' as dbt_valid_from,"
        " cast(null as timestamp) as dbt_valid_to from range(?)",
        [count],
    )


def _parts(paths) -> dict[str, dict]:
    return history.read_index(paths)["tables"]["snp_people"]["parts"]


def test_a_days_history_changes_rewrite_only_their_parts_and_the_restore_has_every_version(
    exchange_home, tmp_path
):
    paths = exchange_home
    with duckdb.connect(str(paths.warehouse)) as conn:
        _people(conn, 5000)
    snapshots.publish(paths, "day-1")
    first = history.export(paths)
    assert (first["parts"], first["written"]) == (history.PARTS, history.PARTS)
    key, repository = backup.new_key(tmp_path / "backup.key"), tmp_path / "backups"
    backup.backup(paths, repository, key_file=key)
    before_parts, before_backup = _parts(paths), _in_backup(repository, key)

    with duckdb.connect(str(paths.warehouse)) as conn:  # a day: one version closed and its successor,
        june = "timestamp '2026-06-01'"
        conn.execute(f"update snapshots.snp_people set dbt_valid_to = {june} where person_no = 5")
        conn.execute(f"insert into snapshots.snp_people values (md5('5 again'), 5, '姓名5', {june}, null)")
        # and a row changed outside dbt's rules (same version key, same end): its part changes too
        conn.execute("update snapshots.snp_people set name = '改名' where person_no = 7")
    snapshots.publish(paths, "day-2")
    day = history.export(paths)
    assert history.export(paths)["written"] == 0, "the same snapshot again: nothing to do"
    after_parts = _parts(paths)
    changed = {n for n, part in after_parts.items() if before_parts.get(n) != part}
    assert 1 <= day["written"] == len(changed) <= 4, (day, changed)
    with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        moved = conn.execute(
            f"select distinct cast(hash(dbt_scd_id) % {history.PARTS} as varchar) from snapshots.snp_people"
            " where person_no in (5, 7)"
        ).fetchall()
    assert {n for (n,) in moved} == changed
    left = {p.name for p in (history.root(paths) / "snp_people").iterdir()}
    assert left == {part["file"] for part in after_parts.values()}, "replaced parts are removed"

    took = backup.backup(paths, repository, key_file=key)
    after_backup = _in_backup(repository, key)
    history_entries = {p: e for p, e in after_backup.items() if p.startswith("history/snp_people/")}
    new = [p for p, e in history_entries.items() if before_backup.get(p, {}).get("object") != e["object"]]
    assert len(new) == len(changed), "the day's backup stores the changed parts only"
    assert took.reused >= history.PARTS - len(changed)

    query = "select * from snapshots.snp_people order by all"
    with duckdb.connect(str(paths.warehouse), read_only=True) as built:
        expected = built.execute(query).fetchall()
    _lose_and_restore(paths, repository, key, tmp_path)
    with duckdb.connect(str(paths.warehouse), read_only=True) as restored:
        assert restored.execute(query).fetchall() == expected
    assert len(expected) == 5001


def test_an_index_naming_a_file_outside_the_history_is_refused(exchange_home):
    paths = exchange_home
    history.root(paths).mkdir(parents=True)
    for table, name in (("snp_people", "../../secrets/x.key"), ("../x", "0.0123456789abcdef.parquet")):
        index = {
            "snapshot": "x",
            "tables": {table: {"parts": {"0": {"file": name, "digest": "", "rows": 0}}}},
        }
        (history.root(paths) / history.INDEX).write_text(json.dumps(index), encoding="utf-8")
        with pytest.raises(history.HistoryError, match="names a"):
            history.files(paths, history.read_index(paths))


def test_an_empty_history_table_comes_back_with_its_columns(exchange_home, tmp_path):
    paths = exchange_home
    with duckdb.connect(str(paths.warehouse)) as conn:
        _people(conn, 0)
    snapshots.publish(paths, "empty")
    assert history.export(paths)["parts"] == 1
    key, repository = backup.new_key(tmp_path / "backup.key"), tmp_path / "backups"
    backup.backup(paths, repository, key_file=key)
    _lose_and_restore(paths, repository, key, tmp_path)
    with duckdb.connect(str(paths.warehouse), read_only=True) as restored:
        described = restored.execute("describe snapshots.snp_people").fetchall()
        assert [c[0] for c in described] == [
            "dbt_scd_id",
            "person_no",
            "name",
            "dbt_valid_from",
            "dbt_valid_to",
        ]
        assert restored.execute("select count(*) from snapshots.snp_people").fetchone() == (0,)
