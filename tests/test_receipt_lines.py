"""A receipt's line (PX-1.0 §4: file lines, the header being 1) mapped to the row it names, on the
bytes as sent: a quoted value may hold LF, CR LF or a lone CR, and only LF ends a file line
(§2.1: lines end with LF). A line that starts no row is an error, never a guess; the province
simulator counts lines the same way, and a PARTIAL receipt after a multi-line value holds back
exactly the row the province rejected."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campusdx import pipeline
from campusdx.demo.province import Province
from campusdx.exchange import delta as states
from campusdx.exchange.package import RFC4180, build_package, csv_line, table_from_rows
from campusdx.exchange.publisher import collect_receipts, open_ledger, outbox_dir, publish_feed
from tests.conftest import answer

KEY = bytes(range(32))
HEADER = "DWH,DWMC\n"


def starts_by_counting(lines: list[str]) -> list[int]:
    """The oracle: each written record starts one line after the LFs written before it."""
    starts, line = [], 1
    for text in lines:
        starts.append(line)
        line += text.count("\n")
    return starts


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([["a", "b"], ["c", "d"]], [1, 2, 3]),
        ([["a\nb", "x"], ["c", "d"]], [1, 2, 4]),  # LF inside a value: the row spans two lines
        ([["a\r\nb", "x"], ["c", "d"]], [1, 2, 4]),  # CR LF: one line break (the LF)
        ([["a\rb", "x"], ["c", "d"]], [1, 2, 3]),  # a lone CR is no line break
        ([["\n\n\n", ""], ["", ""], ["c", "d"]], [1, 2, 6, 7]),
        (
            [['say "hi"\nthere', '""'], ['"', "\n"], ["c", "d"]],
            [1, 2, 4, 6],
        ),  # quotes inside values, a value that is one quote, a value that is one LF
        ([["教育部\n直属", "西安科技大学\r\n（临潼校区）"], ["甲", "乙"]], [1, 2, 5]),
        ([["", ""], ["", ""]], [1, 2, 3]),  # empty values: a line of just a comma
    ],
)
def test_record_lines_count_lf_only_and_track_quotes(values, expected):
    lines = [csv_line(["H1", "H2"], RFC4180)] + [csv_line(v, RFC4180) for v in values]
    text = "".join(lines)
    assert states.record_lines(text) == expected == starts_by_counting(lines)
    assert states.line_count(text) == text.count("\n")


def test_a_last_record_without_line_ending_still_counts():
    assert states.record_lines('H1,H2\na,b\n"c\nd",e') == [1, 2, 3]
    assert states.line_count('H1,H2\na,b\n"c\nd",e') == 4


VALUE = st.text(
    alphabet=st.sampled_from(["a", ",", '"', "\r", "\n", "中", " ", "\u2028", "\x85"]), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(VALUE, VALUE, VALUE), max_size=12))
def test_record_lines_match_the_lf_count_of_what_was_written(rows):
    lines = [csv_line(["A", "B", "C"], RFC4180)] + [csv_line(list(r), RFC4180) for r in rows]
    assert states.record_lines("".join(lines)) == starts_by_counting(lines)


# --------------------------------------------------------------------------- rejected_rows

NAMES = ["正常", "名称\n(第二行)", "名称\r\n(CR LF)", "名称\r(lone CR)", 'x "q"\n', "普通", "末"]


def orgs(names=NAMES) -> list[dict]:
    return [{"DWH": f"{1000 + i}", "DWMC": n, "DWLBM": "10", "SFSY": "1"} for i, n in enumerate(names)]


def built(tmp_path, profile, *, per_part=200_000, encoding="UTF-8", names=NAMES):
    small = dataclasses.replace(profile, max_rows_per_part=per_part)
    package = build_package(
        small,
        "ZZJG",
        "FULL",
        table_from_rows(profile, "ZZJG", orgs(names)),
        school_code="4161010704",
        sequence=1,
        batch_id=str(uuid.uuid4()),
        as_of="2026-12-04",
        generated_at="2026-12-04 10:00:00",
        key=KEY,
        key_id=profile.key_id,
        encoding=encoding,
        out_dir=tmp_path / "outbox",
    )
    manifest = json.loads((package.path / "manifest.json").read_text(encoding="utf-8"))
    return small, package.path, manifest


def receipt(manifest, *errors) -> dict:
    return {
        "package_id": f"4161010704-ZZJG-F-{manifest['sequence']:06d}",
        "batch_id": manifest["batch_id"],
        "status": "PARTIAL",
        "errors": [
            {"rule": rule, "file": file, "line": line, "field": "DWMC", "value": "", "message": "m"}
            for rule, file, line in errors
        ],
    }


def physical_starts(path) -> list[int]:
    """The oracle on the file: each record's start, found by parsing with csv over LF lines."""
    import csv
    import io

    reader = csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="\n"), strict=True)
    starts, line = [], 1
    for _ in reader:
        starts.append(line)
        line = reader.line_num + 1
    return starts


