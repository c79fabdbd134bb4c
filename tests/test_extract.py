"""The generic SQL extractor and the landing zone."""

import json
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from campusdx.core.declarations import DeclarationError, SystemDecl, TableDecl, load_system, load_systems
from campusdx.core.settings import redact
from campusdx.sources.landing import Landing
from campusdx.sources.sql import ExtractError, SourceUnreachable, extract_system, extract_table


def _source(tmp_path, rows=5):
    db = tmp_path / "src.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "create table people (id text primary key, name text, amount numeric(18,2), changed text)"
        )
        conn.executemany(
            "insert into people values (?, ?, ?, ?)",
            [(f"P{i}", f"n{i}", f"{i}.10", f"2026-01-0{i + 1} 00:00:00") for i in range(rows)],
        )
    decl = SystemDecl(
        "demo", "demo", None, f"sqlite:///{db}", (TableDecl("people", ("id",), "changed"),), tmp_path
    )
    return db, decl


def test_full_then_incremental(tmp_path):
    db, decl = _source(tmp_path)
    landing = Landing(tmp_path / "landing")
    first = extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert (first.rows, first.mode) == (5, "full")
    with sqlite3.connect(db) as conn:
        conn.execute("update people set name = 'changed', changed = '2026-02-01 00:00:00' where id = 'P1'")
    second = extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert second.mode == "incremental"
    rows = [
        r
        for f in [landing.data_path("demo", "people", second.batch_id)]
        for r in pq.read_table(f).to_pylist()
    ]
    # the watermark row (P4) is read again on purpose: a late commit with that timestamp is not lost
    rows = sorted(rows, key=lambda r: r["changed"])  # no ORDER BY at the source: order is the server's
    assert [r["id"] for r in rows] == ["P4", "P1"] and rows[1]["name"] == "changed"
    manifests = list(landing.manifests("demo", "people"))
    assert [m["rows"] for m in manifests] == [5, 2]
    assert manifests[1]["cursor"]["from"] == "2026-01-05 00:00:00"
    assert str(rows[1]["amount"]) == "1.10", "numeric(18,2) lands as an exact decimal"


def test_rows_read_equal_rows_landed(tmp_path):
    _, decl = _source(tmp_path, rows=7)
    landing = Landing(tmp_path / "landing")
    result = extract_table(decl, decl.tables[0], decl.default_url, landing, chunk_rows=3)
    table = pq.read_table(landing.data_path("demo", "people", result.batch_id))
    manifest = json.loads(landing.manifest_path("demo", "people", result.batch_id).read_text())
    assert table.num_rows == manifest["rows"] == 7
    assert set(table.column("_batch_id").to_pylist()) == {result.batch_id}


def test_uncommitted_leftovers_are_invisible_and_removed(tmp_path):
    _, decl = _source(tmp_path)
    landing = Landing(tmp_path / "landing")
    folder = landing.prepare("demo", "people")
    (folder / "x.parquet.tmp").write_bytes(b"half a file")
    (folder / "_manifests" / "20990101T000000000000Z.json").write_text(
        json.dumps({"cursor": {"max": "9999"}})
    )
    assert landing.watermark("demo", "people") is None, "a manifest whose data never committed does not count"
    extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert not list(folder.glob("*.tmp"))
    assert len(list((folder / "_manifests").glob("*.json"))) == 1


def test_missing_declared_column_names_system_table_and_column(tmp_path):
    db, _ = _source(tmp_path)
    decl = SystemDecl(
        "demo", "demo", None, f"sqlite:///{db}", (TableDecl("people", ("id",), "modified"),), tmp_path
    )
    with pytest.raises(ExtractError, match=r"demo\.people: declared column 'modified' is missing"):
        extract_table(decl, decl.tables[0], decl.default_url, Landing(tmp_path / "landing"))


def test_missing_table_is_named(tmp_path):
    db, _ = _source(tmp_path)
    decl = SystemDecl("demo", "demo", None, f"sqlite:///{db}", (TableDecl("nobody", ("id",)),), tmp_path)
    with pytest.raises(ExtractError, match=r"demo\.nobody: the source has no such table"):
        extract_table(decl, decl.tables[0], decl.default_url, Landing(tmp_path / "landing"))


def test_redact_hides_password():
    assert "s3cret" not in redact("postgresql://etl:s3cret@db.example:5432/hr")


def test_declarations_load_and_reject_bad_files(tmp_path):
    systems = {s.system: s for s in load_systems()}
    assert set(systems) == {"hr", "student", "finance", "asset"}
    assert systems["hr"].table("hr_staff").primary_key == ("staff_no",)
    bad = tmp_path / "bad.yml"
    bad.write_text("system: x\nconnection: {default_url: 'sqlite://'}\ntables:\n  - {name: t}\n")
    with pytest.raises(DeclarationError, match="lacks 'primary_key'"):
        load_system(bad)
    bad.write_text("system: x\ntables:\n  - description: a: b\n")
    with pytest.raises(DeclarationError, match=r"bad\.yml: not valid YAML"):
        load_system(bad)


