"""Reads of the shared datasets from the current published snapshot, scoped in SQL.

A request resolves the current snapshot once and runs all its SQL on that snapshot's read-only
connection (a cursor per request), so a response never mixes two snapshots, and a snapshot
switched during the request is seen by the next one. Identifiers come from the declaration
(:mod:`campusdx.service.catalog`); every value from a request is a bound parameter. Row scope (a
grant's departments, a department user's own) is a ``WHERE`` clause over the organisation tree,
and a personal field without a field grant is masked in the ``SELECT`` itself, so nothing a
caller may not see leaves DuckDB.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from campusdx.core import snapshots
from campusdx.core.settings import Paths
from campusdx.service.catalog import DatasetDecl

MAX_PAGE = 1000
CACHE_ROWS = 200_000
"""Rows of answers kept per service process (the newest answers; some tens of MB)."""


class QueryError(ValueError):
    """A request the dataset cannot answer (a bad cursor, an unknown field); names the parameter."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class QueryTimeout(RuntimeError):
    pass


class NoSnapshot(RuntimeError):
    pass


_MASKS = {
    # the first character and two stars, whatever the length (the length would say more)
    "name": "case when {c} is null then null else left({c}, 1) || '**' end",
    "id_number": (
        "case when {c} is null then null"
        " when regexp_full_match({c}, '[0-9]{{17}}[0-9X]') then left({c}, 6) || repeat('*', 12)"
        " else left({c}, least(2, length({c}) // 4))"
        " || repeat('*', length({c}) - least(2, length({c}) // 4)) end"
    ),
    "year": "cast(year({c}) as varchar)",
    "phone": (
        "case when {c} is null then null else left({c}, 3) || repeat('*', greatest(length({c}) - 3, 0)) end"
    ),
}


@dataclass(frozen=True)
class Access:
    """What one caller may read of one dataset: the union of its grants, or a department's own."""

    fields: frozenset[str]
    """Fields served; a personal one among them is served in clear."""
    scope: frozenset[str] | None
    """The 单位号 whose rows (and their sub-units' rows) may be read; None: every row."""
    masked: frozenset[str] = field(default_factory=frozenset)
    """Personal fields served masked."""


@dataclass
class Page:
    snapshot: str
    records: list[dict[str, Any]]
    next_cursor: str | None
    next_changed_since: str | None
    masked: list[str]


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise QueryError("cursor", "cursor is not one this service gave out") from None
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str | int)):
        raise QueryError("cursor", "cursor is not one this service gave out")
    return value[0]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class _Opened:
    """One snapshot's connection, and what every request on it looks up: the code tables' names,
    each unit's ancestors (read once per snapshot)."""

    con: duckdb.DuckDBPyConnection
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    ancestors: dict[str, list[str]] | None = None


