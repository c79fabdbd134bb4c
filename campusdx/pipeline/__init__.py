"""The steps the DAGs run, one function each, so DAG files stay thin and steps stay testable.

Each function takes plain arguments, does one stage's work through the stage's own package
(campusdx.sources, campusdx.quality, campusdx.exchange) and returns a small JSON-able dict for
XCom and the run summary.

Why the stages are imported inside the steps, not at the top: every DAG file imports this
module, and the scheduler parses DAG files over and over. Importing this module takes about
0.4 s; the quality gate alone takes 5.6 s (Great Expectations), the publisher and the
extractor about 0.8 s each (``python -c "import campusdx.quality.gate"``, December 2026). A
step loads its own stage when its task runs. Airflow likewise.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime

import duckdb

from campusdx.core import snapshots
from campusdx.core.declarations import load_systems
from campusdx.core.locks import Busy
from campusdx.core.profile import load_profile
from campusdx.core.settings import Paths, current, redact
from campusdx.core.settings import paths as default_paths
from campusdx.core.warehouse import candidates
from campusdx.pipeline import history, reconcile
from campusdx.pipeline.feedgen import feed_datasets
from campusdx.pipeline.reconcile import NotReconciled  # a source table's or a feed's rows do not add up

log = logging.getLogger(__name__)

LANDING_ASSET = "campusdx://landing/{system}"
WAREHOUSE_ASSET = "campusdx://warehouse"


# Airflow connection types -> SQLAlchemy drivers of this project's dependencies.
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


def _airflow_uri(conn_id: str | None) -> str | None:
    """The SQLAlchemy URL of an Airflow connection, or None when there is no such connection."""
    if not conn_id:
        return None
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception:  # Airflow raises several kinds for "not defined here"
        return None
    return connection_url(conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.schema)


def connection_url(conn_type, host, port, login, password, schema) -> str:
    """A SQLAlchemy URL from an Airflow connection's fields (MySQL/MariaDB as utf8mb4)."""
    import sqlalchemy as sa

    driver = DRIVERS.get((conn_type or "").lower())
    if driver is None:
        raise ValueError(f"connection type {conn_type!r} is not supported; use one of {sorted(DRIVERS)}")
    if driver == "sqlite":
        return f"sqlite:///{host or schema}"
    query = {"charset": "utf8mb4"} if driver.startswith("mysql") else {}
    return sa.URL.create(driver, login, password, host, port, schema, query=query).render_as_string(
        hide_password=False
    )


def source_url(system: str, paths: Paths | None = None) -> tuple[str, str]:
    """(url, where it came from), resolved once for every caller: the environment variable
    ``CAMPUSDX_SOURCE_<SYSTEM>_URL``, else the system's Airflow connection, else the embedded
    default (an operator's variable wins, as Airflow's own ``AIRFLOW_CONN_*`` do)."""
    paths = paths or default_paths()
    decl = next((d for d in load_systems() if d.system == system), None)
    if decl is None:
        raise KeyError(f"no source system {system!r} under schemas/sources/")
    from_environment = current().source_url(decl.system)
    if from_environment:
        return from_environment, decl.env_url_var()
    uri = _airflow_uri(decl.airflow_conn_id)
    if uri:
        return uri, f"Airflow connection {decl.airflow_conn_id}"
    return decl.url(paths.home), "embedded default"


def landed_names(system: str) -> list[str]:
    """What one extract DAG lands for a system: its declared tables, then its file exports."""
    from campusdx.sources.files import load_file_decls

    decl = next(d for d in load_systems() if d.system == system)
    return [t.name for t in decl.enabled_tables] + [f.name for f in load_file_decls(decl.path) if f.enabled]


