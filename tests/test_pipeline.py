"""Pipeline steps: connection resolution from Airflow connection fields."""

import pytest

from campusdx.pipeline import connection_url


def test_postgres_connection_uses_psycopg():
    url = connection_url("postgres", "db.campus", 5432, "etl", "p@ss:word", "hr")
    assert url == "postgresql+psycopg://etl:p%40ss%3Aword@db.campus:5432/hr"


def test_mysql_connection_uses_pymysql_and_utf8mb4():
    url = connection_url("mysql", "127.0.0.1", 3306, "root", None, "student")
    assert url == "mysql+pymysql://root@127.0.0.1:3306/student?charset=utf8mb4"


def test_unknown_connection_type_is_named():
    with pytest.raises(ValueError, match="'oracle' is not supported"):
        connection_url("oracle", "h", 1521, "u", "p", "s")


def test_a_feed_reads_in_the_same_order_whatever_order_it_was_written(tmp_path):
    """CWKMYE's key is composite: the same rows must give the same package fingerprint."""
    import random

    import duckdb

    from campusdx.core import snapshots
    from campusdx.core.settings import Paths
    from campusdx.exchange.package import content_fingerprint
    from campusdx.pipeline import read_feed

    rows = [
        ("2026", f"{month:02d}", account, "", dept, "0.00", "1.00", "1.00", "0.00", "1")
        for month in (1, 2, 3)
        for account in ("1001", "1002", "4001")
        for dept in ("0101", "0102")
    ]
    fingerprints = set()
    for seed in (1, 2, 3):
        shuffled = random.Random(seed).sample(rows, len(rows))
        paths = Paths(tmp_path / str(seed))
        paths.home.mkdir()
        with duckdb.connect(str(paths.warehouse)) as conn:
            conn.execute("create schema feeds")
            conn.execute(
                "create table feeds.feed_px__cwkmye (KJND varchar, KJQJ varchar, KMDM varchar, "
                "KMMC varchar, DWH varchar, QCYE varchar, JFFSE varchar, DFFSE varchar, QMYE varchar, "
                "YEFX varchar)"
            )
            conn.executemany(
                "insert into feeds.feed_px__cwkmye values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", shuffled
            )
        snapshots.publish(paths, "test")
        table = read_feed("CWKMYE", paths)
        assert table.num_rows == len(rows)
        assert table.column("KJQJ").to_pylist()[0] == "01"
        fingerprints.add(content_fingerprint(table))
    assert len(fingerprints) == 1


def test_a_source_url_resolves_environment_then_airflow_connection_then_default(tmp_path, monkeypatch):
    from campusdx import pipeline
    from campusdx.core.settings import Paths

    paths = Paths(tmp_path / "home")
    monkeypatch.setattr(pipeline, "_airflow_uri", lambda conn_id: f"postgresql+psycopg://db/{conn_id}")
    monkeypatch.setenv("CAMPUSDX_SOURCE_HR_URL", "sqlite:////elsewhere/hr.sqlite")
    assert pipeline.source_url("hr", paths) == ("sqlite:////elsewhere/hr.sqlite", "CAMPUSDX_SOURCE_HR_URL")
    monkeypatch.delenv("CAMPUSDX_SOURCE_HR_URL")
    assert pipeline.source_url("hr", paths) == (
        "postgresql+psycopg://db/campusdx_source_hr",
        "Airflow connection campusdx_source_hr",
    )
    monkeypatch.setattr(pipeline, "_airflow_uri", lambda conn_id: None)
    assert pipeline.source_url("hr", paths) == (
        f"sqlite:///{paths.home}/sources/hr.sqlite",
        "embedded default",
    )
