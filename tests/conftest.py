"""Shared test set-up. The environment is fixed before anything imports Airflow, dbt or GX:
nothing a test runs may reach the network or write outside its temporary directories."""

from __future__ import annotations

import os
import tempfile
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


def answer(home, profile, **misbehave) -> list[dict]:
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
