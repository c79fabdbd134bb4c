"""The province's row rejections (PARTIAL receipts) as quarantine findings, under its rule IDs.

A PARTIAL receipt lists the rows the platform did not take, by file and line, with the PX rule
each broke. :func:`record_rejections` turns them into findings in the gate's format, one per
row, rule and field, in ``<home>/quality/platform/<DATASET>.parquet``. The dbt model
``quarantine`` reads them: a row stays held back while its candidate is still the version the
province rejected (same landing batch; the gate prunes the others on every run with
:func:`prune`); once fixed at the source it comes back in a new batch, leaves the quarantine and
goes to the province again with the next DELTA.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from campusdx.settings import Paths
from connectors.exchange.delta import check_rows, rejected_rows, write_table
from connectors.exchange.profile import Profile
from expectations.gate import FINDINGS_SCHEMA, SOURCE_SYSTEM

log = logging.getLogger(__name__)

KEY = ("record_key", "rule_id", "field", "batch_id")


def platform_findings_file(paths: Paths, dataset: str) -> Path:
    return paths.quality / "platform" / f"{dataset}.parquet"


def record_rejections(
    paths: Paths,
    profile: Profile,
    dataset: str,
    package_id: str,
    receipt: Mapping[str, Any],
    sent: Path,
    *,
    now: datetime | None = None,
) -> int:
    """Add the receipt's rejected rows to the dataset's platform findings; returns how many rows.

    ``sent`` is the package's rows (``connectors.exchange.delta``'s ``.sent.parquet``). The
    receipt's lines are mapped on the package as sent, in the outbox (a line that starts no row
    raises :class:`connectors.exchange.delta.ReceiptLineError`)."""
    from connectors.exchange.publisher import outbox_dir

    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    rejected = rejected_rows(profile, receipt, outbox_dir(paths) / package_id)
    if not rejected:
        return 0
    check_rows(sent, rejected)
    declared = profile.dataset(dataset)
    table = pq.read_table(sent, columns=list(declared.primary_key))
    keys = {
        index: "|".join(str(v) for v in row.values())
        for index, row in zip(
            rejected, table.take(pa.array(list(rejected), pa.int64())).to_pylist(), strict=True
        )
    }
    batches = _candidate_batches(paths, dataset, set(keys.values()))
    findings = {}
    for index, errors in rejected.items():
        for error in errors:
            finding = {
                "dataset": dataset,
                "record_key": keys[index],
                "rule_id": error.get("rule"),
                "severity": "error",
                "field": error.get("field"),
                "value": None if error.get("value") is None else str(error["value"]),
                "source_system": SOURCE_SYSTEM.get(dataset),
                "batch_id": batches.get(keys[index]),
                "run_id": package_id,
                "checked_at": now,
                "first_seen": now,
            }
            findings.setdefault(tuple(finding[k] for k in KEY), finding)
    target = platform_findings_file(paths, dataset)
    if target.exists():  # earlier rejections stay; the same one keeps when it was first seen
        for old in pq.read_table(target).to_pylist():
            key = tuple(old[k] for k in KEY)
            if key in findings:
                findings[key]["first_seen"] = old["first_seen"]
            else:
                findings[key] = old
    write_table(target, pa.Table.from_pylist(list(findings.values()), schema=FINDINGS_SCHEMA))
    log.warning(
        "%s: the province rejected %d row(s) of %s; they are in the quarantine under its rule IDs",
        dataset,
        len(keys),
        package_id,
    )
    return len(keys)


def _candidate_batches(paths: Paths, dataset: str, keys: set[str]) -> dict[str, str]:
    """The landing batch of each rejected row's current candidate (the version that was sent)."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        rows = conn.execute(
            f"select record_key, batch_id from intermediate.int_px__{dataset.lower()} "
            "where record_key in (select unnest(?))",
            [sorted(keys)],
        ).fetchall()
    return dict(rows)


def prune(paths: Paths, dataset: str, candidates: Mapping[str, str]) -> int:
    """Keep only the findings whose row is still the rejected version (``candidates``: record key
    to landing batch, as the gate reads them); returns how many left the quarantine."""
    target = platform_findings_file(paths, dataset)
    if not target.exists():
        return 0
    findings = pq.read_table(target).to_pylist()
    kept = [f for f in findings if candidates.get(f["record_key"]) == f["batch_id"]]
    if len(kept) < len(findings):
        write_table(target, pa.Table.from_pylist(kept, schema=FINDINGS_SCHEMA))
        log.info(
            "%s: %d province finding(s) left the quarantine (row changed at the source)",
            dataset,
            len(findings) - len(kept),
        )
    return len(findings) - len(kept)
