"""`campusdx dictionary`: one Markdown file with the school standard, every code set and every mart
and feed field, the models read from dbt's manifest; what is missing from the models' YAML is listed
as a gap, never a failure, and what dbt refuses to parse stops it with dbt's message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from campusdx import cli
from campusdx.core.codes import code_set_info, load_code_sets
from campusdx.core.school import PROFILE, load_standard
from campusdx.core.settings import DBT_PROJECT, REPO_ROOT
from campusdx.pipeline import dictionary
from campusdx.pipeline.dictionary import ProjectRefused, build, parse_project


@pytest.fixture(scope="session")
def parsed() -> tuple[dict[str, Any], list[str]]:
    """The project's manifest and dbt's parse warnings: one real ``dbt parse`` for the session."""
    return parse_project()


@pytest.fixture(scope="module")
def written(tmp_path_factory, parsed) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAMPUSDX_HOME", str(home))
        mp.setattr(dictionary, "parse_project", lambda: parsed)
        assert cli.main(["dictionary"]) == 0
    path = home / "docs" / "data-dictionary.md"
    return path, path.read_text(encoding="utf-8")


def _section(text: str, anchor: str) -> str:
    start = text.index(f'<a id="{anchor}"></a>')
    following = text.find('<a id="', start + 1)
    return text[start : following if following > 0 else None]


def _feed_columns(manifest: dict[str, Any]) -> dict[str, list[str]]:
    return {
        node["name"]: list(node["columns"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/feeds/")
    }


def test_the_manifest_is_parsed_outside_the_project(parsed):
    manifest, _ = parsed
    assert manifest["metadata"]["project_name"] == "campusdx"
    staff = manifest["nodes"]["model.campusdx.feed_px__jzgjbxx"]
    assert staff["patch_path"] == "campusdx://models/feeds/px/_px__models.yml" and "GH" in staff["columns"]


def test_written_under_the_home_not_the_repository(written):
    path, text = written
    assert path.name == "data-dictionary.md" and not path.is_relative_to(REPO_ROOT)
    assert text.startswith("# 数据字典")
    assert "dbt docs generate" in text


def test_every_code_set_is_there_with_its_codes(written):
    _, text = written
    sets = load_code_sets()
    for set_id, info in code_set_info().items():
        section = _section(text, f"code-set-{set_id}")
        assert info["standard"] in section and info["edition"] in section
        missing = [code for code in sets[set_id] if f"| `{code}` |" not in section]
        assert missing == [], f"{set_id}: {missing[:5]}"
    assert "<summary>3219 codes</summary>" in _section(text, "code-set-XZQH")


def test_every_profile_code_set_is_there(written):
    _, text = written
    profile = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))["code_sets"]
    for set_id, entry in profile.items():
        assert f'<a id="px-code-set-{set_id}"></a>{set_id}' in text
        for code, name in (entry.get("codes") if isinstance(entry.get("codes"), dict) else {}).items():
            assert f"| `{code}` | {name} |" in text


def test_every_feed_field_is_there_with_its_code_set_or_rule(written, parsed):
    _, text = written
    feeds = _feed_columns(parsed[0])
    assert {"feed_px__jzgjbxx", "feed_px__xsjbxx", "feed_px__zzjg"} <= feeds.keys()
    for model, columns in feeds.items():
        section = _section(text, f"model-{model}")
        missing = [c for c in columns if f"| `{c}` |" not in section]
        assert missing == [], f"{model}: {missing}"
    staff = _section(text, "model-feed_px__jzgjbxx")
    assert "| `XBM` | [XBM](#code-set-XBM) |" in staff
    assert "| `GH` | [SCH-GH](#school-rule-SCH-GH) |" in staff
    assert "| `DWLBM` | [DWLB](#px-code-set-DWLB) |" in _section(text, "model-feed_px__zzjg")


def test_every_mart_model_is_there(written):
    _, text = written
    marts = {p.stem for p in (DBT_PROJECT / "models" / "marts").rglob("*.sql")}
    assert marts and [m for m in marts if f'<a id="model-{m}"></a>' not in text] == []


def test_a_follows_school_rule_test_links_its_rule(written):
    _, text = written
    assert "| `campus_code` | [SCH-XQ](#school-rule-SCH-XQ) |" in _section(text, "model-dim_org")


def test_the_school_standard_is_there(written):
    _, text = written
    standard = load_standard()
    for code, rule in standard.rules.items():
        section = _section(text, f"school-rule-{code}")
        assert rule.description in section and rule.pattern.replace("|", "\\|") in text
    assert "信息化建设与管理处" in text and "雁塔校区" in _section(text, "school-campuses")
    assert "SCH-DWH-T4" in _section(text, "school-org-rules")


def test_every_link_has_its_target(written):
    _, text = written
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and sorted(links - anchors) == []


# --- gaps: what others have not written yet is listed, not fatal -------------------------------


def _model(name: str, sql: str, yml: str | None = None, package: str = "campusdx", **node: Any) -> dict:
    columns = {c["name"]: {"description": "", "meta": {}, **c} for c in node.pop("columns", [])}
    return {
        "resource_type": "model",
        "package_name": package,
        "name": name,
        "original_file_path": sql,
        "patch_path": f"{package}://{yml}" if yml else None,
        "description": "",
        "meta": {},
        "config": {"meta": {}},
        "columns": columns,
        **node,
    }


def _rule_test(model: str, column: str, rule: str) -> dict:
    return {
        "resource_type": "test",
        "attached_node": f"model.campusdx.{model}",
        "column_name": column,
        "test_metadata": {"name": "follows_school_rule", "kwargs": {"column_name": column, "rule": rule}},
    }


@pytest.fixture
def manifest() -> dict[str, Any]:
    """A small manifest as dbt writes it: what dbt accepts but the dictionary lists as gaps."""
    nodes = {
        "model.campusdx.dim_thing": _model(
            "dim_thing",
            "models/marts/dim_thing.sql",
            "models/marts/_things.yml",
            columns=[
                {"name": "k_thing"},
                {"name": "kind_code", "description": "类别 (code set NOPE)"},
                {"name": "type_code", "description": "类型"},
                {"name": "staff_no", "description": "工号"},
            ],
        ),
        "test.campusdx.follows_school_rule_dim_thing_staff_no": _rule_test("dim_thing", "staff_no", "SCH-GH"),
        "model.campusdx.dim_undocumented": _model("dim_undocumented", "models/marts/dim_undocumented.sql"),
        "model.campusdx.feed_px__x": _model(
            "feed_px__x",
            "models/feeds/px/feed_px__x.sql",
            "models/feeds/px/_feed.yml",
            description="A feed.",
            config={"meta": {"px_dataset": "ZZJG"}},
            columns=[
                {"name": "DWH", "description": "单位号"},
                {"name": "SFSY", "description": "是否使用", "meta": {"code_set": "SF"}},
            ],
        ),
        "model.campusdx.stg_thing": _model("stg_thing", "models/staging/stg_thing.sql"),
        "model.other.dim_other": _model("dim_other", "models/marts/dim_other.sql", package="other"),
    }
    return {"metadata": {"project_name": "campusdx"}, "nodes": nodes}


def test_gaps_are_listed_and_nothing_fails(manifest):
    text, gaps = build(manifest)
    listed = "\n".join(gaps)
    assert "`dim_thing` has no description (`models/marts/_things.yml`)" in listed
    assert (
        "`dim_undocumented` (marts) has no entry in any property YAML (`models/marts/dim_undocumented.sql`)"
        in listed
    )
    assert "`dim_thing.kind_code` names code set `NOPE`, which is defined nowhere" in listed
    assert "`dim_thing`: column(s) without description: k_thing" in listed
    assert "`dim_thing`: coded column(s) naming no code set or school rule" in listed
    assert "in the description): type_code" in listed
    gaps_section = _section(text, "gaps")
    assert all(g in gaps_section for g in gaps)
    thing = _section(text, "model-dim_thing")
    assert "_No description._" in thing and "| `staff_no` | [SCH-GH](#school-rule-SCH-GH) |" in thing
    feed = _section(text, "model-feed_px__x")
    assert "| `DWH` | [SCH-DWH](#school-rule-SCH-DWH) |" in feed  # by px_fields of the standard
    assert "| `SFSY` | [SF](#px-code-set-SF) |" in feed  # by meta code_set
    assert "stg_thing" not in text and "dim_other" not in text  # other layers, other packages


def test_a_manifest_file_can_be_given(manifest, tmp_path):
    import json

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert build(path) == build(manifest)


def test_built_columns_nobody_documented_are_gaps(manifest, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema marts")
        conn.execute(
            "create table marts.dim_thing "
            "(k_thing int, kind_code varchar, type_code varchar, staff_no varchar, extra int)"
        )
    text, gaps = build(manifest, warehouse=warehouse)
    assert "`dim_thing`: 1 built column(s) not documented: extra" in gaps
    assert "| `extra` |  | _not documented_ |" in _section(text, "model-dim_thing")
    assert "`dim_undocumented` is not in the warehouse (not built yet?)" in gaps


def test_an_unreadable_warehouse_does_not_stop_the_dictionary(manifest, tmp_path):
    text, _ = build(manifest, warehouse=tmp_path / "missing" / "warehouse.duckdb")
    assert "could not be read" in text and '<a id="model-dim_thing"></a>' in text


def test_out_option_writes_where_asked(tmp_path, monkeypatch, capsys, parsed):
    monkeypatch.setenv("CAMPUSDX_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(dictionary, "parse_project", lambda: parsed)
    out = tmp_path / "elsewhere" / "dictionary.md"
    assert cli.main(["dictionary", "--out", str(out)]) == 0
    assert out.exists() and not (tmp_path / "home" / "docs").exists()
    assert str(out) in capsys.readouterr().out


# --- what dbt itself warns about or refuses, in a tiny project parsed for real -----------------


def _project(root: Path, **yml: str) -> Path:
    """A dbt project with one mart ``a`` and the property files ``yml`` ({file name: text})."""
    (root / "models" / "marts").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nconfig-version: 2\nprofile: tiny\n", encoding="utf-8"
    )
    (root / "profiles.yml").write_text(
        f"tiny:\n  target: t\n  outputs:\n    t: {{type: duckdb, path: '{root / 'w.duckdb'}'}}\n",
        encoding="utf-8",
    )
    (root / "models" / "marts" / "a.sql").write_text("select 1 as k\n", encoding="utf-8")
    for name, text in yml.items():
        (root / "models" / "marts" / name).write_text(text, encoding="utf-8")
    return root


def test_yaml_naming_a_model_without_sql_is_a_gap_from_dbt(tmp_path, monkeypatch):
    yml = "version: 2\nmodels:\n  - name: a\n  - name: gone\n    description: x\n"
    project = _project(tmp_path / "tiny", **{"_a.yml": yml})
    monkeypatch.setattr(dictionary, "parse_project", lambda: parse_project(project))
    _, gaps = build()
    assert any(
        g.startswith("dbt parse: ") and "name 'gone'" in g and "models/marts/_a.yml" in g for g in gaps
    ), gaps


@pytest.mark.parametrize(
    ("files", "dbt_says"),
    [
        ({"_a.yml": "version: 2\nmodels:\n  - name: [unclosed\n"}, "Syntax error near line 4"),
        (
            {"_a.yml": "version: 2\nmodels:\n  - name: a\n", "_b.yml": "version: 2\nmodels:\n  - name: a\n"},
            "dbt found two schema.yml entries for the same resource named a",
        ),
        (
            {"_a.yml": "version: 2\nmodels:\n  - description: no name\n"},
            "a list element for 'models' does not have a name attribute",
        ),
    ],
    ids=["unreadable yaml", "described twice", "entry without a name"],
)
def test_what_dbt_refuses_stops_the_dictionary_with_dbts_message(tmp_path, files, dbt_says):
    project = _project(tmp_path / "tiny", **files)
    with pytest.raises(ProjectRefused, match=re.escape(dbt_says)):
        parse_project(project)
    assert not (project / "target").exists() and not (project / "logs").exists()
