"""Analysts cannot recover a full 身份证号 from what the analyst schema shows them.

The attack this guards against: a masked number that hides only the birth date, the birth year
beside it and an unkeyed hash of the number in the same row. Enumerating the days of that year
(and the sequence digits where the mask hides them), keeping the numbers whose GB 11643 check
character is right and hashing each one with every function of a number this code base uses
(sha256, md5, DuckDB's hash; the old pseudonym sha256('campusdx-person:' || k_person)) found
the full number of every person. Here the attack runs against the built warehouse and must find
nothing; against rows made the old way it finds every number, so these tests can fail.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import re
import stat
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from stdnum.cn import ric

from campusdx.core import pseudonyms
from campusdx.core.settings import DBT_PROJECT, Paths, executable

ENOUGH_CANDIDATES = 10_000
"""What the mask and the birth year must leave an attacker with (the old mask left ~33)."""


def check_char(first17: str) -> str:
    """GB 11643 check character of 17 digits (stdnum reads a full number, ignoring its last)."""
    return ric.calc_check_digit(first17 + "0")


def old_pseudonym(k_person: str) -> str:
    """The unkeyed pseudonym analysts were shown before (anybody can compute it)."""
    return hashlib.sha256(f"campusdx-person:{k_person}".encode()).hexdigest()[:16]


def days(year: int) -> Iterable[str]:
    start = dt.date(year, 1, 1)
    for offset in range(366 if calendar.isleap(year) else 365):
        yield (start + dt.timedelta(days=offset)).strftime("%Y%m%d")


@dataclass
class Row:
    """One analyst row as the attacker sees it."""

    relation: str
    masked: str
    birth_year: int
    id_type: str
    gender: str | None
    values: set[str] = field(default_factory=set)


def honest_candidates(row: Row) -> int:
    """How many 18-character numbers fit the mask, the birth year and the gender: what a real
    attacker must try, without knowing anybody's number."""
    m = row.masked
    if len(m) != 18:
        return 10 ** m.count("*")
    count = len(list(days(row.birth_year)))
    count *= 3000 if "*" in m[:6] else 1  # about 3,000 行政区划 (counties)
    count *= 10 ** m[14:17].count("*")
    if row.gender in {"1", "2"} and m[16] == "*":
        count //= 2  # the 17th digit is odd for men, even for women
    if m[17] != "*":
        count //= 11  # a shown check character keeps one candidate in 11
    return count


def candidates(row: Row, known: dict[int, list[str]]) -> set[str]:
    """The numbers tried for one row: every day of its birth year, with the region and the
    sequence the mask shows, or else those of every full number (``known``, by birth year) that
    fits the mask: a stronger attacker than a real one, whose candidates hold the true number."""
    m, year = row.masked, row.birth_year
    if len(m) != 18:
        return set()

    def fits(n: str) -> bool:
        return all(a in ("*", b) for a, b in zip(m, n, strict=True))

    parts = {(n[:6], n[14:17]) for n in known.get(year, []) if fits(n)}
    if "*" not in m[:6] + m[14:17]:
        parts.add((m[:6], m[14:17]))
    found = set()
    for region, sequence in parts:
        for day in days(year):
            first17 = region + day + sequence
            number = first17 + check_char(first17)
            if fits(number):
                found.add(number)
    return found


def recover(rows: list[Row], known: Iterable[str] = ()) -> dict[int, set[str]]:
    """Row index -> the numbers whose digest (every function below, cut to the length of the
    value) equals a string value of that row."""
    by_year: dict[int, list[str]] = defaultdict(list)
    for n in set(known):
        if re.fullmatch(r"[0-9]{17}[0-9X]", n):
            by_year[int(n[6:10])].append(n)
    groups: dict[tuple, int] = {}
    cands, values = [], []
    for index, row in enumerate(rows):
        key = (row.masked, row.birth_year, row.id_type)
        if key not in groups:
            groups[key] = len(groups)
            cands += [(groups[key], row.id_type, n) for n in candidates(row, by_year)]
        values += [(index, groups[key], v) for v in row.values if re.fullmatch(r"[0-9A-Za-z]{8,}", v)]
    if not cands or not values:
        return {}
    conn = duckdb.connect()
    conn.register("candidates", pa.table(list(zip(*cands, strict=True)), names=["gid", "id_type", "n"]))
    conn.register("row_values", pa.table(list(zip(*values, strict=True)), names=["row_index", "gid", "v"]))
    found = conn.execute(
        """
        with keyed as (select gid, n, id_type || ':' || n as k from candidates),
        digests as (
            select gid, n, unnest([
                n, sha256(n), md5(n), sha256(k), md5(k), sha256('campusdx-person:' || k),
                md5('campusdx-person:' || k), sha256('person:' || k), cast(hash(n) as varchar),
                cast(hash(k) as varchar)
            ]) as d
            from keyed
        ),
        lengths as (select distinct length(v) as l from row_values),
        prefixes as (
            select gid, n, lower(left(d, l)) as p from digests, lengths where l <= length(d)
        )
        select distinct r.row_index, p.n
        from row_values as r inner join prefixes as p on r.gid = p.gid and lower(r.v) = p.p
        """
    ).fetchall()
    recovered: dict[int, set[str]] = defaultdict(set)
    for index, number in found:
        recovered[index].add(number)
    return dict(recovered)