def test_each_line_maps_to_the_row_that_starts_on_it(tmp_path, profile):
    small, path, manifest = built(tmp_path, profile)
    starts = physical_starts(path / "ZZJG.001.csv")
    assert starts == [1, 2, 3, 5, 7, 8, 10, 11]  # the header, then rows spanning 1, 2, 2, 1, 2, 1, 1 lines
    for index, line in enumerate(starts[1:]):
        got = states.rejected_rows(small, receipt(manifest, ("PX-E011", "ZZJG.001.csv", line)), path)
        assert list(got) == [index], (line, index)
    both = receipt(manifest, ("PX-E011", "ZZJG.001.csv", 10), ("PX-E015", "ZZJG.001.csv", 10))
    assert [e["rule"] for e in states.rejected_rows(small, both, path)[5]] == ["PX-E011", "PX-E015"]


def test_rows_of_later_parts_count_from_their_own_header(tmp_path, profile):
    small, path, manifest = built(tmp_path, profile, per_part=2)
    assert [f["name"] for f in manifest["files"]] == [f"ZZJG.00{n}.csv" for n in (1, 2, 3, 4)]
    # part 002 holds rows 2 ("CR LF", lines 2-3) and 3 ("lone CR", line 4)
    got = states.rejected_rows(
        small,
        receipt(
            manifest,
            ("PX-E011", "ZZJG.002.csv", 4),
            ("PX-E011", "ZZJG.003.csv", 2),
            ("PX-E011", "ZZJG.004.csv", 2),
            ("PX-W101", "ZZJG.004.csv", 99),  # a warning: the row was taken, not looked up
        ),
        path,
    )
    assert list(got) == [3, 4, 6]


def test_a_gb18030_package_is_read_as_declared(tmp_path, profile):
    small, path, manifest = built(tmp_path, profile, encoding="GB18030")
    assert manifest["encoding"] == "GB18030"
    got = states.rejected_rows(small, receipt(manifest, ("PX-E011", "ZZJG.001.csv", 8)), path)
    assert list(got) == [4]


@pytest.mark.parametrize(
    ("file", "line", "reason"),
    [
        ("ZZJG.001.csv", 1, "it is the header"),
        ("ZZJG.001.csv", 4, "inside the record on lines 3-4"),
        ("ZZJG.001.csv", 9, "inside the record on lines 8-9"),
        ("ZZJG.001.csv", 12, "out of range"),
        ("ZZJG.001.csv", 0, "out of range"),
        ("ZZJG.001.csv", None, "names no line"),
        ("ZZJG.002.csv", 2, "names no file of the package"),
    ],
)
def test_a_line_that_starts_no_row_is_an_error_naming_package_file_and_line(
    tmp_path, profile, file, line, reason
):
    small, path, manifest = built(tmp_path, profile)
    with pytest.raises(states.ReceiptLineError, match=reason) as error:
        states.rejected_rows(small, receipt(manifest, ("PX-E011", file, line)), path)
    assert "4161010704-ZZJG-F-000001" in str(error.value) and f"line {line!r}" in str(error.value)
    assert repr(file) in str(error.value)


def test_a_partial_that_names_fewer_rows_than_it_rejected_is_an_error(tmp_path, profile):
    small, path, manifest = built(tmp_path, profile)
    one = {**receipt(manifest, ("PX-E011", "ZZJG.001.csv", 2)), "rows_rejected": 2}
    with pytest.raises(states.ReceiptLineError, match=r"says 2 row\(s\) rejected but names 1"):
        states.rejected_rows(small, one, path)
    assert list(states.rejected_rows(small, {**one, "rows_rejected": 1}, path)) == [0]


def test_a_receipt_for_another_batch_or_a_changed_part_is_an_error(tmp_path, profile):
    small, path, manifest = built(tmp_path, profile)
    other = {**receipt(manifest, ("PX-E011", "ZZJG.001.csv", 2)), "batch_id": str(uuid.uuid4())}
    with pytest.raises(states.ReceiptLineError, match="the outbox holds batch"):
        states.rejected_rows(small, other, path)
    part = path / "ZZJG.001.csv"
    part.write_bytes(part.read_bytes().replace(b"\r\n", b"\n"))
    with pytest.raises(states.ReceiptLineError, match="not the file sent"):
        states.rejected_rows(small, receipt(manifest, ("PX-E011", "ZZJG.001.csv", 2)), path)


# --------------------------------------------------------------------------- the simulator