class _Watchdog:
    """One thread interrupting the queries that outrun their deadline (not a timer per query)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[float, duckdb.DuckDBPyConnection]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, cursor: duckdb.DuckDBPyConnection, timeout_s: float) -> int:
        token = id(cursor)
        with self._lock:
            self._running[token] = (time.monotonic() + timeout_s, cursor)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="campusdx-query-watchdog", daemon=True)
                self._thread.start()
        return token

    def done(self, token: int) -> None:
        with self._lock:
            self._running.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [c for deadline, c in self._running.values() if deadline < now]
            for cursor in late:
                cursor.interrupt()


class Reader:
    """Read-only connections to the published snapshots of one home, one per snapshot in use."""

    def __init__(self, paths: Paths, *, timeout_s: float = 5.0, keep: int = 2):
        self.paths = paths
        self.timeout_s = timeout_s
        self._keep = keep
        self._lock = threading.Lock()
        self._open: dict[str, _Opened] = {}
        self._watchdog = _Watchdog()
        self._answers: OrderedDict[tuple, tuple[list[str], list]] = OrderedDict()
        self._cached_rows = 0

    def current(self) -> tuple[str, _Opened]:
        """The current snapshot's id and connection (opened on first use)."""
        sid = snapshots.current_id(self.paths)
        if sid is None:
            raise NoSnapshot("no warehouse snapshot is published yet: run the pipeline first")
        with self._lock:
            opened = self._open.get(sid)
            if opened is None:
                # many small queries side by side: each runs on one thread (no parallel plan to
                # set up and no contention between them for the cores)
                con = duckdb.connect(str(snapshots.path_of(self.paths, sid)), read_only=True)
                con.execute("set threads = 1")
                opened = self._open[sid] = _Opened(con)
                # older connections close once newer ones exist; their open cursors finish first
                for old in sorted(self._open)[: -self._keep]:
                    self._open.pop(old)
            return sid, opened

    def close(self) -> None:
        with self._lock:
            for opened in self._open.values():
                opened.con.close()
            self._open.clear()

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str, args: list[Any]) -> tuple[list[str], list]:
        cur = con.cursor()
        token = self._watchdog.watch(cur, self.timeout_s)
        try:
            rel = cur.execute(sql, args)
            names = [d[0] for d in rel.description]
            return names, rel.fetchall()
        except duckdb.InterruptException:
            raise QueryTimeout(f"the query took longer than {self.timeout_s:g} s and was stopped") from None
        finally:
            self._watchdog.done(token)
            cur.close()

    def _cached(self, sid: str, opened: _Opened, sql: str, args: list[Any]) -> tuple[list[str], list]:
        """The answer of ``sql``: a snapshot never changes, so one answer per snapshot, statement
        and arguments is kept (the newest, up to ``CACHE_ROWS`` rows in all) and given again."""
        key = (sid, sql, tuple(args))
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None:
                self._answers.move_to_end(key)
                return hit
        answer = self._run(opened.con, sql, args)
        with self._lock:
            if key not in self._answers:
                self._answers[key] = answer
                self._cached_rows += len(answer[1])
            while self._cached_rows > CACHE_ROWS:
                _, (_, rows) = self._answers.popitem(last=False)
                self._cached_rows -= len(rows)
        return answer

    def _codes(self, opened: _Opened, code_set: str) -> dict[str, str]:
        names = opened.codes.get(code_set)
        if names is None:
            _, rows = self._run(opened.con, f'select code, name from codes."{code_set}"', [])
            names = opened.codes[code_set] = dict(rows)
        return names

    def _units(self, opened: _Opened, scope: frozenset[str]) -> list[str]:
        """The granted units and every unit below them (from the organisation tree's paths)."""
        if opened.ancestors is None:
            _, rows = self._run(opened.con, "select org_id, org_path from marts.dim_org", [])
            opened.ancestors = {org: (path or org).split("/") for org, path in rows}
        return sorted(org for org, above in opened.ancestors.items() if scope & set(above)) or [""]

    def page(
        self,
        ds: DatasetDecl,
        access: Access,
        *,
        fields: list[str] | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        as_of: date | None = None,
        changed_since: str | None = None,
        key: str | None = None,
    ) -> Page:
        """One page of ``ds`` as ``access`` allows, keyset-paginated on the dataset's key."""
        if not 1 <= limit <= MAX_PAGE:
            raise QueryError("limit", f"limit must be between 1 and {MAX_PAGE}")
        chosen = fields or [f for f in ds.field_names if f in access.fields or f in access.masked]
        served = [f for f in chosen if f in access.fields or f in access.masked]
        if ds.key not in served:
            served.insert(0, ds.key)
        sid, opened = self.current()
        select, coded = [], []
        for name in served:
            decl = ds.field(name)
            column = f't."{name}"'
            if name in access.masked and name not in access.fields:
                select.append(f'{_MASKS[decl.personal].format(c=column)} as "{name}"')
            else:
                select.append(f'{column} as "{name}"')
                if decl.code_set:
                    coded.append((name, self._codes(opened, decl.code_set)))
        where, args = [], []
        if ds.history is not None:
            if as_of is not None:
                where.append(
                    f't."{ds.history.valid_from}" < ? and (t."{ds.history.valid_to}" is null'
                    f' or t."{ds.history.valid_to}" >= ?)'
                )
                day_after = date.fromordinal(as_of.toordinal() + 1)
                args += [day_after, day_after]
            else:
                where.append(f't."{ds.history.current}"')
        elif as_of is not None:
            raise QueryError("as_of", f"dataset {ds.name} keeps no history: as_of does not apply")
        scoped, scope_args = self._scope(opened, ds, access)
        where += scoped
        args += scope_args
        if changed_since is not None:
            if ds.changes is None:
                raise QueryError("changed_since", f"dataset {ds.name} keeps no change marker")
            where.append(f't."{ds.changes}" > ?')
            args.append(changed_since)
        for name, value in (filters or {}).items():
            where.append(f't."{name}" = ?')
            args.append(value)
        if key is not None:
            where.append(f't."{ds.key}" = ?')
            args.append(key)
        if cursor is not None:
            where.append(f't."{ds.key}" > ?')
            args.append(str(decode_cursor(cursor)))
        schema, table = ds.relation.split(".")
        sql = (
            f'select {", ".join(select)} from "{schema}"."{table}" as t'
            f' where {" and ".join(where) or "true"} order by t."{ds.key}" limit ?'
        )
        args.append(limit + 1)
        names, rows = self._cached(sid, opened, sql, args)
        records = []
        for row in rows[:limit]:
            record = {n: _plain(v) for n, v in zip(names, row, strict=True)}
            for name, code_names in coded:  # each code's name, from the snapshot's code table
                record[f"{name}_name"] = code_names.get(record[name])
            records.append(record)
        more = len(rows) > limit
        return Page(
            snapshot=sid,
            records=records,
            next_cursor=encode_cursor(records[-1][ds.key]) if more else None,
            next_changed_since=self._watermark(sid, opened, ds, access),
            masked=sorted(f for f in served if f in access.masked and f not in access.fields),
        )

    def _scope(self, opened: _Opened, ds: DatasetDecl, access: Access) -> tuple[list[str], list[str]]:
        """The condition of the caller's rows: the row's unit is a granted one or below one (a
        dataset without a scope column has no rows a scoped caller may read)."""
        if access.scope is None:
            return [], []
        if ds.scope is None:
            return ["false"], []
        units = self._units(opened, access.scope)
        return [f't."{ds.scope}" in ({", ".join("?" * len(units))})'], units

    def _watermark(self, sid: str, opened: _Opened, ds: DatasetDecl, access: Access) -> str | None:
        """The newest change marker of the caller's rows in this snapshot: a later change has a
        later one (computed over the caller's scope only: other departments' change times are
        not the caller's to see)."""
        if ds.changes is None:
            return None
        where, args = self._scope(opened, ds, access)
        schema, table = ds.relation.split(".")
        condition = " and ".join(where) or "true"
        sql = f'select max(t."{ds.changes}") from "{schema}"."{table}" as t where {condition}'
        return self._cached(sid, opened, sql, args)[1][0][0]
