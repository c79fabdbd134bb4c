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
