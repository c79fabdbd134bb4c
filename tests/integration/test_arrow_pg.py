"""The ADBC PostgreSQL reader (connectors/sources/arrow_pg.py) against a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from campusdx.sources.arrow_pg import (
    ArrowPgError,
    conform,
    inline_params,
    stream_query,
    to_adbc_uri,
)
from campusdx.sources.sql import arrow_type

RARE = "䶮"  # U+4DAE, CJK extension A
ASTRAL = "𠮷"  # U+20BB7, outside the BMP: 4 bytes in UTF-8

ROWS = [
    # id, name, note, amount, born, changed
    (1, "张三", f"罕见字{RARE}", Decimal("1234.50"), date(1990, 1, 31), datetime(2026, 1, 1, 8, 0, 0)),
    (2, "李四", None, Decimal("-0.01"), None, datetime(2026, 1, 2, 9, 30, 15, 123456)),
    (3, f"王{ASTRAL}", "O'Brien \\ 引号", Decimal("9999999999999999.99"), date(2000, 2, 29), None),
    (4, None, "", None, date(1970, 1, 1), datetime(1999, 12, 31, 23, 59, 59)),
    (5, "赵六", "tab\tnewline\n", Decimal("0.00"), date(2026, 11, 22), datetime(2026, 11, 22, 0, 0, 0)),
]


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_people(url: str, rows=ROWS) -> None:
    with psycopg.connect(_psycopg_url(url)) as conn:
        conn.execute(
            """create table people (
                 id integer primary key,
                 name text,
                 note varchar(100),
                 amount numeric(18,2),
                 born date,
                 changed timestamp,
                 big bigint
               )"""
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into people values (%s, %s, %s, %s, %s, %s, %s)",
                [(*r, r[0] * 10_000_000_000 if r[0] % 2 else None) for r in rows],
            )


def _source_rows(url: str) -> list[dict]:
    with psycopg.connect(_psycopg_url(url)) as conn, conn.cursor() as cur:
        cur.execute("select * from people order by id")
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _all(batches) -> pa.Table:
    batches = list(batches)
    return pa.Table.from_batches(batches) if batches else pa.table({})


def test_types_and_exact_values(postgres_db):
    _create_people(postgres_db)
    table = _all(stream_query(postgres_db, "select * from people order by id"))
    types = {f.name: f.type for f in table.schema}
    assert types == {
        "id": pa.int32(),  # integer is int4: int32 (conform widens to int64)
        "name": pa.string(),
        "note": pa.string(),
        "amount": pa.string(),  # numeric: exact decimal text, the driver's opaque type unwrapped
        "born": pa.date32(),
        "changed": pa.timestamp("us"),
        "big": pa.int64(),
    }
    assert table.schema.field("amount").metadata[b"POSTGRESQL:type"] == b"numeric"
    assert table.column("amount").to_pylist() == ["1234.50", "-0.01", "9999999999999999.99", None, "0.00"]

    # cast to the schema the extractor derives from the reflected table: exact, all columns
    engine = sa.create_engine(postgres_db)
    try:
        reflected = sa.Table("people", sa.MetaData(), autoload_with=engine)
    finally:
        engine.dispose()
    target = pa.schema([pa.field(c.name, arrow_type(c.type)) for c in reflected.columns])
    assert target.field("amount").type == pa.decimal128(18, 2)
    assert target.field("id").type == pa.int64()
    conformed = pa.Table.from_batches([conform(b, target) for b in table.to_batches()], schema=target)
    assert conformed.to_pylist() == _source_rows(postgres_db)
    assert [str(v) for v in conformed.column("amount").to_pylist() if v is not None] == [
        "1234.50",
        "-0.01",
        "9999999999999999.99",
        "0.00",
    ]
    assert conformed.column("note").to_pylist()[0] == f"罕见字{RARE}"
    assert conformed.column("name").to_pylist()[2] == f"王{ASTRAL}"


def test_conform_refuses_to_round(postgres_db):
    batch = next(stream_query(postgres_db, "select 1.555::numeric as amount, 'nan'::numeric as other"))
    with pytest.raises(ArrowPgError, match="'amount'"):
        conform(batch.select(["amount"]), pa.schema([pa.field("amount", pa.decimal128(18, 2))]))
    with pytest.raises(ArrowPgError, match="'other'"):
        conform(batch.select(["other"]), pa.schema([pa.field("other", pa.decimal128(18, 2))]))


def test_batches_are_bounded_by_batch_rows(postgres_db):
    rows = [(i, f"n{i}", None, Decimal(i), None, None) for i in range(1, 11)]
    _create_people(postgres_db, rows)
    batches = list(stream_query(postgres_db, "select id from people order by id", batch_rows=3))
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    assert [v for b in batches for v in b.column(0).to_pylist()] == list(range(1, 11))
    assert len({b.schema for b in batches}) == 1


def test_rechunks_many_small_driver_batches_in_order(postgres_db):
    sql = "select g as id, repeat('字', 20) || g::text as t from generate_series(1, 10000) g order by g"
    # a 4 KiB hint makes the driver hand over ~100 small batches; re-chunking must keep order
    batches = list(stream_query(postgres_db, sql, batch_rows=3000, batch_bytes_hint=4096))
    assert [b.num_rows for b in batches] == [3000, 3000, 3000, 1000]
    assert [v for b in batches for v in b.column("id").to_pylist()] == list(range(1, 10001))


def test_empty_result_yields_nothing(postgres_db):
    assert list(stream_query(postgres_db, "select 1 as x where false")) == []


def test_parameterised_query(postgres_db):
    _create_people(postgres_db)
    ids = _all(stream_query(postgres_db, "select id from people where id >= $1 order by id", [3]))
    assert ids.column("id").to_pylist() == [3, 4, 5]
    # a str against a timestamp column, as the extractor's watermark is stored (text)
    changed = _all(
        stream_query(
            postgres_db,
            "select id from people where changed >= $1 and id <> $2 order by changed",
            ["2026-01-01 08:00:00", 5],
        )
    )
    assert changed.column("id").to_pylist() == [1, 2]
    # quotes, backslashes and rare characters are data, never SQL; '$1' in a string stays text
    tricky = "O'Brien \\ 引号"
    found = _all(stream_query(postgres_db, "select id, '$1' as lit from people where note = $1", [tricky]))
    assert found.to_pylist() == [{"id": 3, "lit": "$1"}]
    assert _all(stream_query(postgres_db, "select $1::text as t", [f"a{RARE}{ASTRAL}"])).to_pylist() == [
        {"t": f"a{RARE}{ASTRAL}"}
    ]
    # the driver's own binding works too (typed from Arrow: a str is text, hence the cast)
    server = _all(
        stream_query(
            postgres_db,
            "select id from people where changed >= $1::timestamp order by id",
            ["2026-01-02 00:00:00"],
            bind="server",
        )
    )
    assert server.column("id").to_pylist() == [2, 5]
    with pytest.raises(ValueError, match=r"\$2"):
        stream_query(postgres_db, "select $2", [1])
    with pytest.raises(ValueError, match="not used"):
        stream_query(postgres_db, "select $1", [1, 2])


def test_parameterised_query_still_streams_through_copy(postgres_db):
    """Bound parameters would make the driver build the whole result in memory; inlined ones
    keep the COPY path. Seen from the server: the running statement is a COPY."""
    sql = "select g, repeat('x', 100) as t from generate_series(1, 2000000) g where g >= $1"
    stream = stream_query(postgres_db, sql, [1], batch_rows=1000)
    first = next(stream)
    assert first.num_rows == 1000
    with psycopg.connect(_psycopg_url(postgres_db)) as conn:
        running = conn.execute(
            "select query from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        ).fetchall()
    stream.close()
    assert any(q.startswith("COPY (") and "generate_series" in q for (q,) in running), running


@pytest.mark.xfail(
    reason="open defect: a stream abandoned midway sometimes leaves its server session running "
    "(seen under load); the extractor always reads streams to the end",
    strict=False,
)
def test_abandoned_stream_closes_its_connection(postgres_db):
    stream = stream_query(postgres_db, "select g from generate_series(1, 5000000) g", batch_rows=10)
    next(stream)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 10
    with psycopg.connect(_psycopg_url(postgres_db)) as conn:
        for _ in range(300):  # the server notices the closed stream within seconds (more under load)
            others = conn.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid()"
            ).fetchone()[0]
            if others == 0:
                break
            time.sleep(0.1)
    assert others == 0


@pytest.mark.parametrize(
    ("port", "user", "database"),
    [(1, "postgres", None), (None, "campusdx_no_such_role", None), (None, "postgres", "no_such_db")],
    ids=["port-closed", "unknown-role", "unknown-database"],
)
def test_connection_errors_never_show_the_password(postgres_db, port, user, database):
    # The test server trusts 127.0.0.1, so a wrong password alone would be accepted: the
    # password is carried in URLs that fail for another reason, and must not surface.
    password = "Sup3r-S3cret+p@ss/word"
    url = make_url(postgres_db).set(password=password, username=user)
    if port:
        url = url.set(port=port)
    if database:
        url = url.set(database=database)
    with pytest.raises(ArrowPgError) as info:
        list(stream_query(url.render_as_string(hide_password=False), "select 1"))
    text = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    for leak in (password, "S3cret", "Sup3r"):
        assert leak not in text
    assert "***" in str(info.value)  # the redacted URL names the server
    assert "127.0.0.1" in str(info.value)


def test_sql_errors_are_reported(postgres_db):
    with pytest.raises(ArrowPgError, match="no_such_table"):
        list(stream_query(postgres_db, "select * from no_such_table"))


def test_legacy_encoding_database_reads_as_utf8(postgres_admin_url):
    """A non-UTF-8 database (EUC_CN, common for legacy Chinese systems) still yields valid text:
    to_adbc_uri sets client_encoding=UTF8 (without it the driver passes EUC_CN bytes through)."""
    admin = make_url(postgres_admin_url)
    name = f"campusdx_test_euc_{int(time.time() * 1000) % 10**8:08d}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                f"CREATE DATABASE {name} ENCODING 'EUC_CN' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
        )
    try:
        url = admin.set(database=name).render_as_string(hide_password=False)
        with psycopg.connect(_psycopg_url(url), options="-c client_encoding=UTF8") as conn:
            conn.execute("create table t (x text)")
            conn.execute("insert into t values ('西安科技大学'), (NULL)")
        assert "client_encoding=UTF8" in to_adbc_uri(url)
        table = _all(stream_query(url, "select x from t"))
        assert table.column("x").to_pylist() == ["西安科技大学", None]
        table.column("x").validate(full=True)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()


def test_to_adbc_uri():
    assert to_adbc_uri("postgresql+psycopg://u:pw@db.example:6432/hr") == (
        "postgresql://u:pw@db.example:6432/hr?client_encoding=UTF8"
    )
    assert to_adbc_uri("postgresql+psycopg2://u@h/d?sslmode=require&client_encoding=latin1") == (
        "postgresql://u@h/d?client_encoding=UTF8&sslmode=require"
    )
    assert to_adbc_uri("postgresql://u:p%40ss@h/d").startswith("postgresql://u:p%40ss@h/d")
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        to_adbc_uri("mysql+pymysql://root:pw@h/d")


def test_inline_params_leaves_quoted_text_alone():
    sql = "select '$1', \"$1\", $$ $1 $$, $q$ $1 $q$ /* $1 */, $1, x - $2 -- $1"
    assert inline_params(sql, ["it's", -1]) == (
        "select '$1', \"$1\", $$ $1 $$, $q$ $1 $q$ /* $1 */, E'it''s', x - (-1) -- $1"
    )
    assert inline_params("select $1, $2, $3", [None, True, Decimal("1.50")]) == (
        "select NULL, TRUE, E'1.50'::numeric"
    )
    assert inline_params("select $1", [datetime(2026, 1, 2, 3, 4, 5)]) == (
        "select E'2026-01-02 03:04:05'::timestamp"
    )


def test_inline_params_leaves_identifiers_holding_a_dollar_alone():
    sql = 'select "col$1", a$1b, t.x$2, $1, E\'$2\', U&"d$1" from t$1 where c$2 >= $2 and d=$1'
    assert inline_params(sql, [7, "v"]) == (
        "select \"col$1\", a$1b, t.x$2, 7, E'$2', U&\"d$1\" from t$1 where c$2 >= E'v' and d=7"
    )
    with pytest.raises(ValueError, match=r"parameters \[1\] are not used"):
        inline_params("select a$1b", [1])


def test_identifiers_holding_a_dollar_survive_a_parameterised_read(postgres_db):
    with psycopg.connect(_psycopg_url(postgres_db)) as conn:
        conn.execute('create table t$1 (a$1b integer, "col$1" text)')
        conn.execute("insert into t$1 values (1, 'x'), (2, '$1')")
    [batch] = stream_query(postgres_db, 'select a$1b, "col$1" from t$1 where a$1b >= $1', [2])
    assert batch.to_pylist() == [{"a$1b": 2, "col$1": "$1"}]


def test_concurrent_streams_are_independent(postgres_db):
    results: dict[int, list[int]] = {}

    def run(n: int) -> None:
        sql = "select g from generate_series(1, $1) g order by g"
        results[n] = [
            v for b in stream_query(postgres_db, sql, [n], batch_rows=7) for v in b.column(0).to_pylist()
        ]

    threads = [threading.Thread(target=run, args=(n,)) for n in (50, 80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {50: list(range(1, 51)), 80: list(range(1, 81))}
