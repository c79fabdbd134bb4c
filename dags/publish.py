"""Publish DAG: a PX-1.0 package per dataset, then its receipt. Scheduled on the warehouse Asset.

Every dataset of a run is read from the warehouse snapshot the triggering Asset event names (a
run started by hand reads the current one); the ledger records it with each package.

A dataset waits for the receipts of the datasets it references (ZZJG before the rest), so the
province can resolve its references. A dataset the quality gate blocked fails its publish
task with the rule IDs; the datasets that do not depend on it go on.

Receipts are awaited by sensors in poke mode: each holds a worker slot while it waits, at most
``CAMPUSDX_RECEIPT_TIMEOUT_S`` (six can wait at once; with few slots, as on the Celery
profile's two workers of two, they can delay other tasks that long). Reschedule mode, which
gives the slot back between looks, is not used: Airflow 3.3 fails such a sensor when the
executor's report of one look arrives after the next look was queued (apache/airflow#71172,
open); at scale 1 on this machine it failed ``receipt_xjyd`` of a FULL cycle that way.

A REJECTED receipt fails the receipt task with the platform's rules, after the package is
rebuilt under the same sequence and sent again (its receipt is awaited by the next run); a
PARTIAL one sends the rejected rows to the quarantine; no receipt within
``CAMPUSDX_RECEIPT_TIMEOUT_S`` seconds (default 600) fails it too, and the package stays
pending in the ledger, to be re-delivered byte for byte by the next run.
"""

from airflow.sdk import PokeReturnValue, dag, task

from campusdx import pipeline
from campusdx.core import settings
from campusdx.pipeline.orchestration import DAG_DEFAULTS, snapshot_named, warehouse_asset

RECEIPT_TIMEOUT_S = settings.current().receipt_timeout_s


@dag(
    dag_id="publish",
    description="Build, sign and send PX-1.0 packages; collect the province's receipts",
    schedule=[warehouse_asset()],
    **DAG_DEFAULTS,
    tags=["campusdx", "exchange"],
)
def publish():
    receipts = {}
    for dataset, waits_for in pipeline.publish_order(pipeline.published_datasets()):

        @task(task_id=f"publish_{dataset.lower()}")
        def send(code: str = dataset, triggering_asset_events=None) -> dict:
            # the snapshot the warehouse run published (every dataset of a run reads the same)
            return pipeline.publish(code, snapshot=snapshot_named(triggering_asset_events))

        @task.sensor(
            task_id=f"receipt_{dataset.lower()}",
            poke_interval=2,
            timeout=RECEIPT_TIMEOUT_S,
            mode="poke",  # not "reschedule": see the module's docstring
        )
        def wait(code: str = dataset) -> PokeReturnValue:
            answer = pipeline.receipt(code)
            return PokeReturnValue(is_done=answer is not None, xcom_value=answer)

        sent, received = send(), wait()
        sent >> received
        for upstream in waits_for:
            receipts[upstream] >> sent
        receipts[dataset] = received


publish()