def _random_number(rng: random.Random) -> str:
    first17 = rng.choice(["610322", "110108", "420106"]) + rng.choice(list(days(rng.randint(1960, 2006))))
    first17 += f"{rng.randint(0, 999):03d}"
    return first17 + check_char(first17)


def _old_row(n: str) -> Row:
    """A person as the analyst schema showed them before: first 6 and last 4, the unkeyed
    pseudonym."""
    gender = "1" if int(n[16]) % 2 else "2"
    masked = n[:6] + "*" * 8 + n[-4:]
    return Row("old", masked, int(n[6:10]), "1", gender, {old_pseudonym(f"1:{n}"), masked})


def test_the_attack_recovers_every_number_from_rows_made_the_old_way():
    numbers = [_random_number(random.Random(seed)) for seed in range(40)]
    rows = [_old_row(n) for n in numbers]
    assert recover(rows) == {i: {n} for i, n in enumerate(numbers)}, "mask + year + old pseudonym"
    assert all(honest_candidates(r) < 40 for r in rows), "the old mask leaves a handful"
    # with the sequence hidden, the test's attacker still finds an unkeyed pseudonym, as it
    # takes region and sequence from the full numbers it is given
    hidden = [Row("old", r.masked[:6] + "*" * 12, r.birth_year, "1", r.gender, r.values) for r in rows]
    assert recover(hidden, numbers) == {i: {n} for i, n in enumerate(numbers)}


def _string_values(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _string_values(item)


def _analyst_rows(built) -> list[Row]:
    """Every row of every analyst relation with a masked number and a birth year."""
    rows: list[Row] = []
    columns: dict[str, list[str]] = defaultdict(list)
    for table, column in built.rows(
        "select table_name, column_name from information_schema.columns where table_schema = 'analyst' "
        "order by table_name, ordinal_position"
    ):
        columns[table].append(column)
    with built.connect() as conn:
        for table, names in columns.items():
            masked = [c for c in names if c.endswith("_masked")]
            if not masked or "birth_year" not in names:
                continue
            assert masked == ["id_number_masked"], table
            for record in conn.execute(f'select * from analyst."{table}"').fetchall():
                r = dict(zip(names, record, strict=True))
                if r["id_number_masked"] is None or r["birth_year"] is None:
                    continue
                values = {v for value in record for v in _string_values(value)}
                rows.append(
                    Row(
                        table,
                        r["id_number_masked"],
                        int(r["birth_year"]),
                        r["id_type_code"] or "1",
                        r.get("gender_code"),
                        values,
                    )
                )
    return rows


def test_mask_and_birth_year_leave_many_candidates_and_the_attack_recovers_nothing(warehouse):
    rows = _analyst_rows(warehouse)
    assert {r.relation for r in rows} >= {"persons", "students", "staff"}
    few = [(r.relation, r.masked, r.birth_year) for r in rows if honest_candidates(r) < ENOUGH_CANDIDATES]
    assert few == [], "mask + birth year narrow these to a handful"
    known = {
        n
        for (n,) in warehouse.rows(
            "select id_number from restricted.persons union select id_number from restricted.students "
            "union select id_number from restricted.staff"
        )
        if n
    }
    recovered = recover(rows, known)
    leaks = sorted((rows[i].relation, rows[i].masked, len(ns)) for i, ns in recovered.items())
    assert leaks == [], f"full numbers recovered from analyst rows: {leaks[:10]}"


IDENTITY_RUN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def is_full_id_number(text: str) -> bool:
    """A run of 18 that is a 居民身份证号: the right check character and a birth date since 1900
    (a run of digits inside a hex key has the right check character one time in 11)."""
    try:
        born = dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    return check_char(text[:17]) == text[17].upper() and dt.date(1900, 1, 1) <= born <= dt.date.today()


def test_no_analyst_relation_holds_a_full_id_number(warehouse):
    relations: dict[str, list[str]] = defaultdict(list)
    for table, column in warehouse.rows(
        "select table_name, column_name from information_schema.columns where table_schema = 'analyst' "
        "and (data_type = 'VARCHAR' or data_type like 'VARCHAR[]%')"
    ):
        relations[table].append(column)
    assert {"persons", "students", "staff", "ledger_entries"} <= relations.keys()
    found = []
    with warehouse.connect() as conn:
        for table, names in relations.items():
            select = ", ".join(f'"{c}"' for c in names)
            for record in conn.execute(f'select {select} from analyst."{table}"').fetchall():
                for value in record:
                    for text in _string_values(value):
                        found += [(table, m) for m in IDENTITY_RUN.findall(text) if is_full_id_number(m)]
    assert found == [], found[:10]


def test_the_key_is_in_no_dbt_artefact_log_or_view_and_only_its_owner_reads_it(warehouse):
    key_file = Paths(warehouse.home).secrets / pseudonyms.DEFAULT_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="ascii").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    searched = 0
    for folder in ("dbt-target", "dbt-logs", "logs"):
        for path in (warehouse.home / folder).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert key.encode() not in data and key.upper().encode() not in data, path
                assert bytes.fromhex(key) not in data, path
                searched += 1
    assert searched and (warehouse.home / "dbt-target" / "manifest.json").is_file()
    assert key.encode() not in warehouse.path.read_bytes()
    views = warehouse.rows("select sql from duckdb_views() where schema_name = 'analyst'")
    assert views and not [sql for (sql,) in views if re.search(r"read_text|read_blob|pseudonym", sql)]
    with warehouse.connect() as conn:  # the analyst's person_id is the keyed HMAC of dim_person
        people = conn.execute("select k_person, person_id from marts.dim_person").fetchall()
    for k_person, person_id in people:
        assert (
            person_id
            == hmac.new(bytes.fromhex(key), f"person:{k_person}".encode(), "sha256").hexdigest()[:16]
        )


