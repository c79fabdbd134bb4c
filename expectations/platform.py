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
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from campusdx.core import atomic, snapshots
from campusdx.core.declarations import source_system_of
from campusdx.core.findings import FINDINGS_SCHEMA
from campusdx.core.profile import Dataset, Profile
from campusdx.core.settings import Paths
from campusdx.core.warehouse import candidates
from campusdx.quality.personal import fingerprint_key, personal_fields, protect

log = logging.getLogger(__name__)

KEY = ("record_key", "rule_id", "field", "batch_id")


def platform_findings_file(paths: Paths, dataset: str) -> Path:
    return paths.quality / "platform" / f"{dataset}.parquet"


def record_rejections(
    paths: Paths,
    profile: Profile,
    dataset: str,
    package_id: str,
    rejected: Mapping[int, list[dict]],
    sent: Path,
    *,
    now: datetime | None = None,
    snapshot: str | None = None,
) -> int:
    """Add a receipt's rejected rows to the dataset's platform findings; returns how many rows.

    ``rejected`` maps the index of a row of ``sent`` (the package's rows as sent, checked by the
    pipeline against the receipt's lines) to the receipt's errors for it."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    if not rejected:
        return 0
    declared = profile.dataset(dataset)
    table = pq.read_table(sent, columns=list(declared.primary_key))
    keys = {
        index: "|".join(str(v) for v in row.values())
        for index, row in zip(
            rejected, table.take(pa.array(list(rejected), pa.int64())).to_pylist(), strict=True
        )
    }
    batches = _candidate_batches(paths, dataset, set(keys.values()), snapshot)
    kinds, secret = personal_fields(profile), fingerprint_key(paths)
    system = source_system_of(dataset)
    findings = {}
    for index, errors in rejected.items():
        for error in errors:
            # the province may echo a personal value: masked and fingerprinted, as the gate's
            value, value_fingerprint = protect(
                error.get("value"), error.get("field"), kinds, secret, known=declared.field_codes
            )
            finding = {
                "dataset": dataset,
                "record_key": keys[index],
                "rule_id": error.get("rule"),
                "severity": "error",
                "field": error.get("field"),
                "value": value,
                "source_system": system,
                "batch_id": batches.get(keys[index]),
                "run_id": package_id,
                "checked_at": now,
                "first_seen": now,
                "value_fingerprint": value_fingerprint,
            }
            findings.setdefault(tuple(finding[k] for k in KEY), finding)
    target = platform_findings_file(paths, dataset)
    if target.exists():  # earlier rejections stay; the same one keeps when it was first seen
        for old in pq.read_table(target).to_pylist():
            key = tuple(old[k] for k in KEY)
            if key in findings:
                findings[key]["first_seen"] = old["first_seen"]
            else:
                findings[key] = _protected(old, kinds, secret, declared.field_codes)
    atomic.write_parquet(target, pa.Table.from_pylist(list(findings.values()), schema=FINDINGS_SCHEMA))
    log.warning(
        "%s: the province rejected %d row(s) of %s; they are in the quarantine under its rule IDs",
        dataset,
        len(keys),
        package_id,
    )
    return len(keys)


def _protected(finding: dict, kinds: Mapping[str, str], secret: bytes, known: Collection[str]) -> dict:
    """A finding written before values were masked: masked and fingerprinted now (a finding
    that has its fingerprint already is as it should be)."""
    if finding.get("value_fingerprint") is not None:
        return finding
    value, value_fingerprint = protect(finding["value"], finding["field"], kinds, secret, known=known)
    return {**finding, "value": value, "value_fingerprint": value_fingerprint}


def _candidate_batches(paths: Paths, dataset: str, keys: set[str], snapshot: str | None) -> dict[str, str]:
    """The landing batch of each rejected row's candidate in the snapshot the package was built
    from (the version that was sent); the current snapshot when that one is pruned or unknown."""
    try:
        snapshots.path_of(paths, snapshot)
    except snapshots.SnapshotError:
        snapshot = None
    with snapshots.connect(paths, snapshot) as conn:
        rows = conn.execute(
            f"select record_key, batch_id from {candidates(dataset)} where record_key in (select unnest(?))",
            [sorted(keys)],
        ).fetchall()
    return dict(rows)


def prune(paths: Paths, dataset: Dataset, candidates: Mapping[str, str], kinds: Mapping[str, str]) -> int:
    """Keep only the findings whose row is still the rejected version (``candidates``: record key
    to landing batch, as the gate reads them); returns how many left the quarantine. A finding
    written before values were masked is masked now (``kinds``: the personal fields)."""
    target = platform_findings_file(paths, dataset.code)
    if not target.exists():
        return 0
    findings = pq.read_table(target).to_pylist()
    secret = fingerprint_key(paths)
    kept = [
        _protected(f, kinds, secret, dataset.field_codes)
        for f in findings
        if candidates.get(f["record_key"]) == f["batch_id"]
    ]
    if kept != findings:
        atomic.write_parquet(target, pa.Table.from_pylist(kept, schema=FINDINGS_SCHEMA))
    if len(kept) < len(findings):
        log.info(
            "%s: %d province finding(s) left the quarantine (row changed at the source)",
            dataset.code,
            len(findings) - len(kept),
        )
    return len(findings) - len(kept)
