"""One ``dbt build`` per part of the project, in the calling process, its results per node.

The warehouse DAG has two dbt tasks, one per part (``transform``: seeds, snapshots, staging,
intermediate, marts and the PX candidates; ``feeds``: the quarantine and the gated PX feeds,
built after the quality gate). Each is a single ``dbt build`` with dbt's own threads and its own
skipping of what sits downstream of a failure, instead of an Airflow task per model: on this
machine a task costs seconds of start-up before dbt does anything (measured in
``benchmarks/scheduler_bench.py``). What a task per model showed is kept: every node's status
and time are logged as a table and returned (the task's XCom, in the Airflow UI); a failure
names every failed node and every node it left skipped. dbt's messages stay in
``<home>/dbt/results/<part>.json`` only: a database error can quote the value it could not
convert, and a value may be personal (never in a task log or the metadata database).

dbt writes its target and logs under the home (``<home>/dbt/``), never into the repository, so
two homes (two deployments, two tests) never share partial-parse state.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from campusdx.core.atomic import write_bytes
from campusdx.core.settings import DBT_PROJECT, Paths
from campusdx.core.settings import paths as default_paths
from campusdx.core.warehouse import writing

log = logging.getLogger(__name__)

PARTS: dict[str, dict[str, list[str]]] = {
    "transform": {"exclude": ["tag:gated"]},
    "feeds": {"select": ["tag:gated"]},
}
"""The selections of the warehouse run's dbt tasks; together they are the whole project."""

FAILED = {"error", "fail", "runtime error"}

_ONE_AT_A_TIME = threading.Lock()
"""dbt's invocation state is process-global (flags, adapters): one invocation per process."""


class DbtFailed(RuntimeError):
    """A dbt build ended with failed nodes; the message names them and what they left skipped."""


@dataclass(frozen=True)
class NodeResult:
    node: str  # e.g. model.campusdx.stg_hr__staff
    status: str  # dbt's: success, pass, warn, fail, error, skipped, no-op
    seconds: float
    message: str

    @property
    def name(self) -> str:
        """``<type> <name>``: e.g. ``model stg_hr__staff``, ``test not_null_quarantine_dataset``."""
        kind, _package, name, *_hash = self.node.split(".")
        return f"{kind} {name}"


def dbt_dirs(paths: Paths) -> tuple[str, str]:
    """(target path, log path) of dbt for a home."""
    return str(paths.home / "dbt" / "target"), str(paths.home / "dbt" / "logs")


def dbt_args(command: str, paths: Paths, *extra: str) -> list[str]:
    target, logs = dbt_dirs(paths)
    return [
        command,
        *("--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)),
        *("--target-path", target, "--log-path", logs),
        *extra,
    ]


@contextmanager
def _home_env(paths: Paths):
    """dbt's profile reads ``CAMPUSDX_HOME`` from the environment: point it at ``paths``."""
    before = os.environ.get("CAMPUSDX_HOME")
    os.environ["CAMPUSDX_HOME"] = str(paths.home)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CAMPUSDX_HOME", None)
        else:
            os.environ["CAMPUSDX_HOME"] = before


def release_warehouse() -> None:
    """Close dbt-duckdb's cached handle on the warehouse after an invocation.

    dbt-duckdb keeps its DuckDB connection in a class attribute that outlives the invocation.
    Where several tasks share one process (``airflow dags test``, a test), the next reader (the
    quality gate, read-only) could not open the file while that handle is open.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def _results(result) -> list[NodeResult]:
    nodes = []
    for r in getattr(result, "results", None) or []:
        status = str(getattr(r.status, "value", r.status))
        message = r.message if status in FAILED or status == "warn" else ""
        nodes.append(NodeResult(r.node.unique_id, status, round(r.execution_time or 0.0, 2), message or ""))
    return nodes


def table(nodes: list[NodeResult]) -> str:
    """The per-node results as a fixed-width table for the task log."""
    width = min(max((len(n.name) for n in nodes), default=4), 72)
    lines = [f"{'node':<{width}}  {'status':<8} {'seconds':>7}"]
    for n in nodes:
        lines.append(f"{n.name[:width]:<{width}}  {n.status:<8} {n.seconds:>7.2f}")
    return "\n".join(lines)


def build(part: str, *, paths: Paths | None = None, full_refresh: bool = False) -> dict:
    """``dbt build`` of one part of the project (:data:`PARTS`); returns the per-node results.

    Raises :class:`DbtFailed` naming the failed nodes (and those dbt skipped because of them),
    or when dbt itself could not run (a broken project, an unreadable profile)."""
    from dbt.cli.main import dbtRunner

    if part not in PARTS:
        raise KeyError(f"no dbt part {part!r}; the parts are {sorted(PARTS)}")
    paths = paths or default_paths()
    selection = PARTS[part]
    extra = [
        *(["--select", *selection["select"]] if "select" in selection else []),
        *(["--exclude", *selection["exclude"]] if "exclude" in selection else []),
        *(["--full-refresh"] if full_refresh else []),
    ]
    with _ONE_AT_A_TIME, writing(paths), _home_env(paths):
        try:
            outcome = dbtRunner().invoke(dbt_args("build", paths, *extra))
        finally:
            release_warehouse()
    nodes = _results(outcome.result)
    report = {
        "part": part,
        "success": bool(outcome.success),
        "nodes": [asdict(n) for n in nodes],
        "counts": dict(Counter(n.status for n in nodes)),
    }
    results = paths.home / "dbt" / "results"
    results.mkdir(parents=True, exist_ok=True)
    write_bytes(results / f"{part}.json", json.dumps(report, ensure_ascii=False, indent=1).encode())
    shown = {**report, "nodes": [{k: v for k, v in n.items() if k != "message"} for n in report["nodes"]]}
    log.info("dbt build %s: %s\n%s", part, report["counts"], table(nodes))
    if outcome.exception is not None:
        raise DbtFailed(f"dbt build {part} could not run: {outcome.exception}")
    failed = [n for n in nodes if n.status in FAILED]
    if failed or not outcome.success:
        skipped = [n.name for n in nodes if n.status == "skipped"]
        named = ", ".join(f"{n.name} ({n.status})" for n in failed)
        raise DbtFailed(
            f"dbt build {part}: {len(failed)} node(s) failed: {named or 'see the dbt log'}"
            + (f"; skipped because of them: {', '.join(skipped)}" if skipped else "")
            + f"; dbt's messages: {results / f'{part}.json'}, its log: {dbt_dirs(paths)[1]}"
        )
    return shown
