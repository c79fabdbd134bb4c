"""What the province holds, and the DELTA from it to the feed, computed in DuckDB.

For every package the publisher builds it keeps, under ``<home>/exchange/state/<DATASET>/``:

- ``<batch_id>.sent.parquet``: the rows the package carries (to find a receipt's rejected
  rows by file and line);
- ``<batch_id>.post.parquet``: what the platform holds once it takes the whole package (FULL:
  the rows; DELTA: the previous state with the changes applied);
- ``<batch_id>.base`` (DELTA only): the name of the state file the DELTA was computed from.

A DELTA's post is derived: its base with the rows sent applied. It is kept as a cache, left out
of backups, and made again from the chain of bases when it is missing (after a restore), so a
dataset's state files are the rows sent since its last FULL (or held after a PARTIAL) and a
day's backup holds only the day's package. :func:`prune` keeps that chain.

A PARTIAL receipt adds ``<batch_id>.held.parquet``: the platform took the package except the
rejected rows (FULL: those rows are missing; DELTA: those keys keep their previous version).
Files are written before the ledger records the step they belong to, so the ledger never
points at a state that cannot be had (on disk, or a DELTA's made again from its chain). The
state of a dataset is that of its last delivered package (:func:`delivered_state`); with none
on record, or a chain that cannot be made, the next package is a FULL.

A receipt names a rejected row by file and line, and PX-1.0 counts file lines (lines end with
LF, the header is line 1), while a quoted value may hold CR or LF. :func:`rejected_rows` maps a
line to the record that starts on it by scanning the part exactly as sent (the package in the
outbox, in the encoding its manifest declares); a line that starts no record is a
:class:`ReceiptLineError`, never a guess.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from campusdx.core import atomic
from campusdx.core.profile import Dataset, Profile

log = logging.getLogger(__name__)

_STATE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}\.(post|held)\.parquet")


class DeltaError(RuntimeError):
    """A state file the ledger names is missing or does not fit the dataset."""


class ReceiptLineError(DeltaError):
    """A receipt names a row that cannot be found in the package as sent (a line out of range,
    the header, the middle of a multi-line record, a file not in the package...). The receipt
    must not be recorded: the package stays pending. The message names package, file and line."""


def state_dir(exchange: Path, dataset: str) -> Path:
    return exchange / "state" / dataset


def state_file(exchange: Path, dataset: str, batch_id: str, kind: str) -> Path:
    """``kind``: ``sent``, ``post`` or ``held``."""
    return state_dir(exchange, dataset) / f"{batch_id}.{kind}.parquet"


def write_table(path: Path, table: pa.Table) -> None:
    """Write ``table`` as Parquet atomically and durably (temporary file, fsync, rename)."""
    atomic.write_parquet(path, table)
    atomic.fsync_dir(path.parent.parent)


def delivered_state(exchange: Path, dataset: str, entry: Any | None, profile: Profile) -> Path | None:
    """The state file of the last delivered package ``entry`` (a ledger entry), or None when
    there is none on record (nothing delivered yet, a ledger older than the state files, or a
    DELTA whose chain of bases is not whole: the next package is a FULL)."""
    if entry is None:
        return None
    if entry.status == "PARTIAL":
        held = state_file(exchange, dataset, entry.batch_id, "held")
        if held.exists():
            return held
    try:
        return post_state(profile, exchange, dataset, entry.batch_id)
    except DeltaError as exc:
        log.warning("%s: the platform's state cannot be made again (%s): a FULL follows", dataset, exc)
        return None


def keep(
    exchange: Path, dataset: str, batch_id: str, sent: pa.Table, post: pa.Table, base: Path | None
) -> None:
    """Keep a package's state files: the rows it sent, the state a DELTA was computed from
    (``base``; None for a FULL) and what the platform holds once it takes the package."""
    write_table(state_file(exchange, dataset, batch_id, "sent"), sent)
    if base is not None:
        atomic.write_bytes(base_file(exchange, dataset, batch_id), (base.name + "\n").encode("ascii"))
    write_table(state_file(exchange, dataset, batch_id, "post"), post)


def base_file(exchange: Path, dataset: str, batch_id: str) -> Path:
    return state_dir(exchange, dataset) / f"{batch_id}.base"


def _base_of(exchange: Path, dataset: str, batch_id: str) -> Path | None:
    """The state file the DELTA ``batch_id`` was computed from (None: not a DELTA)."""
    recorded = base_file(exchange, dataset, batch_id)
    try:
        name = recorded.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeltaError(f"{recorded}: unreadable ({exc})") from None
    if not _STATE_NAME.fullmatch(name):
        raise DeltaError(f"{recorded}: names no state file ({name[:80]!r})")
    return state_dir(exchange, dataset) / name


def _links(exchange: Path, dataset: str, batch_id: str) -> tuple[Path | None, list[str]]:
    """Back from the package ``batch_id`` to the nearest state file on disk: (that file, the
    DELTAs after it, oldest first). (None, []) when ``batch_id`` has no state on record (no post
    and not a DELTA). :class:`DeltaError` when a link is missing, unreadable or loops."""
    chain: list[str] = []
    while True:
        post = state_file(exchange, dataset, batch_id, "post")
        if post.exists():
            return post, chain[::-1]
        base = _base_of(exchange, dataset, batch_id)
        if base is None:
            if chain:
                raise DeltaError(f"{post.name}: the base of DELTA {chain[-1]} is not on disk")
            return None, []
        if not state_file(exchange, dataset, batch_id, "sent").exists():
            raise DeltaError(f"{batch_id}.sent.parquet: the rows of DELTA {batch_id} are not on disk")
        if batch_id in chain:
            raise DeltaError(f"{base_file(exchange, dataset, batch_id).name}: the chain of bases loops")
        chain.append(batch_id)
        batch_id, kind = base.name.split(".")[:2]
        if kind == "held":
            if not base.exists():
                raise DeltaError(f"{base.name}: the base of DELTA {chain[-1]} is not on disk")
            return base, chain[::-1]


def post_state(profile: Profile, exchange: Path, dataset: str, batch_id: str) -> Path | None:
    """The post state of the package ``batch_id``; a DELTA's is made again from the nearest
    state on disk and the rows each DELTA since sent, when it is missing (:class:`DeltaError`
    when a link of that chain is missing). None: no state on record for it."""
    state, deltas = _links(exchange, dataset, batch_id)
    for delta in deltas:
        sent = pq.read_table(state_file(exchange, dataset, delta, "sent"))
        post = state_file(exchange, dataset, delta, "post")
        write_table(post, apply_delta(profile, profile.dataset(dataset), state, sent))
        log.info("%s: the state after %s made again from %s", dataset, delta, state.name)
        state = post
    return state


def _chain(exchange: Path, dataset: str, batch_id: str) -> set[str]:
    """The batch ids whose files make the state after ``batch_id``: it and its DELTAs' bases,
    back to a FULL or a PARTIAL's held rows. :class:`DeltaError` when a base cannot be read."""
    found = set()
    while batch_id not in found:
        found.add(batch_id)
        base = _base_of(exchange, dataset, batch_id)
        if base is None:
            break
        batch_id, kind = base.name.split(".")[:2]
        if kind == "held":  # the rows held after a PARTIAL: a whole state by themselves
            found.add(batch_id)
            break
    return found


