"""`campusdx dictionary`: one Markdown file with the school standard, every code set and every mart
and feed field; what is missing from the models' YAML is listed as a gap, never a failure."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
import yaml

from campusdx import cli
from campusdx.core.codes import code_set_info, load_code_sets
from campusdx.core.school import PROFILE, load_standard
from campusdx.core.settings import DBT_PROJECT, REPO_ROOT
from campusdx.pipeline.dictionary import build

FEEDS = DBT_PROJECT / "models" / "feeds"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAMPUSDX_HOME", str(home))
        assert cli.main(["dictionary"]) == 0
    path = home / "docs" / "data-dictionary.md"
    return path, path.read_text(encoding="utf-8")


def _section(text: str, anchor: str) -> str:
    start = text.index(f'<a id="{anchor}"></a>')
    following = text.find('<a id="', start + 1)
    return text[start : following if following > 0 else None]


def _feed_columns() -> dict[str, list[str]]:
    found = {}
    for path in FEEDS.rglob("*.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            found[model["name"]] = [c["name"] for c in model.get("columns") or []]
    return found


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


def test_every_feed_field_is_there_with_its_code_set_or_rule(written):
    _, text = written
    feeds = _feed_columns()
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


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def models(tmp_path) -> Path:
    root = tmp_path / "models"
    _write(root / "marts" / "dim_thing.sql", "select 1 as k_thing\n")
    _write(
        root / "marts" / "_things.yml",
        "version: 2\nmodels:\n  - name: dim_thing\n    columns:\n"
        "      - name: k_thing\n      - name: kind_code\n        description: 类别 (code set NOPE)\n"
        "      - name: staff_no\n        description: 工号\n"
        "        data_tests: [{follows_school_rule: {arguments: {rule: SCH-GH}}}]\n",
    )
    _write(root / "marts" / "dim_undocumented.sql", "select 1 as k\n")
    _write(root / "feeds" / "px" / "_broken.yml", "version: 2\nmodels:\n  - name: [unclosed\n")
    _write(root / "feeds" / "px" / "feed_px__x.sql", "select 1 as XBM\n")
    _write(
        root / "feeds" / "px" / "_feed.yml",
        "version: 2\nmodels:\n  - name: feed_px__x\n    description: A feed.\n"
        "    config: {meta: {px_dataset: ZZJG}}\n    columns:\n"
        "      - name: DWH\n        description: 单位号\n      - name: SFSY\n"
        "        description: 是否使用\n        meta: {code_set: SF}\n"
        "  - name: feed_px__gone\n    description: Removed.\n",
    )
    return root


def test_gaps_are_listed_and_nothing_fails(models):
    text, gaps = build(models_dir=models)
    listed = "\n".join(gaps)
    assert "`dim_thing` has no description" in listed
    assert "`dim_undocumented` (marts) has no entry in any property YAML" in listed
    assert "`models/feeds/px/_broken.yml` could not be read" in listed
    assert "`dim_thing.kind_code` names code set `NOPE`, which is defined nowhere" in listed
    assert "`dim_thing`: column(s) without description: k_thing" in listed
    assert "`feed_px__gone` is described in `models/feeds/px/_feed.yml` but has no SQL model" in listed
    gaps_section = _section(text, "gaps")
    assert all(g in gaps_section for g in gaps)
    thing = _section(text, "model-dim_thing")
    assert "_No description._" in thing and "| `staff_no` | [SCH-GH](#school-rule-SCH-GH) |" in thing
    feed = _section(text, "model-feed_px__x")
    assert "| `DWH` | [SCH-DWH](#school-rule-SCH-DWH) |" in feed  # by px_fields of the standard
    assert "| `SFSY` | [SF](#px-code-set-SF) |" in feed  # by meta code_set


def test_built_columns_nobody_documented_are_gaps(models, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema marts")
        conn.execute(
            "create table marts.dim_thing (k_thing int, kind_code varchar, staff_no varchar, extra int)"
        )
    text, gaps = build(models_dir=models, warehouse=warehouse)
    assert "`dim_thing`: 1 built column(s) not documented: extra" in gaps
    assert "| `extra` |  | _not documented_ |" in _section(text, "model-dim_thing")
    assert "`dim_undocumented` is not in the warehouse (not built yet?)" in gaps


def test_an_unreadable_warehouse_does_not_stop_the_dictionary(models, tmp_path):
    text, _ = build(models_dir=models, warehouse=tmp_path / "missing" / "warehouse.duckdb")
    assert "could not be read" in text and '<a id="model-dim_thing"></a>' in text


def test_out_option_writes_where_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAMPUSDX_HOME", str(tmp_path / "home"))
    out = tmp_path / "elsewhere" / "dictionary.md"
    assert cli.main(["dictionary", "--out", str(out)]) == 0
    assert out.exists() and not (tmp_path / "home" / "docs").exists()
    assert str(out) in capsys.readouterr().out
