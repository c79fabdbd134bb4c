"""The warehouse DAG's dbt step: one `dbt build` per part, its results per node, failures named."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import ClassVar

import pytest

from campusdx.core.settings import Paths
from campusdx.pipeline import dbtbuild


def _node(unique_id: str, status: str, message: str = "", seconds: float = 0.5):
    return SimpleNamespace(
        node=SimpleNamespace(unique_id=unique_id),
        status=SimpleNamespace(value=status),
        execution_time=seconds,
        message=message,
    )


class _FakeRunner:
    """dbt's runner as the step sees it: records the arguments, returns the given results."""

    calls: ClassVar[list[list[str]]] = []
    results: ClassVar[list] = []
    success = True

    def invoke(self, args):
        _FakeRunner.calls.append(args)
        return SimpleNamespace(
            success=self.success, exception=None, result=SimpleNamespace(results=self.results)
        )


@pytest.fixture
def fake_dbt(monkeypatch):
    import dbt.cli.main

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", _FakeRunner)
    monkeypatch.setattr(dbtbuild, "release_warehouse", lambda: None)
    _FakeRunner.calls = []
    return _FakeRunner


def test_a_build_returns_and_writes_every_nodes_result(fake_dbt, tmp_path):
    fake_dbt.success = True
    fake_dbt.results = [
        _node("model.campusdx.stg_hr__staff", "success"),
        _node("test.campusdx.not_null_stg_hr__staff_gh.1a2b", "warn", "Got 2 results"),
    ]
    report = dbtbuild.build("transform", paths=Paths(tmp_path))
    (args,) = fake_dbt.calls
    assert args[0] == "build" and args[args.index("--exclude") + 1] == "tag:gated"
    assert args[args.index("--target-path") + 1] == str(tmp_path / "dbt" / "target")
    assert report["counts"] == {"success": 1, "warn": 1}
    assert "message" not in report["nodes"][1], "dbt's messages may quote values: not in the XCom"
    saved = json.loads((tmp_path / "dbt" / "results" / "transform.json").read_text())
    assert saved["nodes"][1]["message"] == "Got 2 results"
    assert saved["counts"] == report["counts"] and len(saved["nodes"]) == len(report["nodes"])


def test_a_failure_names_the_failed_nodes_and_what_they_left_skipped(fake_dbt, tmp_path):
    fake_dbt.success = False
    fake_dbt.results = [
        _node("model.campusdx.stg_hr__staff", "error", "Catalog Error: Table not found"),
        _node("test.campusdx.unique_dim_person_person_id.9f", "fail", "Got 3 results"),
        _node("model.campusdx.dim_staff", "skipped"),
        _node("model.campusdx.stg_student__students", "success"),
    ]
    with pytest.raises(dbtbuild.DbtFailed) as failed:
        dbtbuild.build("feeds", paths=Paths(tmp_path))
    message = str(failed.value)
    assert "2 node(s) failed" in message
    assert "model stg_hr__staff (error), test unique_dim_person_person_id (fail)" in message
    assert "Catalog Error" not in message, "dbt's messages stay in the results file"
    assert str(tmp_path / "dbt" / "results" / "feeds.json") in message
    assert "skipped because of them: model dim_staff" in message
    assert "stg_student__students" not in message
    saved = json.loads((tmp_path / "dbt" / "results" / "feeds.json").read_text())
    assert saved["success"] is False and len(saved["nodes"]) == 4
    assert saved["nodes"][0]["message"] == "Catalog Error: Table not found"


def test_an_unknown_part_is_refused():
    with pytest.raises(KeyError, match="no dbt part 'marts'"):
        dbtbuild.build("marts")