def extract(
    system: str,
    table: str,
    *,
    full_refresh: bool = False,
    key_snapshot: bool | None = None,
    paths: Paths | None = None,
    lock_wait_s: float | None = None,
) -> dict:
    """Land one table's new rows (or a file export's new files); returns the batch's counts.
    ``key_snapshot`` True takes the delete-detecting key snapshot even when it is not due.
    ``lock_wait_s``: how long to wait while another extraction of the table runs (None: an
    Airflow task's bounded wait; 0: fail at once with :class:`campusdx.core.locks.Busy`)."""
    from campusdx.sources.files import extract_file, load_file_decls
    from campusdx.sources.landing import Landing
    from campusdx.sources.sql import extract_table

    paths = paths or default_paths()
    decl = next(d for d in load_systems() if d.system == system)
    files = {f.name: f for f in load_file_decls(decl.path)}
    if table in files:
        batches = extract_file(
            system, files[table], paths.home, Landing(paths.landing), lock_wait_s=lock_wait_s
        )
        return {
            "system": system,
            "table": table,
            "files": [b.source_file for b in batches],
            "rows": sum(b.rows for b in batches),
            "mode": "file",
        }
    url, origin = source_url(system, paths)
    log.info("extracting %s.%s from %s (%s)", system, table, redact(url), origin)
    result = extract_table(
        decl,
        decl.table(table),
        url,
        Landing(paths.landing),
        full_refresh=full_refresh,
        key_snapshot=key_snapshot,
        lock_wait_s=lock_wait_s,
    )
    return {
        "system": system,
        "table": table,
        "batch_id": result.batch_id,
        "rows": result.rows,
        "tombstones": result.tombstones,
        "added_columns": list(result.added_columns),
        "mode": result.mode,
        "seconds": round(result.seconds, 3),
    }


def dbt_build(part: str, *, paths: Paths | None = None) -> dict:
    """``dbt build`` of one part of the project (``transform`` or ``feeds``); per-node results.
    Raises :class:`campusdx.pipeline.dbtbuild.DbtFailed` naming the failed nodes."""
    from campusdx.pipeline import dbtbuild

    return dbtbuild.build(part, paths=paths)


def gate(dataset: str, *, paths: Paths | None = None, run_id: str | None = None) -> dict:
    """Judge one dataset's candidate rows; returns the verdict. ``run_id`` groups the verdicts
    of one warehouse run in the quality summary (the Airflow run's id)."""

    from campusdx.quality.gate import Gate

    verdict = Gate(paths).check(dataset, run_id=run_id)  # holds the warehouse for reading
    return asdict(verdict)


class Blocked(RuntimeError):
    """The quality gate blocked a dataset; the message lists the rules and counts."""


class Rejected(RuntimeError):
    """The province REJECTED a package; the message lists the platform's rules."""


class ReceiptUnmapped(RuntimeError):
    """A PARTIAL receipt names a line that starts no row of the package as sent; the receipt is
    not recorded and the package stays pending (the message names package, file, line, reason)."""


def read_feed(dataset: str, paths: Paths | None = None, *, snapshot: str | None = None):
    """The dataset's feed rows in a published snapshot (None: the current one) as an Arrow table
    of strings, columns in profile order.

    Rows are in primary-key order, then by every column: the same data always gives the same
    bytes, so an unchanged feed is recognised as unchanged (a composite key such as CWKMYE's
    would otherwise come out in whatever order DuckDB's threads finish).
    """

    with snapshots.connect(paths or default_paths(), snapshot) as conn:
        return _read_feed(conn, dataset)


def _read_feed(conn, dataset: str):
    declared = load_profile().dataset(dataset)
    columns = ", ".join(f'"{f}"' for f in declared.field_codes)
    order = ", ".join(f'"{f}"' for f in (*declared.primary_key, *declared.field_codes))
    return conn.execute(
        f"select {columns} from feeds.feed_px__{dataset.lower()} order by {order}"
    ).to_arrow_table()


def reconcile_sources(paths: Paths | None = None) -> list[dict]:
    """Every source table reconciled with staging (campusdx.pipeline.reconcile); raises
    :class:`NotReconciled` naming each table that does not add up."""

    results = reconcile.reconcile_sources(paths)
    log.info("sources reconciled:\n%s", reconcile.as_table(results))
    return reconcile.as_rows(results)


def reconcile_feed(dataset: str, paths: Paths | None = None, *, snapshot: str | None = None) -> dict:
    """Every candidate row of the dataset is in the feed or held back, never both, never twice,
    in a published snapshot (None: the current one).

    candidate rows = feed rows + candidate rows held back in the quarantine; raises
    :class:`NotReconciled` naming the dataset and the counts when that does not hold.
    """

    with snapshots.connect(paths or default_paths(), snapshot) as conn:
        return _reconcile_feed(conn, dataset)


