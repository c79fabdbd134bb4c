"""Fixtures for tests against real database servers (PostgreSQL, MariaDB) on 127.0.0.1.

Every test in this folder is marked ``integration`` (``pytest -m "not integration"`` skips them).

* ``postgres_admin_url`` / ``mariadb_admin_url`` (session): a reachable server's admin URL, from
  ``CAMPUSDX_TEST_PG_URL`` / ``CAMPUSDX_TEST_MARIADB_URL``, else
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` /
  ``mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4``.
* ``postgres_db`` / ``mariadb_db`` (per test): a fresh database ``campusdx_test_<8 hex>``, dropped
  afterwards; the fixture yields its SQLAlchemy URL.

A server that cannot be reached skips its tests with a reason naming the server and the URL
(password hidden), except when ``CI=true``: there an unreachable server fails the tests, so a
broken CI service never passes as "all green, some skipped".
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

HERE = Path(__file__).resolve().parent

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIADB_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from this folder ``integration`` (this hook sees the whole session)."""
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: a missing database server is a failure here)", pytrace=False)
    pytest.skip(reason)


def _admin_url(env_var: str, default: str, backend: str, driver: str) -> URL:
    text = os.environ.get(env_var) or default
    try:
        url = make_url(text)
    except Exception:
        pytest.fail(f"{env_var} is not a valid SQLAlchemy URL (value withheld)", pytrace=False)
    if url.get_backend_name() not in backend:
        pytest.fail(f"{env_var} must be a {backend[0]} URL, not {url.get_backend_name()}", pytrace=False)
    if "+" not in url.drivername:
        url = url.set(drivername=f"{url.get_backend_name()}+{driver}")
    return url


def _check_reachable(url: URL, server: str, env_var: str) -> None:
    shown = url.render_as_string(hide_password=True)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, poolclass=sa.NullPool)
    reason = None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # any failure to reach or log in: say which server and where
        lines = str(getattr(exc, "orig", exc)).strip().splitlines()
        detail = lines[0] if lines else ""
        if url.password:
            detail = detail.replace(str(url.password), "***")
        reason = (
            f"INTEGRATION TESTS NOT RUN: {server} is not reachable at {shown} "
            f"({type(exc).__name__}: {detail}). Start it or set {env_var} to an admin URL."
        )
    finally:
        engine.dispose()
    if reason:
        _unavailable(reason)  # outside the except block: no chained driver traceback


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """Admin URL of a reachable PostgreSQL server (skips, or fails under CI=true, otherwise)."""
    url = _admin_url("CAMPUSDX_TEST_PG_URL", PG_DEFAULT, ("postgresql",), "psycopg")
    _check_reachable(url, "PostgreSQL", "CAMPUSDX_TEST_PG_URL")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def mariadb_admin_url() -> str:
    """Admin URL of a reachable MariaDB/MySQL server (skips, or fails under CI=true, otherwise)."""
    url = _admin_url("CAMPUSDX_TEST_MARIADB_URL", MARIADB_DEFAULT, ("mysql", "mariadb"), "pymysql")
    url = url.update_query_dict({"charset": "utf8mb4"})
    _check_reachable(url, "MariaDB", "CAMPUSDX_TEST_MARIADB_URL")
    return url.render_as_string(hide_password=False)


def _new_db_name() -> str:
    return f"campusdx_test_{secrets.token_hex(4)}"


@pytest.fixture
def postgres_db(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty UTF-8 PostgreSQL database for one test; yields its SQLAlchemy URL."""
    admin = make_url(postgres_admin_url)
    name = _new_db_name()
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' "
                    "LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
                )
            )
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            # FORCE ends sessions a test left open (PostgreSQL 13+)
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def mariadb_db(mariadb_admin_url: str) -> Iterator[str]:
    """A fresh, empty utf8mb4 MariaDB database for one test; yields its SQLAlchemy URL."""
    admin = make_url(mariadb_admin_url)
    name = _new_db_name()
    engine = sa.create_engine(admin, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (``CAMPUSDX_TEST_REDIS_URL``, default 127.0.0.1:6379 db 0); skips,
    or fails under CI=true, otherwise. Tests keep their keys under a prefix of their own."""
    import redis

    url = os.environ.get("CAMPUSDX_TEST_REDIS_URL") or REDIS_DEFAULT
    reason = None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # any failure to reach it: say where
        where = redis.connection.parse_url(url).get("host")  # no password in the message
        reason = (
            f"INTEGRATION TESTS NOT RUN: Redis is not reachable at {where} "
            f"({type(exc).__name__}). Start it or set CAMPUSDX_TEST_REDIS_URL."
        )
    if reason:
        _unavailable(reason)
    return url
