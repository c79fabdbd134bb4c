"""Publish PX datasets: build, check, send, and collect the province's receipts.

The ledger decides what happens, so running a publish again is always safe:

- a package of the dataset still unanswered is re-delivered, byte for byte, from the outbox
  (``<home>/exchange/outbox/``) instead of building a new one;
- a FULL whose data equals the last delivered FULL is not sent at all ("unchanged");
- otherwise a package is built with the next sequence (last *delivered* + 1) and a fresh
  batch id, checked with :func:`verify_package`, uploaded and recorded as SENT.

Nothing counts as delivered before a receipt says ACCEPTED, PARTIAL or DUPLICATE; a REJECTED
package gives its sequence number back and is moved to ``outbox/retired/``.

One run at a time per dataset: publishing, re-sending and collecting receipts hold the
dataset's lock (``<home>/locks/publish-<DATASET>.lock``, :mod:`campusdx.core.locks`). A run that
finds it taken waits up to ``lock_wait_s`` (default :func:`campusdx.core.locks.task_wait_s`, what
an Airflow task does; an operator's command passes 0) and then fails with
"another publish of <DATASET> is running (pid …)".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from campusdx.core import locks, settings
from campusdx.core.clock import BEIJING
from campusdx.core.profile import Profile, load_profile
from campusdx.exchange import delta as states
from campusdx.exchange.gateway import Gateway, configured
from campusdx.exchange.ledger import UNANSWERED, Ledger, LedgerEntry
from campusdx.exchange.package import (
    Package,
    build_package,
    content_fingerprint,
    inspect_package,
    px_datetime,
    verify_package,
)
from campusdx.exchange.policy import Policy, choose_mode, load_policies
from campusdx.exchange.receipts import ReceiptProblem, validate_receipt
from campusdx.exchange.signing import load_key

log = logging.getLogger(__name__)

KEY_FILE_ENV = "CAMPUSDX_PX_KEY_FILE"
"""Environment variable naming the file with the province-issued key (hex)."""


class PublishError(RuntimeError):
    """A package cannot be sent; the message names the package and the PX rules it breaks."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish or receipt step did for one dataset.

    ``action``: ``sent`` (new package), ``resent`` (pending package delivered again),
    ``unchanged`` (nothing sent; ``package_id``/``sequence`` name the delivered package it
    matches), ``receipt`` (a receipt was recorded) or ``no_receipt`` (none before the timeout).
    """

    dataset: str
    action: str
    status: str | None
    package_id: str | None = None
    mode: str | None = None
    sequence: int | None = None
    batch_id: str | None = None
    rows: int | None = None
    receipt: dict[str, Any] | None = None
    message: str = ""
    snapshot: str | None = None
    """The warehouse snapshot the package was built from."""


def exchange_key(paths: settings.Paths) -> bytes:
    """The key the province issued: ``$CAMPUSDX_PX_KEY_FILE``, else ``<home>/secrets/px-hmac.key``.

    Never made up here: a missing key is a :class:`KeyFileError` naming the file (the demo's
    set-up writes one for the simulated province)."""
    return load_key(settings.current().px_key_file or paths.secrets / "px-hmac.key")


def outbox_dir(paths: settings.Paths) -> Path:
    """Where built packages wait until the province has answered them."""
    return paths.exchange / "outbox"


def publish_lock(paths: settings.Paths, dataset_code: str, *, wait_s: float | None = None):
    """Hold the dataset's publish lock (reentrant in one process); :class:`campusdx.core.locks.Busy`
    when another run keeps it longer than ``wait_s`` (None: :func:`campusdx.core.locks.task_wait_s`)."""
    return locks.hold(
        locks.lock_path(paths.home / "locks", "publish", dataset_code),
        f"publish of {dataset_code}",
        wait_s=locks.task_wait_s() if wait_s is None else wait_s,
    )


def open_ledger(paths: settings.Paths, profile: Profile) -> Ledger:
    """The publisher's ledger under ``<home>/exchange``."""
    return Ledger(paths.exchange / "ledger.sqlite", delivered=profile.delivered_statuses)