def test_the_simulator_reports_the_file_line_a_rejected_row_starts_on(exchange_home, profile):
    names = ["甲\r乙", "丙\r\n丁", "戊\n己", "庚"]
    rows = orgs(names)
    rows[3]["DWLBM"] = "ZZ"  # not in the code set: the province rejects the row on line 5
    publish_feed("ZZJG", table_from_rows(profile, "ZZJG", rows), as_of="2026-12-04")
    province = Province.for_home(exchange_home, profile)
    try:
        [answer] = province.process_inbox()
    finally:
        province.close()
    assert [(e["rule"], e["file"], e["line"]) for e in answer["errors"]] == [("PX-E011", "ZZJG.001.csv", 7)]


# --------------------------------------------------------------------------- publisher


def platform(home, profile) -> dict[str, dict]:
    province = Province.for_home(home, profile)
    try:
        return {r["DWH"]: r for r in province.current("ZZJG")}
    finally:
        province.close()


def test_a_partial_after_multi_line_values_holds_back_exactly_the_rejected_row(exchange_home, profile):
    rows = orgs()
    publish_feed("ZZJG", table_from_rows(profile, "ZZJG", rows), as_of="2026-12-04")
    [got] = answer(exchange_home, profile, reject_rows={"ZZJG": ["1005"]})
    assert (got["status"], got["rows_rejected"]) == ("PARTIAL", 1)
    [result] = collect_receipts(timeout_s=1, poll_s=0.05, datasets=["ZZJG"])
    assert (result.action, result.status) == ("receipt", "PARTIAL")
    held = platform(exchange_home, profile)
    assert sorted(held) == ["1000", "1001", "1002", "1003", "1004", "1006"]
    assert held["1001"]["DWMC"] == "名称\n(第二行)" and held["1003"]["DWMC"] == "名称\r(lone CR)"
    with open_ledger(exchange_home, profile) as ledger:
        last = ledger.packages("ZZJG")[-1]
    ours = states.pq.read_table(states.state_file(exchange_home.exchange, "ZZJG", last.batch_id, "held"))
    assert sorted(r["DWH"] for r in ours.to_pylist()) == sorted(held)  # our record = the platform's

    nxt = publish_feed("ZZJG", table_from_rows(profile, "ZZJG", rows), as_of="2026-12-04")
    assert (nxt.mode, nxt.rows) == ("DELTA", 1)  # the rejected row, and only it, is sent again
    assert [a["status"] for a in answer(exchange_home, profile)] == ["ACCEPTED"]
    collect_receipts(timeout_s=1, poll_s=0.05, datasets=["ZZJG"])
    table = table_from_rows(profile, "ZZJG", orgs())
    expected = {r["DWH"]: {k: v or "" for k, v in r.items()} for r in table.to_pylist()}
    assert platform(exchange_home, profile) == expected


def test_an_unmappable_receipt_leaves_the_package_pending_and_a_valid_one_is_taken_later(
    exchange_home, profile
):
    sent = publish_feed("ZZJG", table_from_rows(profile, "ZZJG", orgs()), as_of="2026-12-04")
    [good] = answer(exchange_home, profile, reject_rows={"ZZJG": ["1005"]})
    receipt_file = exchange_home.gateway / "receipts" / f"{sent.package_id}.json"
    bad = {**good, "errors": [{**good["errors"][0], "line": 12}]}  # one past the end
    receipt_file.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")

    [result] = collect_receipts(timeout_s=1, poll_s=0.05, datasets=["ZZJG"])
    assert (result.action, result.status) == ("unmapped_receipt", "SENT")
    assert result.message.startswith(f"package stays pending: {sent.package_id}: receipt error PX-E017")
    assert "'ZZJG.001.csv' line 12: maps to no record: out of range (the file has 11 lines)" in result.message
    with open_ledger(exchange_home, profile) as ledger:
        assert [e.status for e in ledger.packages("ZZJG")] == ["SENT"]
    assert not states.state_file(exchange_home.exchange, "ZZJG", sent.batch_id, "held").exists()
    with pytest.raises(pipeline.ReceiptUnmapped, match=r"package stays pending: .*out of range"):
        pipeline.receipt("ZZJG", paths=exchange_home)
    assert (outbox_dir(exchange_home) / sent.package_id).is_dir()  # kept until delivered

    receipt_file.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")  # corrected
    [result] = collect_receipts(timeout_s=1, poll_s=0.05, datasets=["ZZJG"])
    assert (result.action, result.status) == ("receipt", "PARTIAL")
    nxt = publish_feed("ZZJG", table_from_rows(profile, "ZZJG", orgs()), as_of="2026-12-04")
    assert (nxt.mode, nxt.rows) == ("DELTA", 1)
    assert [a["status"] for a in answer(exchange_home, profile)] == ["ACCEPTED"]
    assert collect_receipts(timeout_s=1, poll_s=0.05)[0].status == "ACCEPTED"
    assert sorted(platform(exchange_home, profile)) == [f"{1000 + i}" for i in range(len(NAMES))]
