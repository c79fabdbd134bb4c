"""The sharing service over the demo campus's published snapshot: grants, roles, scope and masks
enforced in the query, problem responses, the audit log of every request."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from campusdx.core import snapshots
from campusdx.service import access
from campusdx.service.store import verify_chain
from tests.sharing import COLLEGE, campus, home_over


@pytest.fixture(scope="module")
def demo(warehouse, tmp_path_factory):
    paths = home_over(warehouse.home / "snapshots", tmp_path_factory.mktemp("sharing") / "home")
    return campus(paths)


def _students(warehouse, where: str = "true", *params) -> set[str]:
    with snapshots.connect(warehouse_paths(warehouse)) as conn:
        rows = conn.execute(
            f"select student_no from marts.dim_student where is_current and {where}", list(params)
        )
        return {r[0] for r in rows.fetchall()}


def warehouse_paths(warehouse):
    from campusdx.core.settings import Paths

    return Paths(warehouse.home)


def _grant(demo, dataset: str, **body) -> int:
    """A new request of the card application (its earlier one on the dataset revoked first)."""
    store = demo.client.app.state.service.store
    for earlier in store.grants(app_id=demo.ids["card"], datasets=[dataset]):
        if earlier.status in ("pending", "approved"):
            assert demo.post("card", f"/v1/grants/{earlier.id}/revoke").status_code == 200
    body = {
        "dataset": dataset,
        "purpose": "测试用途：一卡通开户",
        "ends_on": str(date.today() + timedelta(days=30)),
        **body,
    }
    r = demo.post("card", "/v1/grants", body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_nothing_without_a_grant_and_the_refusal_names_the_grant_and_its_approver(demo):
    r = demo.get("card", "/v1/data/staff")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["missing_grant"] == {"dataset": "staff"}
    assert "人事处" in r.json()["detail"]


def test_a_grant_is_approved_by_its_datasets_steward_only(demo):
    gid = _grant(demo, "students", scope=[COLLEGE])
    # the personnel office is not the 一数一源 authority of students; the application never approves
    # another department's steward does not even see it
    assert demo.post("personnel", f"/v1/grants/{gid}/decision", {"approve": True}).status_code == 404
    assert demo.post("card", f"/v1/grants/{gid}/decision", {"approve": True}).status_code == 403
    assert demo.post("admin", f"/v1/grants/{gid}/decision", {"approve": True}).status_code == 403
    r = demo.post("registry", f"/v1/grants/{gid}/decision", {"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert demo.post("registry", f"/v1/grants/{gid}/decision", {"approve": False}).status_code == 409


def test_scope_and_masks_are_applied_in_the_query(demo, warehouse):
    _approved(demo, "students", scope=[COLLEGE], fields=["student_no", "org_id", "full_name", "grade"])
    records, pages = demo.all_pages("card", "/v1/data/students", limit=7)
    assert {r["student_no"] for r in records} == _students(warehouse, "org_id = ?", COLLEGE)
    assert len(records) == len({r["student_no"] for r in records}), "a record came twice across pages"
    assert len(pages) > 2
    assert {p["snapshot"] for p in pages} == {snapshots.current_id(warehouse_paths(warehouse))}
    # the name is granted; no other personal field was asked for, so none is served in clear
    with snapshots.connect(warehouse_paths(warehouse)) as conn:
        names = dict(
            conn.execute("select student_no, full_name from marts.dim_student where is_current").fetchall()
        )
    assert all(r["full_name"] == names[r["student_no"]] for r in records)
    assert "id_number" in pages[0]["masked_fields"]
    assert all(set(r["id_number"][6:]) <= {"*"} for r in records if r["id_number"])


def test_a_department_user_reads_only_its_department_with_personal_fields_masked(demo, warehouse):
    records, pages = demo.all_pages("college_user", "/v1/data/students", limit=1000)
    assert {r["student_no"] for r in records} == _students(warehouse, "org_id = ?", COLLEGE)
    assert set(pages[0]["masked_fields"]) == {"full_name", "id_number", "birth_date"}
    assert all(len(r["birth_date"]) == 4 for r in records)
    # another department's record is not found, whatever the filter says
    other = sorted(_students(warehouse, "org_id <> ?", COLLEGE))[0]
    assert demo.get("college_user", f"/v1/data/students/{other}").status_code == 404
    assert demo.get("college_user", "/v1/data/students", student_no=other).json()["records"] == []


def test_codes_come_with_their_names_and_history_answers_as_of_a_date(demo, warehouse):
    records, _ = demo.all_pages("college_user", "/v1/data/students", limit=1000)
    with snapshots.connect(warehouse_paths(warehouse)) as conn:
        names = dict(conn.execute("select code, name from codes.jy_t_1001__xsdqzt").fetchall())
    assert records and all(r["student_status_code_name"] == names[r["student_status_code"]] for r in records)
    with snapshots.connect(warehouse_paths(warehouse)) as conn:
        (count,) = conn.execute(
            "select count(*) from marts.dim_student where org_id = ? and valid_from < date '2023-01-01'"
            " and (valid_to is null or valid_to >= date '2023-01-01')",
            [COLLEGE],
        ).fetchone()
    old, _ = demo.all_pages("college_user", "/v1/data/students", limit=1000, as_of="2022-12-31")
    assert len(old) == count


def test_problems_name_the_parameter(demo):
    assert demo.client.get("/v1/data/students").status_code == 401
    r = demo.get("college_user", "/v1/data/students", limit=100000)
    assert r.status_code == 422 and r.json()["field"] == "limit"
    r = demo.get("college_user", "/v1/data/students", cursor="not-ours")
    assert r.status_code == 422 and r.json()["field"] == "cursor"
    r = demo.get("college_user", "/v1/data/students", changed_since="yesterday")
    assert r.status_code == 422 and r.json()["field"] == "changed_since"
    r = demo.get("college_user", "/v1/data/students", fields="student_no,salary")
    assert r.status_code == 422 and "salary" in r.json()["detail"]
    r = demo.get("college_user", "/v1/data/students", org_id="205' or '1'='1")
    assert r.status_code == 200 and r.json()["records"] == []
    assert demo.get("auditor", "/v1/data/students").status_code == 403


def test_a_revoked_grant_stops_the_next_call_and_an_expired_one_stops_by_itself(demo, monkeypatch):
    gid = _approved(demo, "orgs")
    assert demo.get("card", "/v1/data/orgs").status_code == 200
    assert demo.post("registry", f"/v1/grants/{gid}/revoke").status_code == 404  # not its dataset: unseen
    assert demo.post("personnel", f"/v1/grants/{gid}/revoke").status_code == 200
    assert demo.get("card", "/v1/data/orgs").status_code == 403
    gid = _approved(demo, "orgs")
    assert demo.get("card", "/v1/data/orgs").status_code == 200
    ends = date.fromisoformat(demo.client.app.state.service.store.grant(gid).ends_on)
    monkeypatch.setattr(access, "today", lambda: ends + timedelta(days=1))
    assert demo.get("card", "/v1/data/orgs").status_code == 403


def test_rate_limit_answers_429_with_retry_after(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPUSDX_SHARING_RATE", "1")
    monkeypatch.setenv("CAMPUSDX_SHARING_BURST", "3")
    demo = campus(home_over(warehouse.home / "snapshots", tmp_path / "home"))
    answers = [demo.get("college_user", "/v1/data/orgs").status_code for _ in range(6)]
    assert 429 in answers and answers[0] == 200
    r = demo.get("college_user", "/v1/data/orgs")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_a_rotated_or_revoked_application_is_stopped_at_once(warehouse, tmp_path):
    demo = campus(home_over(warehouse.home / "snapshots", tmp_path / "home"))
    r = demo.post("admin", "/v1/applications", {"name": "图书馆系统", "department": "401"})
    assert r.status_code == 201
    app_id, secret = r.json()["id"], r.json()["secret"]
    store = demo.client.app.state.service.store
    stored = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    assert secret.encode() not in stored, "the secret is stored in clear"
    token = demo.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret},
    ).json()["access_token"]
    assert demo.client.get("/v1/datasets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert demo.post("admin", f"/v1/applications/{app_id}/rotate").status_code == 200
    assert demo.client.get("/v1/datasets", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    bad = demo.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret},
    )
    assert bad.status_code == 401
    assert demo.post("card", f"/v1/applications/{app_id}/revoke").status_code == 403


def test_every_request_is_audited_before_its_answer_and_the_chain_verifies(demo):
    before = demo.get("auditor", "/v1/audit", limit=1).json()[0]["seq"]
    r = demo.get("card", "/v1/data/assets")
    assert r.status_code == 403
    seq = int(r.headers["X-Audit-Seq"])
    assert seq > before
    (entry,) = [e for e in demo.get("auditor", "/v1/audit", limit=50).json() if e["seq"] == seq]
    assert entry["principal"] == demo.ids["card"] and entry["status"] == 403
    assert entry["path"] == "/v1/data/assets" and "no active grant" in entry["reason"]
    # a steward sees the entries of its own datasets only
    seen = demo.get("registry", "/v1/audit", limit=1000).json()
    assert seen and {e.get("dataset") for e in seen} <= {"students", "majors", "student_status_changes"}
    assert demo.get("card", "/v1/audit").status_code == 403
    report = verify_chain(demo.client.app.state.service.paths)
    assert report.ok and report.entries >= seq, report.problems


def test_no_personal_value_reaches_the_audit_log(demo, warehouse):
    with snapshots.connect(warehouse_paths(warehouse)) as conn:
        sno, name, idn = conn.execute(
            "select student_no, full_name, id_number from marts.dim_student where is_current and org_id = ?",
            [COLLEGE],
        ).fetchone()
    demo.get("college_user", f"/v1/data/students/{sno}")
    demo.get("college_user", "/v1/data/students", class_no=idn)  # a value that is personal, sent anyway
    store = demo.client.app.state.service.store.path
    text = b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*")).decode("utf-8", "replace")
    assert name not in text and idn not in text
    (entry,) = demo.client.get(
        "/v1/audit", headers=demo.headers["auditor"], params={"limit": 1, "who": demo.ids["college_user"]}
    ).json()
    assert entry["filters"]["class_no"] == idn[:6] + "*" * 12


def _approved(demo, dataset: str, **body) -> int:
    gid = _grant(demo, dataset, **body)
    steward = {"students": "registry", "majors": "registry", "student_status_changes": "registry"}.get(
        dataset, "personnel"
    )
    if dataset in ("buildings", "assets"):
        raise AssertionError("no asset steward in these tests")
    r = demo.post(steward, f"/v1/grants/{gid}/decision", {"approve": True})
    assert r.status_code == 200, r.text
    return gid


def test_one_grant_per_dataset_so_two_never_combine(demo, warehouse):
    """Names for one college and open fields for all would, combined, be names for all: a second
    request on a dataset is refused while the first is open."""
    _approved(demo, "students", scope=[COLLEGE], fields=["student_no", "org_id", "full_name"])
    body = {"dataset": "students", "purpose": "另一用途", "ends_on": str(date.today() + timedelta(days=9))}
    r = demo.post("card", "/v1/grants", body)
    assert r.status_code == 409 and "one grant per dataset" in r.json()["detail"]
    records, _ = demo.all_pages("card", "/v1/data/students", limit=1000)
    assert {r["org_id"] for r in records} == {COLLEGE}


def test_a_filter_on_a_field_outside_the_grant_is_refused(demo):
    _approved(demo, "students", scope=[COLLEGE], fields=["student_no", "org_id"])
    r = demo.get("card", "/v1/data/students", class_no="05012201")
    assert r.status_code == 403 and r.json()["missing_grant"]["fields"] == ["class_no"]
    assert demo.get("card", "/v1/data/students", org_id=COLLEGE).status_code == 200


def test_the_api_takes_no_session_cookie(demo):
    token = demo.headers["college_user"]["Authorization"].split()[1]
    demo.client.cookies.set("campusdx_session", token)
    try:
        assert demo.client.get("/v1/data/orgs").status_code == 401
    finally:
        demo.client.cookies.clear()
