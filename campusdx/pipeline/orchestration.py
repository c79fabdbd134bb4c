"""What the DAG files share: schedules, Assets and the dbt pool.

Kept out of ``dags/`` so that folder holds only DAG files. Nothing here does I/O at import.
"""

from __future__ import annotations

import pendulum

from campusdx.core.clock import TIMEZONE
from campusdx.pipeline import LANDING_ASSET, WAREHOUSE_ASSET

START = pendulum.datetime(2026, 1, 1, tz=TIMEZONE)
DBT_POOL = "campusdx_dbt"
"""One-slot pool: dbt is the only writer of the warehouse file, one invocation at a time."""

DEFAULT_ARGS = {"owner": "campusdx", "retries": 0}

DAG_DEFAULTS = {"start_date": START, "catchup": False, "max_active_runs": 1, "default_args": DEFAULT_ARGS}
"""What every campusdx DAG is: from the start date, no catch-up, one run at a time."""


def landing_asset(system: str):
    from airflow.sdk import Asset

    return Asset(LANDING_ASSET.format(system=system))


def warehouse_asset():
    from airflow.sdk import Asset

    return Asset(WAREHOUSE_ASSET)


def snapshot_named(triggering_asset_events) -> str | None:
    """The warehouse snapshot the warehouse Asset event that started this run names (the newest
    when several were merged into one run); None for a run started by hand (the publisher then
    reads the current snapshot)."""
    if not triggering_asset_events:
        return None
    named = [
        (event.timestamp, event.extra["snapshot"])
        for asset in triggering_asset_events
        for event in triggering_asset_events[asset]
        if isinstance(event.extra, dict) and isinstance(event.extra.get("snapshot"), str)
    ]
    return max(named)[1] if named else None