@dataclass(frozen=True)
class _Run:
    """What every step of one publish needs."""

    paths: settings.Paths
    profile: Profile
    gateway: Gateway
    ledger: Ledger
    key: bytes
    stamp: str
    snapshot: str | None = None

    @property
    def outbox(self) -> Path:
        return outbox_dir(self.paths)


def publish_dataset(
    dataset_code: str,
    table: pa.Table,
    *,
    paths: settings.Paths | None = None,
    gateway: Gateway | None = None,
    as_of: date | str,
    mode: str = "FULL",
    now: datetime | None = None,
    profile: Profile | None = None,
    lock_wait_s: float | None = None,
) -> PublishResult:
    """Send ``table`` as a PX package of ``dataset_code`` unless the ledger says otherwise.

    ``table`` is shaped as :func:`build_package` expects. ``now`` stamps ``generated_at`` and
    the ledger (default: the current Beijing time). ``lock_wait_s``: see :func:`publish_lock`.
    """
    paths = paths or settings.paths()
    profile = profile or load_profile()
    profile.dataset(dataset_code)
    gateway = gateway or configured(paths.gateway, profile.gateway)
    key = exchange_key(paths)
    stamp = px_datetime(now or datetime.now(BEIJING))
    with publish_lock(paths, dataset_code, wait_s=lock_wait_s), open_ledger(paths, profile) as ledger:
        run = _Run(paths, profile, gateway, ledger, key, stamp)
        pending = ledger.pending(dataset_code)
        if pending:
            return _redeliver(run, pending[0])
        fingerprint = content_fingerprint(table)
        unchanged = _unchanged(ledger, dataset_code, mode, table, fingerprint)
        if unchanged:
            return unchanged
        return _build_and_send(run, dataset_code, table, mode, as_of, fingerprint)


def publish_feed(
    dataset_code: str,
    feed: pa.Table,
    *,
    paths: settings.Paths | None = None,
    gateway: Gateway | None = None,
    as_of: date | str,
    now: datetime | None = None,
    profile: Profile | None = None,
    policy: Policy | None = None,
    lock_wait_s: float | None = None,
    snapshot: str | None = None,
) -> PublishResult:
    """Send the dataset's ``feed`` (its whole current set of rows) as the policy says.

    ``snapshot``: the published warehouse snapshot the feed was read from (the ledger records it).
    When a restore asked for it, the ledger is first brought level with what the gateway shows
    (:func:`adopt_from_gateway`).

    A pending package is re-delivered first. Otherwise :func:`choose_mode` picks FULL (first
    time, asked for, after REJECTED packages in a row, on a schedule) or DELTA: the changes from
    what the platform holds, per our records of delivered packages, to ``feed``, computed in
    DuckDB; an empty DELTA sends nothing. ``lock_wait_s``: see :func:`publish_lock`.
    """
    paths = paths or settings.paths()
    profile = profile or load_profile()
    dataset = profile.dataset(dataset_code)
    policy = policy or load_policies(datasets=set(profile.datasets))[dataset_code]
    gateway = gateway or configured(paths.gateway, profile.gateway)
    now = now or datetime.now(BEIJING)
    stamp = px_datetime(now)
    with publish_lock(paths, dataset_code, wait_s=lock_wait_s), open_ledger(paths, profile) as ledger:
        run = _Run(paths, profile, gateway, ledger, exchange_key(paths), stamp, snapshot)
        if ledger.gateway_check_requested(dataset_code):
            _adopt(run, dataset_code)
        pending = ledger.pending(dataset_code)
        if pending:
            return _redeliver(run, pending[0])
        state = states.delivered_state(
            paths.exchange, dataset_code, ledger.last_delivered(dataset_code), profile
        )
        last_full = ledger.last_delivered_full(dataset_code)
        requested = ledger.full_requested(dataset_code)
        decision = choose_mode(
            policy,
            has_state=state is not None,
            full_requested=requested,
            rejections_in_a_row=ledger.rejections_in_a_row(dataset_code),
            last_full_at=_beijing(last_full.built_at) if last_full else None,
            now=now,
        )
        log.info("%s: %s (%s)", dataset_code, decision.mode, decision.reason)
        if decision.mode == "FULL":
            fingerprint = content_fingerprint(feed)
            if requested is None:  # asked for: sent even when it equals the last FULL
                unchanged = _unchanged(ledger, dataset_code, "FULL", feed, fingerprint)
                if unchanged:
                    return unchanged
            table, post = feed, feed
        else:
            table = states.compute_delta(profile, dataset, feed, state)
            unchanged = _unchanged(ledger, dataset_code, "DELTA", table, "")
            if unchanged:
                return unchanged
            fingerprint = content_fingerprint(table)
            post = states.apply_delta(profile, dataset, state, table)
        result = _build_and_send(
            run,
            dataset_code,
            table,
            decision.mode,
            as_of,
            fingerprint,
            post=post,
            base=state if decision.mode == "DELTA" else None,
        )
        return dataclasses.replace(result, message=decision.reason)


