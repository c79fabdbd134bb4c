"""One home for where things live.

Everything the pipeline writes sits under one *home* directory: ``$CAMPUSDX_HOME`` when set,
otherwise ``var/`` in the repository. Declarations (what the pipeline reads about the world)
live under ``schemas/`` in the repository. Nothing here touches the disk; callers create what
they need.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

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


def home() -> Path:
    """The home directory: ``$CAMPUSDX_HOME`` or ``<repo>/var``."""
    return Path(os.environ.get("CAMPUSDX_HOME") or REPO_ROOT / "var").resolve()


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
