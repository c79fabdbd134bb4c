"""Airflow's own components on this machine, started and stopped as one stack.

The embedded default runs the DAGs as a deployment does: the scheduler (LocalExecutor, or
CeleryExecutor with its workers), the DAG processor, the triggerer and the API server, each its
own process in its own process group, its output in ``<home>/logs/airflow-<component>.log``,
the metadata database from ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (SQLite under
``<home>/airflow`` by default). Stopping the stack ends every process it started, their children
included (LocalExecutor's workers, the API server's workers), also after Ctrl-C or a failure:
nothing is left holding the port or the metadata database.

An operator's view of a run comes from the metadata database (``dag_run``, ``task_instance``),
read with SQLAlchemy, as Airflow's own UI does; DAG runs are triggered through the REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from campusdx.core.settings import Paths, executable

TERMINAL = {"success", "failed"}
PASSWORDS = "simple_auth_manager_passwords.json.generated"
"""The embedded default's UI and API login (SimpleAuthManager, user ``admin``), under AIRFLOW_HOME."""


class StackFailed(RuntimeError):
    """A component died, or a DAG run failed; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    dag_id: str
    run_id: str
    state: str
    start_date: datetime | None
    end_date: datetime | None
    queued_at: datetime | None


@dataclass
class AirflowStack:
    """Airflow's components for one home. Use as a context manager: it stops what it started."""

    paths: Paths
    env: dict[str, str]
    components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
    celery_workers: tuple[str, ...] = ()  # CeleryExecutor profile: each worker's queues ("a,b")
    edge_workers: tuple[str, ...] = ()  # EdgeExecutor profile: each edge worker's queues
    host: str = "127.0.0.1"
    port: int = 0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.env = {
            **self.env,
            "AIRFLOW__API__HOST": self.host,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://{self.host}:{self.port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{self.host}:{self.port}/execution/",
        }
        if self.edge_workers:  # where edge workers reach the API server (over HTTPS beyond a demo)
            self.env["AIRFLOW__EDGE__API_URL"] = f"http://{self.host}:{self.port}/edge_worker/v1/rpcapi"
        self.engine = sa.create_engine(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], poolclass=sa.NullPool)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        logs = self.paths.home / "logs"
        for private in (logs, self.paths.airflow):
            private.mkdir(parents=True, exist_ok=True)
            private.chmod(0o700)
        self._admin_password()
        argv = {
            "api-server": ["api-server", "--host", self.host, "--port", str(self.port)],
            # no log servers: they listen on every interface at fixed ports (8793, 8794) and
            # nothing needs them, the API server reads the task logs from the shared log folder
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
        }
        for i, queues in enumerate(self.celery_workers, start=1):
            argv[f"celery-worker-{i}"] = ["celery", "worker", "--skip-serve-logs", "--queues", queues]
            argv[f"celery-worker-{i}"] += ["--concurrency", "2"]
            argv[f"celery-worker-{i}"] += ["--celery-hostname", f"campusdx-worker-{i}@%h"]
        for i, queues in enumerate(self.edge_workers, start=1):
            argv[f"edge-worker-{i}"] = ["edge", "worker", "--queues", queues, "--concurrency", "4"]
            argv[f"edge-worker-{i}"] += ["--edge-hostname", f"campusdx-edge-{i}"]
        workers = [n for n in argv if n.startswith(("celery-worker-", "edge-worker-"))]
        for name in [*self.components, *workers]:
            args = argv[name]
            out = open(logs / f"airflow-{name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(out)
            self.processes[name] = subprocess.Popen(
                [executable("airflow"), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its children too
            )
        self._wait_for_api()

    def _admin_password(self) -> None:
        """The UI's ``admin`` password, made here (mode 0600) before the API server starts: Airflow
        would otherwise make it and print it into the API server's log."""
        path = self.paths.airflow / PASSWORDS
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"admin": secrets.token_urlsafe(16)}) + "\n")

    def _wait_for_api(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return
            time.sleep(0.5)
        raise StackFailed(f"the Airflow API server did not listen on {self.url} within {timeout:.0f} s")

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                log = self.paths.home / "logs" / f"airflow-{name}.log"
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
                # the API server prints the admin password it generates: never repeat such a line
                said = "\n".join(line for line in tail if "password" not in line.lower())
                raise StackFailed(f"airflow {name} exited ({proc.returncode}); log: {log}\n{said}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each component has used so far, its children included:
        the live ones and those it has reaped (task processes, API workers)."""
        used = {}
        for name, proc in self.processes.items():
            total = 0.0
            with contextlib.suppress(psutil.NoSuchProcess):
                top = psutil.Process(proc.pid)
                for p in [top, *top.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        t = p.cpu_times()
                        total += t.user + t.system + t.children_user + t.children_system
            used[name] = round(total, 1)
        return used

    def stop(self, grace: float = 20) -> None:
        """SIGTERM to every component's process group, SIGKILL after ``grace`` seconds to what is
        left, including any descendant that left its group. What each component used in CPU is
        written to ``<home>/logs/airflow-cpu.json`` first. A second Ctrl-C or SIGTERM meanwhile
        does not interrupt it."""
        calm = threading.current_thread() is threading.main_thread()
        before = (
            {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if calm else {}
        )
        try:
            self._stop(grace)
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)

    def _stop(self, grace: float) -> None:
        if self.processes:
            cpu = self.paths.home / "logs" / "airflow-cpu.json"
            with contextlib.suppress(OSError):
                cpu.write_text(json.dumps(self.cpu_seconds(), indent=1), encoding="utf-8")
        procs = []
        for proc in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(proc.pid))
                procs.extend(psutil.Process(proc.pid).children(recursive=True))
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything forked into the group meanwhile
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.processes.clear()
        for out in self._logs:
            out.close()
        self._logs.clear()
        self.engine.dispose()

    # -- an operator's commands ------------------------------------------------------------
    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [executable("airflow"), *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise StackFailed(f"airflow {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        """Until the DAG processor has serialized every DAG in ``dag_ids``."""
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(sa.exc.OperationalError), self.engine.connect() as conn:
                found = {r[0] for r in conn.execute(sa.text("select dag_id from serialized_dag"))}
                missing = set(dag_ids) - found
                if not missing:
                    return
            time.sleep(1)
        raise StackFailed(
            f"DAGs not parsed within {timeout:.0f} s: {sorted(missing)} (see airflow-dag-processor.log)"
        )

    def api(self) -> httpx.Client:
        """A client of the stack's REST API, logged in as the embedded default's admin (its
        password is the one the API server generated into ``AIRFLOW_HOME``)."""
        passwords = json.loads((self.paths.airflow / PASSWORDS).read_text(encoding="utf-8"))
        client = httpx.Client(base_url=self.url, timeout=60)
        token = client.post("/auth/token", json={"username": "admin", "password": passwords["admin"]})
        if token.status_code >= 300:
            client.close()
            raise StackFailed(f"logging in to the Airflow API failed: HTTP {token.status_code}")
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return client

    def trigger(self, dag_ids: list[str]) -> datetime:
        """A manual run of each DAG through the REST API, as an operator's tool would trigger it;
        returns when they were triggered."""
        since = datetime.now(UTC)
        with contextlib.closing(self.api()) as client:
            for dag_id in dag_ids:
                answer = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
                if answer.status_code >= 300:
                    raise StackFailed(
                        f"triggering {dag_id} failed: HTTP {answer.status_code} {answer.text[:500]}"
                    )
        return since

    def runs(self, since: datetime) -> list[Run]:
        """DAG runs queued since ``since`` (every DAG), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select dag_id, run_id, state, start_date, end_date, queued_at from dag_run "
                    "where queued_at >= :since order by queued_at"
                ).columns(**_TIMES),
                {"since": _db_time(self.engine, since)},
            ).fetchall()
        return [Run(*r) for r in rows]

    def wait_for(self, dag_id: str, since: datetime, timeout: float = 1800, progress=None) -> Run:
        """Until a run of ``dag_id`` queued since ``since`` ends; fails at once when any DAG run
        queued since then fails, naming its failed tasks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            runs = self.runs(since)
            failed = [r for r in runs if r.state == "failed"]
            if failed:
                raise StackFailed(
                    "; ".join(
                        f"{r.dag_id} run {r.run_id} failed: tasks {self.failed_tasks(r)}" for r in failed
                    )
                    + f" (task logs under {self.paths.airflow / 'logs'})"
                )
            done = [r for r in runs if r.dag_id == dag_id and r.state == "success"]
            if done:
                return done[0]
            if progress:
                progress(runs)
            time.sleep(2)
        raise StackFailed(f"no finished {dag_id} run within {timeout:.0f} s")

    def failed_tasks(self, run: Run) -> list[str]:
        with self.engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    sa.text(
                        "select task_id from task_instance where dag_id = :d and run_id = :r "
                        "and state in ('failed', 'upstream_failed')"
                    ),
                    {"d": run.dag_id, "r": run.run_id},
                )
            ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select task_id, map_index, state, start_date, end_date, try_number, queue "
                    "from task_instance where dag_id = :d and run_id = :r"
                ).columns(start_date=sa.DateTime, end_date=sa.DateTime),
                {"d": dag_id, "r": run_id},
            ).mappings()
            return [dict(r) for r in rows]


_TIMES = {"start_date": sa.DateTime, "end_date": sa.DateTime, "queued_at": sa.DateTime}
"""SQLite hands Airflow's times back as text: typed columns parse them (naive UTC)."""


