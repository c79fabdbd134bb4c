"""Contract tests generated from the service's own OpenAPI document (schemathesis): every
operation, called with generated valid and invalid input as the principal that operation is
for, answers without a server error and as its document says (status codes, content types,
body schemas)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.sharing import COLLEGE, campus, home_over

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def contract_campus(warehouse, tmp_path_factory):
    demo = campus(home_over(warehouse.home / "snapshots", tmp_path_factory.mktemp("contract") / "home"))
    ends = str(date.today() + timedelta(days=60))
    for dataset, steward, scope in (("students", "registry", [COLLEGE]), ("orgs", "personnel", None)):
        body = {"dataset": dataset, "purpose": "接口契约测试", "ends_on": ends, "scope": scope}
        gid = demo.post("card", "/v1/grants", body).json()["id"]
        assert demo.post(steward, f"/v1/grants/{gid}/decision", {"approve": True}).status_code == 200
    return demo


def _who(path: str) -> str:
    if path.startswith("/v1/applications"):
        return "admin"
    if path.startswith("/v1/audit"):
        return "auditor"
    if path.startswith("/v1/grants/"):
        return "registry"
    return "card"


def test_every_operation_answers_as_documented(contract_campus):
    """Each operation in turn (schemathesis' pytest plugin does not run under pytest 9, so the
    operations are walked here), with generated valid and invalid input; the failures of every
    operation are gathered and named together."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", contract_campus.client.app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case):
            headers = dict(case.headers or {})
            if "authorization" not in {k.lower() for k in headers}:
                headers.update(contract_campus.headers[_who(case.path)])
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except Exception as exc:  # every operation is tried; the failures are reported together
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
