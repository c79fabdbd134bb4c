"""Backup DAG: an encrypted backup of what cannot be recomputed (campusdx.pipeline.backup), daily
by default (``CAMPUSDX_BACKUP_SCHEDULE``; ``none`` turns it off). It writes to
``CAMPUSDX_BACKUP_DIR`` under the key in ``CAMPUSDX_BACKUP_KEY_FILE``; without them the task
fails saying so. Keys are never included by the schedule (``campusdx backup --keys`` by hand).

It may run beside a cycle: it takes the ledger with SQLite's online backup API and holds the
publish locks and the gates' lock while it copies the exchange's and the quality files, so a
publish or a gate waits for it (at most ``CAMPUSDX_LOCK_WAIT_S``) rather than changing them
half-way through.
"""

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from campusdx.core import settings
from campusdx.pipeline.orchestration import DAG_DEFAULTS


@dag(
    dag_id="backup",
    description="Encrypted backup of the ledger, exchange state, landing zone, quality and SCD2 history",
    schedule=settings.current().backup_timetable,
    **DAG_DEFAULTS,
    tags=["campusdx", "backup"],
)
def backup():
    @task
    def write_backup() -> dict:
        from dataclasses import asdict

        from campusdx.pipeline.backup import BackupError
        from campusdx.pipeline.backup import backup as run_backup

        try:
            return asdict(run_backup())
        except BackupError as exc:
            raise AirflowFailException(str(exc)) from None  # configuration: a retry finds the same

    write_backup()


backup()
