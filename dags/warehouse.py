"""Warehouse DAG: dbt builds the warehouse, every source table is reconciled with staging, the
quality gate judges each PX dataset, dbt builds the feeds without the quarantined rows, and the
build is published as the current read-only snapshot (campusdx.core.snapshots).
Scheduled on every source system's landing Asset (each extract DAG run updates it once, after
all of the system's tables have landed).

dbt runs as one ``dbt build`` per part (campusdx.pipeline.dbtbuild), in the one-slot dbt pool:
its per-model results are in the task's log and XCom.
"""

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from campusdx import pipeline
from campusdx.core import settings
from campusdx.core.declarations import load_systems
from campusdx.pipeline.dbtbuild import DbtFailed
from campusdx.pipeline.orchestration import DAG_DEFAULTS, DBT_POOL, landing_asset, warehouse_asset


@dag(
    dag_id="warehouse",
    description="dbt build -> quality gate -> feeds",
    schedule=[landing_asset(d.system) for d in load_systems()],
    **{
        **DAG_DEFAULTS,
        # every task opens the build file: on one queue, so on one machine (the Celery profile;
        # the publish DAG reads published snapshots, which must be on storage its workers see)
        "default_args": {**DAG_DEFAULTS["default_args"], "queue": settings.current().warehouse_queue},
    },
    tags=["campusdx", "warehouse"],
)
def warehouse():
    @task(pool=DBT_POOL)
    def dbt_build(part: str) -> dict:
        """``dbt build`` of one part of the project; per-model results in the log and XCom."""
        try:
            return pipeline.dbt_build(part)
        except DbtFailed as exc:
            raise AirflowFailException(str(exc)) from None  # a failed model or test: fix, then rerun

    transform = dbt_build.override(task_id="dbt_transform")("transform")

    @task
    def reconcile_sources() -> list[dict]:
        """Per source table: rows read = landed = staging + superseded + deleted + held."""
        try:
            return pipeline.reconcile_sources()
        except pipeline.NotReconciled as exc:
            raise AirflowFailException(str(exc)) from None  # a rerun would find the same

    reconciled = reconcile_sources()

    @task
    def quality_gate(dataset: str, run_id: str | None = None) -> dict:
        # run_id: Airflow's, from the task context; it groups the run's verdicts in the summary
        return pipeline.gate(dataset, run_id=run_id)

    # A dataset is judged after the datasets it references: its references resolve against
    # their rows less what their gate quarantined (CDX-E016), as the province resolves them.
    verdicts = {}
    for dataset, waits_for in pipeline.publish_order(pipeline.published_datasets()):
        verdicts[dataset] = quality_gate.override(task_id=f"gate_{dataset.lower()}")(dataset)
        for upstream in waits_for:
            verdicts[upstream] >> verdicts[dataset]
    feeds = dbt_build.override(task_id="dbt_feeds")("feeds")

    @task(outlets=[warehouse_asset()])
    def publish_snapshot(run_id: str | None = None, outlet_events=None) -> dict:
        """Publishes the build as the current read-only snapshot (what analysts, the sharing
        service and the publisher read) and updates the warehouse Asset, naming the snapshot:
        the publish DAG runs next, on that snapshot."""
        published = pipeline.publish_snapshot(run_id)
        outlet_events[warehouse_asset()].extra = {"snapshot": published["id"]}
        return published

    transform >> reconciled >> list(verdicts.values()) >> feeds >> publish_snapshot()


warehouse()
