"""The quality gate on the demo campus: the quarantine is the simulator's ground truth, no feed
carries a held row, and every source table and feed reconciles, before and after 30 days."""

from __future__ import annotations

import shutil
import sqlite3

import duckdb
import pyarrow.parquet as pq
import pytest

from campusdx.core.profile import load_profile
from campusdx.core.settings import Paths
from campusdx.pipeline import NotReconciled, published_datasets, reconcile_feed
from campusdx.pipeline.reconcile import reconcile_sources

pytestmark = pytest.mark.slow  # every test here reads the session's warehouse

# Where each source table's rows go: (system, table) -> the PX dataset or, for a rule applied at
# the source, the source table itself.
DATASET_OF = {
    ("hr", "hr_staff"): "JZGJBXX",
    ("student", "xg_xsxx"): "XSJBXX",
    ("asset", "zc_kp"): "GDZC",
    ("asset", "zc_pd"): "asset.zc_pd",
}


def _owed(built) -> set[tuple[str, str, str]]:
    """(dataset, record key, rule) the gate owes the ground truth: every injected fault under its
    rule, and every row naming a person held back elsewhere (CDX-E016: the province would not
    know that person)."""
    dirt = [d for d in built.dirt["dirt"] if d["expect"].startswith("CDX-")]
    owed = {(DATASET_OF[d["system"], d["table"]], d["key"], d["expect"]) for d in dirt}
    held = {system: {d["key"] for d in dirt if d["system"] == system} for system in ("hr", "student")}
    assert held["hr"] and held["student"], "the demo campus carries people faults"
    with sqlite3.connect(built.home / "sources" / "asset.sqlite") as conn:
        owed |= {
            ("GDZC", n, "CDX-E016")
            for n, staff in conn.execute("select zcbh, syr from zc_kp")
            if staff in held["hr"]
        }
    with sqlite3.connect(built.home / "sources" / "student.sqlite") as conn:
        owed |= {
            ("XJYD", n, "CDX-E016")
            for n, xh in conn.execute("select ydbh, xh from xg_xjyd")
            if xh in held["student"]
        }
    return owed


def test_the_quarantine_is_exactly_the_injected_dirt_each_under_its_rule(warehouse):
    """Precision and recall 100 % against dirt.json, every dataset and source rule at once."""
    owed = _owed(warehouse)
    kinds = {d["kind"] for d in warehouse.dirt["dirt"] if d["expect"].startswith("CDX-")}
    assert {"invalid_id_check_digit", "negative_value", "orphan_custodian", "duplicate_key"} <= kinds
    quarantined = set(warehouse.rows("select dataset, record_key, rule_id from quality.quarantine"))
    assert not owed - quarantined, f"missed (recall): {sorted(owed - quarantined)[:10]}"
    assert not quarantined - owed, f"flagged clean rows (precision): {sorted(quarantined - owed)[:10]}"
    # each row held at the source is named with its lines, batch, system and the times it was seen
    for value, system, batch, first, last in warehouse.rows(
        "select value, source_system, batch_id, first_seen, last_seen from quality.quarantine "
        "where dataset = 'asset.zc_pd'"
    ):
        assert value.startswith("lines ") and system == "asset" and batch and first <= last


def test_no_feed_carries_a_quarantined_row(warehouse):
    profile = load_profile()
    for code in published_datasets():
        key = " || '|' || ".join(f'"{f}"' for f in profile.dataset(code).primary_key)
        leaked = warehouse.rows(
            f"select {key} from feeds.feed_px__{code.lower()} "
            "where " + key + " in (select record_key from quality.quarantine where dataset = ?)",
            code,
        )
        assert leaked == [], f"{code}: quarantined rows in the feed: {leaked[:5]}"
    held = {code for (code,) in warehouse.rows("select distinct dataset from quality.quarantine")}
    assert {"JZGJBXX", "XSJBXX", "GDZC", "XJYD"} <= held


def test_inventory_keys_written_twice_reach_neither_staging_nor_the_marts(warehouse):
    twice = {d["key"] for d in warehouse.dirt["dirt"] if d["kind"] == "duplicate_key"}
    assert twice
    staged = {k for (k,) in warehouse.rows("select check_no from staging.stg_asset__inventory_checks")}
    assert not twice & staged


