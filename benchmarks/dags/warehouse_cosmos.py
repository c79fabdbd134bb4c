"""The warehouse DAG as Cosmos renders it, for benchmarks/scheduler_bench.py only: the option the
product's DAG (dags/warehouse.py, one ``dbt build`` per part) was measured against.

``CAMPUSDX_BENCH_COSMOS_MODE``: ``local`` (a ``dbt build`` task per model, seed and snapshot, in
the one-slot dbt pool: what the warehouse DAG was before) or ``watcher`` (Cosmos' watcher mode:
one producer task runs ``dbt build``, a sensor task per node reports it). The dbt manifest is
``$CAMPUSDX_BENCH_DBT_MANIFEST`` (written by ``dbt parse``). Gates, reconciliation and feeds as in
the product's DAG.
"""

import os
from pathlib import Path

from airflow.sdk import dag, task
from cosmos import (
    DbtTaskGroup,
    ExecutionConfig,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
    TestBehavior,
)

from campusdx import pipeline
from campusdx.core.declarations import load_systems
from campusdx.core.settings import DBT_PROJECT, home
from campusdx.pipeline.dbtbuild import release_warehouse
from campusdx.pipeline.orchestration import DAG_DEFAULTS, DBT_POOL, landing_asset, warehouse_asset

MODE = os.environ.get("CAMPUSDX_BENCH_COSMOS_MODE", "local")


def group(group_id: str, *, select=(), exclude=()):
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=Path(os.environ["CAMPUSDX_BENCH_DBT_MANIFEST"]),
            install_dbt_deps=False,
            env_vars={"CAMPUSDX_HOME": str(home())},
        ),
        profile_config=ProfileConfig(
            profile_name="campusdx", target_name="local", profiles_yml_filepath=DBT_PROJECT / "profiles.yml"
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER if MODE == "watcher" else ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=list(select),
            exclude=list(exclude),
            # watcher mode has no per-node build task: its sensors report the producer's tests
            test_behavior=TestBehavior.AFTER_EACH if MODE == "watcher" else TestBehavior.BUILD,
            # watcher: its sensors of detached tests report "node_not_run" and fail the run
            should_detach_multiple_parents_tests=MODE != "watcher",
        ),
        operator_args={
            "append_env": True,
            "install_deps": False,
            "callback": lambda *a, **k: release_warehouse(),
            **({"pool": DBT_POOL} if MODE == "local" else {}),
        },
    )


@dag(
    dag_id="warehouse",
    schedule=[landing_asset(d.system) for d in load_systems()],
    **DAG_DEFAULTS,
)
def warehouse():
    transform = group("transform", exclude=["tag:gated"])

    @task
    def reconcile_sources() -> list[dict]:
        return pipeline.reconcile_sources()

    @task
    def quality_gate(dataset: str) -> dict:
        return pipeline.gate(dataset)

    verdicts = {}
    for dataset, waits_for in pipeline.publish_order(pipeline.published_datasets()):
        verdicts[dataset] = quality_gate.override(task_id=f"gate_{dataset.lower()}")(dataset)
        for upstream in waits_for:
            verdicts[upstream] >> verdicts[dataset]
    feeds = group("feeds", select=["tag:gated"])

    @task(outlets=[warehouse_asset()])
    def publish_snapshot(run_id: str | None = None, outlet_events=None) -> dict:
        published = pipeline.publish_snapshot(run_id)
        outlet_events[warehouse_asset()].extra = {"snapshot": published["id"]}
        return published

    transform >> reconcile_sources() >> list(verdicts.values()) >> feeds >> publish_snapshot()


warehouse()
