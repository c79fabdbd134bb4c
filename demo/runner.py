"""The main job on the embedded default: simulated campus -> warehouse -> gate -> packages -> receipts.

Runs the real DAGs on Airflow's own scheduler (campusdx.demo.stack: scheduler with LocalExecutor,
DAG processor, triggerer, API server; SQLite metadata database under ``<home>/airflow``): it
triggers every extract DAG as an operator would, the Assets start the warehouse DAG and then the
publish DAG, and it waits for the publish run. The simulated provincial platform runs beside them
as its own process, answering packages in the gateway directory as the real one would. Every
process it starts is stopped when it ends, also on Ctrl-C or a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from campusdx.core import snapshots
from campusdx.core.declarations import load_systems
from campusdx.core.profile import load_profile
from campusdx.core.settings import REPO_ROOT, Paths, current, executable
from campusdx.core.settings import paths as default_paths
from campusdx.demo import sharing
from campusdx.demo.campus import generate
from campusdx.demo.keys import demo_key_file, ensure_demo_key
from campusdx.demo.sshd import LocalSshd
from campusdx.demo.stack import (
    CELERY_WORKERS,
    EDGE_EXECUTOR,
    EDGE_WORKERS,
    TERMINAL,
    AirflowStack,
    Run,
    StackFailed,
    celery_profile,
    edge_profile,
    ensure_database,
)
from campusdx.exchange.publisher import open_ledger
from campusdx.sources.landing import Landing

log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """A pipeline step exited non-zero; the message says which and where its log is."""


def airflow_env(
    paths: Paths, base: dict[str, str] | None = None, profile: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment for Airflow, dbt and GX on the embedded default; nothing leaves the machine.
    ``base``: the environment to start from (default: this process's, now); ``profile``: what
    an executor profile changes (campusdx.demo.stack.celery_profile)."""
    env = dict(os.environ if base is None else base)
    airflow_home = paths.airflow
    env.update(
        {
            "CAMPUSDX_HOME": str(paths.home),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "GX_ANALYTICS_ENABLED": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DO_NOT_TRACK": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # deploy/airflow_local_settings.py: task processes fork with the stages loaded
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT / "deploy"), env.get("PYTHONPATH")) if p),
            # the scheduler of the embedded default: tasks side by side on this machine
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "16"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # an idle scheduler looks again after 0.2 s, not 1 s: a ready task starts sooner,
            # and a cycle has some 17 levels of tasks one after another (benchmarks/README.md)
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": env.get(
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.2"
            ),
            # one machine, two cores: one API worker; DAG files re-parsed when they change
            "AIRFLOW__API__WORKERS": env.get("AIRFLOW__API__WORKERS", "1"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # the demo triggers the extract DAGs; a deployment keeps @daily (README)
            "CAMPUSDX_EXTRACT_SCHEDULE": env.get("CAMPUSDX_EXTRACT_SCHEDULE", "none"),
            # no backup repository or key on a demo machine: the backup DAG is off (README)
            "CAMPUSDX_BACKUP_SCHEDULE": env.get("CAMPUSDX_BACKUP_SCHEDULE", "none"),
        }
    )
    env.update(profile or {})
    return env