@pytest.mark.parametrize("moment", ["default size", "after advance --days 30"])
def test_every_source_table_and_feed_reconciles(moment, warehouse, request):
    built = warehouse if moment == "default size" else request.getfixturevalue("advanced_warehouse")[0]
    paths = Paths(built.home)
    tables = {r.table: r for r in reconcile_sources(paths)}  # raises NotReconciled otherwise
    assert len(tables) == 14 and all(r.ok for r in tables.values())
    for r in tables.values():
        assert r.rows_read == r.rows_landed and r.tombstones_read == r.tombstones_landed, r
        assert r.rows_landed == r.staging_rows + r.superseded_rows + r.deleted_rows + r.held_rows, r
        assert min(r.superseded_rows, r.deleted_rows, r.held_rows) >= 0, r
    assert tables["asset.zc_pd"].held_rows == 4, "two keys written twice"
    if moment != "default size":  # 30 days of changes: versions superseded, staff deleted
        assert tables["student.xg_xsxx"].superseded_rows > 0 and tables["hr.hr_staff"].deleted_rows > 0
    for code in published_datasets():
        counts = reconcile_feed(code, paths)
        assert counts["candidate_rows"] == counts["feed_rows"] + counts["held_rows"]


def test_a_staging_model_that_loses_a_row_is_named(warehouse, tmp_path):
    copy = Paths(tmp_path / "copy")
    copy.home.mkdir()
    shutil.copy(warehouse.path, copy.warehouse)
    shutil.copytree(warehouse.home / "landing", copy.landing)
    with duckdb.connect(str(copy.warehouse)) as conn:
        conn.execute("alter view staging.stg_hr__staff rename to stg_hr__staff_as_built")
        conn.execute(  # a staging model that loses one row
            "create view staging.stg_hr__staff as select * from staging.stg_hr__staff_as_built "
            "where staff_no <> (select min(staff_no) from staging.stg_hr__staff_as_built)"
        )
    with pytest.raises(
        NotReconciled, match=r"hr\.hr_staff: staging\.stg_hr__staff holds 299 rows, .* 300 .*\(-1\)"
    ):
        reconcile_sources(copy)
    # a landing file that lost a row no longer matches its manifest
    (batch,) = (copy.landing / "hr" / "hr_staff").glob("*.parquet")
    pq.write_table(pq.read_table(batch).slice(1), batch)
    with pytest.raises(
        NotReconciled, match=rf"hr\.hr_staff: batch {batch.stem}: manifest says 300 rows .* holds 299 and 0"
    ):
        reconcile_sources(copy)


def _seen(built, dataset: str) -> dict:
    """(record key, rule) -> (first seen, last seen) of a dataset's quarantined rows."""
    sql = "select record_key, rule_id, first_seen, last_seen from quality.quarantine where dataset = ?"
    return {(key, rule): (first, last) for key, rule, first, last in built.rows(sql, dataset)}


def test_a_row_fixed_at_the_source_leaves_the_quarantine_on_the_next_run(warehouse, tmp_path):
    """Fix one wrong 身份证号 in 人事; the next run sends the row and the other findings keep
    the time they were first seen."""
    from campusdx.core.idnumbers import check_character
    from tests.warehouse.conftest import Built, rebuild_system

    home = tmp_path / "home"
    shutil.copytree(warehouse.home, home, symlinks=True)  # dbt-target too: the rebuild's dbt parses partially
    built = Built(home)
    (fixed,) = [d for d in built.dirt["dirt"] if d["table"] == "hr_staff"][:1]
    before = _seen(built, "JZGJBXX")
    assert (fixed["key"], "CDX-E013") in before
    with sqlite3.connect(home / "sources" / "hr.sqlite") as conn:
        (number,) = conn.execute("select id_no from hr_staff where staff_no = ?", [fixed["key"]]).fetchone()
        conn.execute(
            "update hr_staff set id_no = ?, modified_at = '2026-11-30 09:00:00' where staff_no = ?",
            [number[:17] + check_character(number[:17]), fixed["key"]],
        )
    rebuild_system(home, "hr", "ZZJG", "JZGJBXX")  # the datasets whose candidates hr feeds
    after = _seen(built, "JZGJBXX")
    assert set(after) == set(before) - {(fixed["key"], "CDX-E013")}
    assert built.rows('select count(*) from feeds.feed_px__jzgjbxx where "GH" = ?', fixed["key"]) == [(1,)]
    for finding, (first, last) in after.items():
        assert first == before[finding][0] and last > before[finding][1], finding


def test_campusdx_reconcile_prints_every_table_and_exits_0(warehouse):
    import json

    from tests.warehouse.conftest import campusdx

    table = campusdx(warehouse.home, "reconcile").stdout
    assert "asset.zc_pd" in table and "NOT RECONCILED" not in table
    rows = json.loads(campusdx(warehouse.home, "reconcile", "--json").stdout)
    assert len(rows) == 14 and all(r["ok"] for r in rows)
    assert {r["table"]: r["held_rows"] for r in rows}["asset.zc_pd"] == 4
