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

A gate validates what changed since its last verdict. Its rules are of two kinds: those that
read one row alone (required values, code sets, formats, lengths, ID numbers, the row rules but
the age rule) and those that read more (the key's uniqueness, references into other datasets,
the row count, ages, which move with the date, and the aggregates computed in DuckDB). The
second kind always runs on every row; the first runs on the rows whose values changed since the
last verdict (a row hash per key, kept in ``quality/gate/<DATASET>.rows.parquet``), and the
findings of the rows that did not change are carried over from the last verdict. Every row is
validated again (``validated: every row`` in the verdict) when there is no earlier verdict,
when what the first kind reads besides the row changed (the rules, the profile, the code sets,
the code of the checks), when the warehouse was rebuilt in full since (a FULL cycle, the
periodic full rebuild) and when asked for.
"""

from __future__ import annotations

import hashlib
import hmac
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

from campusdx.core import atomic, idnumbers
from campusdx.core.clock import BEIJING  # approvals run to the end of their day in Beijing
from campusdx.core.declarations import source_system_of
from campusdx.core.findings import FINDINGS_SCHEMA
from campusdx.core.profile import Dataset, load_profile
from campusdx.core.settings import SCHEMAS, Paths
from campusdx.core.settings import paths as default_paths
from campusdx.core.warehouse import candidates, last_full_rebuild, reading
from campusdx.quality import custom, gxproject, row_rules
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
    validated: str = "every row"  # or "changed rows": the others' row findings carried over
    rows_validated: int = 0

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"


CHANGED_COLUMN = "_changed"
"""The candidate frame's column that says whether a row changed since the last verdict."""
EACH, ALL = "each", "all"
"""An expectation's ``rows`` in its meta: it reads each row alone, or it reads all of them."""


def _meta(rule: Rule, px_field: str | None = None, rows: str = EACH) -> dict:
    return {
        "rows": rows,
        "rule_id": rule.id,
        "severity": rule.severity,
        "scope": rule.scope,
        "field": px_field,
        "px_rule": rule.px_rule,
        "what": rule.what,
        "why": rule.why,
        "fix": rule.fix,
    }


DATED_ROW_RULES = {"age_in_range"}
"""Row rules whose outcome moves with the date (``as_of``): they read all rows every time."""