def _run(step: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path | None = None) -> float:
    """Run one step, its output to ``<log_dir>/<step>.log``; raise StepFailed on a non-zero exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{step}.log"
    started = time.monotonic()
    print(f"  - {step} ...", end="", flush=True)
    with open(log_file, "wb") as out:
        code = subprocess.call(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - started
    print(f" {'ok' if code == 0 else 'FAILED'} ({seconds:.0f}s)")
    if code != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise StepFailed(f"{step} failed (exit {code}); full log: {log_file}\n" + "\n".join(tail))
    return seconds


def prepare(
    paths: Paths,
    *,
    scale: float | None = None,
    seed: int | None = None,
    regenerate: bool = False,
    profile: dict[str, str] | None = None,
    base_env: dict[str, str] | None = None,
) -> None:
    """Simulated campus (when missing), demo exchange key, Airflow metadata DB and the dbt pool."""

    paths.home.mkdir(parents=True, exist_ok=True)
    if regenerate or not (paths.sources / "dirt.json").exists():
        campus = generate(paths.sources, scale=scale, **({"seed": seed} if seed is not None else {}))
        print(f"  - simulated campus written to {paths.sources} ({sum(campus.rows.values())} rows)")
    ensure_demo_key(demo_key_file(paths))
    env = airflow_env(paths, base_env, profile)
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"):
        ensure_database(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    logs = paths.home / "logs"
    _run("airflow-db-migrate", [executable("airflow"), "db", "migrate"], env, logs)
    _run(
        "airflow-pool",
        [executable("airflow"), "pools", "set", "campusdx_dbt", "1", "dbt: one writer"],
        env,
        logs,
    )


@contextlib.contextmanager
def running(
    paths: Paths,
    *,
    sftp: bool = False,
    base_env: dict[str, str] | None = None,
    profile: dict[str, str] | None = None,
):
    """The province simulator and Airflow's components for ``paths``; yields the stack and stops
    everything it started when the block ends, also on Ctrl-C or a failure.

    ``sftp``: the packages go over SFTP to a real OpenSSH server started on 127.0.0.1 (demo.sshd),
    which serves the province's gateway directory, instead of into that directory directly.
    ``base_env``: the environment to start from (default: this process's, now); ``profile``:
    an executor profile's environment (with CeleryExecutor, its two workers start too; with the
    EdgeExecutor, its edge worker)."""

    env = airflow_env(paths, base_env, profile)
    celery = env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    edge = env["AIRFLOW__CORE__EXECUTOR"] == EDGE_EXECUTOR
    with contextlib.ExitStack() as stack:
        stack.enter_context(_terminate_as_exit())
        if sftp:
            env["CAMPUSDX_SFTP_SETTINGS"] = str(stack.enter_context(_sftp_gateway(paths)))
        stack.enter_context(province(paths, env))
        try:
            yield stack.enter_context(
                AirflowStack(
                    paths,
                    env,
                    celery_workers=CELERY_WORKERS if celery else (),
                    edge_workers=EDGE_WORKERS if edge else (),
                )
            )
        except StackFailed as failed:
            raise StepFailed(str(failed)) from None


DAG_IDS = ("warehouse", "publish")


def cycle(airflow: AirflowStack, systems, say=print) -> list[Run]:
    """Trigger every extract DAG, then wait until the publish run their Assets started ends;
    ``say``s each DAG run as it finishes. Returns every DAG run queued since the trigger."""
    extracts = [f"extract_{d.system}" for d in systems]
    airflow.wait_for_dags([*extracts, *DAG_IDS])
    started = time.monotonic()
    since = airflow.trigger(extracts)
    say(f"  - triggered {', '.join(extracts)}")
    reported: dict[str, Run] = {}

    def progress(runs) -> None:
        for run in runs:
            if run.state in TERMINAL and run.dag_id not in reported:
                reported[run.dag_id] = run
                seconds = (run.end_date - run.start_date).total_seconds() if run.end_date else 0
                verdict = "ok" if run.state == "success" else "FAILED"
                say(f"  - dag {run.dag_id} ... {verdict} ({seconds:.0f}s)")

    airflow.wait_for("publish", since, progress=progress)
    runs = airflow.runs(since)
    progress(runs)
    say(f"  - cycle done in {time.monotonic() - started:.0f}s")
    return runs


@contextlib.contextmanager
def _terminate_as_exit():
    """While the stack runs, SIGTERM and SIGHUP (a CI timeout, a closed terminal) end the runner
    as Ctrl-C does, through the clean-up that stops every process it started (main thread only:
    signal handlers cannot be set elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    before = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def province(paths: Paths, env: dict[str, str]):
    """The simulated provincial platform, answering packages in the gateway, as its own process."""
    logs = paths.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "province.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "campusdx.demo.province", "serve", "--home", str(paths.home)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _serve(airflow: AirflowStack) -> None:
    passwords = airflow.paths.airflow / "simple_auth_manager_passwords.json.generated"
    print(
        f"\nAirflow UI: {airflow.url}  (user admin; its password is in {passwords})\n"
        "The stack keeps running; Ctrl-C stops every process it started."
    )
    try:
        while True:
            airflow.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopping the stack ...")


@contextlib.contextmanager
def _sftp_gateway(paths: Paths):
    """A local OpenSSH server for the demo; yields the settings file the publisher reads."""

    server = LocalSshd(paths.home / "sshd", paths.gateway)
    endpoint = server.start()
    settings_file = paths.home / "sshd" / "sftp.json"
    settings_file.write_text(json.dumps(asdict(endpoint)), encoding="utf-8")
    print(
        f"  - SFTP gateway: OpenSSH on {endpoint.host}:{endpoint.port}, "
        f"host key pinned in {endpoint.known_hosts}"
    )
    try:
        yield settings_file
    finally:
        server.stop()


def summary(paths: Paths) -> dict:
    """Rows per stage, gate verdicts, packages and receipts, and where to look."""

    landing = Landing(paths.landing)
    landed = {}
    for decl in load_systems():
        for t in decl.enabled_tables:
            manifests = list(landing.manifests(decl.system, t.name))
            landed[f"{decl.system}.{t.name}"] = {
                "batches": len(manifests),
                "rows_last_batch": manifests[-1]["rows"] if manifests else 0,
            }
    with snapshots.connect(paths) as conn:  # what every reader outside the pipeline opens
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('staging', 'marts', 'feeds', 'quality') order by 1, 2"
        ).fetchall()
        counts = {
            f"{s}.{t}": conn.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables
        }
    verdicts = {}
    for path in sorted((paths.quality / "gate").glob("*.json")):
        verdict = json.loads(path.read_text(encoding="utf-8"))
        verdicts[verdict["dataset"]] = verdict
    profile = load_profile()
    with open_ledger(paths, profile) as ledger:
        packages = [
            {"package_id": e.package_id, "status": e.status, "rows": e.rows, "batch_id": e.batch_id}
            for e in ledger.packages()
        ]
    return {"landed": landed, "warehouse": counts, "gate": verdicts, "packages": packages}