def _reconcile_feed(conn, dataset: str) -> dict:
    code = dataset.lower()
    candidate_rows, feed, held = conn.execute(
        f"""
        select
            (select count(*) from {candidates(code)}),
            (select count(*) from feeds.feed_px__{code}),
            (select count(*) from {candidates(code)}
             where record_key in (select record_key from quality.quarantine where dataset = ?))
        """,
        [dataset],
    ).fetchone()
    counts = {"dataset": dataset, "candidate_rows": candidate_rows, "feed_rows": feed, "held_rows": held}
    if candidate_rows != feed + held:
        raise NotReconciled(
            f"{dataset}: {candidate_rows} candidate rows != {feed} in feeds.feed_px__{code} + {held} "
            f"held back in quality.quarantine ({candidate_rows - feed - held:+d}); rebuild the feeds "
            "after the gate"
        )
    return counts


def publish_snapshot(run_id: str | None = None, *, paths: Paths | None = None) -> dict:
    """Publish the build as the current warehouse snapshot (:mod:`campusdx.core.snapshots`):
    what every reader outside the pipeline, the publisher included, reads from now on."""
    paths = paths or default_paths()
    run_id = run_id or "manual__" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    published = snapshots.publish(paths, run_id)
    log.info("published warehouse snapshot %s (run %s, %d bytes)", published.id, run_id, published.bytes)
    try:  # what a backup copies of the history; a backup brings it up to date itself if this fails
        kept = history.export(paths)
    except (history.HistoryError, snapshots.SnapshotError, duckdb.Error, OSError, Busy) as exc:
        log.error("the SCD2 history of %s was not exported (the next backup does it): %s", published.id, exc)
        kept = {"error": str(exc)}
    return {**published.as_dict(), "history": kept}


def publish(
    dataset: str, *, paths: Paths | None = None, as_of: str | None = None, snapshot: str | None = None
) -> dict:
    """Send the dataset's feed in the published snapshot ``snapshot`` (None: the current one),
    FULL or DELTA as the send policy says, unless the gate blocked it or nothing changed
    (``campusdx.exchange.publisher.publish_feed``); the ledger records the snapshot."""

    from campusdx.exchange.publisher import publish_feed
    from campusdx.quality.gate import read_verdict

    paths = paths or default_paths()
    verdict = read_verdict(dataset, paths)
    if verdict is None:
        raise Blocked(f"{dataset}: the quality gate has not judged this dataset; run the warehouse DAG first")
    if verdict.blocked:
        rules = ", ".join(f"{rule} x{count}" for rule, count in sorted(verdict.failures.items()))
        raise Blocked(
            f"{dataset}: blocked by the quality gate ({'; '.join(verdict.blocking)}); failures: {rules}"
        )
    _level_with_gateway(dataset, paths)
    if snapshot is not None:
        try:
            snapshots.path_of(paths, snapshot)
        except snapshots.SnapshotError as exc:  # pruned: several warehouse runs since this one
            log.warning("%s: %s; publishing from the current snapshot", dataset, exc)
            snapshot = None
    snapshot = snapshot or snapshots.current_id(paths)
    with snapshots.connect(paths, snapshot) as conn:  # one view: the feed reconciled is the feed read
        _reconcile_feed(conn, dataset)
        table = _read_feed(conn, dataset)
    result = publish_feed(
        dataset, table, paths=paths, as_of=as_of or datetime.now().date().isoformat(), snapshot=snapshot
    )
    log.info("%s: %s %s", dataset, result.action, result.package_id or "")
    return asdict(result)


def _level_with_gateway(dataset: str, paths: Paths) -> None:
    """After a restore, the ledger first takes in what the gateway holds beyond it
    (:func:`campusdx.exchange.publisher.adopt_from_gateway`); a PARTIAL receipt recorded on the
    way sends its rejected rows to the quarantine, as the receipt step does."""
    from campusdx.exchange.publisher import adopt_from_gateway, open_ledger

    profile = load_profile()
    with open_ledger(paths, profile) as ledger:
        if not ledger.gateway_check_requested(dataset):
            return
    for result in adopt_from_gateway(dataset, paths=paths, lock_wait_s=None):
        if result.status == "PARTIAL" and result.receipt is not None:
            _quarantine_rejections(result, paths, profile)


