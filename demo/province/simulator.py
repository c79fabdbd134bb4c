"""The simulated provincial platform: receives PX packages and answers with receipts.

A stand-in for the external system (house style: every external system has a local stand-in).
It reads ``inbox/`` of a directory gateway, applies every PX-1.0 rule and writes
``receipts/{package_id}.json`` (§4). The package checks (manifest, signature, files, encoding,
header and counts: PX-E001..E006, E008) are the province's own, written from the profile
(:mod:`campusdx.demo.province.package_checks`, standard library only, the same code
``scripts/verify_px_package.py`` runs), never the school's pre-send check: a defect in the
publisher is caught here, not repeated. Here are what only the platform can judge: the package's
directory name (E001), batch history (E009, DUPLICATE), sequence (E007), rows (E010..E017),
warnings (W101..W103) and the dataset-level double-entry rule of CWKMYE.

The platform's current data per dataset lives in a SQLite file under ``state_dir``: a FULL
replaces it, a DELTA inserts/updates/deletes by primary key, and only accepted rows are taken.
References (E016) are resolved against it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stdnum.cn import ric

from campusdx.core import settings
from campusdx.core.atomic import write_bytes as write_atomically
from campusdx.core.idnumbers import is_valid_ric
from campusdx.core.profile import Dataset, Profile, load_profile, parse_px_date, parse_px_decimal
from campusdx.core.sqlitedb import open_durable, transaction
from campusdx.demo.keys import demo_key_file, ensure_demo_key
from campusdx.demo.province import package_checks as px
from campusdx.demo.province.package_checks import Inspection, Part

log = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
"""Receipts give Beijing time without a zone (§4)."""

_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9Xx]")
_PACKAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
"""A name the platform answers under (``receipts/{name}.json``): a plain file name. Whether it
is the manifest's package id (per the profile's template) is PX-E001, judged with the manifest."""
_MAX_RECEIPT_BYTES = 64 * 1024 * 1024

Row = dict[str, str]
Finding = dict[str, Any]
RowRule = Callable[[Row], "tuple[str, str] | None"]
"""A dataset rule checked per row: (field, message) when the row breaks it, else None."""


# --------------------------------------------------------------------------- dataset rules
# The plain-words rules of datasets.yaml, implemented by the receiver (PX-E017). Keyed by the
# exact rule text, so a province that rewords a rule gets a logged "not implemented", never a
# silently different check. A rule returns None when its fields are empty or malformed: those
# rows already fail PX-E010/E012.


def _resident_id_ok(number: str) -> bool:
    """A 公民身份号码 (GB 11643): 18 characters, check digit, birth date and region (python-stdnum).

    A lower-case final x is the same number; separators that stdnum would strip are not allowed.
    """
    return _RESIDENT_ID.fullmatch(number) is not None and is_valid_ric(number)


def _lxrq_not_before_csrq(row: Row) -> tuple[str, str] | None:
    lxrq, csrq = parse_px_date(row["LXRQ"]), parse_px_date(row["CSRQ"])
    if lxrq and csrq and lxrq < csrq:
        return "LXRQ", "来校日期 LXRQ is before 出生日期 CSRQ"
    return None


def _nj_is_year_of_rxrq(row: Row) -> tuple[str, str] | None:
    if parse_px_date(row["RXRQ"]) and row["NJ"] != row["RXRQ"][:4]:
        return "NJ", "年级 NJ is not the year of 入学日期 RXRQ"
    return None


def _sfzx_matches_status(row: Row) -> tuple[str, str] | None:
    if not (row["SFZX"] and row["XSDQZTM"]):
        return None
    if (row["SFZX"] == "1") != (row["XSDQZTM"] in ("01", "05")):
        return "SFZX", "是否在校 SFZX must be 1 exactly when XSDQZTM is 01 在读 or 05 复学"
    return None


def _major_change_names_both(row: Row) -> tuple[str, str] | None:
    if row["YDLBM"] != "23":
        return None
    before, after = row["YDQZYDM"], row["YDHZYDM"]
    if not (before and after) or before == after:
        return "YDHZYDM", "转专业 (YDLBM 23) needs YDQZYDM and YDHZYDM, present and different"
    return None


def _period_in_year(row: Row) -> tuple[str, str] | None:
    if row["KJQJ"] and row["KJQJ"] not in {f"{m:02d}" for m in range(1, 13)}:
        return "KJQJ", "会计期间 KJQJ is not 01..12"
    return None


def _balance_identity(row: Row) -> tuple[str, str] | None:
    start, debit, credit, end = (parse_px_decimal(row[f]) for f in ("QCYE", "JFFSE", "DFFSE", "QMYE"))
    if None in (start, debit, credit, end) or row["YEFX"] not in ("J", "D"):
        return None
    expected = start + debit - credit if row["YEFX"] == "J" else start - debit + credit
    if end != expected:
        return (
            "QMYE",
            f"期末余额 QMYE is not QCYE {'+ JFFSE - DFFSE' if row['YEFX'] == 'J' else '- JFFSE + DFFSE'}",
        )
    return None


def _asset_value_and_count(row: Row) -> tuple[str, str] | None:
    value, count = parse_px_decimal(row["JZ"]), parse_px_decimal(row["SL"])
    if value is not None and value < 0:
        return "JZ", "价值 JZ is negative"
    if count is not None and count < 1:
        return "SL", "数量 SL is less than 1"
    return None


ROW_RULES: dict[str, RowRule] = {
    "LXRQ is not before CSRQ.": _lxrq_not_before_csrq,
    "NJ is the four-digit year of RXRQ.": _nj_is_year_of_rxrq,
    "SFZX is 1 exactly when XSDQZTM is one of 01 在读, 05 复学.": _sfzx_matches_status,
    "When YDLBM is 23 (转专业), YDQZYDM and YDHZYDM are both present and differ.": _major_change_names_both,
    "KJQJ is 01..12.": _period_in_year,
    "When YEFX is J, QMYE = QCYE + JFFSE - DFFSE; when YEFX is D, QMYE = QCYE - JFFSE + DFFSE "
    "(exact to the cent).": _balance_identity,
    "JZ >= 0 and SL >= 1.": _asset_value_and_count,
}


def _double_entry(rows: list[Row]) -> list[str]:
    """Per (KJND, KJQJ), sum(JFFSE) = sum(DFFSE); rows with malformed amounts are left out."""
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in rows:
        debit, credit = parse_px_decimal(row["JFFSE"]), parse_px_decimal(row["DFFSE"])
        if debit is not None and credit is not None:
            totals = sums[(row["KJND"], row["KJQJ"])]
            totals[0] += debit
            totals[1] += credit
    return [
        f"{year}-{period}: sum(JFFSE) {d} != sum(DFFSE) {c}"
        for (year, period), (d, c) in sorted(sums.items())
        if d != c
    ]


DATASET_RULES: dict[str, Callable[[list[Row]], list[str]]] = {
    "Dataset level, FULL packages: per (KJND, KJQJ), sum(JFFSE) = sum(DFFSE) (package REJECTED otherwise).": (
        _double_entry
    ),
}
"""Rules over a whole FULL package: a breach rejects the package (PX-E017)."""


# --------------------------------------------------------------------------- platform store


class _Store:
    """The platform's state in SQLite: current rows, last sequences, accepted batches."""

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS sequences (dataset TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS batches (
        batch_id TEXT PRIMARY KEY, content TEXT NOT NULL, package_id TEXT NOT NULL,
        dataset TEXT NOT NULL, sequence INTEGER NOT NULL, status TEXT NOT NULL, received_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS rows (
        dataset TEXT NOT NULL, pk TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (dataset, pk));
    """

    def __init__(self, path: Path) -> None:
        self._db = open_durable(path, self._SCHEMA, threads=True)

    def close(self) -> None:
        self._db.close()

    def _tx(self):
        return transaction(self._db)

    def last_sequence(self, dataset: str) -> int:
        row = self._db.execute("SELECT last_sequence FROM sequences WHERE dataset = ?", (dataset,)).fetchone()
        return row[0] if row else 0

    def batch_content(self, batch_id: str) -> str | None:
        row = self._db.execute("SELECT content FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return row[0] if row else None

    def values(self, dataset: str, field: str) -> set[str]:
        """Every value of ``field`` in the platform's current ``dataset``."""
        cur = self._db.execute(
            "SELECT json_extract(data, ?) FROM rows WHERE dataset = ?", (f"$.{field}", dataset)
        )
        return {v for (v,) in cur if v}

    def rows(self, dataset: str) -> list[Row]:
        cur = self._db.execute("SELECT data FROM rows WHERE dataset = ? ORDER BY pk", (dataset,))
        return [json.loads(d) for (d,) in cur]

    def apply(self, batch: Mapping[str, Any], taken: list[tuple[str, Row]], deletes: list[str]) -> None:
        """Take a package in one transaction: its accepted rows (by key), its sequence, its batch.

        A FULL replaces the dataset; a DELTA upserts I/U rows and deletes D keys.
        """
        dataset = batch["dataset"]
        with self._tx() as db:
            if batch["mode"] == "FULL":
                db.execute("DELETE FROM rows WHERE dataset = ?", (dataset,))
            db.executemany("DELETE FROM rows WHERE dataset = ? AND pk = ?", [(dataset, k) for k in deletes])
            db.executemany(
                "INSERT OR REPLACE INTO rows (dataset, pk, data) VALUES (?, ?, ?)",
                [(dataset, pk, json.dumps(row, ensure_ascii=False)) for pk, row in taken],
            )
            db.execute(
                "INSERT OR REPLACE INTO sequences (dataset, last_sequence) VALUES (?, ?)",
                (dataset, batch["sequence"]),
            )
            db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                tuple(
                    batch[k]
                    for k in (
                        "batch_id",
                        "content",
                        "package_id",
                        "dataset",
                        "sequence",
                        "status",
                        "received_at",
                    )
                ),
            )


# --------------------------------------------------------------------------- row checks


@dataclass
class _Verdict:
    """The outcome of the row checks of one package."""

    findings: list[Finding]
    taken: list[tuple[str, Row]]
    deletes: list[str]
    rejected: int


class _RowChecker:
    """PX-E010..E017 and PX-W101..W103 for the rows of one package."""

    def __init__(
        self, province: Province, dataset: Dataset, manifest: Mapping[str, Any], parts: list[Part]
    ) -> None:
        self.p = province
        self.profile = province.profile
        self.dataset = dataset
        self.delta = manifest["mode"] == "DELTA"
        self.as_of = date.fromisoformat(manifest["as_of"])
        self.records = [
            (part.name, line, dict(zip(part.header, values, strict=True)))
            for part in parts
            for line, values in part.records
        ]
        self.delete_op = self.profile.ops["delete"]
        self.repeats = self._repeated_keys()
        self.targets = {f: self._targets(ref.dataset, ref.field) for f, ref in dataset.references.items()}
        self.rules = [(text, ROW_RULES[text]) for text in dataset.rules if text in ROW_RULES]

    def key(self, row: Row) -> tuple[str, ...]:
        return tuple(row[f] for f in self.dataset.primary_key)

    def _repeated_keys(self) -> dict[tuple[str, ...], list[int]]:
        lines: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for _, line, row in self.records:
            if all(self.key(row)):
                lines[self.key(row)].append(line)
        return {k: v for k, v in lines.items() if len(v) > 1}

    def _targets(self, dataset: str, field: str) -> set[str]:
        """Values a reference may name: the platform's data, plus this package's own rows when
        the dataset refers to itself (a FULL replaces the platform's data, so then only those)."""
        if dataset != self.dataset.code:
            return self.p.store.values(dataset, field)
        own = {row[field] for _, _, row in self.records if not self._is_delete(row)}
        return own | self.p.store.values(dataset, field) if self.delta else own

    def _is_delete(self, row: Row) -> bool:
        return self.delta and row.get(self.profile.op_column) == self.delete_op

    def run(self) -> _Verdict:
        verdict = _Verdict([], [], [], 0)
        for file, line, row in self.records:
            errors, warnings = self.check(row)
            verdict.findings += [
                self.p.finding(rule, m, file=file, line=line, field=f, value=row.get(f, ""))
                for rule, f, m in errors + warnings
            ]
            if errors:
                verdict.rejected += 1
            elif self._is_delete(row):
                verdict.deletes.append(self.stored_key(row))
            else:
                verdict.taken.append((self.stored_key(row), {f: row[f] for f in self.dataset.field_codes}))
        return verdict

    def stored_key(self, row: Row) -> str:
        """The primary key as the store keeps it (a JSON array of the key values)."""
        return json.dumps(self.key(row), ensure_ascii=False)

    def check(self, row: Row) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """(errors, warnings) of one row, each as (rule, field, message)."""
        errors = self._op_errors(row) if self.delta else []
        told = self.p.reject_rows.get(self.dataset.code, set())
        if "|".join(self.key(row)) in told:  # simulated fault, once per key
            told.discard("|".join(self.key(row)))
            errors.append(("PX-E017", self.dataset.primary_key[0], "simulated fault (reject_rows)"))
        if self.key(row) in self.repeats:
            shown = ", ".join(map(str, self.repeats[self.key(row)]))
            errors.append(("PX-E014", self.dataset.primary_key[0], f"primary key repeats at lines {shown}"))
        if self._is_delete(row):
            return errors + self._value_errors(row, self.dataset.primary_key, key_only=True), []
        errors += self._value_errors(row, self.dataset.field_codes, key_only=False)
        errors += self._id_number_errors(row)
        errors += self._reference_errors(row)
        errors += [("PX-E017", *found) for _, rule in self.rules if (found := rule(row))]
        return errors, self._warnings(row)

    def _op_errors(self, row: Row) -> list[tuple[str, str, str]]:
        op = self.profile.op_column
        if row.get(op) not in self.profile.ops.values():
            return [("PX-E012", op, f"{op} is not one of {'/'.join(self.profile.ops.values())}")]
        return []

    def _value_errors(
        self, row: Row, codes: tuple[str, ...], *, key_only: bool
    ) -> list[tuple[str, str, str]]:
        """Required (E010), length (E015), format (E012) and code set (E011) of each value."""
        errors = []
        for code in codes:
            field, value = self.dataset.field(code), row[code]
            if value == "":
                if field.required or key_only:
                    errors.append(("PX-E010", code, f"required {code} ({field.name}) is empty"))
                continue
            if field.type.too_long(value):
                errors.append(("PX-E015", code, f"longer than {field.type.length} characters"))
            elif problem := field.type.format_error(value):
                errors.append(("PX-E012", code, problem))
            elif field.code_set and (problem := self.p.code_problem(field.code_set, value)):
                errors.append(("PX-E011", code, problem))
        return errors

    def _id_number_errors(self, row: Row) -> list[tuple[str, str, str]]:
        pc = self.profile.person_checks
        if row.get(pc.id_type) != pc.resident_id_type or not row.get(pc.id_number):
            return []
        if not _resident_id_ok(row[pc.id_number]):
            return [("PX-E013", pc.id_number, "not a valid 公民身份号码 (check digit, birth date or region)")]
        return []

    def _reference_errors(self, row: Row) -> list[tuple[str, str, str]]:
        return [
            ("PX-E016", field, f"{field} names no {ref.dataset}.{ref.field} on the platform")
            for field, ref in self.dataset.references.items()
            if row[field] and row[field] not in self.targets[field]
        ]

    def _warnings(self, row: Row) -> list[tuple[str, str, str]]:
        """PX-W101..W103: suspicious but taken."""
        pc = self.profile.person_checks
        out = []
        birth = parse_px_date(row.get(pc.birth_date, ""))
        if birth:
            age = (
                self.as_of.year - birth.year - ((self.as_of.month, self.as_of.day) < (birth.month, birth.day))
            )
            if not pc.min_age <= age <= pc.max_age:
                out.append(
                    ("PX-W101", pc.birth_date, f"age {age} on as_of is outside {pc.min_age}..{pc.max_age}")
                )
        number = row.get(pc.id_number, "")
        if row.get(pc.id_type) != pc.resident_id_type or not _resident_id_ok(number):
            return out
        if birth and ric.get_birth_date(number) != birth:
            out.append(
                ("PX-W102", pc.birth_date, f"{pc.birth_date} differs from the birth date in {pc.id_number}")
            )
        sex = pc.sex_odd if int(ric.compact(number)[16]) % 2 else pc.sex_even
        if pc.sex in row and row[pc.sex] != sex:
            out.append(("PX-W103", pc.sex, f"{pc.sex} differs from the sex digit of {pc.id_number}"))
        return out


# --------------------------------------------------------------------------- the platform


class Province:
    """The provincial platform behind a directory gateway.

    ``keys`` maps key ids to exchange keys; ``code_sets`` maps code set ids to their codes
    (a coded field whose set is missing is checked for its format only).

    It can be told to misbehave, for fault tests: ``receipt_delay_s`` leaves a package
    unanswered until it has been in the inbox that long; ``reject_once`` answers the next
    package of each listed dataset REJECTED (as if a file had been lost on the platform's side)
    and behaves from then on; ``reject_rows`` ({dataset: primary keys, composite keys joined
    with ``|``}) rejects the next row carrying each key (PX-E017), once.
    """

    def __init__(
        self,
        gateway_root: Path | str,
        state_dir: Path | str,
        profile: Profile,
        keys: Mapping[str, bytes],
        code_sets: Mapping[str, set[str]],
        *,
        clock: Callable[[], datetime] | None = None,
        receipt_delay_s: float = 0.0,
        reject_once: Iterable[str] = (),
        reject_rows: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.profile = profile
        self.receipt_delay_s = receipt_delay_s
        self.reject_once = set(reject_once)
        self._ignored: set[str] = set()  # inbox entries not named as packages, logged once
        self.reject_rows = {code: set(keys) for code, keys in (reject_rows or {}).items()}
        self.inbox = Path(gateway_root) / profile.gateway.inbox
        self.receipts = Path(gateway_root) / profile.gateway.receipts
        self.keys = dict(keys)
        self.code_sets = {set_id: frozenset(codes) for set_id, codes in code_sets.items()}
        self.clock = clock or (lambda: datetime.now(BEIJING))
        self.terms = package_terms(profile)
        self.store = _Store(Path(state_dir) / "platform.sqlite")
        self._log_limits()

    @classmethod
    def for_home(
        cls, paths: settings.Paths | None = None, profile: Profile | None = None, **misbehave: Any
    ) -> Province:
        """The embedded default's platform: gateway, state and demo key under one home."""
        paths = paths or settings.paths()
        profile = profile or load_profile()
        key = ensure_demo_key(demo_key_file(paths))
        return cls(
            paths.gateway,
            paths.province,
            profile,
            {profile.key_id: key},
            available_code_sets(profile),
            **misbehave,
        )

    def close(self) -> None:
        """Close the platform's store."""
        self.store.close()

    def _log_limits(self) -> None:
        """Say once which code sets and dataset rules this platform cannot check."""
        used = sorted({f.code_set for d in self.profile.datasets.values() for f in d.fields if f.code_set})
        unchecked = [c for c in used if c not in self.code_sets]
        if unchecked:
            log.warning(
                "province: code sets not available, checked for format only: %s", ", ".join(unchecked)
            )
        for ds in self.profile.datasets.values():
            for text in ds.rules:
                if text not in ROW_RULES and text not in DATASET_RULES:
                    log.warning("province: %s rule not implemented, not checked: %s", ds.code, text)

    def code_problem(self, set_id: str, value: str) -> str | None:
        """Why ``value`` is not a code of ``set_id`` (PX-E011), or None."""
        code_set = self.profile.code_sets[set_id]
        codes = self.code_sets.get(set_id)
        if codes is not None:
            return (
                None
                if code_set.matches(value, codes)
                else f"not in code set {set_id} {code_set.standard}".rstrip()
            )
        return None if code_set.format_ok(value) else f"not of the form of a code of {set_id}"

    def finding(
        self,
        rule: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: str | None = None,
    ) -> Finding:
        """One entry of a receipt's ``errors``; personal data (XM, SFZJH) is never echoed."""
        if field in self.profile.pii_fields:
            value = None
        return {"rule": rule, "file": file, "line": line, "field": field, "value": value, "message": message}

    # ----------------------------------------------------------------------- inbox

    def process_inbox(self) -> list[dict[str, Any]]:
        """Answer every complete package in the inbox that has no receipt for its batch yet.

        One package's failure never stops the others: a package that cannot be judged is
        answered REJECTED (PX-E001); an inbox entry whose name is not a plain file name is logged and
        left where it is.
        """
        receipts = []
        for path in self._arrivals():
            try:
                receipts.append(self.process(path))
            except Exception as exc:
                log.error("province: %s could not be judged (%s)", _shown(path.name), type(exc).__name__)
                receipt = self._unjudged(path)
                if receipt is not None:
                    receipts.append(receipt)
        return receipts

    def _unjudged(self, path: Path) -> dict[str, Any] | None:
        """REJECTED (PX-E001) for a package the checks failed on (its name is a plain file name)."""
        if not _PACKAGE_ID.fullmatch(path.name):
            return None
        error = self.finding("PX-E001", "the package could not be read as a PX-1.0 package")
        try:
            batch_id = _peek_manifest(path, self.profile.manifest_file).get("batch_id")
            receipt = self._receipt(
                path.name, None, "REJECTED", px_datetime(self.clock()), errors=[error], batch_id=batch_id
            )
            self._write_receipt(path.name, receipt)
        except Exception as exc:
            log.error("province: no receipt written for %s (%s)", path.name, type(exc).__name__)
            return None
        return receipt

    def _arrivals(self) -> list[Path]:
        """Unanswered packages, per dataset in sequence order, datasets in profile order."""
        if not self.inbox.is_dir():
            return []
        order = {code: i for i, code in enumerate(self.profile.dataset_order)}
        found = []
        for path in self.inbox.iterdir():
            if path.is_symlink() or not path.is_dir() or path.name.endswith(self.profile.gateway.part_suffix):
                continue  # a package is a directory of the inbox itself, never a link elsewhere
            if not _PACKAGE_ID.fullmatch(path.name):
                if path.name not in self._ignored:
                    self._ignored.add(path.name)
                    log.warning("province: ignoring %s in the inbox", _shown(path.name))
                continue
            try:
                manifest = _peek_manifest(path, self.profile.manifest_file)
                if self._answered(path.name, manifest.get("batch_id")):
                    continue
                if self.receipt_delay_s and time.time() - path.stat().st_mtime < self.receipt_delay_s:
                    continue  # told to answer late
            except OSError:
                continue  # removed or replaced while we looked: the next pass sees it
            sequence = manifest.get("sequence", 0)
            rank = order.get(manifest.get("dataset", ""), len(order))
            found.append((rank, sequence, path.name))
        return [self.inbox / name for _, _, name in sorted(found)]

    def _answered(self, package_id: str, batch_id: str | None) -> bool:
        try:
            data = px.read_in_package(self.receipts, f"{package_id}.json", _MAX_RECEIPT_BYTES)
        except px.Refused:
            return False
        receipt, why, _ = px.load_json(data or b"")
        return why is None and isinstance(receipt, dict) and receipt.get("batch_id") == batch_id

    def process(self, path: Path) -> dict[str, Any]:
        """Judge one package, take what is accepted, write and return its receipt."""
        received_at = px_datetime(self.clock())
        insp = px.inspect(path, self.terms, self.keys.get)
        problems = [self.finding(p.rule, p.message, file=p.file, line=p.line) for p in insp.problems]
        if not any(p.rule in ("PX-E001", "PX-E008") for p in insp.problems):
            problems += self._identity_problems(path.name, insp.manifest)
        if not problems and insp.manifest and insp.manifest["dataset"] in self.reject_once:
            self.reject_once.discard(insp.manifest["dataset"])
            problems = [
                self.finding("PX-E003", "simulated fault (reject_once): a file of this package was lost")
            ]
        if problems:
            receipt = self._receipt(
                path.name, insp.manifest, "REJECTED", received_at, errors=problems, batch_id=insp.batch_id
            )
        else:
            receipt = self._judge(path.name, insp, received_at)
        self._write_receipt(path.name, receipt)
        log.info(
            "province: %s -> %s (%s accepted, %s rejected, %d findings)",
            path.name,
            receipt["status"],
            receipt["rows_accepted"],
            receipt["rows_rejected"],
            len(receipt["errors"]),
        )
        return receipt

    def _write_receipt(self, package_id: str, receipt: dict[str, Any]) -> None:
        self.receipts.mkdir(parents=True, exist_ok=True)
        write_atomically(
            self.receipts / f"{package_id}.json",
            (json.dumps(receipt, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )

    def _identity_problems(self, package_id: str, manifest: Mapping[str, Any] | None) -> list[Finding]:
        """A directory named after another package (E001). The manifest's spec, school and
        dataset (PX-E008) were checked with the manifest itself (:func:`package_checks.inspect`)."""
        if manifest is None:
            return []
        p, m = self.profile, manifest
        if package_id != p.package_id(m["school_code"], m["dataset"], m["mode"], m["sequence"]):
            return [self.finding("PX-E001", "directory name differs from the manifest's package id")]
        return []

    def _judge(self, package_id: str, insp: Inspection, received_at: str) -> dict[str, Any]:
        """Batch history, sequence, dataset rules, then rows; take the accepted rows."""
        m = insp.manifest
        content = _content_hash(m)
        known = self.store.batch_content(m["batch_id"])
        if known == content:
            return self._receipt(package_id, m, "DUPLICATE", received_at, errors=[])
        if known is not None:
            error = self.finding("PX-E009", "batch_id already accepted with different content")
            return self._receipt(package_id, m, "REJECTED", received_at, errors=[error])
        expected = self.store.last_sequence(m["dataset"]) + 1
        if m["sequence"] != expected:
            error = self.finding("PX-E007", f"sequence {m['sequence']}, expected {expected}")
            return self._receipt(package_id, m, "REJECTED", received_at, errors=[error])
        dataset = self.profile.dataset(m["dataset"])
        checker = _RowChecker(self, dataset, m, insp.parts)
        breaches = self._dataset_rule_breaches(dataset, m, [row for _, _, row in checker.records])
        if breaches:
            return self._receipt(package_id, m, "REJECTED", received_at, errors=breaches)
        verdict = checker.run()
        status = "PARTIAL" if verdict.rejected else "ACCEPTED"
        self.store.apply(
            {**m, "package_id": package_id, "content": content, "status": status, "received_at": received_at},
            verdict.taken,
            verdict.deletes,
        )
        return self._receipt(
            package_id, m, status, received_at, errors=verdict.findings, rejected=verdict.rejected
        )

    def _dataset_rule_breaches(
        self, dataset: Dataset, manifest: Mapping[str, Any], rows: list[Row]
    ) -> list[Finding]:
        """Dataset-level rules of a FULL package (PX-E017, package REJECTED)."""
        if manifest["mode"] != "FULL":
            return []
        return [
            self.finding("PX-E017", f"{text} — {message}")
            for text in dataset.rules
            if text in DATASET_RULES
            for message in DATASET_RULES[text](rows)
        ]

    def _receipt(
        self,
        package_id: str,
        manifest: Mapping[str, Any] | None,
        status: str,
        received_at: str,
        *,
        errors: list[Finding],
        rejected: int | None = None,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        """A receipt as in §4. REJECTED takes nothing; DUPLICATE changes nothing."""
        received = manifest["total_rows"] if manifest else 0
        if rejected is None:
            rejected = received if status == "REJECTED" else 0
        accepted = received - rejected if status in ("ACCEPTED", "PARTIAL") else 0
        return {
            "package_id": package_id,
            "batch_id": manifest["batch_id"] if manifest else batch_id,
            "status": status,
            "received_at": received_at,
            "rows_received": received,
            "rows_accepted": accepted,
            "rows_rejected": rejected,
            "errors": errors,
        }

    def current(self, dataset: str) -> list[Row]:
        """The platform's current rows of ``dataset`` (for inspection and tests)."""
        return self.store.rows(dataset)

    # ----------------------------------------------------------------------- serving

    def serve(
        self, poll_s: float = 0.5, stop: threading.Event | None = None, idle_exit_s: float | None = None
    ) -> None:
        """Process the inbox every ``poll_s`` until ``stop`` is set or nothing came for ``idle_exit_s``."""
        stop = stop or threading.Event()
        last_activity = time.monotonic()
        log.info("province: serving %s", self.inbox)
        while not stop.is_set():
            try:
                if self.process_inbox():
                    last_activity = time.monotonic()
            except Exception:
                log.exception("province: processing the inbox failed; retrying")
            if idle_exit_s is not None and time.monotonic() - last_activity >= idle_exit_s:
                log.info("province: idle for %g s, stopping", idle_exit_s)
                return
            stop.wait(poll_s)


def package_terms(profile: Profile) -> px.Terms:
    """What the package checks take from ``profile``: the declarations, and what the platform
    knows (its schools and its datasets' field lists)."""
    return px.Terms(
        spec=profile.spec,
        manifest_file=profile.manifest_file,
        signature_file=profile.signature_file,
        manifest_keys=profile.manifest_keys,
        file_keys=profile.file_keys,
        part_template=profile.part_template,
        max_rows_per_part=profile.max_rows_per_part,
        encodings=profile.encodings,
        signature_algorithms=profile.signature_algorithms,
        delimiter=profile.delimiter,
        quote=profile.quote,
        op_column=profile.op_column,
        school_codes=frozenset(profile.school_codes),
        datasets=MappingProxyType({code: ds.field_codes for code, ds in profile.datasets.items()}),
    )


def px_datetime(value: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time (an aware datetime is converted first)."""
    if value.tzinfo is not None:
        value = value.astimezone(BEIJING)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _peek_manifest(package: Path, name: str) -> dict[str, Any]:
    """What ordering needs of a manifest, where it has the right type: ``dataset`` (str),
    ``sequence`` (int) and ``batch_id`` (a UUID); nothing else is trusted or returned."""
    try:
        data = px.read_in_package(package, name, px.MAX_MANIFEST_BYTES)
    except px.Refused:
        return {}
    raw, why, _ = px.load_json(data or b"")
    if why is not None or not isinstance(raw, dict):
        return {}
    peek: dict[str, Any] = {}
    if isinstance(raw.get("dataset"), str):
        peek["dataset"] = raw["dataset"]
    if type(raw.get("sequence")) is int and 0 < raw["sequence"] <= px.MAX_SEQUENCE:
        peek["sequence"] = raw["sequence"]
    if isinstance(raw.get("batch_id"), str) and px.UUID.fullmatch(raw["batch_id"]):
        peek["batch_id"] = raw["batch_id"]
    return peek


def _shown(name: str) -> str:
    """A directory name as a log line may show it (printable ASCII, bounded)."""
    return name if _PACKAGE_ID.fullmatch(name) else "an inbox entry whose name is not a plain file name"


def _content_hash(manifest: Mapping[str, Any]) -> str:
    """What a batch carries: dataset, mode and the digests of its data files."""
    content = [manifest["dataset"], manifest["mode"], [(f["name"], f["sha256"]) for f in manifest["files"]]]
    return hashlib.sha256(json.dumps(content).encode("utf-8")).hexdigest()


def available_code_sets(profile: Profile) -> dict[str, set[str]]:
    """Code sets the platform can check: the national lists from ``campusdx.core.codes`` (when the
    module and its files exist) overlaid with the profile's inline lists, which are the contract."""
    sets: dict[str, set[str]] = {}
    try:
        from campusdx.core.codes import load_code_sets
    except ImportError:
        log.warning("province: campusdx.core.codes is not available; national code sets are not checked")
    else:
        try:
            sets = {set_id: set(codes) for set_id, codes in load_code_sets().items()}
        except Exception as exc:
            log.warning("province: national code sets could not be loaded: %s", exc)
        _log_subsets()
    for code_set in profile.code_sets.values():
        if code_set.codes:
            sets[code_set.id] = set(code_set.codes)
    return sets


def _log_subsets() -> None:
    """Warn once that some national lists are partial: an E011 on them may be a gap in the list."""
    try:
        from campusdx.core.codes import code_set_info

        subsets = sorted(set_id for set_id, info in code_set_info().items() if info.get("subset"))
    except Exception:
        return
    if subsets:
        log.warning(
            "province: code sets held only as subsets (a valid code may be missing): %s", ", ".join(subsets)
        )
