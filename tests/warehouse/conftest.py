"""A warehouse built from the demo campus by the real tools: generate, extract, `dbt build`.

As the warehouse DAG does, each build is `dbt build`, the quality gate on every published dataset,
then the gated feeds. `warehouse` is built once per session at the demo default size;
`advanced_warehouse` is built, then the campus lives 30 more days (`advance --days 30`) and
the warehouse is extracted and built again (snapshots record the changes). dbt writes its
target and log folders under the test's home, never into dbt_project/; its profile's plugin
creates the pseudonym key under the home's secrets/ at the first run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from campusdx.core.settings import DBT_PROJECT, REPO_ROOT, executable


@dataclass
class Built:
    home: Path

    @property
    def path(self) -> Path:
        return self.home / "warehouse.duckdb"

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path), read_only=True)

    def rows(self, sql: str, *params) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, list(params)).fetchall()

    @property
    def dirt(self) -> dict:
        return json.loads((self.home / "sources" / "dirt.json").read_text(encoding="utf-8"))


def _env(home: Path) -> dict:
    return {**os.environ, "CAMPUSDX_HOME": str(home)}


def campusdx(home: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "campusdx.cli", *args],
        env=_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"campusdx {' '.join(args)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return result


def dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    target, logs = home / "dbt-target", home / "dbt-logs"
    result = subprocess.run(
        [
            executable("dbt"),
            *args,
            *("--profiles-dir", str(DBT_PROJECT), "--target-path", str(target), "--log-path", str(logs)),
        ],
        env=_env(home),
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"dbt {' '.join(args)}:\n{result.stdout[-5000:]}"
    return result


GATE = "from campusdx import pipeline\nfor dataset in pipeline.published_datasets(): pipeline.gate(dataset)"


def gate(home: Path) -> None:
    """The quality gate on every published dataset, then the feeds without what it held back."""
    result = subprocess.run(
        [sys.executable, "-c", GATE],
        env=_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dbt(home, "build", "--select", "tag:gated")


def build(home: Path, *generate_args: str) -> Built:
    """What the warehouse DAG runs: dbt build, the quality gate, the gated feeds."""
    campusdx(home, "generate", *generate_args)
    campusdx(home, "extract")
    dbt(home, "build")
    gate(home)
    return Built(home)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Built:
    """The demo campus at its default size, extracted and built once."""
    return build(tmp_path_factory.mktemp("warehouse"))


@pytest.fixture(scope="session")
def advanced_warehouse(tmp_path_factory) -> tuple[Built, dict]:
    """Built, then 30 simulated days later extracted and built again. Returns the warehouse and
    what the campus looked like before the advance (``before``: the staging students)."""
    built = build(tmp_path_factory.mktemp("advanced"))
    before = {
        "students": {r[0]: r for r in built.rows("select * from staging.stg_student__students")},
        "built_at": built.rows("select max(batch_id) from staging.stg_student__students")[0][0],
    }
    campusdx(built.home, "advance", "--days", "30")
    campusdx(built.home, "extract")
    dbt(built.home, "build")
    gate(built.home)
    return built, before
