"""Helpers of the sharing service's tests: a home reading another home's snapshots, the people
of the demo's departments, and a token for each."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from campusdx.core.settings import Paths
from campusdx.service.app import create_app

COLLEGE = "205"  # 计算机科学与技术学院
REGISTRY = "106"  # 教务处: steward of the student datasets
PERSONNEL = "103"  # 人事处: steward of staff, orgs and persons


def home_over(snapshots: Path, home: Path) -> Paths:
    """A service home whose published snapshots are those of ``snapshots`` (read, never written)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "snapshots").symlink_to(snapshots, target_is_directory=True)
    return Paths(home)


def campusdx_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """``campusdx ARGS`` on ``home``, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "campusdx.cli", *args],
        env={"CAMPUSDX_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def bearer(client: TestClient, pid: str, secret: str) -> dict[str, str]:
    r = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": pid, "client_secret": secret}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@dataclass
class Campus:
    """A client of the service and its principals (id, secret, headers) by name."""

    client: TestClient
    ids: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, name: str, role: str, department: str | None = None) -> None:
        principal, secret = self.client.app.state.service.store.add_principal(name, role, department)
        self.ids[name], self.secrets[name] = principal.id, secret
        self.headers[name] = bearer(self.client, principal.id, secret)

    def get(self, who: str, url: str, **params):
        return self.client.get(url, headers=self.headers[who], params=params)

    def post(self, who: str, url: str, json=None):
        return self.client.post(url, headers=self.headers[who], json=json)

    def all_pages(self, who: str, url: str, **params) -> tuple[list[dict], list[dict]]:
        """Every record of a list endpoint, following next_cursor; and every page's body."""
        records, pages, cursor = [], [], None
        while True:
            r = self.get(who, url, **params, **({"cursor": cursor} if cursor else {}))
            assert r.status_code == 200, r.text
            pages.append(r.json())
            records += r.json()["records"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return records, pages


def campus(paths: Paths) -> Campus:
    """The service over ``paths`` with the people of the tests: an application of the 一卡通 centre,
    the registry's and personnel's stewards, a department user of the college, an auditor and
    the platform administrator."""
    # the tests call faster than any person: the rate limit is its own test's (which sets it)
    unset = [v for v in ("CAMPUSDX_SHARING_RATE", "CAMPUSDX_SHARING_BURST") if v not in os.environ]
    os.environ.update(dict.fromkeys(unset, "100000"))
    try:
        out = Campus(TestClient(create_app(paths)))
    finally:
        for variable in unset:
            del os.environ[variable]
    out.add("card", "application", "402")
    out.add("registry", "steward", REGISTRY)
    out.add("personnel", "steward", PERSONNEL)
    out.add("college_user", "dept_user", COLLEGE)
    out.add("auditor", "auditor")
    out.add("admin", "admin")
    return out