def resend(
    package_id: str,
    *,
    paths: settings.Paths | None = None,
    gateway: Gateway | None = None,
    lock_wait_s: float | None = None,
) -> PublishResult:
    """Upload an unanswered package again, byte for byte, under its batch id (operator tool),
    holding its dataset's publish lock (``lock_wait_s``: see :func:`publish_lock`)."""
    paths = paths or settings.paths()
    profile = load_profile()
    gateway = gateway or configured(paths.gateway, profile.gateway)
    with open_ledger(paths, profile) as ledger:
        entries = [e for e in ledger.packages() if e.package_id == package_id]
        if not entries:
            raise PublishError(f"{package_id}: no such package in the ledger")
    with publish_lock(paths, entries[-1].dataset, wait_s=lock_wait_s), open_ledger(paths, profile) as ledger:
        entries = [e for e in ledger.packages() if e.package_id == package_id]
        entry = entries[-1]
        if entry.status not in UNANSWERED:
            raise PublishError(
                f"{package_id}: already answered {entry.status}; nothing to resend "
                f"(to send the data again: campusdx exchange full {entry.dataset})"
            )
        run = _Run(paths, profile, gateway, ledger, exchange_key(paths), px_datetime(datetime.now(BEIJING)))
        return _redeliver(run, entry)


def request_full(dataset_code: str, reason: str, *, paths: settings.Paths | None = None) -> None:
    """The next publish of ``dataset_code`` sends a FULL, whatever the send policy says."""
    paths = paths or settings.paths()
    profile = load_profile()
    profile.dataset(dataset_code)
    with open_ledger(paths, profile) as ledger:
        ledger.request_full(dataset_code, reason, px_datetime(datetime.now(BEIJING)))


def _beijing(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)


def _unchanged(
    ledger: Ledger, dataset_code: str, mode: str, table: pa.Table, fingerprint: str
) -> PublishResult | None:
    """A result when there is nothing to send: a FULL equal to the last delivered FULL, an empty DELTA."""
    if mode == "DELTA":
        if table.num_rows:
            return None
        log.info("%s: empty DELTA, nothing to publish", dataset_code)
        return PublishResult(dataset_code, "unchanged", None, message="empty DELTA: nothing to send")
    last = ledger.last_delivered(dataset_code)
    if last is None or last.mode != "FULL" or last.fingerprint != fingerprint:
        return None
    log.info("%s: data unchanged since %s, nothing to publish", dataset_code, last.package_id)
    return PublishResult(
        dataset_code,
        "unchanged",
        last.status,
        package_id=last.package_id,
        sequence=last.sequence,
        batch_id=last.batch_id,
        rows=last.rows,
        message=f"same data as delivered package {last.package_id} (sequence {last.sequence})",
    )


