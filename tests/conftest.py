"""Shared test set-up. The environment is fixed before anything imports Airflow, dbt or GX:
nothing a test runs may reach the network or write outside its temporary directories."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="campusdx-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
    }
)
os.environ.pop("CAMPUSDX_PX_KEY_FILE", None)
os.environ.pop("CAMPUSDX_SFTP_SETTINGS", None)

import pytest  # noqa: E402  (after the environment is fixed)

from campusdx.demo.keys import demo_key_file, ensure_demo_key  # noqa: E402


@pytest.fixture
def exchange_home(tmp_path, monkeypatch):
    """A fresh campusdx home for the publisher and the province (directory gateway, demo key)."""
    from campusdx.core import settings

    monkeypatch.setenv("CAMPUSDX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CAMPUSDX_PX_KEY_FILE", raising=False)
    monkeypatch.delenv("CAMPUSDX_SFTP_SETTINGS", raising=False)
    paths = settings.paths()
    ensure_demo_key(demo_key_file(paths))  # the key the simulated province issued
    return paths


def answer(home, profile=None, **misbehave) -> list[dict]:
    """The simulated province processes its inbox once (``misbehave``: its fault hooks)."""
    from campusdx.demo.province import Province

    province = Province.for_home(home, profile, **misbehave)
    try:
        return province.process_inbox()
    finally:
        province.close()


def start_sshd(directory: Path, root: Path):
    """A real OpenSSH server on 127.0.0.1 serving ``root`` (demo.sshd): (server, endpoint).
    Without OpenSSH the test skips with that reason, except under CI=true, where it fails."""
    from campusdx.demo.sshd import LocalSshd, SshdUnavailable

    server = LocalSshd(directory, root)
    try:
        return server, server.start()
    except SshdUnavailable as exc:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{exc} (CI=true: a missing SSH server is a failure here)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def profile():
    """The PX-1.0 profile as the project declares it (schemas/exchange/px-1.0)."""
    from campusdx.core.profile import load_profile

    return load_profile()


YIELDING = 10
"""The nice value of the end-to-end runs' thread and of every process it starts (Airflow's
components, their tasks, dbt): on a 2-core machine the tests in the foreground, one after the
other, are the longest path, and these runs only need to end before the tests that wait for
them, which come last. They take the cores the foreground leaves idle instead of slowing it."""


def in_background(work: Callable[[], object], nice: int = 0) -> Future:
    """``work()`` in a daemon thread; the future's result() waits for it and raises what it
    raised. The session's slow set-ups run so while the tests before their first user do.
    ``nice``: the thread's nice value (on Linux a thread's own, inherited by what it starts)."""
    future: Future = Future()

    def run() -> None:
        if nice and sys.platform == "linux":  # elsewhere a PID is the whole process, pytest too
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(work())
            except BaseException as exc:  # handed to the test that waits for it
                future.set_exception(exc)

    threading.Thread(target=run, name="campusdx-background", daemon=True).start()
    return future


DEMO_SCALE = "0.002"
"""The tiny campus of the end-to-end run (tests/test_e2e.py)."""


def run_demo(home: Path, base_env: dict) -> subprocess.CompletedProcess:
    """`campusdx demo` on the tiny campus in ``home``, with the real Airflow DAGs."""
    from campusdx.core.settings import REPO_ROOT

    env = {**base_env, "CAMPUSDX_HOME": str(home)}
    env.pop("AIRFLOW_HOME", None)  # the runner sets its own under the home
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return subprocess.run(
        [sys.executable, "-m", "campusdx.cli", "demo", "--scale", DEMO_SCALE],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=REPO_ROOT,
    )


def schema_files() -> dict:
    """sha256 of every file under schemas/ (a run must never write there)."""
    from campusdx.core.settings import SCHEMAS

    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(SCHEMAS.rglob("*")) if p.is_file()}


_DEMO: dict = {}
"""The end-to-end runs (tests/cycles.py): "run", their future, once collection is done."""


@pytest.fixture(scope="session")
def demo_first_run(tmp_path_factory):
    """The end-to-end runs (tests/cycles.py: the demo, two more scheduled cycles on a copy, the
    second run without Airflow), started in the background as soon as collection ended."""
    from tests.cycles import demo_and_cycles

    if "run" in _DEMO:
        return _DEMO["run"].result()
    return demo_and_cycles(tmp_path_factory.mktemp("demo"), schema_files(), dict(os.environ), run_demo)


SESSION_BUILDS = {"warehouse", "advanced_warehouse"}
"""The session's whole-pipeline builds (tests/warehouse/conftest.py): a test using one is slow."""


def pytest_collection_modifyitems(config, items):
    """``slow``: a test that needs a whole-pipeline build (a session build, or one of its own,
    marked in its module) or runs the demo (``e2e``). `make check` leaves these out. The tests of
    the background runs (the demo's cycles, the Celery profile's) come last, so that those runs
    go on while all the others do."""
    for item in items:
        if SESSION_BUILDS & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)
    last = {"demo_first_run", "celery_made"}  # what waits for a background run: at the end
    items.sort(key=lambda item: bool(last & set(getattr(item, "fixturenames", ()))))  # stable


def pytest_collection_finish(session):
    """Start the end-to-end runs in the background when a selected test needs them. The
    environment is taken now: tests change os.environ while they run."""
    if session.config.option.collectonly:
        return
    start_celery_cycles(session)
    if not any("demo_first_run" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from tests.cycles import demo_and_cycles

    home = session.config._tmp_path_factory.mktemp("demo")
    env, before = dict(os.environ), schema_files()
    _DEMO["run"] = in_background(lambda: demo_and_cycles(home, before, env, run_demo), YIELDING)


def start_celery_cycles(session) -> None:
    """The Celery profile's cycles (tests/integration/test_celery.py) in the background, when
    selected: on the servers the integration fixtures check (they skip or fail the test)."""
    if not any("celery_made" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from tests.cycles import BACKGROUND, celery_cycles
    from tests.integration.conftest import PG_DEFAULT, REDIS_DEFAULT

    pg = os.environ.get("CAMPUSDX_TEST_PG_URL") or PG_DEFAULT
    broker = os.environ.get("CAMPUSDX_TEST_REDIS_URL") or REDIS_DEFAULT
    home = session.config._tmp_path_factory.mktemp("celery") / "home"
    env = dict(os.environ)
    BACKGROUND["celery"] = in_background(lambda: celery_cycles(home, env, pg, broker), YIELDING)
