"""The sharing service end to end on the demo's scheduled cycles (tests/cycles.py): a campus
system registered, granted the students of one college without personal fields by the registry's
steward, reads every page; after ``advance --days 1`` and a scheduled cycle it asks for what
changed since and gets exactly the changed students of that college, masked. Outside its grant,
after revocation and after expiry it is refused, and the refusals are in the audit log, whose
chain verifies and names an edited or deleted entry."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import duckdb
import pytest

from campusdx.core.settings import Paths
from campusdx.service import access
from tests.sharing import bearer, campus, campusdx_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def days(demo_first_run):
    """The home as the demo left it (day 0) and after one simulated day and a scheduled cycle."""
    assert demo_first_run.first.returncode == 0, demo_first_run.first.stdout[-3000:]
    cycles = demo_first_run.cycles
    assert cycles.error is None, cycles.error + "\n" + "\n".join(cycles.said)
    day1 = cycles.records[0].home
    day0 = day1.with_name(day1.name.replace("-after-1", "-after-0"))
    return day0, day1


def _current(home) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "snapshots" / "current" / "warehouse.duckdb"), read_only=True)


def _changed_per_college(day0, day1) -> dict[str, set[str]]:
    """Per college, the students whose current version after the day is not one they had before
    (a version the warehouse's SCD2 history made from a change at the source)."""
    with _current(day0) as before:
        versions = {
            r[0]
            for r in before.execute(
                "select k_student_version from marts.dim_student where is_current"
            ).fetchall()
        }
    changed: dict[str, set[str]] = {}
    with _current(day1) as after:
        for sno, version, org in after.execute(
            "select student_no, k_student_version, org_id from marts.dim_student where is_current"
        ).fetchall():
            if version not in versions:
                changed.setdefault(org, set()).add(sno)
    return changed


def test_a_campus_system_syncs_exactly_the_changed_students_of_its_college(days, tmp_path, monkeypatch):
    day0, day1 = days
    changed = _changed_per_college(day0, day1)
    assert changed, "the simulated day changed no student: nothing to sync"
    college = max(changed, key=lambda org: len(changed[org]))
    home = tmp_path / "service"
    home.mkdir()
    (home / "snapshots").symlink_to(day0 / "snapshots", target_is_directory=True)
    demo = campus(Paths(home))

    # registered by the administrator, the application asks; the registry's steward approves
    r = demo.post("admin", "/v1/applications", {"name": "迎新系统", "department": "106"})
    assert r.status_code == 201
    demo.ids["welcome"], secret = r.json()["id"], r.json()["secret"]
    demo.headers["welcome"] = bearer(demo.client, demo.ids["welcome"], secret)
    ends = date.today() + timedelta(days=90)
    ask = {
        "dataset": "students",
        "scope": [college],
        "purpose": "迎新报到：本院学生名单",
        "ends_on": str(ends),
    }
    r = demo.post("welcome", "/v1/grants", ask)
    assert r.status_code == 201 and r.json()["status"] == "pending"
    gid = r.json()["id"]
    assert not set(r.json()["fields"]) & {"full_name", "id_number", "birth_date"}
    assert demo.get("welcome", "/v1/data/students").status_code == 403  # pending grants nothing
    assert (
        demo.post("registry", f"/v1/grants/{gid}/decision", {"approve": True}).json()["status"] == "approved"
    )
    assert demo.client.app.state.service.store.grant(gid).decided_by == demo.ids["registry"]

    every, pages = demo.all_pages("welcome", "/v1/data/students", limit=25)
    with _current(day0) as conn:
        expected = {
            r[0]
            for r in conn.execute(
                "select student_no from marts.dim_student where is_current and org_id = ?", [college]
            ).fetchall()
        }
    assert {r["student_no"] for r in every} == expected and len(every) == len(expected)
    token = pages[-1]["next_changed_since"]
    assert token

    # the next scheduled cycle publishes a new snapshot; the service reads the newest on the next call
    (home / "snapshots").unlink()
    (home / "snapshots").symlink_to(day1 / "snapshots", target_is_directory=True)
    since, pages = demo.all_pages("welcome", "/v1/data/students", changed_since=token, limit=25)
    assert {r["student_no"] for r in since} == changed[college]
    assert len(since) == len(changed[college])
    first_snapshot = (day0 / "snapshots" / "current").resolve().name
    assert (
        {p["snapshot"] for p in pages}
        == {(day1 / "snapshots" / "current").resolve().name}
        != {first_snapshot}
    )
    assert set(pages[0]["masked_fields"]) == {"full_name", "id_number", "birth_date"}
    with _current(day1) as conn:
        names = dict(
            conn.execute("select student_no, full_name from marts.dim_student where is_current").fetchall()
        )
    for record in since:
        assert record["full_name"] != names[record["student_no"]] and record["full_name"].endswith("**")
        assert record["id_number"] is None or record["id_number"].endswith("*" * 12)
    # nothing changed since the answer just given
    again = demo.get("welcome", "/v1/data/students", changed_since=pages[-1]["next_changed_since"])
    assert again.status_code == 200 and again.json()["records"] == []

    # outside the grant: another dataset, refused and audited
    outside = demo.get("welcome", "/v1/data/staff")
    assert outside.status_code == 403
    audit = demo.client.get(
        "/v1/audit",
        headers=demo.headers["auditor"],
        params={"who": demo.ids["welcome"], "status": 403, "limit": 50},
    ).json()
    assert any(
        e["path"] == "/v1/data/staff" and e["seq"] == int(outside.headers["X-Audit-Seq"]) for e in audit
    )

    # expiry, then revocation: the next call is refused
    monkeypatch.setattr(access, "today", lambda: ends + timedelta(days=1))
    assert demo.get("welcome", "/v1/data/students").status_code == 403
    monkeypatch.undo()
    assert demo.get("welcome", "/v1/data/students").status_code == 200
    assert demo.post("registry", f"/v1/grants/{gid}/revoke").status_code == 200
    refused = demo.get("welcome", "/v1/data/students")
    assert refused.status_code == 403 and refused.json()["missing_grant"] == {"dataset": "students"}

    # the audit chain verifies; an edited and then a deleted entry are named
    demo.client.app.state.service.store.close()
    assert campusdx_cli(home, "audit", "--verify").returncode == 0
    db = home / "sharing" / "sharing.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute(
            "UPDATE audit SET entry = replace(entry, '403', '200') WHERE seq = ?",
            (int(outside.headers["X-Audit-Seq"]),),
        )
    done = campusdx_cli(home, "audit", "--verify")
    assert done.returncode == 1 and f"entry {outside.headers['X-Audit-Seq']}: its content" in done.stderr
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER audit_no_delete")  # the CLI's check opened it: they are back
        conn.execute("DELETE FROM audit WHERE seq = 7")
    done = campusdx_cli(home, "audit", "--verify")
    assert "entry 7: missing" in done.stderr
