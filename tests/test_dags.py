"""The DAG files import cleanly and build the expected task graph from the declarations."""

import subprocess
import sys

import pytest

from campusdx.core.settings import REPO_ROOT

DAGS = REPO_ROOT / "dags"


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS, bundle_path=DAGS)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_extract_dag_per_declared_system(dagbag):
    from campusdx.core.declarations import load_systems

    systems = [d.system for d in load_systems()]
    assert {f"extract_{s}" for s in systems} | {"warehouse", "publish", "backup"} == set(dagbag.dags)
    dag = dagbag.dags["extract_hr"]
    assert [t.task_id for t in dag.tasks] == ["extract", "landed"]
    # the Asset is updated once per run, after every table landed: never on a part of them
    assert dag.get_task("extract").outlets == []
    assert [o.uri for o in dag.get_task("landed").outlets] == ["campusdx://landing/hr"]
    assert dag.get_task("landed").upstream_task_ids == {"extract"}


def test_warehouse_runs_dbt_then_gate_then_feeds(dagbag):
    dag = dagbag.dags["warehouse"]
    ids = {t.task_id for t in dag.tasks}
    gate_ids = {f"gate_{d.lower()}" for d in ("ZZJG", "XSJBXX", "JZGJBXX", "XJYD", "CWKMYE", "GDZC", "ZY")}
    assert ids == {"dbt_transform", "reconcile_sources", *gate_ids, "dbt_feeds", "publish_snapshot"}
    assert {dag.get_task(i).pool for i in ("dbt_transform", "dbt_feeds")} == {"campusdx_dbt"}
    gates = [t for t in dag.tasks if t.task_id.startswith("gate_")]
    assert len(gates) == 7
    for gate in gates:
        assert all(u in ("reconcile_sources",) or u.startswith("gate_") for u in gate.upstream_task_ids)
        assert all(d in ("dbt_feeds",) or d.startswith("gate_") for d in gate.downstream_task_ids)
    assert dag.get_task("reconcile_sources").upstream_task_ids == {"dbt_transform"}
    # references resolve against what the referenced dataset's gate let through: judged first
    assert {"gate_zzjg", "gate_xsjbxx"} <= dag.get_task("gate_xjyd").upstream_task_ids
    assert {"gate_zzjg", "gate_jzgjbxx"} <= dag.get_task("gate_gdzc").upstream_task_ids
    schedule = dag.timetable.asset_condition
    assert type(schedule).__name__ == "AssetAll", "runs when every source system has landed"
    assert sorted(a.uri for a in schedule.objects) == [
        f"campusdx://landing/{s}" for s in ("asset", "finance", "hr", "student")
    ]
    assert [a.uri for a in dagbag.dags["publish"].timetable.asset_condition.objects] == [
        "campusdx://warehouse/"
    ]


def test_the_warehouse_run_publishes_a_snapshot_and_the_backup_runs_daily(dagbag):
    dag = dagbag.dags["warehouse"]
    snapshot = dag.get_task("publish_snapshot")
    assert snapshot.upstream_task_ids == {"dbt_feeds"}
    assert [o.uri for o in snapshot.outlets] == ["campusdx://warehouse/"], "the publish DAG runs next"
    backup = dagbag.dags["backup"]
    assert [t.task_id for t in backup.tasks] == ["write_backup"]
    assert backup.schedule == "@daily"


def test_publish_waits_for_referenced_datasets(dagbag):
    dag = dagbag.dags["publish"]
    assert dag.get_task("receipt_zzjg").upstream_task_ids == {"publish_zzjg"}
    assert dag.get_task("publish_xsjbxx").upstream_task_ids == {"receipt_zzjg"}
    assert dag.get_task("publish_jzgjbxx").upstream_task_ids == {"receipt_zzjg"}
    assert dag.get_task("publish_zzjg").upstream_task_ids == set()


def test_dag_files_do_no_io_beyond_declarations():
    """Importing a DAG file must not open the warehouse or the source databases."""
    code = (
        "import sys, duckdb, sqlalchemy, airflow.sdk, airflow.settings;"
        "sys.path.insert(0, sys.argv[1]);"
        "duckdb.connect = lambda *a, **k: (_ for _ in ()).throw(AssertionError('duckdb at import'));"
        "sqlalchemy.create_engine = lambda *a, **k: (_ for _ in ()).throw(AssertionError('db at import'));"
        "import extract_sources, warehouse, publish"
    )
    result = subprocess.run([sys.executable, "-c", code, str(DAGS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