WAREHOUSE_QUEUE = "campusdx_warehouse"
CELERY_WORKERS = (f"default,{WAREHOUSE_QUEUE}", "default")
"""The Celery profile's two workers: the first takes the warehouse file's tasks (dbt, the
reconciliation, the gates: one DuckDB writer, its readers beside it) and its share of the rest;
the second extracts and publishes only."""


def _distributed(executor: str, db_url: str) -> dict[str, str]:
    """What every distributed profile sets: its executor, the PostgreSQL metadata database
    ``db_url``, the warehouse's tasks on their own queue."""
    return {
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        # psycopg 3 is async too: no second driver (Airflow would look for asyncpg)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": db_url.replace("+psycopg:", "+psycopg_async:", 1),
        "CAMPUSDX_WAREHOUSE_QUEUE": WAREHOUSE_QUEUE,
    }


def celery_profile(db_url: str, broker_url: str, key_prefix: str = "campusdx:") -> dict[str, str]:
    """The environment of the CeleryExecutor profile: metadata database ``db_url`` (PostgreSQL),
    broker ``broker_url`` (Redis), every broker key under ``key_prefix``, the warehouse's tasks
    on their own queue."""
    return {
        **_distributed("CeleryExecutor", db_url),
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": key_prefix,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }


EDGE_EXECUTOR = "airflow.providers.edge3.executors.EdgeExecutor"
EDGE_WORKERS = (f"default,{WAREHOUSE_QUEUE}",)
"""The EdgeExecutor profile's one edge worker: in a province, the one inside a university's
network, taking that school's work (its extraction, its warehouse, its packages)."""


def edge_profile(db_url: str) -> dict[str, str]:
    """The environment of the EdgeExecutor profile: metadata database ``db_url`` (PostgreSQL),
    the API server serving edge workers, which poll it for work every second (the provider's
    default is 5 s) and report every 5 s; the warehouse's tasks on their own queue."""
    return {
        **_distributed(EDGE_EXECUTOR, db_url),
        "AIRFLOW__EDGE__API_ENABLED": "True",
        "AIRFLOW__EDGE__JOB_POLL_INTERVAL": "1",
        "AIRFLOW__EDGE__HEARTBEAT_INTERVAL": "5",
    }


def ensure_database(db_url: str) -> None:
    """Create the PostgreSQL database of ``db_url`` when it does not exist (its name is ours,
    checked against a plain identifier pattern, then quoted)."""
    import re

    url = sa.make_url(db_url)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", url.database or ""):
        raise StackFailed(f"metadata database name {url.database!r}: use lower-case letters, digits, _")
    admin = sa.create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("select 1 from pg_database where datname = :d"), {"d": url.database}
            )
            if exists.first() is None:
                conn.execute(sa.text(f'create database "{url.database}"'))
    finally:
        admin.dispose()


def _db_time(engine, when: datetime):
    """SQLite stores Airflow's times as naive UTC text; PostgreSQL as timestamptz."""
    return when.replace(tzinfo=None) if engine.dialect.name == "sqlite" else when


def processes_of(home: Path) -> list[psutil.Process]:
    """Every process of this user whose environment names ``home`` as its CAMPUSDX_HOME."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get("CAMPUSDX_HOME") == str(home):
                found.append(proc)
    return found
