"""Published warehouse snapshots (campusdx.core.snapshots) on a small build database: what a
reader holding one sees, what a new connection sees, what a prune keeps, and ids from outside
never naming a path."""

from __future__ import annotations

import os
import stat

import duckdb
import pytest

from campusdx import cli
from campusdx.core import snapshots
from campusdx.core.settings import Paths
from campusdx.core.warehouse import writing

BUILD = "select dbt_invocation_id from campusdx_build.info"


def _build(paths: Paths, rows: int, build: str = "b") -> None:
    """What dbt leaves: a closed build database (here one table of ``rows`` rows) and the build's
    identity (dbt's on-run-end hook, dbt_project/macros/record_build.sql)."""
    with writing(paths, wait_s=5), duckdb.connect(str(paths.warehouse)) as conn:
        conn.execute("create or replace table ledger as select range as n from range(?)", [rows])
        conn.execute("create schema if not exists campusdx_build")
        conn.execute("create or replace table campusdx_build.info as select ? as dbt_invocation_id", [build])


@pytest.fixture
def home(tmp_path):
    paths = Paths(tmp_path / "home")
    paths.home.mkdir()
    return paths


def test_a_held_connection_keeps_its_snapshot_and_a_new_one_sees_the_next(home):
    _build(home, 3, "build-1")
    first = snapshots.publish(home, "run-1")
    held = duckdb.connect(str(home.home / "snapshots" / "current" / "warehouse.duckdb"), read_only=True)
    try:
        _build(home, 5, "build-2")  # the next build writes while the reader holds its snapshot
        second = snapshots.publish(home, "run-2")
        assert held.execute("select count(*) from ledger").fetchone() == (3,)
        assert held.execute(BUILD).fetchone() == ("build-1",)
        with snapshots.connect(home) as fresh:
            assert fresh.execute("select count(*) from ledger").fetchone() == (5,)
            assert fresh.execute(BUILD).fetchone() == ("build-2",)
    finally:
        held.close()
    assert (first.run_id, second.run_id) == ("run-1", "run-2")
    assert snapshots.current_id(home) == second.id
    database = snapshots.path_of(home, first.id)
    assert not database.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "read-only"


def test_prune_keeps_the_newest_the_current_and_the_pinned(home):
    made = []
    for rows in range(1, 6):
        _build(home, rows)
        made.append(snapshots.publish(home, f"run-{rows}", keep=10).id)
    snapshots.pin(home, made[0], "annual report")
    held = duckdb.connect(str(snapshots.path_of(home, made[1])), read_only=True)
    removed = snapshots.prune(home, keep=2)
    assert removed == made[1:3]
    assert [s.id for s in snapshots.listed(home)] == [made[0], made[3], made[4]]
    assert held.execute("select count(*) from ledger").fetchone() == (2,), "a pruned file held stays readable"
    held.close()
    snapshots.pin(home, made[0], pinned=False)
    assert snapshots.prune(home, keep=1) == [made[0], made[3]]
    assert [(s.id, s.current) for s in snapshots.listed(home)] == [(made[4], True)]
    with pytest.raises(snapshots.SnapshotError, match="at least 1"):
        snapshots.prune(home, keep=0)


def test_publishing_twice_from_one_build_gives_two_snapshots_and_no_leftovers(home):
    _build(home, 1)
    ids = {snapshots.publish(home, "a").id, snapshots.publish(home, "b").id}
    assert len(ids) == 2
    assert sorted(p.name for p in (home.home / "snapshots").iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("bad", ["../warehouse", "current", "20261205T013000123456Z/../x", "", "x" * 300])
def test_an_id_from_outside_never_names_a_path(home, bad, capsys):
    _build(home, 1)
    snapshots.publish(home, "a")
    with pytest.raises(snapshots.SnapshotError, match="is not a snapshot id"):
        snapshots.path_of(home, bad)
    os.environ["CAMPUSDX_HOME"] = str(home.home)
    try:
        assert cli.main(["snapshots", "pin", bad]) == 1
    finally:
        del os.environ["CAMPUSDX_HOME"]
    assert "is not a snapshot id" in capsys.readouterr().err


def test_nothing_published_yet_says_what_to_do(home):
    with pytest.raises(snapshots.SnapshotError, match="no warehouse snapshot is published"):
        snapshots.path_of(home)
    with pytest.raises(snapshots.SnapshotError, match="no warehouse build to publish"):
        snapshots.publish(home, "a")


def test_a_build_that_died_before_closing_is_checkpointed_before_the_copy(home):
    _build(home, 4)
    conn = duckdb.connect(str(home.warehouse))
    conn.execute("set checkpoint_threshold = '1GB'")
    conn.execute("insert into ledger select range + 100 from range(3)")
    wal = home.warehouse.with_name(home.warehouse.name + ".wal")
    assert wal.exists(), "the write is in the write-ahead log only"
    # the process dies here: the WAL is left; simulated by copying the pair while it is open
    dead = Paths(home.home.with_name("dead"))
    dead.home.mkdir()
    for name in (home.warehouse.name, wal.name):
        (dead.home / name).write_bytes((home.home / name).read_bytes())
    conn.close()
    published = snapshots.publish(dead, "after-crash")
    with snapshots.connect(dead, published.id) as reader:
        assert reader.execute("select count(*) from ledger").fetchone() == (7,)


def test_a_copy_of_the_home_that_followed_the_link_still_names_its_current_snapshot(home, tmp_path):
    import shutil

    _build(home, 2)
    published = snapshots.publish(home, "a")
    copy = Paths(tmp_path / "copy")
    shutil.copytree(home.home, copy.home)  # symlinks followed: current is a directory now
    assert not (copy.home / "snapshots" / "current").is_symlink()
    assert snapshots.current_id(copy) == published.id
    with snapshots.connect(copy) as conn:
        assert conn.execute("select count(*) from ledger").fetchone() == (2,)
    _build(copy, 3)
    again = snapshots.publish(copy, "b")
    assert (copy.home / "snapshots" / "current").is_symlink() and snapshots.current_id(copy) == again.id
