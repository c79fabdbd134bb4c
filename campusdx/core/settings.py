"""One home for where things live, and the one place configuration is resolved.

Everything the pipeline writes sits under one *home* directory: ``$CAMPUSDX_HOME`` when set,
otherwise ``var/`` in the repository. Declarations (what the pipeline reads about the world)
live under ``schemas/`` in the repository. Nothing here touches the disk; callers create what
they need.

Configuration is the environment, typed by :class:`Settings` (read afresh by :func:`current` on
every call, so a changed environment is seen at once; nothing is cached at import time):

==============================  =================================================================
``CAMPUSDX_HOME``               the home directory (default ``<repo>/var``)
``CAMPUSDX_LOCK_WAIT_S``        how long an Airflow task waits for a lock (default 600 s)
``CAMPUSDX_PX_KEY_FILE``        the province-issued key (default ``<home>/secrets/px-hmac.key``)
``CAMPUSDX_PSEUDONYM_KEY_FILE`` a deployment's pseudonym key (default: generated under the home)
``CAMPUSDX_SFTP_SETTINGS``      JSON settings of the SFTP gateway (default: the directory gateway)
``CAMPUSDX_RECEIPT_TIMEOUT_S``  how long the publish DAG waits for a receipt (default 600 s)
``CAMPUSDX_SOURCE_<SYSTEM>_URL`` a source system's URL (:meth:`Settings.source_url`)
``CAMPUSDX_WAREHOUSE_QUEUE``    the executor queue of the tasks that open the warehouse file
                                (dbt, reconciliation, gates; default ``default``)
``CAMPUSDX_CELERY_DB_URL``      ``campusdx demo --celery``: Airflow's metadata database
                                (default PostgreSQL on 127.0.0.1, database campusdx_airflow)
``CAMPUSDX_CELERY_BROKER_URL``  ``campusdx demo --celery``: the broker (default Redis on 127.0.0.1)
``CAMPUSDX_EDGE_DB_URL``        ``campusdx demo --edge``: Airflow's metadata database
                                (default PostgreSQL on 127.0.0.1, database campusdx_airflow_edge)
``CAMPUSDX_SNAPSHOTS_KEEP``     how many published warehouse snapshots to keep (default 3; the
                                current and pinned ones are kept besides)
``CAMPUSDX_BACKUP_DIR``         where ``campusdx backup`` and the backup DAG write (no default)
``CAMPUSDX_BACKUP_KEY_FILE``    the backup key (hex, 128 bits), kept outside the home (no default;
                                ``campusdx backup --new-key FILE`` makes one)
``CAMPUSDX_BACKUP_SCHEDULE``    the backup DAG's schedule (default ``@daily``; ``none``: off)
``CAMPUSDX_SHARING_RATE``       the sharing service's requests per second per caller (default 20)
``CAMPUSDX_SHARING_BURST``      and how many at once before the rate applies (default 40)
``CAMPUSDX_SHARING_QUERY_TIMEOUT_S`` the longest a sharing service query may run (default 5 s)
``CAMPUSDX_EXTRACT_SCHEDULE``   the extract DAGs' schedule (default ``@daily``; ``none``: run
                                only when triggered, as the embedded demo does)
==============================  =================================================================

An empty variable counts as unset. Resolution order: a variable set in the environment, else the
embedded default above. A source system's URL has one more step, resolved in
``campusdx.pipeline.source_url``: ``CAMPUSDX_SOURCE_<SYSTEM>_URL`` when set, else the system's
Airflow connection (``airflow_conn_id`` of ``schemas/sources/<system>.yml``) when it exists, else
the declaration's ``default_url`` under the home: environment > Airflow connection > default.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = REPO_ROOT / "schemas"
DBT_PROJECT = REPO_ROOT / "dbt_project"
SCHOOL_CODE_DEFAULT = "4161010704"


@dataclass(frozen=True)
class Paths:
    """Locations under one home directory."""

    home: Path

    @property
    def sources(self) -> Path:
        """Simulated campus source systems (SQLite databases, export files)."""
        return self.home / "sources"

    @property
    def landing(self) -> Path:
        """Append-only landing zone: Parquet per table per batch, with manifests."""
        return self.home / "landing"

    @property
    def warehouse(self) -> Path:
        """The DuckDB warehouse; dbt is its only writer."""
        return self.home / "warehouse.duckdb"

    @property
    def quality(self) -> Path:
        """Quality gate results, quarantine files and Data Docs."""
        return self.home / "quality"

    @property
    def exchange(self) -> Path:
        """Publisher state: the ledger and the outbox of built packages."""
        return self.home / "exchange"

    @property
    def gateway(self) -> Path:
        """Directory gateway of the embedded default (``inbox/``, ``receipts/``)."""
        return self.home / "gateway"

    @property
    def province(self) -> Path:
        """State of the simulated provincial platform."""
        return self.home / "province"

    @property
    def secrets(self) -> Path:
        """Demo secrets generated at first run (git-ignored)."""
        return self.home / "secrets"

    @property
    def airflow(self) -> Path:
        """AIRFLOW_HOME of the embedded default (SQLite metadata database)."""
        return self.home / "airflow"


def source_url_var(system: str) -> str:
    """The environment variable overriding a source system's URL, e.g. ``CAMPUSDX_SOURCE_HR_URL``."""
    return f"CAMPUSDX_SOURCE_{system.upper()}_URL"