def test_new_source_column_lands_and_is_reported(tmp_path, caplog):
    db, decl = _source(tmp_path)
    landing = Landing(tmp_path / "landing")
    extract_table(decl, decl.tables[0], decl.default_url, landing)
    with sqlite3.connect(db) as conn:
        conn.execute("alter table people add column email text")
        conn.execute("update people set email = 'p1@x', changed = '2026-03-01 00:00:00' where id = 'P1'")
    second = extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert second.added_columns == ("email",)
    assert "demo.people: new source columns landed: email" in caplog.text
    manifest = json.loads(landing.manifest_path("demo", "people", second.batch_id).read_text())
    assert manifest["added_columns"] == ["email"]
    landed = pq.read_table(landing.data_path("demo", "people", second.batch_id)).to_pylist()
    assert {r["id"]: r["email"] for r in landed}["P1"] == "p1@x"


def test_changed_type_fails_the_table_naming_the_column(tmp_path):
    db, decl = _source(tmp_path)
    landing = Landing(tmp_path / "landing")
    extract_table(decl, decl.tables[0], decl.default_url, landing)
    with sqlite3.connect(db) as conn:  # the vendor's upgrade turned the amount into an integer
        conn.execute("alter table people rename to people_old")
        conn.execute("create table people (id text primary key, name text, amount integer, changed text)")
        conn.execute("insert into people select id, name, cast(amount as integer), changed from people_old")
    with pytest.raises(ExtractError, match=r"demo\.people: column 'amount' changed type from decimal128"):
        extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert len(list(landing.manifests("demo", "people"))) == 1, "nothing landed for the failed table"


def test_other_tables_go_on_when_one_fails(tmp_path):
    db, decl = _source(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("create table rooms (code text primary key, changed text)")
        conn.execute("insert into rooms values ('R1', '2026-01-01 00:00:00')")
    tables = (TableDecl("missing", ("id",)), decl.tables[0], TableDecl("rooms", ("code",), "changed"))
    decl = SystemDecl("demo", "demo", None, decl.default_url, tables, tmp_path)
    landing = Landing(tmp_path / "landing")
    with pytest.raises(
        ExtractError, match=r"1 of 3 tables failed: demo\.missing: the source has no such table"
    ):
        extract_system(decl, decl.default_url, landing)
    assert [len(list(landing.manifests("demo", t))) for t in ("people", "rooms")] == [1, 1]


def test_unreachable_source_is_retried_then_named_without_its_password(tmp_path, caplog):
    decl = SystemDecl("demo", "demo", None, "", (TableDecl("people", ("id",), "changed"),), tmp_path)
    url = "postgresql+psycopg://etl:s3cret-pw@127.0.0.1:1/hr?connect_timeout=2"  # nothing listens on port 1
    with pytest.raises(SourceUnreachable) as caught:
        extract_table(decl, decl.tables[0], url, Landing(tmp_path / "landing"), retries=2, backoff_s=0.01)
    message = str(caught.value)
    assert "demo.people: cannot read from postgresql+psycopg://etl:***@127.0.0.1:1/hr" in message
    assert "gave up after 3 attempts" in message
    assert caplog.text.count("retrying in") == 2
    assert "s3cret-pw" not in message + caplog.text


def _staged_ids(landing):
    """What staging shows: the newest version per key, tombstones winning (enough for one table)."""
    newest = {}
    for manifest in landing.manifests("demo", "people"):
        for row in pq.read_table(landing.data_path("demo", "people", manifest["batch_id"])).to_pylist():
            if row["id"] not in newest or row["_deleted"]:
                newest[row["id"]] = row
    return sorted(k for k, r in newest.items() if not r["_deleted"])


def test_key_snapshot_every_n_hours_is_skipped_until_due_and_catches_short_lived_rows(tmp_path):
    db, decl = _source(tmp_path)
    table = TableDecl("people", ("id",), "changed", deletes="key_snapshot", snapshot_every_hours=24)
    landing = Landing(tmp_path / "landing")
    first = extract_table(decl, table, decl.default_url, landing)
    with sqlite3.connect(db) as conn:  # P9 is created and landed between two snapshots...
        conn.execute("insert into people values ('P9', 'n9', 9.90, '2026-03-01 00:00:00')")
    second = extract_table(decl, table, decl.default_url, landing)
    manifest = json.loads(landing.manifest_path("demo", "people", second.batch_id).read_text())
    assert manifest["keys"] is None, "not due: no key snapshot"
    assert manifest["key_snapshot"] == first.batch_id
    with sqlite3.connect(db) as conn:  # ... then deleted, with P0, before the next snapshot
        conn.execute("delete from people where id in ('P9', 'P0')")
    assert extract_table(decl, table, decl.default_url, landing).tombstones == 0, "still not due"
    assert "P9" in _staged_ids(landing)
    forced = extract_table(decl, table, decl.default_url, landing, key_snapshot=True)
    assert forced.tombstones == 2
    assert _staged_ids(landing) == ["P1", "P2", "P3", "P4"]


def test_key_snapshot_without_interval_runs_every_time(tmp_path):
    db, decl = _source(tmp_path)
    table = TableDecl("people", ("id",), "changed", deletes="key_snapshot")
    landing = Landing(tmp_path / "landing")
    extract_table(decl, table, decl.default_url, landing)
    with sqlite3.connect(db) as conn:
        conn.execute("delete from people where id = 'P2'")
    assert extract_table(decl, table, decl.default_url, landing).tombstones == 1
    assert _staged_ids(landing) == ["P0", "P1", "P3", "P4"]


def test_a_missing_referenced_key_snapshot_fails_the_table_naming_the_file(tmp_path):
    db, decl = _source(tmp_path)
    table = TableDecl("people", ("id",), "changed", deletes="key_snapshot")
    landing = Landing(tmp_path / "landing")
    first = extract_table(decl, table, decl.default_url, landing)  # no snapshot before: fine
    lost = landing.keys_path("demo", "people", first.batch_id)
    lost.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("delete from people where id = 'P0'")
    with pytest.raises(
        ExtractError, match=rf"key snapshot {lost} \(named by batch {first.batch_id}\) is missing"
    ):
        extract_table(decl, table, decl.default_url, landing)
    assert len(list(landing.manifests("demo", "people"))) == 1, "nothing landed"
    again = extract_table(decl, table, decl.default_url, landing, full_refresh=True)
    assert again.mode == "full_refresh", "a full refresh takes a new baseline"
    assert landing.keys_path("demo", "people", again.batch_id).exists()


def test_watermarks_compare_in_the_cursor_columns_type(tmp_path):
    db = tmp_path / "src.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table events (id integer primary key, seq integer, what text)")
        conn.executemany("insert into events values (?, ?, ?)", [(i, i, "a") for i in range(9990, 10000)])
    decl = SystemDecl(
        "demo", "demo", None, f"sqlite:///{db}", (TableDecl("events", ("id",), "seq"),), tmp_path
    )
    landing = Landing(tmp_path / "landing")
    extract_table(decl, decl.tables[0], decl.default_url, landing)
    with sqlite3.connect(db) as conn:
        conn.executemany("insert into events values (?, ?, ?)", [(i, i, "b") for i in range(10000, 10501)])
    extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert landing.watermark("demo", "events") == "10500", '"10500" is past "9999"'
    third = extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert third.rows == 1, "only the watermark row is read again, not everything since 9999"


