"""The quality gate: validate each PX dataset's candidate rows with Great Expectations.

For every dataset the gate reads its PX candidates (``campusdx.core.warehouse.candidates``)
from the warehouse (read-only, closed before validating: dbt is the writer), validates them
through GX's pandas datasource (GX's SQL datasource does not work on DuckDB), and writes:

- ``quality/findings/<DATASET>.parquet``: one row per failing row, rule and field. The dbt
  model ``quarantine`` reads these; ``feed_px__<dataset>`` leaves those rows out.
- ``quality/gate/<DATASET>.json``: the verdict (passed / blocked), counts per rule, and why.
- its suite, its validation result and their Data Docs pages under ``quality/gx/``
  (:mod:`campusdx.quality.gxproject`), the history and the summary page (:mod:`campusdx.quality.report`).

Gates of several datasets may run at once, each in its own process: each validates in its own
ephemeral GX context, writes its per-dataset files atomically (:mod:`campusdx.quality.files`), and
touches what the gates share (GX stores, Data Docs, history, summary) only under one
inter-process lock. A failing value of a personal field is kept masked with a keyed fingerprint
(:mod:`campusdx.quality.personal`), in the findings and in the stored validation results alike.

Row-level error rules quarantine rows and the dataset still publishes; a dataset-level error
rule, or more quarantined rows than the dataset's tolerated share, blocks its publish.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from great_expectations.expectations.row_conditions import Column

from campusdx.core import atomic
from campusdx.core.clock import BEIJING  # approvals run to the end of their day in Beijing
from campusdx.core.declarations import source_system_of
from campusdx.core.findings import FINDINGS_SCHEMA
from campusdx.core.profile import Dataset, load_profile
from campusdx.core.settings import Paths
from campusdx.core.settings import paths as default_paths
from campusdx.core.warehouse import candidates, reading
from campusdx.quality import custom, gxproject
from campusdx.quality.approvals import APPROVALS_FILE, load_approvals, tolerance
from campusdx.quality.files import quality_lock, write_text_atomic
from campusdx.quality.personal import fingerprint, fingerprint_key, personal_fields, protect, scrub_validation
from campusdx.quality.report import record, write_summary
from campusdx.quality.row_rules import ROW_RULES
from campusdx.quality.rules import Rule, RuleBook, load_rules

log = logging.getLogger(__name__)

KEY_COLUMN = "record_key"


@dataclass
class GateResult:
    """The verdict for one dataset."""

    dataset: str
    run_id: str
    status: str
    rows_checked: int
    rows_quarantined: int
    failures: dict[str, int] = field(default_factory=dict)
    blocking: list[str] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)
    checked_at: str = ""
    checks_passed: int = 0
    checks_failed: int = 0
    tolerances: dict[str, str] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"


def _meta(rule: Rule, px_field: str | None = None) -> dict:
    return {
        "rule_id": rule.id,
        "severity": rule.severity,
        "scope": rule.scope,
        "field": px_field,
        "px_rule": rule.px_rule,
        "what": rule.what,
        "why": rule.why,
        "fix": rule.fix,
    }


def build_suite(dataset: Dataset, book: RuleBook, *, as_of: str | None = None):
    """The GX expectation suite of one dataset: generated families plus hand-written checks.

    ``as_of`` (YYYY-MM-DD) is the day the person checks count ages on (PX-W101); today if None.
    """
    expectations: list = []
    add = expectations.append  # one suite at the end: adding to a saved suite writes it each time
    for f in dataset.fields:
        if f.required:
            add(gxe.ExpectColumnValuesToNotBeNull(column=f.code, meta=_meta(book.family("required"), f.code)))
        if f.code_set:
            add(
                custom.ExpectColumnValuesToBeInPxCodeSet(
                    column=f.code, code_set=f.code_set, meta=_meta(book.family("code_set"), f.code)
                )
            )
        if f.type.kind in ("date", "datetime", "decimal", "integer"):
            add(
                custom.ExpectColumnValuesToMatchPxType(
                    column=f.code, px_type=_type_text(f.type), meta=_meta(book.family("format"), f.code)
                )
            )
        if f.type.length:
            add(
                gxe.ExpectColumnValueLengthsToBeBetween(
                    column=f.code, max_value=f.type.length, meta=_meta(book.family("length"), f.code)
                )
            )
    key_rule = book.family("primary_key")
    if len(dataset.primary_key) == 1:
        add(
            gxe.ExpectColumnValuesToBeUnique(
                column=dataset.primary_key[0], meta=_meta(key_rule, dataset.primary_key[0])
            )
        )
    else:
        add(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(dataset.primary_key), meta=_meta(key_rule)))
    for px_field, reference in dataset.references.items():
        add(
            custom.ExpectColumnValuesToResolvePxReference(
                column=px_field,
                target=f"{reference.dataset}.{reference.field}",
                meta=_meta(book.family("reference"), px_field),
            )
        )
    for rule in book.rules:
        if not rule.check or not rule.applies_to(dataset.code):
            continue
        condition = None
        for column, value in rule.when.items():
            condition = Column(column) == value
        if rule.check == "valid_cn_ric":
            add(
                custom.ExpectColumnValuesToBeValidCnRic(
                    column=rule.field, row_condition=condition, meta=_meta(rule, rule.field)
                )
            )
        elif rule.check == "not_empty":
            add(gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(rule)))
        elif rule.check in ROW_RULES:
            # the key rides along: GX wants two columns at least, and a rule may read only one
            columns = list(dict.fromkeys((rule.field, *rule.reads, KEY_COLUMN)))
            add(
                custom.ExpectRowsToKeepPxRule(
                    column_list=columns, rule=rule.check, as_of=as_of, meta=_meta(rule, rule.field)
                )
            )
        elif rule.check in PUSHED_DOWN:
            continue  # an aggregate over the whole dataset, computed in DuckDB (Gate.check)
        else:
            raise ValueError(f"rule {rule.id}: unknown check {rule.check!r}")
    return gx.ExpectationSuite(name=f"px_{dataset.code.lower()}", expectations=expectations)


# Dataset-level rules computed as aggregates in DuckDB: (warehouse connection, dataset) -> the
# breaches in plain words (empty = kept). Cheap there, and no need to pull the rows into pandas.
def _double_entry_per_period(conn, dataset: Dataset) -> list[str]:
    rows = conn.execute(
        f"""
        select kjnd, kjqj, sum(try_cast(jffse as decimal(38, 2))), sum(try_cast(dffse as decimal(38, 2)))
        from {candidates(dataset.code)}
        group by kjnd, kjqj
        having sum(try_cast(jffse as decimal(38, 2))) is distinct from sum(try_cast(dffse as decimal(38, 2)))
        order by kjnd, kjqj
        """
    ).fetchall()
    return [f"{year}-{period}: debits {debit} != credits {credit}" for year, period, debit, credit in rows]


PUSHED_DOWN = {"double_entry_per_period": _double_entry_per_period}


def _type_text(kind) -> str:
    if kind.kind == "decimal":
        return f"decimal({kind.precision},{kind.scale})"
    return kind.kind


def read_candidates(warehouse: Path, dataset: Dataset) -> pd.DataFrame:
    """The dataset's candidate rows, PX columns upper-cased, empty strings as missing values."""
    columns = ", ".join([KEY_COLUMN, "batch_id", *[f.code.lower() for f in dataset.fields]])
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        frame = conn.execute(f"select {columns} from {candidates(dataset.code)}").df()
    frame.columns = [KEY_COLUMN, "batch_id", *dataset.field_codes]
    return frame.astype(object).replace({"": None}).where(frame.notna(), None)


