"""No personal data in the quality gate's artefacts: the quarantine, the findings files, the
Data Docs and the stored GX validation results keep a personal field's failing value masked,
with a keyed fingerprint that recognises it from run to run."""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
import stat
import unicodedata

import pyarrow.parquet as pq

from campusdx.core.profile import load_profile
from campusdx.quality.personal import KEY_FILE, personal_fields

ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
SOURCE_IDS = {  # system -> (table, column) of every 身份证号 the simulated campus holds
    "hr": [("hr_staff", "id_no")],
    "student": [("xg_xsxx", "zjhm")],
    "finance": [("gl_wlgr", "zjhm")],
}


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).upper()


def _source_id_numbers(built) -> set[str]:
    """Every ID number of the sources and of the restricted schema (first 17 characters: a
    number with a wrong check digit is still that person's number)."""
    numbers = set()
    for system, columns in SOURCE_IDS.items():
        with sqlite3.connect(built.home / "sources" / f"{system}.sqlite") as conn:
            for table, column in columns:
                numbers |= {_norm(v).strip() for (v,) in conn.execute(f"select {column} from {table}") if v}
    for view in ("persons", "staff", "students"):
        numbers |= {_norm(v) for (v,) in built.rows(f"select id_number from restricted.{view}") if v}
    return {n[:17] for n in numbers if len(n) == 18}


def _raw_failing_values(built) -> set[str]:
    """The candidates' own values of every personal field a finding names."""
    personal = personal_fields(load_profile())
    raw = set()
    for path in (built.home / "quality" / "findings").glob("*.parquet"):
        for f in pq.read_table(path).to_pylist():
            if f["field"] in personal:
                rows = built.rows(
                    f'select "{f["field"].lower()}" '
                    f"from feeds_candidates.feed_px_candidates__{path.stem.lower()} "
                    "where record_key = ?",
                    f["record_key"],
                )
                raw |= {v for (v,) in rows if v}
    raw |= {d["value"].strip() for d in built.dirt["dirt"] if d["field"] in ("id_no", "zjhm", "xm")}
    return {v for v in raw if len(v) >= 2}


def _texts(built):
    """(where, text) of the quarantine and of every file under quality/ (Parquet as its rows)."""
    yield "quality.quarantine", str(built.rows("select * from quality.quarantine"))
    for path in sorted((built.home / "quality").rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            yield str(path), str(pq.read_table(path).to_pylist())
            continue
        try:
            yield str(path), path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # fonts and images of the Data Docs site


def test_no_quality_artefact_holds_a_real_id_number_or_a_raw_personal_value(warehouse):
    ids = _source_id_numbers(warehouse)
    raw = _raw_failing_values(warehouse)
    assert len(ids) > 2000 and any(ID_NUMBER.fullmatch(_norm(v)) for v in raw)
    scanned, leaks = 0, []
    for where, text in _texts(warehouse):
        scanned += 1
        normal = _norm(text)
        leaks += [(where, n) for n in set(ID_NUMBER.findall(normal)) if n[:17] in ids]
        leaks += [(where, v) for v in raw if v in text or _norm(v) in normal]
    assert scanned > 20 and any("data_docs" in w for w, _ in _texts(warehouse))
    assert not leaks, f"{len(leaks)} personal values found, e.g. in {sorted({w for w, _ in leaks})[:5]}"


def test_the_quarantine_keeps_a_masked_id_number_and_its_fingerprint(warehouse):
    """Every injected bad 身份证号 is held under CDX-E013 with the ground truth's fingerprint and
    at most its first 6 characters."""
    key_file = warehouse.home / "secrets" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text(encoding="ascii").strip())
    owed = {
        ("JZGJBXX" if d["system"] == "hr" else "XSJBXX", d["key"]): d["value"]
        for d in warehouse.dirt["dirt"]
        if d["kind"] == "invalid_id_check_digit"
    }
    held = {
        (dataset, record_key): (value, fingerprint)
        for dataset, record_key, value, fingerprint in warehouse.rows(
            "select dataset, record_key, value, value_fingerprint from quality.quarantine "
            "where rule_id = 'CDX-E013' and field = 'SFZJH'"
        )
    }
    assert set(held) == set(owed)
    for row, number in owed.items():
        value, fingerprint = held[row]
        assert fingerprint == hmac.new(key, number.encode(), hashlib.sha256).hexdigest(), row
        assert value == number[:6] + "*" * 12, row
    # fields that are not personal keep their value (the fault is readable where it may be)
    assert all(
        v.startswith("-")
        for (v,) in warehouse.rows("select value from quality.quarantine where rule_id = 'CDX-E107'")
    )
    assert warehouse.rows(
        "select count(*) from quality.quarantine where value_fingerprint is not null "
        "and field not in ('SFZJH', 'XM')"
    ) == [(0,)]