class Settings(BaseSettings):
    """The ``CAMPUSDX_*`` environment, typed (see the module's documentation for each variable)."""

    model_config = SettingsConfigDict(
        env_prefix="CAMPUSDX_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    home: Path = REPO_ROOT / "var"
    lock_wait_s: float = 600
    px_key_file: Path | None = None
    pseudonym_key_file: Path | None = None
    sftp_settings: Path | None = None
    receipt_timeout_s: int = 600
    extract_schedule: str = "@daily"
    snapshots_keep: int = 3
    backup_dir: Path | None = None
    backup_key_file: Path | None = None
    backup_schedule: str = "@daily"
    warehouse_queue: str = "default"
    celery_db_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/campusdx_airflow"
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    edge_db_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/campusdx_airflow_edge"
    sharing_rate: float = 20
    sharing_burst: int = 40
    sharing_query_timeout_s: float = 5

    @property
    def extract_timetable(self) -> str | None:
        """The extract DAGs' ``schedule``: None when the variable says ``none``."""
        return _timetable(self.extract_schedule)

    @property
    def backup_timetable(self) -> str | None:
        """The backup DAG's ``schedule``: None when the variable says ``none``."""
        return _timetable(self.backup_schedule)

    def source_url(self, system: str) -> str | None:
        """``$CAMPUSDX_SOURCE_<SYSTEM>_URL``, or None when unset or empty (the names depend on the
        declared systems, so they are read here rather than declared as fields)."""
        return os.environ.get(source_url_var(system)) or None


def _timetable(schedule: str) -> str | None:
    return None if schedule.strip().lower() == "none" else schedule


def current() -> Settings:
    """The settings as the environment holds them now (read on every call)."""
    return Settings()


def home() -> Path:
    """The home directory: ``$CAMPUSDX_HOME`` or ``<repo>/var``."""
    return current().home.resolve()


def paths() -> Paths:
    """Paths under the current home (read from the environment on every call)."""
    return Paths(home())


def executable(name: str) -> str:
    """A command of this virtualenv (``dbt``, ``airflow``), falling back to the one on PATH."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def redact(url) -> str:
    """The URL (text or SQLAlchemy URL) with its password hidden, safe for logs and messages."""
    from sqlalchemy.engine import make_url  # here: settings is imported where SQLAlchemy is not needed

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