def receipt(dataset: str, *, paths: Paths | None = None) -> dict | None:
    """One look for the receipts of the dataset's sent packages; None while still waiting.

    Raises :class:`Rejected`, naming the platform's rules, when the receipt is REJECTED, after
    building the dataset's package again under the same sequence and sending it (its receipt is
    awaited by the next run; after REJECTED packages in a row the send policy makes it a FULL).
    Raises :class:`ReceiptUnmapped` when a PARTIAL receipt names a line that starts no row of the
    package as sent: nothing is recorded and the package stays pending."""

    from campusdx.exchange.publisher import collect_receipts, open_ledger

    paths = paths or default_paths()
    profile = load_profile()

    try:  # a publish of the dataset is running: look again at the next poke
        results = collect_receipts(paths, timeout_s=0, poll_s=0, datasets=[dataset], lock_wait_s=5)
    except Busy as exc:
        log.info("%s: receipts not collected now: %s", dataset, exc)
        return None
    done = [r for r in results if r.action == "receipt"]
    rejected = [r for r in done if r.status == "REJECTED"]
    if rejected:
        errors = rejected[-1].receipt.get("errors") or []
        rules = "; ".join(f"{e.get('rule')}: {e.get('message')}" for e in errors[:10]) or "no rule given"
        try:  # the sequence is still free: build the package again and send it now
            again = publish(dataset, paths=paths)
            rebuilt = f"rebuilt and sent again as {again['package_id']} (batch {again['batch_id']})"
        except Exception as exc:  # the alert below goes out whatever failed here
            rebuilt = f"not rebuilt: {exc}"
        raise Rejected(
            f"{dataset}: package {rejected[-1].package_id} REJECTED by the province: {rules}; {rebuilt}"
        )
    for partial in (r for r in done if r.status == "PARTIAL"):
        _quarantine_rejections(partial, paths, profile)
    unmapped = [r for r in results if r.action == "unmapped_receipt"]
    if unmapped:
        raise ReceiptUnmapped(f"{dataset}: " + "; ".join(r.message for r in unmapped))
    if done:
        return asdict(done[-1])
    with open_ledger(paths, profile) as ledger:
        if not ledger.pending(dataset):
            last = ledger.last_delivered(dataset)
            return {
                "dataset": dataset,
                "action": "nothing_pending",
                "status": last.status if last else None,
                "package_id": last.package_id if last else None,
            }
    return None


def _quarantine_rejections(result, paths: Paths, profile) -> None:
    """A PARTIAL receipt's rejected rows go to the quarantine under the platform's rule IDs."""
    from campusdx.exchange.delta import check_rows, rejected_rows, state_file
    from campusdx.exchange.publisher import outbox_dir
    from campusdx.quality.platform import record_rejections

    sent = state_file(paths.exchange, result.dataset, result.batch_id, "sent")
    if not sent.exists():
        log.warning(
            "%s: rows of %s sent are not on record; rejections not quarantined",
            result.dataset,
            result.package_id,
        )
        return
    # the receipt's lines mapped on the package as sent, in the outbox (a line that starts no
    # row raises campusdx.exchange.delta.ReceiptLineError)
    rejected = rejected_rows(profile, result.receipt, outbox_dir(paths) / result.package_id)
    check_rows(sent, rejected)
    record_rejections(
        paths, profile, result.dataset, result.package_id, rejected, sent, snapshot=result.snapshot
    )


def publish_order(datasets: list[str]) -> list[tuple[str, list[str]]]:
    """Each dataset with the datasets it must wait for (those it references), from the profile."""

    return load_profile().publish_order(datasets)


def published_datasets() -> list[str]:
    """Datasets that have a feed model, in the profile's send order."""

    present = set(feed_datasets())
    return [c for c in load_profile().dataset_order if c in present]