def derived(path: Path) -> bool:
    """A post state that :func:`post_state` makes again from the files beside it: a DELTA's,
    whose whole chain of bases is on disk (a post that cannot be made again is no cache)."""
    name = path.name
    if not name.endswith(".post.parquet"):
        return False
    batch_id = name.split(".", 1)[0]
    exchange, dataset = path.parent.parent.parent, path.parent.name
    if not base_file(exchange, dataset, batch_id).exists():
        return False
    try:
        base = _base_of(exchange, dataset, batch_id)
        base_batch, kind = base.name.split(".")[:2]
        nearest, _ = _links(exchange, dataset, base_batch) if kind == "post" else (base, [])
    except DeltaError:
        return False
    sent = state_file(exchange, dataset, batch_id, "sent")
    return nearest is not None and nearest.exists() and sent.exists()


def prune(exchange: Path, dataset: str, keep: set[str]) -> int:
    """Remove the state files of the dataset's packages that neither are in ``keep`` nor make
    the state of one that is (a DELTA's base, back to its FULL or a PARTIAL's held rows)."""
    directory = state_dir(exchange, dataset)
    if not directory.is_dir():
        return 0
    needed = set()
    try:
        for batch_id in keep:
            needed |= _chain(exchange, dataset, batch_id)
    except DeltaError as exc:  # in doubt, nothing goes
        log.warning("%s: state files kept as they are: %s", dataset, exc)
        return 0
    removed = 0
    for path in directory.iterdir():
        batch_id = path.name.split(".", 1)[0]
        if path.suffix not in (".parquet", ".base") or batch_id in keep:
            continue
        # a link of a chain keeps its rows; its own post is made again if ever needed
        if batch_id not in needed or derived(path):
            path.unlink()
            removed += 1
    return removed


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _conn(**tables: pa.Table | Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    for name, table in tables.items():
        if isinstance(table, Path):
            conn.execute(f"create view {name} as select * from read_parquet('{table.as_posix()}')")
        else:
            conn.register(name, table)
    return conn


def _keys_match(left: str, right: str, dataset: Dataset) -> str:
    return " and ".join(f"{left}.{_q(k)} = {right}.{_q(k)}" for k in dataset.primary_key)


def compute_delta(profile: Profile, dataset: Dataset, feed: pa.Table, state: Path) -> pa.Table:
    """The DELTA rows from ``state`` (what the platform holds) to ``feed``: inserts, updates
    and deletes with the profile's op column, in primary-key order; empty when nothing changed.

    A delete carries its primary-key fields only (PX-1.0 §2.1)."""
    fields = dataset.field_codes
    op, ops = profile.op_column, profile.ops
    cols = ", ".join(f"f.{_q(c)}" for c in fields)
    differs = " or ".join(f"f.{_q(c)} is distinct from s.{_q(c)}" for c in fields)
    deleted = ", ".join(
        f"s.{_q(c)}" if c in dataset.primary_key else f"cast(null as varchar) as {_q(c)}" for c in fields
    )
    order = ", ".join(_q(k) for k in dataset.primary_key)
    on = _keys_match("f", "s", dataset)
    sql = f"""
        select * from (
            select {cols}, '{ops["insert"]}' as {_q(op)} from feed f anti join state s on {on}
            union all
            select {cols}, '{ops["update"]}' from feed f join state s on {on} where {differs}
            union all
            select {deleted}, '{ops["delete"]}' from state s anti join feed f on {on}
        ) order by {order}, {_q(op)}
    """
    with _conn(feed=_strings(feed, fields), state=state) as conn:
        return _strings(conn.execute(sql).to_arrow_table(), (*fields, op))


def apply_delta(profile: Profile, dataset: Dataset, state: Path, delta: pa.Table) -> pa.Table:
    """What the platform holds after taking the whole ``delta`` on top of ``state``."""
    fields = dataset.field_codes
    cols = ", ".join(_q(c) for c in fields)
    on = _keys_match("s", "d", dataset)
    sql = f"""
        select {cols} from (
            select {", ".join(f"s.{_q(c)}" for c in fields)} from state s anti join delta d on {on}
            union all
            select {cols} from delta where {_q(profile.op_column)} <> '{profile.ops["delete"]}'
        ) order by {", ".join(_q(k) for k in dataset.primary_key)}
    """
    with _conn(state=state, delta=delta) as conn:
        return _strings(conn.execute(sql).to_arrow_table(), fields)


def record_lines(text: str, *, quote: str = '"', line_ending: str = "\n") -> list[int]:
    """The file line (from 1) on which each record of CSV ``text`` starts, the header included.

    File lines are counted as PX-1.0 counts them: a line ends with ``line_ending`` (LF), inside a
    quoted value too; a CR, alone or before the LF, is no line break of its own. One pass that
    stops only at quotes and line endings (a doubled quote toggles twice, so it cancels out).
    The last entry is followed by :func:`line_count` lines of the file; a file that ends with a
    line ending has no record after it."""
    starts: list[int] = []
    line, quoted, at_start = 1, False, True
    pattern = re.compile("|".join(re.escape(t) for t in (quote, line_ending)))
    for match in pattern.finditer(text):
        if match.group() == quote:
            if at_start:
                starts.append(line)
                at_start = False
            quoted = not quoted
            continue
        if at_start:  # a record with no quote in it (or an empty line) starts here
            starts.append(line)
        at_start = not quoted
        line += 1
    if at_start and _tail(text, line_ending):  # the last record has no line ending
        starts.append(line)
    return starts


def _tail(text: str, line_ending: str) -> bool:
    return bool(text) and not text.endswith(line_ending)


def line_count(text: str, line_ending: str = "\n") -> int:
    """How many file lines ``text`` has (a last line without a line ending counts)."""
    return text.count(line_ending) + (1 if _tail(text, line_ending) else 0)


class _PartLines:
    """The record start lines of one part of a package as sent (its bytes checked against the
    manifest's sha256, its records against the manifest's rows)."""

    def __init__(self, package: Path, name: str, entry: Mapping[str, Any], encoding: str, profile: Profile):
        try:
            data = (package / name).read_bytes()
        except OSError as exc:
            raise ReceiptLineError(f"{package.name}: {name} is not in the outbox ({exc})") from exc
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise ReceiptLineError(
                f"{package.name}: {name} in the outbox is not the file sent (sha256 differs from the "
                "manifest); the receipt's lines cannot be mapped"
            )
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ReceiptLineError(f"{package.name}: {name} cannot be read as {encoding}: {exc}") from exc
        self.lines = line_count(text, profile.line_ending)
        self.starts = record_lines(text, quote=profile.quote, line_ending=profile.line_ending)
        self.rows = len(self.starts) - 1  # less the header
        if self.rows != entry.get("rows"):
            raise ReceiptLineError(
                f"{package.name}: {name} holds {self.rows} records, its manifest says {entry.get('rows')}; "
                "the receipt's lines cannot be mapped"
            )

    def record(self, line: int) -> int | str:
        """The record (from 0, within the part) that starts on ``line``, else why none does."""
        if line < 1 or line > self.lines:
            return f"out of range (the file has {self.lines} lines)"
        if line == 1:
            return "it is the header"
        at = bisect.bisect_right(self.starts, line) - 1
        if self.starts[at] != line:
            end = self.starts[at + 1] - 1 if at + 1 < len(self.starts) else self.lines
            return f"it falls inside the record on lines {self.starts[at]}-{end} (a value spanning lines)"
        return at - 1


def rejected_rows(
    profile: Profile, receipt: Mapping[str, Any], package: Path
) -> dict[int, list[dict[str, Any]]]:
    """The rows a receipt rejected, by index (from 0, in package order), each with its errors:
    the errors that are not warnings.

    ``package`` is the package's directory as sent (in the outbox). A receipt's line counts file
    lines, the header being 1 (PX-1.0 §4); it is mapped to the record that starts on that line
    in the part's bytes, decoded as the manifest declares (a quoted value may span lines). An
    error that names no such record raises :class:`ReceiptLineError`: the receipt cannot be
    recorded, since taking it would record a rejected row as taken."""
    pid = receipt.get("package_id") or package.name
    errors = [dict(e) for e in receipt.get("errors") or [] if not str(e.get("rule") or "").startswith("PX-W")]
    if not errors:
        _check_count(pid, receipt, 0)
        return {}
    try:
        manifest = json.loads((package / profile.manifest_file).read_bytes())
    except (OSError, ValueError) as exc:
        raise ReceiptLineError(f"{pid}: the package as sent is not in the outbox ({exc})") from exc
    if manifest.get("batch_id") != receipt.get("batch_id"):
        raise ReceiptLineError(
            f"{pid}: the outbox holds batch {manifest.get('batch_id')}, the receipt answers "
            f"{receipt.get('batch_id')}"
        )
    encoding = manifest.get("encoding")
    if encoding not in profile.encodings:
        raise ReceiptLineError(
            f"{pid}: the manifest's encoding {encoding!r} is not one of {profile.encodings}"
        )
    entries = {f["name"]: f for f in manifest.get("files") or []}
    first_row, before = {}, 0  # parts in manifest order, each holding its manifest's rows
    for name, entry in entries.items():
        first_row[name] = before
        before += int(entry.get("rows") or 0)
    parts: dict[str, _PartLines] = {}
    rows: dict[int, list[dict[str, Any]]] = {}
    for error in errors:
        file, line = error.get("file"), error.get("line")
        where = f"{pid}: receipt error {error.get('rule')} on file {file!r} line {line!r}"
        if file not in entries:
            raise ReceiptLineError(f"{where}: names no file of the package ({', '.join(entries)})")
        if not isinstance(line, int) or isinstance(line, bool):
            raise ReceiptLineError(f"{where}: names no line")
        if file not in parts:  # only the parts a receipt names are read, each once
            parts[file] = _PartLines(package, file, entries[file], encoding, profile)
        found = parts[file].record(line)
        if isinstance(found, str):
            raise ReceiptLineError(f"{where}: maps to no record: {found}")
        rows.setdefault(first_row[file] + found, []).append(error)
    _check_count(pid, receipt, len(rows))
    return dict(sorted(rows.items()))


def _check_count(pid: str, receipt: Mapping[str, Any], listed: int) -> None:
    """A PARTIAL that says it rejected more rows than it lists would make us record the unlisted
    ones as taken: an error too."""
    said = receipt.get("rows_rejected")
    if receipt.get("status") == "PARTIAL" and isinstance(said, int) and said != listed:
        raise ReceiptLineError(f"{pid}: the receipt says {said} row(s) rejected but names {listed}")


def check_rows(sent: Path, rejected: Iterable[int]) -> None:
    """Raise :class:`ReceiptLineError` when a rejected index is past the rows kept as sent."""
    count = pq.ParquetFile(sent).metadata.num_rows
    past = [i for i in rejected if not 0 <= i < count]
    if past:
        raise ReceiptLineError(f"{sent.name}: rejected row(s) {past[:5]} past the {count} rows sent")


def held_after_partial(
    dataset: Dataset, mode: str, sent: Path, post: Path, previous: Path | None, rejected: Iterable[int]
) -> pa.Table:
    """What the platform holds after a PARTIAL: the whole package less the rejected rows.

    FULL: the rejected rows are simply missing. DELTA: a rejected row's key keeps the version
    the platform held before (or stays absent)."""
    fields = dataset.field_codes
    rejected = sorted(rejected)
    check_rows(sent, rejected)
    keys = pq.read_table(sent, columns=list(dataset.primary_key)).take(pa.array(rejected, pa.int64()))
    held = _conn(post=post, rejected=keys)
    try:
        on = _keys_match("p", "r", dataset)
        kept = f"select {', '.join(f'p.{_q(c)}' for c in fields)} from post p anti join rejected r on {on}"
        if mode == "DELTA" and previous is not None:
            held.execute(f"create view previous as select * from read_parquet('{previous.as_posix()}')")
            back = _keys_match("v", "r", dataset)
            kept += (
                f" union all select {', '.join(f'v.{_q(c)}' for c in fields)} from previous v"
                f" semi join rejected r on {back}"
            )
        order = ", ".join(_q(k) for k in dataset.primary_key)
        return _strings(held.execute(f"select * from ({kept}) order by {order}").to_arrow_table(), fields)
    finally:
        held.close()


def _strings(table: pa.Table, columns: Iterable[str]) -> pa.Table:
    """``table`` with exactly ``columns``, all plain strings (a column of nulls included)."""
    columns = list(columns)
    return pa.table({c: table.column(c).cast(pa.string()) for c in columns})
