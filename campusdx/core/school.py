"""The school's own coding standard (《西安科技大学信息编码标准》, 公共标准) as data, checked.

The standard lives under ``schemas/school/``: ``school_code_rules.csv`` is the rule table (ID,
name, where the code is used, the pattern a code must fully match, the rule in words; a dbt seed
read by the generic test ``follows_school_rule``), ``standard.yml`` the standard's header and per
rule the segments, examples and references, ``campuses.csv`` the 校区代码. ``load_standard``
refuses a standard that would mislead a check: a pattern that does not compile (in Python or in
DuckDB), an example its own pattern rejects, a campus nobody defined, a rule ID used twice. Every
problem names the file and the entry, and all of them are reported at once so that one edit
session can fix them all.

``check_org_tree`` applies the organisation tree rules (one root, parents exist, no cycle, the
first digit of a 单位号 agrees with its 单位类别) to rows of any source: 人事, dim_org, a test.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, StrictInt, ValidationError

from campusdx.core import settings
from campusdx.core.declarations import Declared, Wording, read_yaml
from campusdx.core.declarations import problems as declared_problems

STANDARD_FILE = "standard.yml"
RULES_HEADER = ["code", "name", "applies_to", "pattern", "description"]
CAMPUS_HEADER = ["code", "name", "address"]
RULE_ID = re.compile(r"SCH-[A-Z0-9]+(-[A-Z0-9]+)*", re.ASCII)
PROFILE = settings.SCHEMAS / "exchange" / "px-1.0" / "datasets.yaml"


class SchoolStandardError(ValueError):
    """The school coding standard's files are malformed or contradict themselves."""


@dataclass(frozen=True)
class Rule:
    """One code of the standard: the rule table's row plus standard.yml's details."""

    code: str
    name: str
    applies_to: str
    pattern: str
    description: str
    segments: tuple[dict[str, Any], ...] = ()
    examples: tuple[str, ...] = ()
    not_examples: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    mapping: dict[str, str] | None = None
    px_fields: tuple[str, ...] = ()
    """PX-1.0 fields (``DATASET.FIELD``) that carry this code."""
    code_list: str | None = None
    """``campuses`` when the valid codes are exactly those of campuses.csv."""
    regex: re.Pattern = field(default=re.compile(""), compare=False, repr=False)

    def matches(self, value: object) -> bool:
        """Whether ``value`` (as text) follows the rule; None follows no rule."""
        return value is not None and self.regex.fullmatch(str(value)) is not None


@dataclass(frozen=True)
class Standard:
    """The loaded standard: header, rules by ID, campuses by code, organisation tree rules."""

    info: dict[str, Any]
    rules: dict[str, Rule]
    campuses: dict[str, dict[str, str]]
    org: dict[str, Any]
    directory: Path

    def rule(self, code: str) -> Rule:
        try:
            return self.rules[code]
        except KeyError:
            raise KeyError(
                f"no rule {code!r} in the school coding standard; known: {sorted(self.rules)}"
            ) from None

    def follows(self, code: str, value: object) -> bool:
        """Whether ``value`` follows rule ``code``."""
        return self.rule(code).matches(value)


