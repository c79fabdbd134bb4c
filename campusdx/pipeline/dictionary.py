"""The data dictionary: one Markdown file a person can read without the warehouse.

``campusdx dictionary`` writes ``<home>/docs/data-dictionary.md`` from what the repository
declares: the school coding standard (``schemas/school``), the national and industry code sets
(``schemas/codes``), the PX-1.0 profile code sets (``schemas/exchange/px-1.0/datasets.yaml``) and
every mart and feed model as dbt parses it: the project's manifest, from ``dbt parse`` into a
temporary target path (no warehouse needed, nothing written into ``dbt_project/``) or from a
``manifest.json`` given. A column's code set is the one its description names ("code set XBM") or
its ``meta: {code_set: XBM}``; a school rule is ``SCH-...`` in the description, ``meta:
{school_rule: ...}``, a ``follows_school_rule`` test, or (feeds) the rule whose ``px_fields`` list
the field.

Other people edit the models' YAML all the time, so nothing dbt accepts stops the dictionary: a
model without description or without YAML, a column without description, a coded column naming no
code set, a code set nobody defined, dbt's parse warnings (a YAML entry naming a model without SQL)
and (when a warehouse is given) a built column nobody documented are listed under "Gaps". What dbt
refuses to parse (unreadable YAML, a model described twice, an entry without a name) stops the
dictionary with dbt's message, as it stops every dbt command.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from campusdx.core import atomic, settings, snapshots
from campusdx.core.codes import code_set_info, load_code_sets
from campusdx.core.school import PROFILE, Standard, load_standard

LAYERS = ("marts", "feeds")
CODE_SET = re.compile(r"\bcode set ([A-Z][A-Z0-9_]*)")
SCHOOL_RULE = re.compile(r"\bSCH-[A-Z0-9]+(?:-[A-Z0-9]+)*")
FOLDED = 60
"""Code lists longer than this are folded into a <details> block."""


class ProjectRefused(RuntimeError):
    """dbt refused to parse the project; the message is dbt's."""


@dataclass
class Column:
    name: str
    description: str = ""
    code_sets: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    documented: bool = True


@dataclass
class Model:
    name: str
    layer: str
    path: str
    description: str = ""
    px_dataset: str | None = None
    columns: list[Column] = field(default_factory=list)
    schema: str = ""
    """The warehouse schema it is built in (dbt's ``schema`` of the node; the layer if unknown)."""


def _cell(text: object) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _code(text: object) -> str:
    """Inline code; a table cell escapes its pipes itself (GFM reads ``\\|`` inside code there)."""
    return f"`{' '.join(str(text).split())}`" if text not in (None, "") else ""


