"""The generic SQL extractor (connectors/sources/sql.py) against real PostgreSQL and MariaDB.

Full extraction, then an incremental one after two updates and an insert: the landed Parquet
rows must equal the source rows exactly, every column, every type.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from campusdx.core.declarations import SystemDecl, TableDecl
from campusdx.sources.landing import BATCH_COLUMN, DELETED_COLUMN, Landing
from campusdx.sources.sql import extract_table

RARE = "䶮"  # U+4DAE, CJK extension A
ASTRAL = "𠮷"  # U+20BB7: needs utf8mb4 in MariaDB

DDL = {
    "postgresql": """create table people (
        id integer primary key,
        name text,
        dept varchar(20),
        amount numeric(18,2),
        born date,
        changed timestamp not null
    )""",
    "mysql": """create table people (
        id int primary key,
        name text,
        dept varchar(20),
        amount decimal(18,2),
        born date,
        changed datetime(6) not null
    ) character set utf8mb4""",
}

ROWS = [
    dict(
        id=1,
        name="张三",
        dept="计算机学院",
        amount=Decimal("1234.50"),
        born=date(1990, 1, 31),
        changed=datetime(2026, 1, 1, 8, 0),
    ),
    dict(
        id=2,
        name=f"罕见字{RARE}",
        dept=None,
        amount=Decimal("-0.01"),
        born=None,
        changed=datetime(2026, 1, 2, 9, 30, 15, 123456),
    ),
    dict(
        id=3,
        name=f"王{ASTRAL}",
        dept="财务处",
        amount=Decimal("9999999999999999.99"),
        born=date(2000, 2, 29),
        changed=datetime(2026, 1, 3, 0, 0),
    ),
    dict(id=4, name=None, dept="", amount=None, born=date(1970, 1, 1), changed=datetime(2026, 1, 4, 12, 0)),
    dict(
        id=5,
        name="O'Brien \\ 引号",
        dept="资产处",
        amount=Decimal("0.00"),
        born=date(2026, 11, 22),
        changed=datetime(2026, 1, 5, 23, 59, 59),
    ),
]
COLUMNS = ["id", "name", "dept", "amount", "born", "changed"]


def _decl(tmp_path: Path, url: str) -> SystemDecl:
    table = TableDecl("people", ("id",), "changed")
    return SystemDecl("itest", "integration test", None, url, (table,), tmp_path)


def _source_rows(engine: sa.Engine, where: str = "", **params) -> list[dict]:
    with engine.connect() as conn:
        sql = f"select {', '.join(COLUMNS)} from people {where} order by id"
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def _landed(landing: Landing, batch_id: str) -> list[dict]:
    table = pq.read_table(landing.data_path("itest", "people", batch_id))
    assert set(table.column(BATCH_COLUMN).to_pylist()) == {batch_id}
    assert not any(table.column(DELETED_COLUMN).to_pylist()), "no tombstones expected"
    rows = table.drop_columns([BATCH_COLUMN, DELETED_COLUMN]).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def _run(url: str, dialect: str, tmp_path: Path) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(DDL[dialect]))
            conn.execute(
                sa.text(
                    "insert into people (id, name, dept, amount, born, changed) "
                    "values (:id, :name, :dept, :amount, :born, :changed)"
                ),
                ROWS,
            )
        source = _source_rows(engine)
        assert source == ROWS, "the source itself must hold the rows exactly (utf8mb4, microseconds)"

        decl = _decl(tmp_path, url)
        landing = Landing(tmp_path / "landing")
        first = extract_table(decl, decl.tables[0], url, landing, chunk_rows=2)
        assert (first.rows, first.mode) == (len(ROWS), "full")
        schema = pq.read_schema(landing.data_path("itest", "people", first.batch_id))
        assert schema.field("id").type == pa.int64()
        assert schema.field("amount").type == pa.decimal128(18, 2)
        assert schema.field("born").type == pa.date32()
        assert schema.field("changed").type == pa.timestamp("us")
        landed = _landed(landing, first.batch_id)
        assert landed == source
        amounts = [str(r["amount"]) for r in landed]
        assert amounts == ["1234.50", "-0.01", "9999999999999999.99", "None", "0.00"]
        manifests = list(landing.manifests("itest", "people"))
        assert [m["rows"] for m in manifests] == [len(source)]
        assert manifests[0]["cursor"]["max"] == "2026-01-05 23:59:59"

        # two updates that advance their cursor, one insert
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "update people set name = :name, amount = :amount, changed = :changed where id = :id"
                ),
                [
                    dict(id=1, name=f"张三{RARE}改", amount=Decimal("1.10"), changed=datetime(2026, 2, 1, 8)),
                    dict(id=3, name=None, amount=Decimal("-5.05"), changed=datetime(2026, 2, 1, 8, 0, 0, 1)),
                ],
            )
            conn.execute(
                sa.text(
                    "insert into people (id, name, dept, amount, born, changed) "
                    "values (:id, :name, :dept, :amount, :born, :changed)"
                ),
                dict(
                    id=6,
                    name=f"新{ASTRAL}{RARE}",
                    dept="人事处",
                    amount=Decimal("42.00"),
                    born=None,
                    changed=datetime(2026, 2, 2),
                ),
            )
        second = extract_table(decl, decl.tables[0], url, landing, chunk_rows=2)
        assert second.mode == "incremental"
        landed = _landed(landing, second.batch_id)
        # the changed and new rows, plus row 5: it sits on the watermark and is re-read on purpose
        assert [r["id"] for r in landed] == [1, 3, 5, 6]
        expected = _source_rows(engine, "where changed >= :mark", mark=datetime(2026, 1, 5, 23, 59, 59))
        assert landed == expected
        assert landed[0]["name"] == f"张三{RARE}改" and str(landed[0]["amount"]) == "1.10"
        assert landed[1]["name"] is None and str(landed[1]["amount"]) == "-5.05"
        manifests = list(landing.manifests("itest", "people"))
        assert [m["rows"] for m in manifests] == [len(ROWS), 4]
        assert manifests[1]["cursor"]["watermark"] == "2026-01-05 23:59:59"
        assert manifests[1]["cursor"]["max"] == "2026-02-02 00:00:00"
    finally:
        engine.dispose()


def test_postgresql_full_then_incremental(postgres_db, tmp_path):
    _run(postgres_db, "postgresql", tmp_path)


def test_mariadb_full_then_incremental(mariadb_db, tmp_path):
    _run(mariadb_db, "mysql", tmp_path)


@pytest.mark.parametrize("fixture", ["postgres_db", "mariadb_db"])
def test_missing_table_names_system_and_table(fixture, request, tmp_path):
    from campusdx.sources.sql import ExtractError

    url = request.getfixturevalue(fixture)
    decl = _decl(tmp_path, url)
    with pytest.raises(ExtractError, match=r"itest\.people: the source has no such table"):
        extract_table(decl, decl.tables[0], url, Landing(tmp_path / "landing"))
