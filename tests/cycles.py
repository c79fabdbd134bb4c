"""The end-to-end runs, made once per session in the background (tests/conftest.py):

1. ``campusdx demo`` on the tiny campus: the FULL cycle on Airflow's scheduler; then which of
   its processes are still alive (none may be);
2. a copy of that home, on which Airflow's components are started again and two more scheduled
   cycles run, each after ``campusdx advance --days 1`` (the home is copied after each cycle,
   and once before them, for the tests to look at);
3. on the demo's own home, the main job again on unchanged sources, what each DAG task calls,
   without Airflow (extract, ``dbt build``, reconcile, the gate, the gated feeds, publish, the
   province's answers, receipts).

Everything runs in subprocesses given the environment taken at collection, or reads files:
the tests in the foreground change ``os.environ`` meanwhile.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from campusdx.core.settings import Paths

BACKGROUND: dict = {}
"""Futures of the runs started in the background (by tests/conftest.py), by name."""

COPY_IGNORE = shutil.ignore_patterns("airflow", "logs", "dbt", "dbt-target", "dbt-logs")
"""What a look at a home after a cycle leaves out: Airflow's state, logs and dbt's work files."""


def leftovers(home: Path) -> list[str]:
    """The processes still alive whose environment names ``home`` (its Airflow, its province)."""
    from campusdx.demo.stack import processes_of

    described = []
    for proc in processes_of(home):
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:200]}")
        except Exception:  # it ended while being described
            continue
    return described


def demo_and_cycles(home: Path, before: dict, env: dict, run_demo) -> SimpleNamespace:
    first = run_demo(home, env)
    out = SimpleNamespace(home=home, before=before, first=first, left_after_demo=leftovers(home))
    if first.returncode != 0:
        return out
    cycles_home = home.with_name(home.name + "-cycles")
    shutil.copytree(home, cycles_home, symlinks=True)
    try:
        out.cycles = scheduled_cycles(cycles_home, env)
    except Exception as exc:  # reported by the tests that need the cycles, after the others ran
        out.cycles = SimpleNamespace(error=f"{type(exc).__name__}: {exc}", said=[], records=[])
    out.left_after_cycles = leftovers(cycles_home)
    out.snapshot = warehouse_rows(home / "warehouse.duckdb")
    out.second = second_run(home, env)
    return out


def scheduled_cycles(home: Path, env: dict, days: int = 2) -> SimpleNamespace:
    """``days`` cycles on the scheduler, each after one simulated day; a look at the home after
    each (``after-0``: before the first)."""
    from campusdx.demo.runner import running

    said: list[str] = []
    shutil.copytree(home, home.with_name(home.name + "-after-0"), ignore=COPY_IGNORE, symlinks=True)
    base = {**env, "CAMPUSDX_HOME": str(home)}
    with running(Paths(home), base_env=base) as airflow:
        # an analyst's read-only connection to the current snapshot, held through the first cycle
        with Analyst(home / "snapshots" / "current" / "warehouse.duckdb") as analyst:
            records = [day_cycle(airflow, home, env, 1, said)]
            analyst.seen.append(analyst.look())
        analyst.seen.append(Analyst.once(home / "snapshots" / "current" / "warehouse.duckdb"))
        records += [day_cycle(airflow, home, env, day, said) for day in range(2, days + 1)]
        every_run = airflow.runs(_EPOCH)
        every_instance = {r.run_id: airflow.task_instances(r.dag_id, r.run_id) for r in every_run}
    return SimpleNamespace(
        error=None,
        said=said,
        records=records,
        every_run=every_run,
        every_instance=every_instance,
        analyst=analyst.seen,
    )


class Analyst:
    """A notebook in another process: a read-only DuckDB connection opened on ``path`` and held
    until the block ends. ``look()`` asks it, on the connection it holds, which build it reads
    (the dbt invocation that wrote it) and how many ledger entries it sees; ``seen`` starts with
    its first look."""

    SCRIPT = (
        "import sys, duckdb\n"
        "conn = duckdb.connect(sys.argv[1], read_only=True)\n"
        "build = 'select dbt_invocation_id from campusdx_build.info'\n"
        "look = lambda: [str(conn.execute(build).fetchone()[0]),"
        " conn.execute('select count(*) from marts.fct_ledger_entry').fetchone()[0]]\n"
        "print(look(), flush=True)\n"
        "while sys.stdin.readline():\n    print(look(), flush=True)\n"
    )

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, []

    def __enter__(self) -> Analyst:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.seen.append(self._answer())
        return self

    def _answer(self) -> list:
        import ast

        line = self.process.stdout.readline()
        assert line, f"the analyst's process ended ({self.process.poll()})"
        return ast.literal_eval(line)

    def look(self) -> list:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return self._answer()

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)

    @staticmethod
    def once(path: Path) -> list:
        """What a new connection sees."""
        with Analyst(path) as fresh:
            return fresh.seen[0]


def day_cycle(airflow, home: Path, env: dict, day: int, said: list[str]) -> SimpleNamespace:
    """One scheduled cycle (after ``campusdx advance --days 1`` unless ``day`` is 0), then a look
    at the home (``<home>-after-<day>``): the cycle's DAG runs and that copy."""
    from campusdx.core.declarations import load_systems
    from campusdx.demo.runner import cycle
    from tests.warehouse.conftest import campusdx

    if day:
        campusdx(home, "advance", "--days", "1", env=env)
    runs = cycle(airflow, load_systems(), say=said.append)
    look = home.with_name(f"{home.name}-after-{day}")
    shutil.copytree(home, look, ignore=COPY_IGNORE, symlinks=True)
    return SimpleNamespace(runs=runs, home=look)


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def warehouse_rows(path: Path) -> dict[str, list[str]]:
    """Every row of every warehouse table, as text, per table (order-independent)."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts', 'feeds', 'quality', 'codes') "
            "order by 1, 2"
        ).fetchall()
        # the quarantine's last_seen is the latest run that made each finding: it moves by design
        moving = {"quality.quarantine": " exclude (last_seen)"}
        return {
            f"{s}.{t}": sorted(
                map(repr, conn.execute(f'select *{moving.get(f"{s}.{t}", "")} from "{s}"."{t}"').fetchall())
            )
            for s, t in tables
        }


PUBLISH_ALL = """
import contextlib, io, json
from campusdx import pipeline
from campusdx.core.settings import paths
from campusdx.demo.runner import print_summary, summary
from tests.conftest import answer
p = paths()
order = pipeline.publish_order(pipeline.published_datasets())
sent = {code: pipeline.publish(code, paths=p) for code, _ in order}
answer(p)
for code in sent:
    pipeline.receipt(code, paths=p)
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    print_summary(p, summary(p))
print(json.dumps({"sent": sent, "stdout": printed.getvalue()}, default=str))
"""


def second_run(home: Path, env: dict) -> SimpleNamespace:
    """The main job again on unchanged sources, what each DAG task calls, without Airflow.
    Returns the ``dbt build``'s result, what was sent and the demo's summary printed after."""
    from tests.warehouse.conftest import campusdx, dbt, gate, python

    campusdx(home, "extract", env=env)
    built = dbt(home, "build", env=env)
    campusdx(home, "reconcile", env=env)
    gate(home, env=env)
    published = json.loads(python(home, PUBLISH_ALL, env=env).stdout.strip().splitlines()[-1])
    return SimpleNamespace(dbt=built, sent=published["sent"], stdout=published["stdout"])


def celery_cycles(
    home: Path, env: dict, pg_admin_url: str, broker_url: str, days: int = 2
) -> SimpleNamespace:
    """The same cycles on the CeleryExecutor profile: a fresh campus, a PostgreSQL metadata
    database of its own, Redis keys under a prefix of its own, two workers; FULL, then ``days``
    cycles each after one simulated day. Both are removed afterwards."""
    import secrets

    import redis
    import sqlalchemy as sa

    from campusdx.demo.runner import prepare, running
    from campusdx.demo.stack import celery_profile

    name = f"campusdx_test_{secrets.token_hex(4)}"
    prefix = f"{name}:"
    db_url = sa.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    profile = celery_profile(db_url, broker_url, prefix)
    paths = Paths(home)
    said: list[str] = []
    base = {**env, "CAMPUSDX_HOME": str(home)}
    try:
        prepare(paths, scale=0.002, profile=profile, base_env=base)
        with running(paths, base_env=base, profile=profile) as airflow:
            looks = [day_cycle(airflow, home, env, day, said) for day in range(days + 1)]
            every_run = airflow.runs(_EPOCH)
            instances = {r.run_id: airflow.task_instances(r.dag_id, r.run_id) for r in every_run}
        workers = {
            n: (home / "logs" / f"airflow-celery-worker-{n}.log").read_text(
                encoding="utf-8", errors="replace"
            )
            for n in (1, 2)
        }
        return SimpleNamespace(
            said=said,
            looks=looks,
            every_run=every_run,
            instances=instances,
            workers=workers,
            left=leftovers(home),
        )
    finally:
        admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(broker_url)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