def _redeliver(run: _Run, entry: LedgerEntry) -> PublishResult:
    """Upload an unanswered package again, exactly as built (same batch id, same bytes)."""
    path = run.outbox / entry.package_id
    manifest = path / run.profile.manifest_file
    if not manifest.is_file() or hashlib.sha256(manifest.read_bytes()).hexdigest() != entry.manifest_sha256:
        raise PublishError(
            f"{entry.package_id}: the outbox copy of pending batch {entry.batch_id} is missing or changed; "
            "it must be re-sent byte-identical"
        )
    _refuse_if_problems(path, run.profile, run.key)
    run.gateway.upload(path)
    entry = run.ledger.record_sent(entry.batch_id, run.stamp)
    log.info("%s: re-delivered pending %s (attempt %d)", entry.dataset, entry.package_id, entry.attempts)
    return _result(entry, "resent", message=f"pending package re-delivered (attempt {entry.attempts})")


def _build_and_send(
    run: _Run,
    dataset_code: str,
    table: pa.Table,
    mode: str,
    as_of: date | str,
    fingerprint: str,
    *,
    post: pa.Table | None = None,
    base: Path | None = None,
) -> PublishResult:
    """Build the next package of the dataset, check it, send it and record each step.

    ``post``: what the platform holds once it takes the whole package; kept with the rows sent
    (:mod:`campusdx.exchange.delta`) so the next DELTA starts from it once delivered. ``base``:
    the state file a DELTA was computed from (its post is derived from it)."""
    profile = run.profile
    batch_id = str(uuid.uuid4())
    sequence = run.ledger.next_sequence(dataset_code)
    _retire(run.outbox / profile.package_id(profile.school_code, dataset_code, mode, sequence), run.outbox)
    package = build_package(
        profile,
        dataset_code,
        mode,
        table,
        school_code=profile.school_code,
        sequence=sequence,
        batch_id=batch_id,
        as_of=as_of,
        generated_at=run.stamp,
        key=run.key,
        key_id=profile.key_id,
        alg=profile.default_signature,
        encoding=profile.default_encoding,
        out_dir=run.outbox,
    )
    try:
        _refuse_if_problems(package.path, profile, run.key)
    except PublishError:
        _retire(package.path, run.outbox)
        raise
    if post is not None:  # on disk before the ledger knows the package
        states.keep(run.paths.exchange, dataset_code, batch_id, table, post, base)
    entry = run.ledger.record_built(package, fingerprint, run.stamp, snapshot=run.snapshot)
    run.gateway.upload(package.path)
    entry = run.ledger.record_sent(entry.batch_id, run.stamp)
    log.info("%s: sent %s (%d rows, %s)", dataset_code, entry.package_id, entry.rows, mode)
    return _result(entry, "sent")


def adopt_from_gateway(
    dataset_code: str,
    *,
    paths: settings.Paths | None = None,
    gateway: Gateway | None = None,
    lock_wait_s: float | None = 0,
) -> list[PublishResult]:
    """Bring the ledger level with what the gateway shows for ``dataset_code`` now (an operator's
    tool, and the publish step's first move after a restore; ``lock_wait_s``: see
    :func:`publish_lock`, default 0: fail at once). Returns one result per package adopted or
    answered on the way (``adopted``, or ``receipt`` with its receipt): a PARTIAL among them has
    rows for the quarantine (campusdx.pipeline does that)."""
    paths = paths or settings.paths()
    profile = load_profile()
    profile.dataset(dataset_code)
    gateway = gateway or configured(paths.gateway, profile.gateway)
    stamp = px_datetime(datetime.now(BEIJING))
    with publish_lock(paths, dataset_code, wait_s=lock_wait_s), open_ledger(paths, profile) as ledger:
        return _adopt(_Run(paths, profile, gateway, ledger, exchange_key(paths), stamp), dataset_code)


