"""A warehouse built from the demo campus by the real tools: generate, extract, `dbt build`.

As the warehouse DAG does, each build is `dbt build`, the quality gate on every published dataset,
then the gated feeds. `warehouse` is built once per session at the demo default size;
`advanced_warehouse` starts from a copy of that home, then the campus lives 30 more days
(`advance --days 30`) and the warehouse is extracted and built again (snapshots record the
changes). A test that must write starts from a copy too (`copy_home`), never from a build of
its own: a build is the slowest thing the suite does. Both builds start in the background as
soon as collection ends (when a selected test needs them), so they run while the tests before
the first one that needs them do. dbt writes its target and log folders under the test's home,
never into dbt_project/; its profile's plugin creates the pseudonym key under the home's
secrets/ at the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from campusdx.core.settings import DBT_PROJECT, REPO_ROOT, executable
from tests.conftest import in_background


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


def _env(home: Path, base: dict | None = None) -> dict:
    """``base`` (default: this process's environment now) with the home set."""
    return {**(os.environ if base is None else base), "CAMPUSDX_HOME": str(home)}


def campusdx(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "campusdx.cli", *args],
        env=_env(home, env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"campusdx {' '.join(args)}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return result


def dbt(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    target, logs = home / "dbt-target", home / "dbt-logs"
    result = subprocess.run(
        [
            executable("dbt"),
            *args,
            *("--profiles-dir", str(DBT_PROJECT), "--target-path", str(target), "--log-path", str(logs)),
        ],
        env=_env(home, env),
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"dbt {' '.join(args)}:\n{result.stdout[-5000:]}"
    return result


GATE = "from campusdx import pipeline\nfor dataset in pipeline.published_datasets(): pipeline.gate(dataset)"


def python(home: Path, code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -c code args`` in the repository with the home set; asserts it succeeded."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(home, env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def gate(home: Path, env: dict | None = None) -> None:
    """The quality gate on every published dataset, then the feeds without what it held back,
    published as the current warehouse snapshot (what the publisher reads)."""
    python(home, GATE, env=env)
    dbt(home, "build", "--select", "tag:gated", env=env)
    campusdx(home, "snapshots", "publish", env=env)


GATE_ONLY = (
    "import sys\nfrom campusdx import pipeline\n"
    "for dataset in pipeline.published_datasets():\n    if dataset in sys.argv[1:]: pipeline.gate(dataset)"
)


def gate_only(home: Path, *datasets: str, env: dict | None = None) -> None:
    """The quality gate on ``datasets`` alone (in the order a warehouse run judges them), then the
    quarantine and their feeds: the rest of a warehouse run when only their candidates changed.
    The other datasets keep the verdicts, findings and feeds ``home`` already has."""
    python(home, GATE_ONLY, *datasets, env=env)
    dbt(home, "build", "--select", "quarantine", *(f"feed_px__{d.lower()}" for d in datasets), env=env)
    campusdx(home, "snapshots", "publish", env=env)


def rebuild_system(home: Path, system: str, *datasets: str, env: dict | None = None):
    """A warehouse run after one source system changed: extract only ``system``, ``dbt build``
    only what its landing sources feed (its staging, snapshots, marts, candidates and their dbt
    tests; not the gated models, built after the gate), then ``gate_only`` the ``datasets`` whose
    candidates it rebuilt. Returns the ``dbt build`` result."""
    campusdx(home, "extract", "--system", system, env=env)
    built = dbt(home, "build", "--select", f"source:{system}+", "--exclude", "tag:gated", env=env)
    gate_only(home, *datasets, env=env)
    return built


def build(home: Path, *generate_args: str, env: dict | None = None) -> Built:
    """What the warehouse DAG runs: dbt build, the quality gate, the gated feeds."""
    campusdx(home, "generate", *generate_args, env=env)
    campusdx(home, "extract", env=env)
    dbt(home, "build", env=env)
    gate(home, env=env)
    return Built(home)


def copy_home(built: Built, home: Path, *ignore: str) -> Built:
    """A copy of a built home at ``home`` for a test that writes (``ignore``: glob patterns of
    what not to copy). Until a build runs in the copy, its staging and intermediate views still
    read the landing zone of the original, which holds the same files."""
    shutil.copytree(
        built.home, home, symlinks=True, ignore=shutil.ignore_patterns(*ignore) if ignore else None
    )
    return Built(home)


def _before(built: Built) -> dict:
    """What the campus looked like before the advance: the staging students, when built."""
    return {
        "students": {r[0]: r for r in built.rows("select * from staging.stg_student__students")},
        "built_at": built.rows("select max(batch_id) from staging.stg_student__students")[0][0],
    }


def _advance(built: Built, env: dict | None = None) -> Built:
    """30 simulated days in ``built``'s home, then extract, dbt build and the gate again."""
    campusdx(built.home, "advance", "--days", "30", env=env)
    campusdx(built.home, "extract", env=env)
    dbt(built.home, "build", env=env)
    gate(built.home, env=env)
    return built


_BACKGROUND: dict[str, Future] = {}
"""The session builds started when collection ended: "warehouse" (the built warehouse, with the
copy for the advance and what it looked like before) and "advanced_warehouse"."""


def pytest_collection_finish(session):
    """Start the session builds the selected tests need, one after the other in the background:
    the warehouse, its copy for the advance (made before any test can write into the warehouse's
    home), then the advance. The environment is taken now: tests change os.environ meanwhile."""
    if session.config.option.collectonly:
        return
    needed = set()
    for item in session.items:
        uses = {"warehouse", "advanced_warehouse"} & set(getattr(item, "fixturenames", ()))
        if uses and "advance" in item.name:  # takes it by request.getfixturevalue (test_quality)
            uses.add("advanced_warehouse")
        needed |= uses
    if not needed:
        return
    factory = session.config._tmp_path_factory
    env = dict(os.environ)
    home = factory.mktemp("warehouse")
    advanced_home = factory.mktemp("advanced") / "home" if "advanced_warehouse" in needed else None

    def warehouse_and_copy() -> tuple[Built, Built | None, dict | None]:
        built = build(home, env=env)
        if advanced_home is None:
            return built, None, None
        return built, copy_home(built, advanced_home), _before(built)

    first = _BACKGROUND["warehouse"] = in_background(warehouse_and_copy)
    if advanced_home is not None:

        def advanced() -> tuple[Built, dict]:
            _, copy, before = first.result()
            return _advance(copy, env=env), before

        _BACKGROUND["advanced_warehouse"] = in_background(advanced)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Built:
    """The demo campus at its default size, extracted and built once."""
    if "warehouse" in _BACKGROUND:
        return _BACKGROUND["warehouse"].result()[0]
    return build(tmp_path_factory.mktemp("warehouse"))


@pytest.fixture(scope="session")
def advanced_warehouse(warehouse, tmp_path_factory) -> tuple[Built, dict]:
    """The demo campus built (a copy of ``warehouse``), then 30 simulated days later extracted
    and built again. Returns the warehouse and what the campus looked like before the advance
    (``before``: the staging students)."""
    if "advanced_warehouse" in _BACKGROUND:
        return _BACKGROUND["advanced_warehouse"].result()
    before = _before(warehouse)
    built = copy_home(warehouse, tmp_path_factory.mktemp("advanced") / "home")
    return _advance(built), before
