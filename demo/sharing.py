"""The end of ``make demo``: a campus system calls the data-sharing service once.

The service runs as ``campusdx serve`` would run it (a process of its own on 127.0.0.1, a free
port). The demo's people are made once per home and kept in ``secrets/sharing-demo.json``
(mode 0600): the platform administrator registers the 一卡通 system (network centre, 402) as
an application; the application asks for the students of 计算机科学与技术学院 (205) without
personal fields; 教务处 (106), the students' steward, approves; the application signs in with
its client credentials and reads the first page, as the README's example does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from campusdx.core import atomic
from campusdx.core.settings import Paths

PEOPLE = "sharing-demo.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _people(paths: Paths) -> dict:
    """The demo's administrator, steward and application (made on the first run of a home)."""
    from campusdx.service.store import Store

    file = paths.secrets / PEOPLE
    if file.exists():
        return json.loads(file.read_text(encoding="utf-8"))
    store = Store(paths)
    try:
        people = {}
        for key, name, role, dept in (
            ("admin", "平台管理员", "admin", None),
            ("steward", "教务处学籍管理员", "steward", "106"),
        ):
            principal, secret = store.add_principal(name, role, dept)
            people[key] = {"id": principal.id, "secret": secret}
    finally:
        store.close()
    atomic.create_new(file, json.dumps(people).encode())
    return json.loads(file.read_text(encoding="utf-8"))


def _token(client: httpx.Client, who: dict) -> dict[str, str]:
    r = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(who["id"], who["secret"])
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def call_once(paths: Paths, env: dict[str, str] | None = None) -> dict:
    """Start the service, make the 一卡通 system's call, print what it got, stop the service."""
    people = _people(paths)
    port = _free_port()
    log = (paths.home / "logs" / "sharing-service.log").open("ab")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("campusdx")), "serve", "--port", str(port)],
        env={**(env or os.environ), "CAMPUSDX_HOME": str(paths.home)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/openapi.json").raise_for_status()
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the sharing service did not start: see {log.name}") from None
                    time.sleep(0.2)
            admin = _token(client, people["admin"])
            if "card" not in people:
                card = {"name": "一卡通系统", "department": "402"}
                r = client.post("/v1/applications", headers=admin, json=card)
                r.raise_for_status()
                people["card"] = r.json()
                (paths.secrets / PEOPLE).write_text(json.dumps(people), encoding="utf-8")
            card = _token(client, people["card"])
            if not client.get("/v1/grants", headers=card, params={"status": "approved"}).json():
                r = client.post(
                    "/v1/grants",
                    headers=card,
                    json={
                        "dataset": "students",
                        "scope": ["205"],
                        "purpose": "校园卡开户与挂失：在校学生名单",
                        "ends_on": str(date.today() + timedelta(days=180)),
                    },
                )
                r.raise_for_status()
                steward = _token(client, people["steward"])
                client.post(
                    f"/v1/grants/{r.json()['id']}/decision", headers=steward, json={"approve": True}
                ).raise_for_status()
            page = client.get("/v1/data/students", headers=card, params={"limit": 2})
            page.raise_for_status()
            body = page.json()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    print("\nSharing service (campusdx serve), called as a campus system:")
    print(f"  GET {base}/v1/data/students?limit=2")
    print(f"  as 一卡通系统 ({people['card']['id']}), granted the students of 205 by 教务处")
    print(f"  snapshot {body['snapshot']}; masked: {', '.join(body['masked_fields'])}")
    for record in body["records"]:
        keys = ("student_no", "full_name", "id_number", "org_id", "student_status_code_name")
        shown = {k: record[k] for k in keys}
        print(f"  {json.dumps(shown, ensure_ascii=False)}")
    print(f"  next page: cursor={body['next_cursor']}; next sync: changed_since={body['next_changed_since']}")
    print(f"  audit: campusdx audit --who {people['card']['id']}   chain: campusdx audit --verify")
    return body
