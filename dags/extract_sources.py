"""Extract DAGs: one per source system declared in schemas/sources/, a mapped task per table.

Each run lands the new rows of every enabled table, and every new file of the system's declared
exports, in the landing zone; then, once every table has landed, updates the system's landing
Asset (one event per run), which schedules the warehouse DAG: a warehouse run starts when every
system has landed a whole run since the last one, never on a part of a system's tables.
"""

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from campusdx import pipeline
from campusdx.core import settings
from campusdx.core.declarations import SystemDecl, load_systems
from campusdx.pipeline.orchestration import DAG_DEFAULTS, landing_asset
from campusdx.sources.errors import ExtractError, SourceUnreachable


def build(decl: SystemDecl):
    @dag(
        dag_id=f"extract_{decl.system}",
        description=f"Land {decl.title} tables in the landing zone",
        schedule=settings.current().extract_timetable,
        **DAG_DEFAULTS,
        tags=["campusdx", "extract", decl.system],
        params={
            "full_refresh": Param(
                [], type="array", description="tables to read whole instead of incrementally ('*' for all)"
            ),
            "key_snapshot": Param(
                [],
                type="array",
                description="tables whose key snapshot (delete detection) is taken now ('*' for all)",
            ),
        },
    )
    def extract_dag():
        @task(
            retries=2,
            retry_delay=timedelta(minutes=2),
            retry_exponential_backoff=True,
        )
        def extract(table: str) -> dict:
            params = get_current_context()["params"]
            refresh, snapshot = params["full_refresh"], params["key_snapshot"]
            try:
                return pipeline.extract(
                    decl.system,
                    table,
                    full_refresh=table in refresh or "*" in refresh,
                    key_snapshot=True if table in snapshot or "*" in snapshot else None,
                )
            except SourceUnreachable:
                raise  # transient: Airflow retries the task after the extractor's own retries
            except ExtractError as exc:  # schema drift, bad bytes, a missing table: retrying won't help
                raise AirflowFailException(str(exc)) from None

        @task(outlets=[landing_asset(decl.system)])
        def landed(batches) -> dict:
            """Every table has landed: the system's landing Asset is updated, once per run."""
            batches = list(batches)
            return {"tables": len(batches), "rows": sum(int(b.get("rows") or 0) for b in batches)}

        landed(extract.expand(table=pipeline.landed_names(decl.system)))

    return extract_dag()


for _decl in load_systems():
    globals()[f"extract_{_decl.system}"] = build(_decl)