def _adopt(run: _Run, dataset_code: str) -> list[PublishResult]:
    """Adopt, in sequence order, every package of the dataset the gateway holds or has answered
    beyond what the ledger knows (sent after the backup the home was restored from), so that no
    sequence is used twice or skipped.

    A package still in the inbox, signed with our key and whole (the pre-send check), is adopted
    with its rows: copied to the outbox, recorded as SENT with its rows and the platform's state
    after it (computed as for a package we build), and its receipt then recorded as any other's:
    the next DELTA continues from it. A sequence answered as delivered whose package cannot be
    read or verified holds its number, and the next package is a FULL (what the platform holds
    is not proven). A REJECTED package gives its number back, as always. A package of ours
    still unanswered in the ledger has its receipt recorded when the gateway holds it.

    The ledger's request to compare is withdrawn only when a pass ends with nothing more on the
    gateway and nothing unanswered; otherwise the next publish looks again."""
    ledger = run.ledger
    done: list[PublishResult] = []
    known = {e.batch_id for e in ledger.packages(dataset_code)}
    settled = False
    while True:
        sequence = ledger.next_sequence(dataset_code)
        ours = [e for e in ledger.pending(dataset_code) if e.sequence == sequence]
        if ours:  # unanswered in our ledger: answered on the gateway meanwhile?
            receipt = _matching_receipt(run.gateway, ours[0], run.profile, {})
            if receipt is None:
                break
            done.append(_record_receipt(ledger, ours[0], receipt, run.paths))
            continue
        found = _on_gateway(run, dataset_code, sequence, known)
        if found is None:
            settled = True
            break
        entry, answered = _adopt_package(run, dataset_code, sequence, *found)
        known.add(entry.batch_id)
        how = "rows on record" if entry.files else "rows not on record: a FULL follows"
        done.append(answered or _result(entry, "adopted", f"adopted from the gateway ({how})"))
        if entry.status in UNANSWERED:
            break
    if settled:
        ledger.gateway_checked(dataset_code)
    if done:
        log.warning(
            "%s: brought level with the gateway: %s",
            dataset_code,
            "; ".join(f"{r.package_id} {r.status}" for r in done),
        )
    return done


def _on_gateway(
    run: _Run, dataset_code: str, sequence: int, known: set[str]
) -> tuple[str, str, dict[str, Any] | None, Path | None] | None:
    """The package of ``sequence`` the gateway shows and the ledger does not know: (mode, package
    id, its receipt when delivered, its fetched copy or None); None when there is none.

    A delivered receipt wins, whichever mode it is under (FULL or DELTA of one sequence); a copy
    in the inbox whose receipt REJECTED it gave its number back and is not taken."""
    profile = run.profile
    candidates = []
    for mode in ("FULL", "DELTA"):
        package_id = profile.package_id(profile.school_code, dataset_code, mode, sequence)
        receipt = _gateway_receipt(run, package_id)
        fetched = run.outbox / ".adopting" / package_id
        shutil.rmtree(fetched, ignore_errors=True)
        if not run.gateway.fetch(package_id, fetched):
            fetched = None
        batch = _batch_of(fetched) if fetched is not None else None
        if receipt is not None and receipt["batch_id"] in known:
            receipt = None  # ours already
        if fetched is not None and (
            batch is None
            or batch in known
            or (
                receipt is not None
                and receipt["batch_id"] == batch
                and receipt["status"] not in run.ledger.delivered
            )
        ):
            shutil.rmtree(fetched, ignore_errors=True)  # ours already, or REJECTED
            fetched = None
        if receipt is not None and receipt["status"] not in run.ledger.delivered:
            receipt = None  # it gave its number back
        candidates.append((mode, package_id, receipt, fetched))
    for wanted in (lambda c: c[2] is not None, lambda c: c[3] is not None):
        chosen = next((c for c in candidates if wanted(c)), None)
        if chosen is not None:
            for _, _, _, other in candidates:
                if other is not None and other is not chosen[3]:
                    shutil.rmtree(other, ignore_errors=True)
            return chosen
    return None