def _dbt_pseudonyms(home: Path, key_file: Path | None) -> subprocess.CompletedProcess:
    """``dbt show`` of the macro over two person keys, with ``key_file`` as the pseudonym key."""
    env = {k: v for k, v in os.environ.items() if k != pseudonyms.KEY_FILE_ENV}
    env["CAMPUSDX_HOME"] = str(home)
    if key_file is not None:
        env[pseudonyms.KEY_FILE_ENV] = str(key_file)
    sql = (
        "select k, {{ person_pseudonym('k') }} as p from (values ('1:110108198711151234'), "
        "('1:42282219690926549X')) as v (k) cross join {{ pseudonym_key_pads() }} as pads order by k"
    )
    return subprocess.run(
        [executable("dbt"), "show", "--quiet", "--output", "json", "--inline", sql,
         "--profiles-dir", str(DBT_PROJECT), "--target-path", str(home / "dbt-target"),
         "--log-path", str(home / "dbt-logs")],
        env=env, cwd=DBT_PROJECT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _shown(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {r["k"]: r["p"] for r in json.loads(result.stdout[result.stdout.index("{") :])["show"]}


def test_pseudonyms_are_stable_under_one_key_and_change_with_another(tmp_path):
    keys = {}
    for name in ("a", "b"):
        keys[name] = tmp_path / f"{name}.key"
        keys[name].write_text(os.urandom(32).hex() + "\n", encoding="ascii")
    first, again, other = (_shown(_dbt_pseudonyms(tmp_path, keys[n])) for n in ("a", "a", "b"))
    key_a = bytes.fromhex(keys["a"].read_text(encoding="ascii"))
    assert (
        first
        == again
        == {k: hmac.new(key_a, f"person:{k}".encode(), "sha256").hexdigest()[:16] for k in first}
    ), "HMAC-SHA256 (RFC 2104) of 'person:' || k_person under the key, cut to 16"
    assert len(first) == 2 and not set(first.values()) & set(other.values())
    assert first != {k: old_pseudonym(k) for k in first}


def test_a_named_key_file_that_is_gone_fails_the_dbt_run_naming_the_variable(tmp_path):
    result = _dbt_pseudonyms(tmp_path, tmp_path / "lost.key")
    assert result.returncode != 0
    assert pseudonyms.KEY_FILE_ENV in result.stdout + result.stderr
    assert not (tmp_path / "lost.key").exists() and not (tmp_path / "secrets").exists()


def test_the_embedded_default_key_is_generated_once_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv(pseudonyms.KEY_FILE_ENV, raising=False)
    paths = Paths(tmp_path)
    path = pseudonyms.pseudonym_key_file(paths)
    assert path == tmp_path / "secrets" / "pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text(encoding="ascii")
    assert re.fullmatch(r"[0-9a-f]{64}\n", key)
    assert pseudonyms.pseudonym_key_file(paths) == path and path.read_text(encoding="ascii") == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["pseudonym.key"], "no temporary left"
    path.write_text("not hex\n", encoding="ascii")
    with pytest.raises(pseudonyms.PseudonymKeyError, match="does not hold a hex key") as raised:
        pseudonyms.pseudonym_key_file(paths)
    assert "not hex" not in str(raised.value)


def test_a_configured_key_file_is_never_generated(tmp_path, monkeypatch):
    monkeypatch.setenv(pseudonyms.KEY_FILE_ENV, str(tmp_path / "deployment.key"))
    with pytest.raises(pseudonyms.PseudonymKeyError, match=pseudonyms.KEY_FILE_ENV):
        pseudonyms.pseudonym_key_file(Paths(tmp_path))
    assert list(tmp_path.iterdir()) == []