def build_suite(dataset: Dataset, book: RuleBook, *, as_of: str | None = None, changed_only: bool = False):
    """The GX expectation suite of one dataset: generated families plus hand-written checks.

    ``as_of`` (YYYY-MM-DD) is the day the person checks count ages on (PX-W101); today if None.
    ``changed_only``: the expectations that read each row alone look only at the rows whose
    :data:`CHANGED_COLUMN` is true (the others read every row).
    """
    changed = Column(CHANGED_COLUMN) == True  # noqa: E712  (a GX condition, not a comparison)

    def each(condition=None):
        """The row condition of an expectation that reads each row alone."""
        if not changed_only:
            return condition
        return changed if condition is None else condition & changed

    expectations: list = []
    add = expectations.append  # one suite at the end: adding to a saved suite writes it each time
    for f in dataset.fields:
        if f.required:
            add(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=f.code, row_condition=each(), meta=_meta(book.family("required"), f.code)
                )
            )
        if f.code_set:
            add(
                custom.ExpectColumnValuesToBeInPxCodeSet(
                    column=f.code,
                    code_set=f.code_set,
                    row_condition=each(),
                    meta=_meta(book.family("code_set"), f.code),
                )
            )
        if f.type.kind in ("date", "datetime", "decimal", "integer"):
            add(
                custom.ExpectColumnValuesToMatchPxType(
                    column=f.code,
                    px_type=_type_text(f.type),
                    row_condition=each(),
                    meta=_meta(book.family("format"), f.code),
                )
            )
        if f.type.length:
            add(
                gxe.ExpectColumnValueLengthsToBeBetween(
                    column=f.code,
                    max_value=f.type.length,
                    row_condition=each(),
                    meta=_meta(book.family("length"), f.code),
                )
            )
    key_rule = book.family("primary_key")
    if len(dataset.primary_key) == 1:
        add(
            gxe.ExpectColumnValuesToBeUnique(
                column=dataset.primary_key[0], meta=_meta(key_rule, dataset.primary_key[0], ALL)
            )
        )
    else:
        add(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=list(dataset.primary_key), meta=_meta(key_rule, rows=ALL)
            )
        )
    for px_field, reference in dataset.references.items():
        add(
            custom.ExpectColumnValuesToResolvePxReference(
                column=px_field,
                target=f"{reference.dataset}.{reference.field}",
                meta=_meta(book.family("reference"), px_field, ALL),
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
                    column=rule.field, row_condition=each(condition), meta=_meta(rule, rule.field)
                )
            )
        elif rule.check == "not_empty":
            add(gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(rule, rows=ALL)))
        elif rule.check in ROW_RULES:
            # the key rides along: GX wants two columns at least, and a rule may read only one
            columns = list(dict.fromkeys((rule.field, *rule.reads, KEY_COLUMN)))
            dated = rule.check in DATED_ROW_RULES
            add(
                custom.ExpectRowsToKeepPxRule(
                    column_list=columns,
                    rule=rule.check,
                    as_of=as_of,
                    row_condition=None if dated else each(),
                    meta=_meta(rule, rule.field, ALL if dated else EACH),
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

    def _checkpoint(self, dataset: Dataset, as_of: str, changed_only: bool):
        name = f"px_{dataset.code.lower()}"
        try:
            asset = self.source.get_asset(name)
        except LookupError:
            asset = self.source.add_dataframe_asset(name=name)
        try:
            batch = asset.get_batch_definition("whole")
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe("whole")
        suite = gxproject.save_suite(
            self.context, build_suite(dataset, self.book, as_of=as_of, changed_only=changed_only)
        )
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
        self,
        dataset_code: str,
        *,
        run_id: str | None = None,
        now: datetime | None = None,
        every_row: bool = False,
    ) -> GateResult:
        """Validate one dataset, write its findings and verdict, and return the verdict. The
        warehouse is held for reading throughout (one build's candidates, references and
        aggregates; dbt waits). ``every_row``: validate every row, not only those that changed
        since the last verdict (see the module's documentation for when it does anyway)."""
        with reading(self.paths):
            return self._check(dataset_code, run_id=run_id, now=now, every_row=every_row)

    def _check(
        self, dataset_code: str, *, run_id: str | None, now: datetime | None, every_row: bool
    ) -> GateResult:
        dataset = self.profile.dataset(dataset_code)
        run_id = run_id or uuid.uuid4().hex[:12]
        now = now or datetime.now(UTC)
        frame = read_candidates(self.paths.warehouse, dataset)
        hashes = row_hashes(frame, dataset, fingerprint_key(self.paths))
        row_local = self._row_local(dataset)
        since = self._since_last_verdict(dataset, row_local, every_row)
        keys = frame[KEY_COLUMN].astype(str).tolist()
        hashed = hashes.tolist()  # Python ints: a uint64 passed through a float would lose bits
        frame[CHANGED_COLUMN] = [
            since is None or since.get(k) != h for k, h in zip(keys, hashed, strict=True)
        ]
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
        outcome = self._checkpoint(dataset, day, since is not None).run(batch_parameters={"dataframe": frame})
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
        if since is not None:  # the row findings of the rows that did not change, as they were
            findings.extend(self._carried(dataset_code, frame, row_local["checks"], run_id, now))
        dataset_failures += pushed_down
        verdict = self._verdict(dataset_code, run_id, now, len(frame), findings, dataset_failures)
        # an expectation failed when a row failed it: in this validation, or carried over
        failed = {(f["rule_id"], f["field"]) for f in findings}
        unsuccessful = [
            r
            for r in validation.results
            if not r.success
            or (r.expectation_config.meta["rule_id"], r.expectation_config.meta.get("field")) in failed
        ]
        verdict.checks_failed = len(unsuccessful)
        verdict.checks_passed = len(validation.results) - len(unsuccessful)
        verdict.validated = "every row" if since is None else "changed rows"
        verdict.rows_validated = int(frame[CHANGED_COLUMN].sum())
        self._write(dataset_code, findings, verdict)
        self._remember(dataset_code, frame, hashes, row_local["fingerprint"], now, since is None)
        scrub_validation(validation, self.personal)  # nothing personal reaches the stores
        self._publish(dataset, day, result_id, validation, verdict)
        return verdict

    def _row_local(self, dataset: Dataset) -> dict:
        """The checks that read each row alone ((rule, field) pairs), and a fingerprint of all
        they depend on besides the row: their configuration, the code sets, the profile and the
        code that runs them."""
        suite = build_suite(dataset, self.book)
        configs = [e.configuration.to_json_dict() for e in suite.expectations if e.meta.get("rows") == EACH]
        for config in configs:
            config.pop("id", None)
        digest = hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode())
        for root in ROW_CHECK_INPUTS:
            files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
            for path in files:
                digest.update(path.read_bytes())
        checks = {
            (e.meta["rule_id"], e.meta.get("field")) for e in suite.expectations if e.meta.get("rows") == EACH
        }
        return {"checks": checks, "fingerprint": digest.hexdigest()}

    def _since_last_verdict(self, dataset: Dataset, row_local: dict, every_row: bool) -> dict | None:
        """The row hashes of the last verdict by key, or None when every row must be validated
        (asked for, no earlier verdict, its checks' inputs changed, a full rebuild since)."""
        rows = self.paths.quality / "gate" / f"{dataset.code}.rows.parquet"
        findings = self.paths.quality / "findings" / f"{dataset.code}.parquet"
        if every_row or not rows.exists() or not findings.exists():
            return None
        table = pq.read_table(rows)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        if meta.get("fingerprint") != row_local["fingerprint"]:
            log.info("gate %s: its checks or what they read changed: every row is validated", dataset.code)
            return None
        rebuilt = last_full_rebuild(self.paths)
        if rebuilt is not None and rebuilt.isoformat() > meta.get("every_row_at", ""):
            log.info("gate %s: the warehouse was rebuilt in full: every row is validated", dataset.code)
            return None
        return dict(zip(table["record_key"].to_pylist(), table["row_hash"].to_pylist(), strict=True))

    def _carried(self, dataset: str, frame: pd.DataFrame, checks: set, run_id: str, now: datetime) -> list:
        """The last verdict's findings of the checks that read each row alone, on the rows that
        did not change: confirmed by this verdict (its run and time; first seen as they were)."""
        unchanged = frame.loc[~frame[CHANGED_COLUMN].astype(bool), [KEY_COLUMN, "batch_id"]]
        batches = dict(zip(unchanged[KEY_COLUMN].astype(str), unchanged["batch_id"], strict=True))
        previous = pq.read_table(self.paths.quality / "findings" / f"{dataset}.parquet").to_pylist()
        carried = []
        for finding in previous:
            if finding["record_key"] in batches and (finding["rule_id"], finding["field"]) in checks:
                carried.append(
                    {
                        **finding,
                        "batch_id": batches[finding["record_key"]],
                        "run_id": run_id,
                        "checked_at": now.replace(tzinfo=None),
                    }
                )
        return carried

    def _remember(
        self, dataset: str, frame, hashes, fingerprint_: str, now: datetime, every_row: bool
    ) -> None:
        """The row hashes this verdict covers, for the next to tell what changed."""
        path = self.paths.quality / "gate" / f"{dataset}.rows.parquet"
        every_row_at = now.isoformat()
        if not every_row and path.exists():
            old = pq.read_schema(path).metadata or {}
            every_row_at = old.get(b"every_row_at", b"").decode() or every_row_at
        table = pa.table(
            {"record_key": frame[KEY_COLUMN].astype(str).tolist(), "row_hash": hashes.tolist()},
            schema=pa.schema([("record_key", pa.string()), ("row_hash", pa.uint64())]),
        ).replace_schema_metadata({"fingerprint": fingerprint_, "every_row_at": every_row_at})
        atomic.write_parquet(path, table)

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


ROW_CHECK_INPUTS = (
    SCHEMAS / "codes",
    SCHEMAS / "exchange",
    Path(custom.__file__),
    Path(row_rules.__file__),
    Path(idnumbers.__file__),
)
"""What the checks that read each row alone depend on besides the row and their configuration."""


def row_hashes(frame: pd.DataFrame, dataset: Dataset, key: bytes) -> pd.Series:
    """A keyed hash of each candidate row's key and PX values: pandas' SipHash under a key derived
    from the deployment's fingerprint key, so that a row hash, like a finding's fingerprint, can
    not be matched against guessed values (a row holds names and ID numbers)."""
    siphash_key = hmac.new(key, b"campusdx gate row hash", hashlib.sha256).hexdigest()[:16]
    columns = frame[[KEY_COLUMN, *dataset.field_codes]]
    return pd.util.hash_pandas_object(columns, index=False, hash_key=siphash_key)


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