def _directory(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else settings.SCHEMAS / "school"


def _read_csv(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """(line, row) of a UTF-8 CSV after its exact header; structural errors are fatal."""
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise SchoolStandardError(f"{path}: file not found") from exc
    rows = []
    with fh:
        reader = csv.reader(fh)
        try:
            for row in reader:
                if reader.line_num == 1:
                    if row != header:
                        raise SchoolStandardError(
                            f"{path}:1: header must be exactly {','.join(header)!r}, found {row!r}"
                        )
                    continue
                if not row:
                    continue
                if len(row) != len(header):
                    raise SchoolStandardError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields, found {len(row)}"
                    )
                rows.append((reader.line_num, row))
        except UnicodeDecodeError as exc:
            raise SchoolStandardError(f"{path}: not UTF-8: {exc}") from exc
        except csv.Error as exc:
            raise SchoolStandardError(f"{path}:{reader.line_num}: {exc}") from exc
    return rows


def _read_rules(path: Path, problems: list[str]) -> dict[str, tuple[int, list[str], re.Pattern | None]]:
    rules: dict[str, tuple[int, list[str], re.Pattern | None]] = {}
    for line, row in _read_csv(path, RULES_HEADER):
        code, name, _applies_to, pattern, description = row
        where = f"{path}:{line}: rule {code!r}"
        if not RULE_ID.fullmatch(code):
            problems.append(f"{where}: rule ID must look like SCH-XX (upper case, digits, hyphens)")
            continue
        if code in rules:
            problems.append(f"{path}:{line}: duplicate rule ID {code!r} (first on line {rules[code][0]})")
            continue
        for column, value in zip(RULES_HEADER, row, strict=True):
            if value != value.strip():
                problems.append(f"{where}: {column} has leading or trailing spaces")
        if not name or not pattern or not description:
            problems.append(f"{where}: name, pattern and description must not be empty")
        try:
            regex = re.compile(pattern, re.ASCII) if pattern else None
        except re.error as exc:
            problems.append(f"{where}: pattern {pattern!r} does not compile: {exc}")
            regex = None
        rules[code] = (line, row, regex)
    return rules


def _read_campuses(path: Path, problems: list[str]) -> dict[str, dict[str, str]]:
    campuses: dict[str, dict[str, str]] = {}
    first: dict[str, int] = {}
    for line, (code, name, address) in _read_csv(path, CAMPUS_HEADER):
        if not code or code != code.strip() or not name.strip():
            problems.append(f"{path}:{line}: campus {code!r}: code and name must be set, without spaces")
        elif code in campuses:
            problems.append(f"{path}:{line}: duplicate campus {code!r} (first on line {first[code]})")
        else:
            campuses[code] = {"name": name, "address": address}
            first[code] = line
    return campuses


def _quoted(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of quoted strings (a code like 01 must be quoted)")
    return tuple(value)


Quoted = Annotated[tuple[str, ...], BeforeValidator(_quoted)]
Text = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
Filled = Annotated[Text, Field(min_length=1)]


class _Segment(Declared):
    chars: Annotated[StrictInt, Field(gt=0)]
    name: Filled
    rule: str | None = None
    code_list: Literal["campuses"] | None = None


class _Mapping(Declared):
    file: str
    field: str


class _CodeDetails(Declared):
    """``codes.<rule ID>`` of standard.yml (see its header for the keys)."""

    segments: list[_Segment] | None = None
    examples: Quoted = ()
    not_examples: Quoted = ()
    references: Quoted = ()
    code_list: Literal["campuses"] | None = None
    mapping: _Mapping | None = None
    px_fields: Quoted = ()


class _Header(Declared):
    name: Filled
    part: Filled
    edition: Filled
    owner: Filled
    rules_file: Filled
    campuses_file: Filled
    school: str | None = None
    school_code: str | None = None
    school_code_note: str | None = None


class _TreeRule(Declared):
    id: Filled
    rule: Filled


class _OrgRules(Declared):
    rule: str
    root: Text
    root_category: Text
    category_code_set: str | None = None
    family: dict[Text, Text]
    local_categories: _Mapping | None = None
    tree: list[_TreeRule]


class StandardFile(Declared):
    """``standard.yml``: the standard's header, the details per rule and the organisation tree rules."""

    standard: _Header
    codes: dict[str, _CodeDetails | None]
    org_code_rules: _OrgRules


_WORDING = Wording(key="{where}: {key}: {problem}", missing="{where}: missing {names}")


def _check_examples(
    rule: Rule, rules: dict[str, Rule], campuses: dict, where: str, problems: list[str]
) -> None:
    if not rule.examples:
        problems.append(f"{where}: at least one example is required")
    for example in rule.examples:
        if not rule.matches(example):
            problems.append(f"{where}: example {example!r} does not match its own pattern {rule.pattern!r}")
        if not rule.segments:
            continue
        if sum(s["chars"] for s in rule.segments) != len(example):
            problems.append(f"{where}: example {example!r}: the segments' chars do not add up to its length")
            continue
        start = 0
        for segment in rule.segments:
            part, start = example[start : start + segment["chars"]], start + segment["chars"]
            inner = rules.get(segment.get("rule", ""))
            if inner is not None and not inner.matches(part):
                problems.append(
                    f"{where}: example {example!r}: {segment['name']} {part!r} does not follow {inner.code}"
                )
            if segment.get("code_list") == "campuses" and part not in campuses:
                problems.append(
                    f"{where}: example {example!r}: 校区代码 {part!r} is not in campuses.csv "
                    f"(known: {', '.join(sorted(campuses))})"
                )
    for example in rule.not_examples:
        if rule.matches(example):
            problems.append(f"{where}: not_example {example!r} matches the pattern {rule.pattern!r}")


def _check_segments(rule: Rule, known: set[str], where: str, problems: list[str]) -> None:
    for n, segment in enumerate(rule.segments, start=1):
        if "rule" in segment and segment["rule"] not in known:
            problems.append(f"{where}: segment {n}: unknown rule {segment['rule']!r}")


def _check_mapping(mapping: dict[str, str] | None, where: str, problems: list[str]) -> None:
    if mapping is None:
        return
    path = settings.REPO_ROOT / mapping["file"]
    if not path.exists():
        problems.append(f"{where}: mapping file {mapping['file']} does not exist")
        return
    with path.open(encoding="utf-8-sig", newline="") as fh:
        if not any(row.get("field") == mapping["field"] for row in csv.DictReader(fh)):
            problems.append(f"{where}: mapping: {mapping['file']} has no rows of field {mapping['field']!r}")


def _check_in_duckdb(rules: dict[str, Rule], where: str, problems: list[str]) -> None:
    """The warehouse applies the patterns with RE2: every example must come out the same there."""
    import duckdb

    with duckdb.connect() as conn:
        for rule in rules.values():
            samples = [*rule.examples, *rule.not_examples]
            try:
                got = conn.execute(
                    "select list(regexp_full_match(x, $p) order by i) "
                    "from unnest($xs) with ordinality as t(x, i)",
                    {"p": rule.pattern, "xs": samples},
                ).fetchone()[0]
            except duckdb.Error as exc:
                problems.append(f"{where}: codes.{rule.code}: DuckDB (RE2) refuses the pattern: {exc}")
                continue
            for sample, in_duckdb in zip(samples, got or [], strict=False):
                if in_duckdb != rule.matches(sample):
                    problems.append(
                        f"{where}: codes.{rule.code}: {sample!r} matches in "
                        f"{'DuckDB' if in_duckdb else 'Python'} only; write the pattern without such syntax"
                    )


def _profile() -> dict[str, Any]:
    return yaml.safe_load(PROFILE.read_text(encoding="utf-8"))


def _check_px_fields(
    fields: tuple[str, ...], profile: dict[str, Any], where: str, problems: list[str]
) -> None:
    for name in fields:
        dataset, _, code = name.partition(".")
        known = {f["code"] for f in profile["datasets"].get(dataset, {}).get("fields", [])}
        if code not in known:
            problems.append(f"{where}: px_fields: {name!r} is not a field of {PROFILE.name}")


def _check_org(
    org: dict[str, Any], rules: dict[str, Rule], dwlb: set[str], where: str, problems: list[str]
) -> None:
    rule = rules.get(org["rule"])
    if rule is None:
        problems.append(f"{where}: org_code_rules.rule: unknown rule {org['rule']!r}")
    elif not rule.matches(org["root"]):
        problems.append(f"{where}: org_code_rules.root {org['root']!r} does not follow {rule.code}")
    for digit, category in {"root": org["root_category"], **org["family"]}.items():
        if str(category) not in dwlb:
            problems.append(f"{where}: org_code_rules.family {digit}: {category!r} is not a DWLB code")
    seen = set(rules)
    for item in org["tree"]:
        if item["id"] in seen:
            problems.append(f"{where}: org_code_rules.tree: duplicate rule ID {item['id']!r}")
        seen.add(item["id"])


def load_standard(directory: str | Path | None = None) -> Standard:
    """Load ``schemas/school/`` (or ``directory``) and check it; raise SchoolStandardError listing
    every problem found, each naming its file and entry.

    standard.yml is checked first by :class:`StandardFile`; the checks across files (rules and
    their details, examples, campuses, DuckDB, the profile) run when it passes. The CSV files'
    problems are reported either way."""
    root = _directory(directory)
    yml = root / STANDARD_FILE
    try:
        document = read_yaml(yml, SchoolStandardError)
    except FileNotFoundError as exc:
        raise SchoolStandardError(f"{yml}: file not found") from exc
    problems: list[str] = []
    try:
        StandardFile.model_validate(document)
    except ValidationError as exc:
        problems += declared_problems(exc, yml, wording=_WORDING, model=StandardFile)
    info = (document.get("standard") if isinstance(document, dict) else None) or {}
    rules_csv = root / str(info.get("rules_file") or "school_code_rules.csv")
    table = _read_rules(rules_csv, problems)
    campuses = _read_campuses(root / str(info.get("campuses_file") or "campuses.csv"), problems)
    if problems:
        raise _refused(root, problems)
    details = document["codes"]
    for code in table.keys() - details.keys():
        problems.append(f"{yml}: codes: no entry for rule {code} (line {table[code][0]} of {rules_csv.name})")
    for code in details.keys() - table.keys():
        problems.append(f"{yml}: codes.{code}: not a rule of {rules_csv.name}")
    rules: dict[str, Rule] = {}
    for code, (_line, row, regex) in table.items():
        entry = details.get(code)
        if entry is None or regex is None:
            continue
        rules[code] = Rule(
            *row,
            segments=tuple(entry.get("segments") or ()),
            examples=_quoted(entry.get("examples")),
            not_examples=_quoted(entry.get("not_examples")),
            references=_quoted(entry.get("references")),
            mapping=entry.get("mapping"),
            px_fields=_quoted(entry.get("px_fields")),
            code_list=entry.get("code_list"),
            regex=regex,
        )
    profile = _profile()
    for code, rule in rules.items():
        where = f"{yml}: codes.{code}"
        _check_segments(rule, set(table), where, problems)
        _check_mapping(rule.mapping, where, problems)
        _check_examples(rule, rules, campuses, where, problems)
        _check_px_fields(rule.px_fields, profile, where, problems)
        if rule.code_list:
            problems += [
                f"{where}: campus {c!r} of campuses.csv does not follow the rule"
                for c in campuses
                if not rule.matches(c)
            ]
    _check_in_duckdb(rules, str(yml), problems)
    dwlb = set(profile["code_sets"]["DWLB"]["codes"])
    org = document["org_code_rules"]
    _check_org(org, rules, dwlb, str(yml), problems)
    if problems:
        raise _refused(root, problems)
    return Standard(info=info, rules=rules, campuses=campuses, org=org, directory=root)


def _refused(root: Path, problems: list[str]) -> SchoolStandardError:
    return SchoolStandardError(
        f"the school coding standard in {root} has {len(problems)} problem(s):\n  " + "\n  ".join(problems)
    )


def _text(value: object) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def check_org_tree(rows: Iterable[Sequence[object]], standard: Standard | None = None) -> list[str]:
    """Problems of an organisation tree, given (单位号, 上级单位号, 单位类别码 DWLB) rows; [] if none.

    Each problem starts with the tree rule's ID (SCH-DWH-T1..T5 of standard.yml) and names the
    单位号, so it can be fixed in 人事 where the tree is kept.
    """
    std = standard or load_standard()
    org, rule = std.org, std.rule(std.org["rule"])
    family = {str(k): str(v) for k, v in org["family"].items()}
    nodes: dict[str, tuple[str | None, str | None]] = {}
    problems: list[str] = []
    for raw_code, raw_parent, raw_category in rows:
        code, parent, category = _text(raw_code), _text(raw_parent), _text(raw_category)
        if code is None:
            problems.append(f"SCH-DWH-T2: a unit without 单位号 (parent {parent!r})")
            continue
        if code in nodes:
            problems.append(f"SCH-DWH-T2: 单位号 {code!r} appears more than once")
            continue
        if not rule.matches(code):
            problems.append(f"SCH-DWH-T2: 单位号 {code!r} does not follow {rule.code} ({rule.pattern})")
        nodes[code] = (parent, category)
    roots = [code for code, (parent, _) in nodes.items() if parent is None]
    if org["root"] not in nodes:
        problems.append(f"SCH-DWH-T1: the root {org['root']!r} (the university) is missing")
    elif nodes[org["root"]][0] is not None:
        problems.append(f"SCH-DWH-T1: the root {org['root']!r} has a 上级单位号 {nodes[org['root']][0]!r}")
    problems += [
        f"SCH-DWH-T1: 单位号 {c!r} has no 上级单位号; only {org['root']!r} may"
        for c in roots
        if c != org["root"]
    ]
    problems += [
        f"SCH-DWH-T3: 单位号 {code!r}: 上级单位号 {parent!r} does not exist"
        for code, (parent, _) in nodes.items()
        if parent is not None and parent not in nodes
    ]
    done: set[str] = set()
    for start in nodes:
        path: list[str] = []
        current: str | None = start
        while current is not None and current in nodes and current not in done:
            if current in path:
                cycle = path[path.index(current) :]
                problems.append(f"SCH-DWH-T4: cycle of 上级单位号: {' -> '.join([*cycle, current])}")
                break
            path.append(current)
            current = nodes[current][0]
        done.update(path)
    for code, (_parent, category) in nodes.items():
        expected = str(org["root_category"]) if code == org["root"] else family.get(code[0])
        if expected is not None and category != expected:
            problems.append(
                f"SCH-DWH-T5: 单位号 {code!r} has 单位类别码 {category!r}; its first digit means {expected!r}"
            )
    return problems