def _gateway_receipt(run: _Run, package_id: str) -> dict[str, Any] | None:
    """The gateway's receipt for ``package_id``, validated; None when absent or unusable (logged)."""
    try:
        return _validated_receipt(run.gateway, package_id, run.profile)
    except ReceiptProblem as exc:
        log.warning("%s: %s; not adopted", package_id, exc)
        return None


def _batch_of(package: Path) -> str | None:
    try:
        return str(json.loads((package / "manifest.json").read_bytes())["batch_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _adopt_package(
    run: _Run,
    dataset_code: str,
    sequence: int,
    mode: str,
    package_id: str,
    receipt: dict[str, Any] | None,
    fetched: Path | None,
) -> tuple[LedgerEntry, PublishResult | None]:
    """Record the package ``package_id`` (``mode``, ``sequence``) found on the gateway: with its
    rows when ``fetched`` is a whole package of ours, else only its number (see :func:`_adopt`).
    Returns its ledger entry and, when its receipt was recorded with it, that result."""
    profile, ledger = run.profile, run.ledger
    dataset = profile.dataset(dataset_code)
    proven = None
    if fetched is not None:
        insp = inspect_package(fetched, profile, lambda _key_id: run.key)
        manifest = insp.manifest
        fits = (
            not insp.problems
            and manifest is not None
            and manifest["dataset"] == dataset_code
            and profile.package_id(profile.school_code, dataset_code, manifest["mode"], manifest["sequence"])
            == package_id
            and (receipt is None or receipt["batch_id"] == manifest["batch_id"])
        )
        last = ledger.last_delivered(dataset_code)
        previous = states.delivered_state(run.paths.exchange, dataset_code, last, profile)
        if fits and (mode == "FULL" or previous is not None):
            proven = (insp, previous)
        else:
            problems = "; ".join(str(p) for p in insp.problems[:5]) or "another dataset, mode or batch"
            log.warning(
                "%s: the inbox copy is not a whole package of ours (%s): rows not adopted",
                package_id,
                problems,
            )
    if proven is None:
        if fetched is not None:
            shutil.rmtree(fetched, ignore_errors=True)
        if receipt is None:  # unanswered and unreadable: nothing proves it holds the number
            raise PublishError(
                f"{package_id}: on the gateway, unanswered, and not a whole package signed with our key; "
                "settle it with the province before publishing"
            )
        return ledger.record_unproven(package_id, dataset_code, mode, sequence, receipt, run.stamp), None
    insp, previous = proven
    manifest = insp.manifest
    header = profile.header(dataset_code, mode)
    records = [values for part in insp.parts for _, values in part.records]
    # PX-1.0: an empty value is no value; the feed's missing values are nulls, as read back here
    sent = pa.table({c: pa.array([v[i] or None for v in records], pa.string()) for i, c in enumerate(header)})
    post = sent if mode == "FULL" else states.apply_delta(profile, dataset, previous, sent)
    batch_id = manifest["batch_id"]
    states.keep(run.paths.exchange, dataset_code, batch_id, sent, post, None if mode == "FULL" else previous)
    _retire(run.outbox / package_id, run.outbox)
    os.rename(fetched, run.outbox / package_id)
    digest = hashlib.sha256(insp.manifest_bytes).hexdigest()
    package = Package(package_id, run.outbox / package_id, manifest, digest)
    entry = ledger.record_adopted(package, content_fingerprint(sent), run.stamp)
    if receipt is None:
        return entry, None
    answered = _record_receipt(ledger, entry, receipt, run.paths)
    return ledger.entry(entry.batch_id), answered


def _refuse_if_problems(path: Path, profile: Profile, key: bytes) -> None:
    problems = verify_package(path, profile, key)
    if problems:
        listed = "; ".join(str(p) for p in problems[:10])
        raise PublishError(
            f"{path.name}: not sent, the pre-send check found {len(problems)} problem(s): {listed}"
        )


def _retire(path: Path, outbox: Path) -> None:
    """Move a package that will never be (re)sent out of the way, to ``outbox/retired/``."""
    if not path.exists():
        return
    target = outbox / "retired" / f"{path.name}.{uuid.uuid4().hex[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    log.info("retired %s from the outbox to %s", path.name, target.name)


def _result(entry: LedgerEntry, action: str, message: str = "") -> PublishResult:
    return PublishResult(
        entry.dataset,
        action,
        entry.status,
        package_id=entry.package_id,
        mode=entry.mode,
        sequence=entry.sequence,
        batch_id=entry.batch_id,
        rows=entry.rows,
        receipt=entry.receipt,
        message=message,
        snapshot=entry.snapshot,
    )


def collect_receipts(
    paths: settings.Paths | None = None,
    gateway: Gateway | None = None,
    *,
    timeout_s: float = 60.0,
    poll_s: float = 1.0,
    datasets: Collection[str] | None = None,
    profile: Profile | None = None,
    lock_wait_s: float | None = None,
) -> list[PublishResult]:
    """Wait for the receipts of every SENT package (of ``datasets``) and record them in the ledger.

    Returns one result per package: ``receipt`` with the receipt's status, or ``no_receipt``
    when none came before ``timeout_s`` (reported, not raised: it stays pending), or
    ``unmapped_receipt`` when a PARTIAL receipt names a line that starts no row of the package
    as sent (not recorded, the package stays pending; the message says why).
    """
    paths = paths or settings.paths()
    profile = profile or load_profile()
    gateway = gateway or configured(paths.gateway, profile.gateway)
    results: list[PublishResult] = []
    with (
        _receipt_locks(paths, profile.datasets if datasets is None else datasets, lock_wait_s),
        open_ledger(paths, profile) as ledger,
    ):
        waiting = {
            e.batch_id: e for e in ledger.awaiting_receipt() if datasets is None or e.dataset in datasets
        }
        unusable: dict[str, str] = {}  # batch id -> why its receipt cannot be used
        deadline = time.monotonic() + timeout_s
        while waiting:
            for batch_id, entry in list(waiting.items()):
                receipt = _matching_receipt(gateway, entry, profile, unusable)
                if receipt is not None:
                    try:
                        results.append(_record_receipt(ledger, entry, receipt, paths))
                    except states.ReceiptLineError as exc:  # recorded as taken it would lose rows
                        log.error(
                            "%s: receipt not recorded, package stays pending: %s", entry.package_id, exc
                        )
                        results.append(_result(entry, "unmapped_receipt", f"package stays pending: {exc}"))
                    del waiting[batch_id]
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                break
            time.sleep(min(poll_s, remaining))
        for entry in waiting.values():
            if entry.batch_id in unusable:
                why = f"{unusable[entry.batch_id]}; the package stays pending"
                results.append(_result(entry, "unusable_receipt", message=why))
                continue
            log.warning("%s: no receipt after %g s; it stays pending", entry.package_id, timeout_s)
            results.append(_result(entry, "no_receipt", message=f"no receipt after {timeout_s:g} s"))
    return results


@contextmanager
def _receipt_locks(paths: settings.Paths, datasets: Collection[str], wait_s: float | None) -> Iterator[None]:
    """The publish locks of ``datasets``, taken in name order: a receipt is not recorded while
    a publish of its dataset decides what to send."""
    with ExitStack() as stack:
        for code in sorted(set(datasets)):
            stack.enter_context(publish_lock(paths, code, wait_s=wait_s))
        yield


def _matching_receipt(
    gateway: Gateway, entry: LedgerEntry, profile: Profile, unusable: dict[str, str]
) -> dict[str, Any] | None:
    """The receipt for this very batch (an older receipt under a reused package id is ignored),
    validated (:func:`validate_receipt`). A receipt that is not valid is not used: the reason,
    naming the receipt file, goes to the log and to ``unusable`` and the package stays pending."""
    try:
        receipt = _validated_receipt(gateway, entry.package_id, profile)
        if receipt is None:
            return None
    except ReceiptProblem as exc:
        if unusable.get(entry.batch_id) != str(exc):
            log.warning("%s: %s; the package stays pending", entry.package_id, exc)
        unusable[entry.batch_id] = str(exc)
        return None
    unusable.pop(entry.batch_id, None)
    return receipt if receipt["batch_id"] == entry.batch_id else None


def _validated_receipt(gateway: Gateway, package_id: str, profile: Profile) -> dict[str, Any] | None:
    """``receipts/{package_id}.json`` as the gateway holds it, validated; None when there is none;
    :class:`ReceiptProblem` naming the file when it is not a receipt."""
    raw = gateway.receipt(package_id)
    if raw is None:
        return None
    source = f"{profile.gateway.receipts}/{package_id}.json"
    return validate_receipt(raw, source, package_id=package_id, statuses=profile.receipt_statuses)


def _record_receipt(
    ledger: Ledger, entry: LedgerEntry, receipt: dict[str, Any], paths: settings.Paths
) -> PublishResult:
    if receipt.get("status") == "PARTIAL":
        _keep_held_state(ledger, entry, receipt, paths)
    entry = ledger.record_receipt(entry.batch_id, receipt, px_datetime(datetime.now(BEIJING)))
    keep = {e.batch_id for e in ledger.pending(entry.dataset)}
    last = ledger.last_delivered(entry.dataset)
    if last is not None:
        keep.add(last.batch_id)
    states.prune(paths.exchange, entry.dataset, keep)  # the next DELTA's base and what is unanswered
    rules = Counter(e.get("rule") for e in receipt.get("errors") or [])
    log.info(
        "%s: receipt %s, %s of %s rows accepted%s",
        entry.package_id,
        entry.status,
        receipt.get("rows_accepted"),
        receipt.get("rows_received"),
        f", findings by rule: {dict(rules)}" if rules else "",
    )
    if entry.status not in ledger.delivered:
        _retire(outbox_dir(paths) / entry.package_id, outbox_dir(paths))
    return _result(entry, "receipt")


def _keep_held_state(
    ledger: Ledger, entry: LedgerEntry, receipt: dict[str, Any], paths: settings.Paths
) -> None:
    """After a PARTIAL, what the platform holds is the package less its rejected rows: written
    before the ledger records the receipt (re-collecting the receipt writes it again).

    The receipt's lines are mapped to rows first, on the package as sent: a line that starts no
    row raises :class:`~campusdx.exchange.delta.ReceiptLineError` before anything is recorded."""
    profile = load_profile()
    rejected = states.rejected_rows(profile, receipt, outbox_dir(paths) / entry.package_id)
    sent = states.state_file(paths.exchange, entry.dataset, entry.batch_id, "sent")
    try:
        post = states.post_state(profile, paths.exchange, entry.dataset, entry.batch_id)
    except states.DeltaError as exc:
        log.warning("%s: %s", entry.package_id, exc)
        post = None
    if post is None or not sent.exists():
        return  # built before state files were kept: the next package is a FULL
    last = ledger.last_delivered(entry.dataset)
    previous = states.delivered_state(paths.exchange, entry.dataset, last, profile)
    held = states.held_after_partial(
        profile.dataset(entry.dataset),
        entry.mode,
        sent,
        post,
        previous,
        rejected,
    )
    states.write_table(states.state_file(paths.exchange, entry.dataset, entry.batch_id, "held"), held)
