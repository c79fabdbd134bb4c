"""The extract DAGs read real PostgreSQL and MariaDB sources through Airflow connections.

人事 goes into a fresh PostgreSQL database and 学工 into a fresh MariaDB database; the
connections ``campusdx_source_hr`` / ``campusdx_source_student`` are given to Airflow as
``AIRFLOW_CONN_*`` environment variables (the PostgreSQL one with a password: trust
authentication ignores it, so the test can check that it never reaches a log).
``airflow dags test`` then runs the real extract DAGs. A column the source then loses fails
that table's task, naming system, table and column, while the other table still lands.
"""

import json
import subprocess

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from campusdx.core.settings import Paths, executable
from campusdx.demo.campus import generate
from campusdx.demo.runner import airflow_env
from campusdx.demo.targets import copy_system
from campusdx.sources.landing import Landing

PASSWORD = "s3cret-airflow-pw"


def _airflow_uri(sqlalchemy_url: str, scheme: str, password: str | None = None) -> str:
    """The Airflow connection URI (``postgres://`` / ``mysql://``) of a SQLAlchemy URL."""
    url = make_url(sqlalchemy_url)
    secret = password if password is not None else (url.password or "")
    login = f"{url.username}:{secret}" if secret else url.username
    return f"{scheme}://{login}@{url.host}:{url.port}/{url.database}"


def _dags_test(dag_id: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [executable("airflow"), "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _landed(home, system: str, table: str) -> list[dict]:
    return list(Landing(Paths(home).landing).manifests(system, table))


def _all_logs(home, run: subprocess.CompletedProcess) -> str:
    files = [p for p in (home / "airflow").rglob("*.log") if p.is_file()]
    return run.stdout + run.stderr + "".join(p.read_text(errors="replace") for p in files)


@pytest.fixture
def campus_in_servers(tmp_path, postgres_db, mariadb_db):
    home = tmp_path / "var"
    generate(home / "sources", scale=0.002)
    copied = {
        "hr": copy_system(home / "sources" / "hr.sqlite", "hr", postgres_db),
        "student": copy_system(home / "sources" / "student.sqlite", "student", mariadb_db),
    }
    env = airflow_env(Paths(home))
    env["AIRFLOW_CONN_CAMPUSDX_SOURCE_HR"] = _airflow_uri(postgres_db, "postgres", PASSWORD)
    env["AIRFLOW_CONN_CAMPUSDX_SOURCE_STUDENT"] = _airflow_uri(mariadb_db, "mysql")
    migrate = subprocess.run(
        [executable("airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    return home, env, copied, postgres_db


def test_extract_dags_read_postgres_and_mariadb_through_airflow_connections(campus_in_servers):
    home, env, copied, postgres_url = campus_in_servers
    for system in ("hr", "student"):
        run = _dags_test(f"extract_{system}", env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        logs = _all_logs(home, run)
        assert f"Airflow connection campusdx_source_{system}" in logs
        assert PASSWORD not in logs, "the connection's password reached a log"
        for table, rows in copied[system].items():
            (manifest,) = _landed(home, system, table)
            assert manifest["rows"] == rows, (system, table)
            assert manifest["source"]["url"].startswith(
                "postgresql+psycopg://" if system == "hr" else "mysql+pymysql://"
            )
            assert PASSWORD not in json.dumps(manifest)

    # the HR vendor drops a column: hr_org fails by name, hr_staff still lands its new batch
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("alter table hr_org drop column org_short"))
    engine.dispose()
    run = _dags_test("extract_hr", env)
    assert run.returncode != 0, "a failed table fails the DAG run"
    assert "hr.hr_org: column 'org_short' was landed before and is missing" in _all_logs(home, run)
    assert len(_landed(home, "hr", "hr_org")) == 1
    assert len(_landed(home, "hr", "hr_staff")) == 2