def test_cursor_order_by_type():
    from datetime import datetime
    from decimal import Decimal

    from campusdx.sources.landing import cursor_order

    assert cursor_order("10500", "int64") > cursor_order("9999", "int64")
    assert cursor_order("10.5", "decimal128(18, 2)") > cursor_order("9.75", "decimal128(18, 2)")
    assert cursor_order("2026-01-02", "date32[day]") == datetime(2026, 1, 2)
    assert cursor_order("2026-01-02 00:00:00+08:00", "timestamp[us, tz=UTC]") == datetime(2026, 1, 1, 16)
    assert cursor_order("9999", "string") > cursor_order("10500", "string"), "text as the source orders it"
    assert cursor_order("1.5", "double") == Decimal("1.5")
    with pytest.raises(ValueError, match="is not a int64"):
        cursor_order("x", "int64")


def test_the_atomic_helper_fsyncs_the_file_before_and_the_folder_after_the_rename(tmp_path, monkeypatch):
    import os

    from campusdx.core import atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("rename", str(b))), real_replace(a, b)))
    tmp = tmp_path / "x.parquet.tmp"
    tmp.write_bytes(b"data")
    atomic.replace(tmp, tmp_path / "x.parquet")
    assert events == [("fsync", str(tmp)), ("rename", str(tmp_path / "x.parquet")), ("fsync", str(tmp_path))]
    assert real_fsync is not None and (tmp_path / "x.parquet").read_bytes() == b"data"


def test_a_value_that_does_not_convert_is_named_by_row_never_shown():
    from campusdx.sources.sql import _to_array

    with pytest.raises(ExtractError) as raised:
        _to_array(["2001-02-03", None, "李四"], pa.date32(), "hr.t_rs_jzg.csrq")
    message = str(raised.value)
    assert "hr.t_rs_jzg.csrq" in message and "row 3" in message and "date32" in message
    assert "李四" not in message and raised.value.__cause__ is None and raised.value.__suppress_context__