def _meta(entry: dict[str, Any]) -> dict[str, Any]:
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    return {**(entry.get("meta") or {}), **(config.get("meta") or {})}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def parse_project(project_dir: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """dbt's manifest of the project (``dbt parse`` into a temporary target path, in this process)
    and the warnings dbt gave while parsing; :class:`ProjectRefused` when dbt refuses the project.
    The project's ``profiles.yml`` is the one beside it; parsing opens no warehouse."""
    from dbt.cli.main import dbtRunner

    project = Path(project_dir or settings.DBT_PROJECT)
    warnings: list[str] = []

    def collect(event: Any) -> None:
        if event.info.level == "warn":
            warnings.append(" ".join(event.info.msg.removeprefix("[WARNING]:").split()))

    with tempfile.TemporaryDirectory(prefix="campusdx-dbt-parse-") as tmp:
        args = ["parse", "--project-dir", str(project), "--profiles-dir", str(project)]
        args += ["--target-path", str(Path(tmp) / "target"), "--log-path", str(Path(tmp) / "logs")]
        # Nothing printed: the warnings come back as gaps, a refusal as the exception's message.
        args += ["--log-level", "none", "--no-use-colors"]
        result = dbtRunner(callbacks=[collect]).invoke(args)
        if not result.success:
            raise ProjectRefused(f"dbt could not parse {project}: {result.exception}")
        manifest = json.loads((Path(tmp) / "target" / "manifest.json").read_text(encoding="utf-8"))
    return manifest, _unique(warnings)


def _school_rule_tests(manifest: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """Rule IDs of the ``follows_school_rule`` tests: {(model unique_id, column): [rule]}."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for node in manifest.get("nodes", {}).values():
        test = node.get("test_metadata") or {}
        if node.get("resource_type") != "test" or test.get("name") != "follows_school_rule":
            continue
        kwargs = test.get("kwargs") or {}
        column = node.get("column_name") or kwargs.get("column_name")
        if node.get("attached_node") and column:
            found[(node["attached_node"], str(column))] += _as_list(kwargs.get("rule"))
    return found


def _column(
    entry: dict[str, Any], tested: list[str] | None, px_rules: dict[str, str], dataset: str | None
) -> Column:
    description = str(entry.get("description") or "").strip()
    meta = _meta(entry)
    name = str(entry.get("name"))
    rules = [*SCHOOL_RULE.findall(description), *_as_list(meta.get("school_rule")), *(tested or [])]
    if dataset and f"{dataset}.{name}" in px_rules:
        rules.append(px_rules[f"{dataset}.{name}"])
    return Column(
        name=name,
        description=description,
        code_sets=_unique([*CODE_SET.findall(description), *_as_list(meta.get("code_set"))]),
        rules=_unique(rules),
    )


def read_models(
    manifest: dict[str, Any], px_rules: dict[str, str], gaps: list[str], layers: tuple[str, ...] = LAYERS
) -> list[Model]:
    """The project's models under ``models/<layer>`` as the dbt manifest describes them; a model no
    property YAML describes goes to ``gaps``."""
    project = (manifest.get("metadata") or {}).get("project_name")
    tests = _school_rule_tests(manifest)
    models = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or (project and node.get("package_name") != project):
            continue
        parts = PurePosixPath(node.get("original_file_path", "")).parts
        layer = parts[1] if len(parts) > 2 and parts[0] == "models" else None
        if layer not in layers:
            continue
        name, sql = node["name"], node["original_file_path"]
        if not node.get("patch_path"):
            gaps.append(f"`{name}` ({layer}) has no entry in any property YAML (`{sql}`)")
            models.append(Model(name=name, layer=layer, path=sql, schema=node.get("schema") or layer))
            continue
        dataset = _meta(node).get("px_dataset")
        columns = (node.get("columns") or {}).values()
        models.append(
            Model(
                name=name,
                layer=layer,
                path=node["patch_path"].split("://", 1)[-1],  # "<package>://models/..."
                description=str(node.get("description") or "").strip(),
                px_dataset=dataset,
                columns=[_column(c, tests.get((unique_id, c["name"])), px_rules, dataset) for c in columns],
                schema=node.get("schema") or layer,
            )
        )
    return sorted(models, key=lambda m: (layers.index(m.layer), m.path, m.name))


def warehouse_columns(path: Path, layers: tuple[str, ...] = LAYERS) -> dict[str, list[str]]:
    """Built columns of the relations in the schemas ``layers``, read-only: {model: [column]}."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema in (select unnest($layers)) order by table_name, ordinal_position",
            {"layers": list(layers)},
        ).fetchall()
    built: dict[str, list[str]] = defaultdict(list)
    for table, column in rows:
        built[table].append(column)
    return dict(built)


def _compare_with_warehouse(models: list[Model], built: dict[str, list[str]], gaps: list[str]) -> None:
    for model in models:
        if model.name not in built:
            gaps.append(f"`{model.name}` is not in the warehouse (not built yet?)")
            continue
        documented = {c.name for c in model.columns}
        missing = [c for c in built[model.name] if c not in documented]
        model.columns += [Column(name=c, documented=False) for c in missing]
        if missing:
            gaps.append(
                f"`{model.name}`: {len(missing)} built column(s) not documented: {', '.join(missing)}"
            )
        stale = sorted(documented - set(built[model.name]))
        if stale:
            gaps.append(f"`{model.name}`: documented but not built: {', '.join(stale)}")


class _Doc:
    """Markdown lines with anchors and links."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def heading(self, level: int, text: str, anchor: str) -> None:
        self.add(f'<a id="{anchor}"></a>', "", f"{'#' * level} {text}", "")

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows))
        self.add("")

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


def _anchor_code_set(set_id: str, national: dict, profile_sets: dict) -> str | None:
    if set_id in national:
        return f"code-set-{set_id}"
    if set_id in profile_sets:
        return f"px-code-set-{set_id}"
    return None


class _Links:
    """Links to code sets and school rules; unknown names become gaps."""

    def __init__(self, national: dict, profile_sets: dict, standard: Standard, gaps: list[str]) -> None:
        self.national, self.profile_sets, self.standard, self.gaps = national, profile_sets, standard, gaps

    def code_set(self, set_id: str, where: str) -> str:
        anchor = _anchor_code_set(set_id, self.national, self.profile_sets)
        if anchor is None:
            self.gaps.append(f"`{where}` names code set `{set_id}`, which is defined nowhere")
            return f"{set_id} (undefined)"
        return f"[{set_id}](#{anchor})"

    def rule(self, rule_id: str, where: str) -> str:
        if rule_id not in self.standard.rules:
            self.gaps.append(f"`{where}` names school rule `{rule_id}`, which the standard does not define")
            return f"{rule_id} (undefined)"
        return f"[{rule_id}](#school-rule-{rule_id})"


def _intro(doc: _Doc, standard: Standard, warehouse_note: str) -> None:
    info = standard.info
    doc.add(
        f"# 数据字典 — {info.get('school', '')} ({info.get('school_code', '')})",
        "",
        f"Generated by `campusdx dictionary` on {date.today().isoformat()} from the repository's "
        "declarations: the school coding standard (`schemas/school/`), the national and industry "
        "code sets (`schemas/codes/`), the PX-1.0 profile (`schemas/exchange/px-1.0/datasets.yaml`) "
        "and the dbt property YAML of every mart and feed model (`dbt_project/models/{marts,feeds}`). "
        "Edit those files, not this one, and run the command again.",
        "",
        "This file needs no warehouse. For lineage, tests, compiled SQL and the built column types, "
        "browse the dbt documentation site: from `dbt_project/`, after a build, run "
        '`dbt docs generate --profiles-dir . --target-path "$CAMPUSDX_HOME/target"`, then '
        '`dbt docs serve --profiles-dir . --target-path "$CAMPUSDX_HOME/target"`.',
        "",
        warehouse_note,
        "",
        "1. [学校信息编码标准](#school-standard)",
        "2. [National and industry code sets](#national-code-sets)",
        "3. [PX-1.0 profile code sets](#px-code-sets)",
        "4. [Marts](#layer-marts)",
        "5. [Feeds](#layer-feeds)",
        "6. [Gaps](#gaps)",
        "",
    )


def _school(doc: _Doc, standard: Standard, dwlb: dict[str, str], used_by: dict[str, list[str]]) -> None:
    info = standard.info
    doc.heading(2, f"1. 学校信息编码标准 — 《{info['name']}》 {info['part']}", "school-standard")
    doc.table(
        ["", ""],
        [
            ["名称", f"{info['name']}（{info['part']}）"],
            ["版本", info["edition"]],
            ["归口管理", info["owner"]],
            ["学校标识码", f"{info.get('school_code', '')} {info.get('school_code_note', '')}"],
            ["文件", f"schemas/school/ ({info['rules_file']}, standard.yml, {info['campuses_file']})"],
        ],
    )
    doc.heading(3, "Rules", "school-rules")
    doc.table(
        ["ID", "名称", "Pattern (full match)", "规则"],
        [
            [f"[{r.code}](#school-rule-{r.code})", r.name, _code(r.pattern), r.description]
            for r in _rules(standard)
        ],
    )
    for rule in _rules(standard):
        doc.heading(4, f"{rule.code} {rule.name}", f"school-rule-{rule.code}")
        doc.add(rule.description, "", f"- Pattern: {_code(rule.pattern)}", f"- Used in: {rule.applies_to}")
        if rule.examples:
            doc.add(f"- Examples: {', '.join(_code(e) for e in rule.examples)}")
        if rule.not_examples:
            doc.add(f"- Not valid: {', '.join(_code(e) for e in rule.not_examples)}")
        if rule.px_fields:
            doc.add(f"- PX-1.0 fields: {', '.join(rule.px_fields)}")
        if rule.mapping:
            doc.add(
                f"- Mapped to national codes in `{rule.mapping['file']}` (field `{rule.mapping['field']}`)"
            )
        doc.add(*(f"- References: {r}" for r in rule.references))
        if used_by.get(rule.code):
            doc.add(f"- Columns: {', '.join(used_by[rule.code])}")
        doc.add("")
        if rule.segments:
            rows, start = [], 1
            for segment in rule.segments:
                end = start + segment["chars"] - 1
                extra = [f"rule {segment['rule']}"] if segment.get("rule") else []
                extra += ["a 校区代码 of campuses.csv"] if segment.get("code_list") else []
                rows.append(
                    [f"{start}-{end}" if end > start else str(start), segment["name"], "; ".join(extra)]
                )
                start = end + 1
            doc.table(["Position", "Segment", "Follows"], rows)
    org = standard.org
    doc.heading(3, "组织机构代码（单位号）的编码规则", "school-org-rules")
    doc.add(
        f"Root {_code(org['root'])} is the university itself (单位类别码 {org['root_category']}). The first "
        f"digit of every other 单位号 is its category family ({org['rule']}); the category is PX-1.0 "
        f"code set [{org['category_code_set']}](#px-code-set-{org['category_code_set']}). 人事 records "
        f"categories in its own words, mapped in `{org['local_categories']['file']}` "
        f"(field `{org['local_categories']['field']}`).",
        "",
    )
    doc.table(
        ["First digit", "单位类别码", "单位类别"],
        [[d, c, dwlb.get(str(c), "")] for d, c in org["family"].items()],
    )
    doc.table(["ID", "Tree rule"], [[t["id"], t["rule"]] for t in org["tree"]])
    doc.heading(3, "校区代码", "school-campuses")
    doc.table(
        ["代码", "校区", "地址"], [[code, c["name"], c["address"]] for code, c in standard.campuses.items()]
    )


def _rules(standard: Standard):
    return list(standard.rules.values())


def _code_list(doc: _Doc, codes: dict[str, str]) -> None:
    folded = len(codes) > FOLDED
    if folded:
        doc.add("<details>", f"<summary>{len(codes)} codes</summary>", "")
    doc.table(["Code", "Name"], [[_code(c), n] for c, n in codes.items()])
    if folded:
        doc.add("</details>", "")


def _national(doc: _Doc, info: dict, sets: dict, used_by: dict[str, list[str]]) -> None:
    doc.heading(2, "2. National and industry code sets", "national-code-sets")
    doc.add("Registry: `schemas/codes/code_sets.yml`; one `code,name` CSV per set.", "")
    doc.table(
        ["ID", "Name", "Standard", "Codes", "Subset"],
        [
            [f"[{i}](#code-set-{i})", e["name"], e["standard"], len(sets[i]), "yes" if e["subset"] else "no"]
            for i, e in info.items()
        ],
    )
    for set_id, entry in info.items():
        doc.heading(3, f"{set_id} {entry['name']}", f"code-set-{set_id}")
        doc.add(
            f"- Standard: {entry['standard']}",
            f"- Edition: {entry['edition']}",
            f"- Source: {entry['source']}",
            f"- File: `schemas/codes/{entry['file']}`",
            f"- Subset: {'yes — a valid code may be missing' if entry['subset'] else 'no'}",
        )
        if used_by.get(set_id):
            doc.add(f"- Columns: {', '.join(used_by[set_id])}")
        notes = _as_list(entry.get("notes"))
        if notes:
            doc.add("- Notes:", *(f"  - {' '.join(n.split())}" for n in notes))
        doc.add("")
        _code_list(doc, sets[set_id])


def _profile_sets(doc: _Doc, profile_sets: dict, national: dict, used_by: dict[str, list[str]]) -> None:
    doc.heading(2, "3. PX-1.0 profile code sets", "px-code-sets")
    doc.add(
        "The `code_sets` block of `schemas/exchange/px-1.0/datasets.yaml`: the exchange profile either "
        "defines a set itself (codes below) or names the national standard it uses.",
        "",
    )
    rows = []
    for set_id, entry in profile_sets.items():
        own = isinstance(entry.get("codes"), dict)
        target = f"[{set_id}](#code-set-{set_id})" if set_id in national else set_id
        defined = "the profile (below)" if own else f"{entry.get('standard', '')} → {target}"
        rows.append(
            [
                f'<a id="px-code-set-{set_id}"></a>{set_id}',
                entry.get("name") or national.get(set_id, {}).get("name", ""),
                defined,
                entry.get("note", ""),
            ]
        )
    doc.table(["ID", "Name", "Defined by", "Profile note"], rows)
    for set_id, entry in profile_sets.items():
        if isinstance(entry.get("codes"), dict):
            doc.add(f"**{set_id} {entry.get('name', '')}**", "")
            if used_by.get(set_id):
                doc.add(f"Columns: {', '.join(used_by[set_id])}", "")
            doc.table(["Code", "Name"], [[_code(c), n] for c, n in entry["codes"].items()])


def _models(doc: _Doc, models: list[Model], links: _Links, layer: str, title: str) -> None:
    doc.heading(2, title, f"layer-{layer}")
    in_layer = [m for m in models if m.layer == layer]
    doc.table(
        ["Model", "Description"],
        [[f"[{m.name}](#model-{m.name})", _summary(m.description)] for m in in_layer],
    )
    for model in in_layer:
        doc.heading(3, model.name, f"model-{model.name}")
        doc.add(model.description or "_No description._", "", f"Defined in `{model.path}`.")
        if model.px_dataset:
            doc.add(f"PX-1.0 dataset `{model.px_dataset}`.")
        doc.add("")
        if not model.columns:
            doc.add("_No columns documented._", "")
            continue
        rows = []
        for column in model.columns:
            where = f"{model.name}.{column.name}"
            standard = [links.code_set(s, where) for s in column.code_sets]
            standard += [links.rule(r, where) for r in column.rules]
            text = column.description or ("_not documented_" if not column.documented else "—")
            rows.append([_code(column.name), ", ".join(standard), text])
        doc.table(["Column", "Code set / school rule", "Description"], rows)


def _summary(description: str, limit: int = 160) -> str:
    """The description up to its grain statement, shortened for the overview table."""
    text = " ".join(description.split(" Grain:")[0].split()) or "—"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _used_by(models: list[Model]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for model in models:
        for column in model.columns:
            for name in [*column.code_sets, *column.rules]:
                found[name].append(f"[{model.name}](#model-{model.name}).{column.name}")
    return found


def build(
    manifest: dict[str, Any] | Path | None = None,
    warehouse: Path | None = None,
    standard: Standard | None = None,
) -> tuple[str, list[str]]:
    """The dictionary as Markdown, and its gaps. ``manifest``: dbt's manifest (a dict or the path of
    a ``manifest.json``), parsed from the project when None. ``warehouse``: a DuckDB file whose
    built columns are compared with the documented ones (skipped when None)."""
    gaps: list[str] = []
    if manifest is None:
        manifest, warnings = parse_project()
        gaps += [f"dbt parse: {w}" for w in warnings]
    elif not isinstance(manifest, dict):
        manifest = json.loads(Path(manifest).read_text(encoding="utf-8"))
    standard = standard or load_standard()
    info, sets = code_set_info(), load_code_sets()
    profile_sets = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))["code_sets"]
    px_rules = {f: r.code for r in standard.rules.values() for f in r.px_fields}
    models = read_models(manifest, px_rules, gaps)
    note = "Columns are those the property YAML documents (no warehouse was compared)."
    if warehouse is not None:
        try:
            schemas = tuple(sorted({m.schema or m.layer for m in models}))
            _compare_with_warehouse(models, warehouse_columns(warehouse, schemas), gaps)
            note = f"Columns were compared with the warehouse `{warehouse}`; undocumented ones are marked."
        except Exception as exc:  # a locked or missing warehouse must not stop the dictionary
            note = f"The warehouse `{warehouse}` could not be read ({_cell(exc)}); columns are the YAML's."
    for model in models:
        if not model.description:
            gaps.append(f"`{model.name}` has no description (`{model.path}`)")
        blank = [c.name for c in model.columns if c.documented and not c.description]
        if blank:
            gaps.append(f"`{model.name}`: column(s) without description: {', '.join(blank)}")
        uncoded = [
            c.name
            for c in model.columns
            if c.documented and c.name.endswith("_code") and not c.code_sets + c.rules
        ]
        if uncoded:
            gaps.append(
                f"`{model.name}`: coded column(s) naming no code set or school rule "
                f"(write 'code set X' or 'SCH-..' in the description): {', '.join(uncoded)}"
            )
    doc = _Doc()
    used_by = _used_by(models)
    _intro(doc, standard, note)
    dwlb = profile_sets.get(standard.org["category_code_set"], {}).get("codes", {})
    _school(doc, standard, dwlb, used_by)
    _national(doc, info, sets, used_by)
    _profile_sets(doc, profile_sets, info, used_by)
    links = _Links(info, profile_sets, standard, gaps)
    _models(doc, models, links, "marts", "4. Marts")
    _models(doc, models, links, "feeds", "5. Feeds (PX-1.0 exchange fields)")
    doc.heading(2, "6. Gaps", "gaps")
    doc.add(*([f"- {g}" for g in _unique(gaps)] or ["None."]))
    return doc.text(), _unique(gaps)


def write(
    out: Path | None = None, warehouse: Path | None = None, manifest: Path | None = None
) -> tuple[Path, list[str]]:
    """Write the dictionary (default ``<home>/docs/data-dictionary.md``); return path and gaps.
    The home's current warehouse snapshot is compared when there is one and ``warehouse`` is not
    given (never the build, which only the pipeline opens); the models are
    read from ``manifest`` (a dbt ``manifest.json``) or, when None, from a fresh ``dbt parse``."""
    home = settings.paths()
    out = Path(out) if out is not None else home.home / "docs" / "data-dictionary.md"
    if warehouse is None:
        try:
            warehouse = snapshots.path_of(home)
        except snapshots.SnapshotError:
            warehouse = None
    text, gaps = build(manifest, warehouse=warehouse)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out, text.encode("utf-8"))
    return out, gaps