def print_summary(paths: Paths, report: dict) -> None:
    print("\nLanding zone (rows in the latest batch / batches so far)")
    for name, info in report["landed"].items():
        print(f"  {name:<24} {info['rows_last_batch']:>8} / {info['batches']}")
    print("\nWarehouse (rows)")
    for name, rows in report["warehouse"].items():
        print(f"  {name:<40} {rows:>8}")
    print("\nQuality gate")
    for dataset, v in report["gate"].items():
        rules = ", ".join(f"{r} x{n}" for r, n in sorted(v["failures"].items())) or "no failures"
        print(
            f"  {dataset:<8} {v['status']:<8} checks {v['checks_passed']} passed / {v['checks_failed']} "
            f"failed; {v['rows_checked']} rows, {v['rows_quarantined']} quarantined ({rules})"
        )
        if v.get("warnings"):
            warned = ", ".join(f"{r} x{n}" for r, n in sorted(v["warnings"].items()))
            print(f"           warnings (published): {warned}")
        for reason in v["blocking"]:
            print(f"           blocked: {reason}")
    print("\nPackages and receipts")
    for p in report["packages"]:
        print(
            f"  {p['package_id']:<32} {p['status']:<10} {p['rows'] if p['rows'] is not None else '':>8} rows"
        )
    docs = paths.quality / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    print(
        f"\nWhere to look\n  warehouse   {snapshots.root(paths) / 'current' / snapshots.DATABASE}"
        "  (open read-only: duckdb.connect(path, read_only=True))"
        f"\n  quality     {paths.quality / 'summary.html'}  (and summary.json; campusdx gate-status)"
        f"\n  data docs   {docs}\n  gateway     {paths.gateway}/inbox and /receipts"
        f"\n  ledger      {paths.exchange / 'ledger.sqlite'}\n  logs        {paths.home / 'logs'}"
    )


def demo(
    paths: Paths | None = None,
    *,
    scale: float | None = None,
    seed: int | None = None,
    regenerate: bool = False,
    sftp: bool = False,
    serve: bool = False,
    celery: bool = False,
    edge: bool = False,
) -> dict:
    """The whole main job; returns the summary. ``celery``: on the CeleryExecutor profile
    (PostgreSQL and Redis from ``CAMPUSDX_CELERY_DB_URL`` / ``CAMPUSDX_CELERY_BROKER_URL``, two
    workers) instead of the embedded LocalExecutor; ``edge``: on the EdgeExecutor profile
    (PostgreSQL from ``CAMPUSDX_EDGE_DB_URL``, one edge worker pulling its work over HTTP)."""
    paths = paths or default_paths()
    print(f"campusdx demo in {paths.home}")
    profile = None
    if edge:
        profile = edge_profile(current().edge_db_url)
    elif celery:
        settings = current()
        # the broker keys of this home under a prefix of their own: two homes never share a queue
        home_key = hashlib.sha256(str(paths.home.resolve()).encode()).hexdigest()[:8]
        profile = celery_profile(settings.celery_db_url, settings.celery_broker_url, f"campusdx-{home_key}:")
    prepare(paths, scale=scale, seed=seed, regenerate=regenerate, profile=profile)
    with running(paths, sftp=sftp, profile=profile) as airflow:
        cycle(airflow, load_systems())
        report = summary(paths)
        print_summary(paths, report)
        sharing.call_once(paths)
        if serve:
            _serve(airflow)
    return report