def _findings(
    result, dataset: str, frame: pd.DataFrame, run_id: str, now: datetime, personal: dict, key: bytes
) -> list[dict]:
    """Failing rows of one expectation result, one finding per row; a personal field's value
    masked, with its keyed fingerprint."""
    meta = result.expectation_config.meta
    if meta.get("scope") == "dataset":
        return []
    batches = dict(zip(frame[KEY_COLUMN], frame["batch_id"], strict=True))
    px_field = meta.get("field")
    system = source_system_of(dataset)
    rows = []
    for entry in result.result.get("unexpected_index_list") or []:
        record_key = entry.get(KEY_COLUMN)
        raw = entry.get(px_field) if px_field else None
        value, value_fingerprint = protect(raw, px_field, personal, key)
        rows.append(
            {
                "dataset": dataset,
                "record_key": None if record_key is None else str(record_key),
                "rule_id": meta["rule_id"],
                "severity": meta["severity"],
                "field": px_field,
                "value": value,
                "source_system": system,
                "batch_id": batches.get(record_key),
                "run_id": run_id,
                "checked_at": now.replace(tzinfo=None),
                "first_seen": now.replace(tzinfo=None),
                "value_fingerprint": value_fingerprint,
            }
        )
    return rows


class Gate:
    """Per-dataset validation in an ephemeral GX context of this process (nothing shared)."""

    def __init__(
        self, paths: Paths | None = None, book: RuleBook | None = None, approvals_file: Path | None = None
    ) -> None:
        self.paths = paths or default_paths()
        self.book = book or load_rules()
        self.profile = load_profile()
        self.personal = personal_fields(self.profile)
        self.approvals = load_approvals(
            approvals_file or APPROVALS_FILE,
            rule_ids={r.id for r in self.book.rules},
            datasets=set(self.profile.datasets),
        )
        self.context = gxproject.validation_context()
        self.source = self.context.data_sources.add_pandas(name="warehouse")

    def _checkpoint(self, dataset: Dataset, as_of: str):
        name = f"px_{dataset.code.lower()}"
        try:
            asset = self.source.get_asset(name)
        except LookupError:
            asset = self.source.add_dataframe_asset(name=name)
        try:
            batch = asset.get_batch_definition("whole")
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe("whole")
        suite = gxproject.save_suite(self.context, build_suite(dataset, self.book, as_of=as_of))
        validation = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        return self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[validation],
                actions=[],  # Data Docs: built under the quality lock after the run (_publish)
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": [KEY_COLUMN],
                    "include_unexpected_rows": False,
                    "return_unexpected_index_query": False,
                },
            )
        )

    def check(
        self, dataset_code: str, *, run_id: str | None = None, now: datetime | None = None
    ) -> GateResult:
        """Validate one dataset, write its findings and verdict, and return the verdict. The
        warehouse is held for reading throughout (one build's candidates, references and
        aggregates; dbt waits)."""
        with reading(self.paths):
            return self._check(dataset_code, run_id=run_id, now=now)

    def _check(self, dataset_code: str, *, run_id: str | None, now: datetime | None) -> GateResult:
        dataset = self.profile.dataset(dataset_code)
        run_id = run_id or uuid.uuid4().hex[:12]
        now = now or datetime.now(UTC)
        frame = read_candidates(self.paths.warehouse, dataset)
        from campusdx.quality.platform import prune  # here: it imports this module

        prune(
            self.paths,
            dataset,
            dict(zip(frame[KEY_COLUMN], frame["batch_id"], strict=True)),
            self.personal,
        )
        self._load_reference_keys(dataset, frame)
        pushed_down = self._pushed_down(dataset)
        day = now.astimezone(BEIJING).date().isoformat()  # ages (PX-W101) count on the Beijing date
        outcome = self._checkpoint(dataset, day).run(batch_parameters={"dataframe": frame})
        ((result_id, validation),) = outcome.run_results.items()
        key = fingerprint_key(self.paths)
        findings: list[dict] = []
        dataset_failures: list[str] = []
        for result in validation.results:
            if result.exception_info and result.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"{dataset_code}: rule {result.expectation_config.meta.get('rule_id')} could not run: "
                    f"{result.exception_info.get('exception_message')}"
                )
            if result.success:
                continue
            if result.expectation_config.meta.get("scope") == "dataset":
                dataset_failures.append(result.expectation_config.meta["rule_id"])
            findings.extend(_findings(result, dataset_code, frame, run_id, now, self.personal, key))
        dataset_failures += pushed_down
        verdict = self._verdict(dataset_code, run_id, now, len(frame), findings, dataset_failures)
        verdict.checks_passed = validation.statistics["successful_expectations"]
        verdict.checks_failed = validation.statistics["unsuccessful_expectations"]
        self._write(dataset_code, findings, verdict)
        scrub_validation(validation, self.personal)  # nothing personal reaches the stores
        self._publish(dataset, day, result_id, validation, verdict)
        return verdict

    def _load_reference_keys(self, dataset: Dataset, frame: pd.DataFrame) -> None:
        """The keys each reference of ``dataset`` may name: the referenced rows that will be sent.

        A reference into the dataset itself resolves against its own candidates. A reference
        into another dataset resolves against that dataset's candidates less the rows its latest
        verdict quarantined, so the referenced dataset is judged first (the warehouse DAG and
        ``run_gate`` order the datasets by their references).
        """
        for reference in dataset.references.values():
            target = f"{reference.dataset}.{reference.field}"
            if reference.dataset == dataset.code:
                custom.REFERENCE_KEYS[target] = frozenset(frame[reference.field].dropna().astype(str))
                continue
            table = candidates(reference.dataset)
            findings = self.paths.quality / "findings" / f"{reference.dataset}.parquet"
            query, params = f"select distinct cast({reference.field.lower()} as varchar) from {table}", []
            if findings.exists():
                query += (
                    f" where {KEY_COLUMN} not in "
                    "(select record_key from read_parquet(?) where severity = 'error')"
                )
                params.append(str(findings))
            else:
                log.warning(
                    "gate %s: %s has not been judged; its references resolve against all its candidate rows",
                    dataset.code,
                    reference.dataset,
                )
            with duckdb.connect(str(self.paths.warehouse), read_only=True) as conn:
                try:
                    keys = conn.execute(query, params).fetchall()
                except duckdb.CatalogException:
                    raise RuntimeError(
                        f"{dataset.code}: the reference {reference.field} -> {target} cannot be checked: "
                        f"{table} is not in the warehouse (run dbt build first)"
                    ) from None
            custom.REFERENCE_KEYS[target] = frozenset(k for (k,) in keys if k is not None)

    def _pushed_down(self, dataset: Dataset) -> list[str]:
        """Dataset-level rules computed in DuckDB: one blocking entry per breached rule."""
        breaches = []
        with duckdb.connect(str(self.paths.warehouse), read_only=True) as conn:
            for rule in self.book.rules:
                if rule.check in PUSHED_DOWN and rule.applies_to(dataset.code):
                    found = PUSHED_DOWN[rule.check](conn, dataset)
                    if found:
                        breaches.append(f"{rule.id}: {'; '.join(found[:5])}")
        return breaches

    def _verdict(self, dataset, run_id, now, rows, findings, dataset_failures) -> GateResult:
        errors = [f for f in findings if f["severity"] == "error"]
        quarantined = len({f["record_key"] for f in errors})
        result = GateResult(
            dataset=dataset,
            run_id=run_id,
            status="passed",
            rows_checked=rows,
            rows_quarantined=quarantined,
            failures=dict(Counter(f["rule_id"] for f in errors)),
            warnings=dict(Counter(f["rule_id"] for f in findings if f["severity"] == "warning")),
            checked_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        blocking = [
            rule for rule in dataset_failures if self.book.by_id(rule.split(":")[0]).severity == "error"
        ]
        day = now.astimezone(BEIJING).date()
        failing_rows: dict[str, set] = {}
        for f in findings:
            failing_rows.setdefault(f["rule_id"], set()).add(f["record_key"])
        for rule_id, keys in sorted(failing_rows.items()):
            allowed = tolerance(self.approvals, rule_id, dataset, day)
            result.tolerances[rule_id] = allowed.describe()
            share = len(keys) / rows if rows else 0.0
            if self.book.by_id(rule_id).severity == "error" and share > allowed.max_share:
                blocking.append(
                    f"{rule_id} failed on {len(keys)} of {rows} rows ({share:.1%}), "
                    f"above its tolerance {allowed.describe()}"
                )
        if blocking:
            result.status, result.blocking = "blocked", blocking
        return result

    def _write(self, dataset: str, findings: list[dict], verdict: GateResult) -> None:
        """This dataset's own files, each replaced atomically (no other gate writes them)."""
        findings_dir = self.paths.quality / "findings"
        gate_dir = self.paths.quality / "gate"
        findings_dir.mkdir(parents=True, exist_ok=True)
        gate_dir.mkdir(parents=True, exist_ok=True)
        _carry_first_seen(findings_dir / f"{dataset}.parquet", findings, self.personal, self.paths)
        table = pa.Table.from_pylist(findings, schema=FINDINGS_SCHEMA)
        atomic.write_parquet(findings_dir / f"{dataset}.parquet", table)
        write_text_atomic(
            gate_dir / f"{dataset}.json", json.dumps(asdict(verdict), ensure_ascii=False, indent=2) + "\n"
        )
        log.info(
            "gate %s: %s, %d rows checked, %d quarantined, failures %s",
            dataset,
            verdict.status,
            verdict.rows_checked,
            verdict.rows_quarantined,
            verdict.failures,
        )

    def _publish(self, dataset: Dataset, day: str, result_id, validation, verdict: GateResult) -> None:
        """What the gates share, under the quality lock: the GX stores and Data Docs, the
        history and the summary of every dataset's latest verdict."""
        gate_dir = self.paths.quality / "gate"
        with quality_lock(self.paths):
            suite = build_suite(dataset, self.book, as_of=day)  # the stores' own copy
            gxproject.publish(self.paths, suite, result_id, validation, self.personal)
            record(self.paths, asdict(verdict))
            latest = {
                path.stem: json.loads(path.read_text(encoding="utf-8"))
                for path in sorted(gate_dir.glob("*.json"))
            }
            write_summary(self.paths, latest, self.book)

    def docs_index(self) -> Path | None:
        """The local Data Docs index page, once built."""
        index = self.paths.quality / gxproject.SITE_DIR / "index.html"
        return index if index.exists() else None


def _carry_first_seen(previous: Path, findings: list[dict], personal: dict, paths: Paths) -> None:
    """A finding the gate made before keeps the time it was first seen (quarantine ``first_seen``).

    The same row, rule, field, value and batch is the same finding; a personal field's value is
    compared by its fingerprint (files written before values were masked hold the value itself:
    it is fingerprinted here). A row fixed at the source comes back in a new batch, so if it
    fails again it is a new finding."""
    if not previous.exists():
        return
    columns = pq.read_schema(previous).names
    if "first_seen" not in columns:
        return  # written before findings carried it
    key = fingerprint_key(paths)

    def identity(row: dict) -> tuple:
        value = row["value"]
        if row["field"] in personal:
            value = row.get("value_fingerprint") or fingerprint(value, key)
        return (row["record_key"], row["rule_id"], row["field"], value, row["batch_id"])

    wanted = ["record_key", "rule_id", "field", "value", "batch_id", "first_seen"]
    wanted += ["value_fingerprint"] if "value_fingerprint" in columns else []
    seen = {identity(row): row["first_seen"] for row in pq.read_table(previous, columns=wanted).to_pylist()}
    for finding in findings:
        finding["first_seen"] = seen.get(identity(finding), finding["first_seen"])


def read_verdict(dataset: str, paths: Paths | None = None) -> GateResult | None:
    """The latest verdict for a dataset, or None if the gate has not judged it."""
    path = (paths or default_paths()).quality / "gate" / f"{dataset}.json"
    if not path.exists():
        return None
    return GateResult(**json.loads(path.read_text(encoding="utf-8")))


def run_gate(datasets: list[str], *, paths: Paths | None = None) -> list[GateResult]:
    """Judge several datasets in one GX context (one run id), referenced datasets first."""
    gate = Gate(paths)
    run_id = uuid.uuid4().hex[:12]
    return [gate.check(code, run_id=run_id) for code, _ in gate.profile.publish_order(datasets)]
