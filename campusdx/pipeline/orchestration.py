"""What the DAG files share: schedules, Assets and the Cosmos configuration of the dbt project.

Kept out of ``dags/`` so that folder holds only DAG files. Nothing here does I/O at import.
"""

from __future__ import annotations

import pendulum

from campusdx.core.clock import TIMEZONE
from campusdx.core.settings import DBT_PROJECT, home
from campusdx.pipeline import LANDING_ASSET, WAREHOUSE_ASSET

START = pendulum.datetime(2026, 1, 1, tz=TIMEZONE)
DBT_POOL = "campusdx_dbt"
"""One-slot pool: dbt is the only writer of the warehouse file, one invocation at a time."""

DEFAULT_ARGS = {"owner": "campusdx", "retries": 0}


def landing_asset(system: str):
    from airflow.sdk import Asset

    return Asset(LANDING_ASSET.format(system=system))


def warehouse_asset():
    from airflow.sdk import Asset

    return Asset(WAREHOUSE_ASSET)


def dbt_manifest_path():
    """dbt's manifest, written by `dbt parse` before the DAGs are parsed (Cosmos reads it)."""
    return DBT_PROJECT / "target" / "manifest.json"


def release_warehouse(project_dir: str, **_: object) -> None:
    """Close dbt-duckdb's cached handle on the warehouse after a dbt task (a Cosmos callback).

    dbt-duckdb keeps its DuckDB connection in a class attribute that outlives the dbt
    invocation. Where several tasks share one process (``airflow dags test``), the next reader
    (the quality gate, read-only) could not open the file while that handle is open.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def dbt_task_group(group_id: str, *, select: list[str] | None = None, exclude: list[str] | None = None):
    """A Cosmos task group running part of the dbt project: a task per model, seed and snapshot.

    Each task is a ``dbt build`` of its node (the node, then its tests), so a failing test stops
    everything downstream of it, as ``dbt build`` does; one task instead of a run task and a test
    task halves the Airflow tasks (each costs a second or more of start-up).
    """
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

    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=dbt_manifest_path(),
            install_dbt_deps=False,
            # Cosmos runs dbt from a temporary copy of the project: paths must be absolute.
            env_vars={"CAMPUSDX_HOME": str(home())},
        ),
        profile_config=ProfileConfig(
            profile_name="campusdx", target_name="local", profiles_yml_filepath=DBT_PROJECT / "profiles.yml"
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select or [],
            exclude=exclude or [],
            test_behavior=TestBehavior.BUILD,
            # A test with two parents (a relationships test, a rule read from a seed) runs in its
            # own task after both; attached to one parent it could run before the other exists.
            should_detach_multiple_parents_tests=True,
        ),
        operator_args={
            "append_env": True,
            "pool": DBT_POOL,
            "install_deps": False,
            "callback": release_warehouse,
        },
    )
