"""FULL and DELTA: the send policy, the DELTA computed in DuckDB, and the platform's data after each
receipt (the province simulator is the peer)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from campusdx.demo.province import Province
from campusdx.exchange import delta as states
from campusdx.exchange.package import BEIJING, table_from_rows
from campusdx.exchange.policy import Policy, PolicyError, choose_mode, load_policies
from campusdx.exchange.publisher import collect_receipts, open_ledger, publish_feed

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=BEIJING)


@pytest.fixture
def home(exchange_home):
    return exchange_home


def org(code: str, name: str = "", kind: str = "10", parent: str | None = None) -> dict:
    return {"DWH": code, "DWMC": name or f"单位{code}", "DWLBM": kind, "SJDWH": parent, "SFSY": "1"}


def feed(profile, rows) -> pa.Table:
    return table_from_rows(profile, "ZZJG", rows)


def rows_of(table: pa.Table) -> list[dict]:
    return [{k: v or "" for k, v in row.items()} for row in table.to_pylist()]


def deliver(home, profile, rows, *, now=NOW) -> tuple:
    """publish_feed, the province answers, the receipt is collected: (result, receipt status)."""
    sent = publish_feed("ZZJG", feed(profile, rows), as_of="2026-12-03", now=now)
    if sent.action == "unchanged":
        return sent, None
    return sent, answered(home, profile).status


def answered(home, profile):
    """The province processes its inbox; the one receipt collected."""
    province = Province.for_home(home, profile)
    try:
        province.process_inbox()
    finally:
        province.close()
    [receipt] = collect_receipts(timeout_s=1, poll_s=0.05, datasets=["ZZJG"])
    return receipt


def platform(home, profile) -> list[dict]:
    province = Province.for_home(home, profile)
    try:
        return sorted(province.current("ZZJG"), key=lambda r: r["DWH"])
    finally:
        province.close()


def test_first_full_then_deltas_keep_the_platform_equal_to_the_feed(home, profile):
    rows = [org("1000"), org("1001", parent="1000"), org("1002", parent="1000")]
    first, status = deliver(home, profile, rows)
    assert (first.mode, status, first.message) == (
        "FULL",
        "ACCEPTED",
        "first package: nothing delivered on record",
    )
    changed = [org("1000"), org("1001", name="新名称", parent="1000"), org("1003", parent="1000")]
    second, status = deliver(home, profile, changed)
    assert (second.action, second.mode, status, second.sequence) == ("sent", "DELTA", "ACCEPTED", 2)
    with open_ledger(home, profile) as ledger:
        last = ledger.packages("ZZJG")[-1]
    assert (last.rows, last.package_id) == (3, "4161010704-ZZJG-D-000002")
    sent = states.state_file(home.exchange, "ZZJG", last.batch_id, "sent")
    ops = {r["DWH"]: r["CZLX"] for r in states.pq.read_table(sent).to_pylist()}
    assert ops == {"1001": "U", "1002": "D", "1003": "I"}
    assert platform(home, profile) == rows_of(feed(profile, changed))
    unchanged, status = deliver(home, profile, changed)
    assert (unchanged.action, status, unchanged.message) == (
        "unchanged",
        None,
        "empty DELTA: nothing to send",
    )


def test_a_partial_delta_leaves_the_rejected_key_as_it_was_and_the_next_delta_sends_it_again(home, profile):
    rows = [org("1000"), org("1001", parent="1000")]
    deliver(home, profile, rows)
    bad = [org("1000", name="改名"), org("1001", kind="ZZ", parent="1000"), org("1004")]
    _, status = deliver(home, profile, bad)
    assert status == "PARTIAL"
    expected = rows_of(feed(profile, [org("1000", name="改名"), org("1001", parent="1000"), org("1004")]))
    assert platform(home, profile) == expected  # 1001 kept its old version
    fixed = [org("1000", name="改名"), org("1001", kind="20", parent="1000"), org("1004")]
    again, status = deliver(home, profile, fixed)
    assert (status, again.rows) == ("ACCEPTED", 1)  # only 1001 differs from what the platform holds
    assert platform(home, profile) == rows_of(feed(profile, fixed))


def test_a_partial_full_leaves_the_rejected_rows_out_and_the_next_delta_inserts_them(home, profile):
    _, status = deliver(home, profile, [org("1000"), org("1001", kind="ZZ")])
    assert status == "PARTIAL"
    assert [r["DWH"] for r in platform(home, profile)] == ["1000"]
    again, status = deliver(home, profile, [org("1000"), org("1001", kind="20")])
    with open_ledger(home, profile) as ledger:
        assert ledger.packages("ZZJG")[-1].mode == "DELTA"
    assert (status, again.rows) == ("ACCEPTED", 1)
    assert platform(home, profile) == rows_of(feed(profile, [org("1000"), org("1001", kind="20")]))


def test_an_operator_request_and_the_schedule_send_a_full(home, profile):
    rows = [org("1000"), org("1001", parent="1000")]
    deliver(home, profile, rows)
    with open_ledger(home, profile) as ledger:
        ledger.request_full("ZZJG", "platform data restored from backup", "2026-12-03 10:05:00")
    forced, status = deliver(home, profile, rows)  # unchanged data, still sent: it was asked for
    assert (forced.action, status, forced.message.split(":")[0]) == ("sent", "ACCEPTED", "requested")
    with open_ledger(home, profile) as ledger:
        assert [e.mode for e in ledger.packages("ZZJG")] == ["FULL", "FULL"]
        assert ledger.full_requested("ZZJG") is None
    rows.append(org("1002"))
    later = deliver(home, profile, rows, now=NOW + timedelta(days=29))[0]
    assert later.message.startswith("changes since")
    scheduled = deliver(home, profile, [*rows, org("1003")], now=NOW + timedelta(days=31))[0]
    assert scheduled.message.startswith("scheduled")
    assert platform(home, profile) == rows_of(feed(profile, [*rows, org("1003")]))


def test_choose_mode_follows_the_policy():
    policy = Policy(full_every_days=30, full_after_rejections=2)
    last_full = NOW - timedelta(days=3)

    def mode(**kw):
        args = dict(
            has_state=True, full_requested=None, rejections_in_a_row=0, last_full_at=last_full, now=NOW
        )
        return choose_mode(policy, **{**args, **kw}).mode

    assert mode() == "DELTA"
    assert mode(has_state=False) == "FULL"
    assert mode(full_requested="operator") == "FULL"
    assert (mode(rejections_in_a_row=1), mode(rejections_in_a_row=2)) == ("DELTA", "FULL")
    assert mode(last_full_at=NOW - timedelta(days=30)) == "FULL"
    assert choose_mode(Policy(None, None), has_state=True, full_requested=None, rejections_in_a_row=9,
                       last_full_at=None, now=NOW).mode == "DELTA"  # fmt: skip


def test_the_policy_file_covers_every_dataset_and_bad_entries_are_named(profile, tmp_path):
    policies = load_policies(datasets=set(profile.datasets))
    assert set(policies) == set(profile.datasets)
    bad = tmp_path / "policy.yml"
    bad.write_text("defaults: {full_every_days: 0}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"defaults\.full_every_days must be a positive whole number"):
        load_policies(bad, datasets={"ZZJG"})
    bad.write_text("datasets: {ZZJG: {full_evry_days: 3}}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"ZZJG: unknown setting\(s\) \['full_evry_days'\]"):
        load_policies(bad, datasets={"ZZJG"})


def test_compute_delta_agrees_with_a_plain_python_diff(profile, tmp_path):
    dataset = profile.dataset("CWKMYE")  # a composite key
    rng = random.Random(7)
    fields = dataset.field_codes

    def row(i):
        values = {f: rng.choice(["1", "2", None]) for f in fields}
        values.update({k: str(i % 7 if n else i // 7) for n, k in enumerate(dataset.primary_key)})
        return values

    before = [row(i) for i in range(0, 400, 1)]
    after = [dict(r) for r in before if rng.random() > 0.1]
    for r in after:
        if rng.random() < 0.2:
            r[fields[-1]] = "changed"
    after += [row(i) for i in range(400, 430)]
    state = tmp_path / "state.parquet"
    states.write_table(state, pa.Table.from_pylist(before, schema=_schema(fields)))
    got = states.compute_delta(profile, dataset, pa.Table.from_pylist(after, schema=_schema(fields)), state)
    key = lambda r: tuple(r[k] for k in dataset.primary_key)  # noqa: E731
    old, new = {key(r): r for r in before}, {key(r): r for r in after}
    expected = {k: "I" for k in new.keys() - old.keys()}
    expected |= {k: "D" for k in old.keys() - new.keys()}
    expected |= {k: "U" for k in new.keys() & old.keys() if new[k] != old[k]}
    assert {key(r): r["CZLX"] for r in got.to_pylist()} == expected
    assert all(r == {**new[key(r)], "CZLX": r["CZLX"]} for r in got.to_pylist() if r["CZLX"] != "D")
    applied = states.apply_delta(profile, dataset, state, got)
    assert sorted(applied.to_pylist(), key=key) == sorted(after, key=key)


def _schema(fields) -> pa.Schema:
    return pa.schema([(f, pa.string()) for f in fields])


# --------------------------------------------------------------------------- operator tools


def test_operator_lists_packages_reads_a_receipt_resends_and_asks_for_a_full(home, profile, capsys):
    from campusdx.cli import main

    deliver(home, profile, [org("1000"), org("1001", kind="ZZ")])
    capsys.readouterr()
    assert main(["exchange", "packages"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["package", "batch", "rows", "status", "attempts", "built", "answered"]
    assert listing[2].split()[:5] == ["4161010704-ZZJG-F-000001", listing[2].split()[1], "2", "PARTIAL", "1"]
    assert main(["exchange", "receipt", "4161010704-ZZJG-F-000001"]) == 0
    shown = capsys.readouterr().out
    assert "PARTIAL" in shown and "1 of 2 rows accepted, 1 rejected" in shown
    [error] = [line for line in shown.splitlines() if line.startswith("PX-E011")]
    assert error.split()[1:5] == ["ZZJG.001.csv", "3", "DWLBM", "ZZ"]
    assert main(["exchange", "resend", "4161010704-ZZJG-F-000001"]) == 1
    assert "already answered PARTIAL" in capsys.readouterr().err

    pending = publish_feed("ZZJG", feed(profile, [org("1000"), org("1001")]), as_of="2026-12-03", now=NOW)
    inbox = home.gateway / "inbox" / pending.package_id
    first_bytes = {p.name: p.read_bytes() for p in inbox.iterdir()}
    for p in inbox.iterdir():
        p.unlink()
    inbox.rmdir()  # the upload was lost on the way
    assert main(["exchange", "resend", pending.package_id]) == 0
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == first_bytes
    with open_ledger(home, profile) as ledger:
        assert ledger.packages("ZZJG")[-1].attempts == 2

    assert main(["exchange", "full", "ZZJG", "--reason", "platform restored a backup"]) == 0
    assert main(["exchange", "full", "NOPE", "--reason", "x"]) == 1
    assert "no dataset 'NOPE'" in capsys.readouterr().err
    province = Province.for_home(home, profile)
    try:
        province.process_inbox()
    finally:
        province.close()
    collect_receipts(timeout_s=1, poll_s=0.05)
    forced = publish_feed("ZZJG", feed(profile, [org("1000"), org("1001")]), as_of="2026-12-03", now=NOW)
    assert (forced.mode, forced.message) == ("FULL", "requested: platform restored a backup (asked "
                                              + forced.message.split("(asked ")[1])  # fmt: skip


def test_a_rejected_receipt_fails_the_receipt_step_with_the_rule_and_the_next_run_rebuilds(home, profile):
    from campusdx.pipeline import Rejected, receipt

    first = publish_feed("ZZJG", feed(profile, [org("1000")]), as_of="2026-12-03", now=NOW)
    wrong_key = Province(home.gateway, home.province, profile, {profile.key_id: b"\x02" * 32}, {})
    try:
        wrong_key.process_inbox()
    finally:
        wrong_key.close()
    with pytest.raises(Rejected, match=rf"{first.package_id} REJECTED by the province: PX-E002.*not rebuilt"):
        receipt("ZZJG", paths=home)  # no warehouse here: the rebuild fails, and the alert says so
    again, status = deliver(home, profile, [org("1000")])
    assert (again.package_id, again.mode, status) == (first.package_id, "FULL", "ACCEPTED")
    assert again.batch_id != first.batch_id


def test_only_the_state_the_next_delta_needs_is_kept(home, profile):
    full, _ = deliver(home, profile, [org("1000")])
    middle, _ = deliver(home, profile, [org("1000"), org("1001")])
    last, status = deliver(home, profile, [org("1001")])
    assert (full.mode, middle.mode, last.mode, status) == ("FULL", "DELTA", "DELTA", "ACCEPTED")
    kept = sorted(p.name for p in states.state_dir(home.exchange, "ZZJG").iterdir())
    # the rows since the FULL (the chain the last state is made from) and the last state itself;
    # the middle DELTA's own state is derived and goes
    assert kept == sorted(
        [
            f"{full.batch_id}.post.parquet",
            f"{full.batch_id}.sent.parquet",
            f"{middle.batch_id}.base",
            f"{middle.batch_id}.sent.parquet",
            f"{last.batch_id}.base",
            f"{last.batch_id}.post.parquet",
            f"{last.batch_id}.sent.parquet",
        ]
    )
    assert states.derived(states.state_file(home.exchange, "ZZJG", last.batch_id, "post"))
    assert not states.derived(states.state_file(home.exchange, "ZZJG", full.batch_id, "post"))
    with open_ledger(home, profile) as ledger:
        ledger.request_full("ZZJG", "asked for by the operator", "2026-12-03 10:05:00")
    again, _ = deliver(home, profile, [org("1001")])
    assert again.mode == "FULL"
    kept = sorted(p.name for p in states.state_dir(home.exchange, "ZZJG").iterdir())
    assert kept == [f"{again.batch_id}.post.parquet", f"{again.batch_id}.sent.parquet"]


def test_a_lost_delta_state_is_made_again_from_its_chain_and_a_broken_chain_sends_a_full(home, profile):
    deliver(home, profile, [org("1000")])
    deliver(home, profile, [org("1000"), org("1001")])
    last, _ = deliver(home, profile, [org("1001"), org("1002")])
    post = states.state_file(home.exchange, "ZZJG", last.batch_id, "post")
    before = post.read_bytes()
    post.unlink()  # as after a restore: derived states are not in a backup
    made = states.post_state(profile, home.exchange, "ZZJG", last.batch_id)
    assert made == post and post.read_bytes() == before
    nxt, status = deliver(home, profile, [org("1002")])
    assert (nxt.mode, nxt.rows, status) == ("DELTA", 1, "ACCEPTED")
    # a link of the chain lost: the state is no cache any more (a backup takes it), and once it
    # is gone too the state cannot be proven, and the next package is a FULL
    nxt_post = states.state_file(home.exchange, "ZZJG", nxt.batch_id, "post")
    assert states.derived(nxt_post)
    states.state_file(home.exchange, "ZZJG", last.batch_id, "sent").unlink()
    assert not states.derived(nxt_post)
    nxt_post.unlink()
    full, status = deliver(home, profile, [org("1002"), org("1003")])
    assert (full.mode, full.rows, status) == ("FULL", 2, "ACCEPTED")


def test_a_base_that_loops_or_cannot_be_read_sends_a_full_and_prunes_nothing(home, profile):
    deliver(home, profile, [org("1000")])
    last, _ = deliver(home, profile, [org("1000"), org("1001")])
    base = states.base_file(home.exchange, "ZZJG", last.batch_id)
    base.write_text(f"{last.batch_id}.post.parquet\n", encoding="ascii")  # names itself
    states.state_file(home.exchange, "ZZJG", last.batch_id, "post").unlink()
    with pytest.raises(states.DeltaError, match="loops"):
        states.post_state(profile, home.exchange, "ZZJG", last.batch_id)
    base.write_bytes(b"\xff\xfe")
    before = sorted(p.name for p in states.state_dir(home.exchange, "ZZJG").iterdir())
    assert states.prune(home.exchange, "ZZJG", {last.batch_id}) == 0
    assert sorted(p.name for p in states.state_dir(home.exchange, "ZZJG").iterdir()) == before
    full, status = deliver(home, profile, [org("1001")])
    assert (full.mode, status) == ("FULL", "ACCEPTED")


def _lose_after_a_backup(home, profile, *, keep_inbox: bool, answered: bool = True) -> list[dict]:
    """FULL delivered; the exchange's files kept (the backup); a DELTA sent (answered or not);
    the exchange put back as kept and the restore's request to compare with the gateway made;
    the DELTA's package left in the inbox or not. Returns the rows the platform was last sent."""
    import shutil

    first = [org("1000"), org("1001", parent="1000")]
    assert deliver(home, profile, first)[1] == "ACCEPTED"
    kept = _keep_exchange(home)
    second = [org("1000"), org("1001", name="改名", parent="1000"), org("1002", parent="1000")]
    if answered:
        sent, status = deliver(home, profile, second)
        assert (sent.package_id, status) == ("4161010704-ZZJG-D-000002", "ACCEPTED")
    else:
        publish_feed("ZZJG", feed(profile, second), as_of="2026-12-03", now=NOW)
    _put_back(home, profile, kept)
    if not keep_inbox:
        shutil.rmtree(home.gateway / "inbox" / "4161010704-ZZJG-D-000002")
    return second


def test_after_a_restore_a_delivered_package_in_the_inbox_is_adopted_with_its_rows(home, profile):
    second = _lose_after_a_backup(home, profile, keep_inbox=True)
    third = [*second, org("1003", parent="1000")]
    sent, status = deliver(home, profile, third)
    assert (sent.package_id, sent.mode, status) == ("4161010704-ZZJG-D-000003", "DELTA", "ACCEPTED")
    with open_ledger(home, profile) as ledger:
        adopted = ledger.packages("ZZJG")[1]
        assert (adopted.package_id, adopted.status, adopted.rows) == (
            "4161010704-ZZJG-D-000002",
            "ACCEPTED",
            2,
        )
        assert adopted.adopted_at and not ledger.gateway_check_requested("ZZJG")
    ops = {
        r["DWH"]: r["CZLX"]
        for r in states.pq.read_table(
            states.state_file(home.exchange, "ZZJG", sent.batch_id, "sent")
        ).to_pylist()
    }
    assert ops == {"1003": "I"}, "the DELTA continues from what the adopted package left on the platform"
    assert platform(home, profile) == rows_of(feed(profile, third))


def test_after_a_restore_a_sequence_answered_but_not_readable_holds_its_number_and_a_full_follows(
    home, profile
):
    second = _lose_after_a_backup(home, profile, keep_inbox=False)
    sent, status = deliver(home, profile, second)
    assert (sent.package_id, sent.mode, status) == ("4161010704-ZZJG-F-000003", "FULL", "ACCEPTED")
    assert "not on record" in sent.message
    with open_ledger(home, profile) as ledger:
        assert [(e.sequence, e.status, bool(e.adopted_at)) for e in ledger.packages("ZZJG")] == [
            (1, "ACCEPTED", False),
            (2, "ACCEPTED", True),
            (3, "ACCEPTED", False),
        ]
    assert platform(home, profile) == rows_of(feed(profile, second))


def test_after_a_restore_an_unanswered_package_in_the_inbox_is_adopted_and_its_receipt_collected(
    home, profile
):
    second = _lose_after_a_backup(home, profile, keep_inbox=True, answered=False)
    again = publish_feed("ZZJG", feed(profile, second), as_of="2026-12-03", now=NOW)
    assert (again.action, again.package_id) == ("resent", "4161010704-ZZJG-D-000002"), (
        "sent again, same bytes"
    )
    receipt = answered(home, profile)
    assert (receipt.package_id, receipt.status) == ("4161010704-ZZJG-D-000002", "ACCEPTED")
    assert platform(home, profile) == rows_of(feed(profile, second))


def _keep_exchange(home):
    """A copy of the exchange as a backup takes it (the ledger with SQLite's backup API)."""
    import shutil
    import sqlite3

    kept = home.home / "kept"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(home.exchange, kept, ignore=shutil.ignore_patterns("ledger.sqlite*"))
    with (
        sqlite3.connect(home.exchange / "ledger.sqlite") as live,
        sqlite3.connect(kept / "ledger.sqlite") as copy,
    ):
        live.backup(copy)
    return kept


def _put_back(home, profile, kept):
    import shutil

    shutil.rmtree(home.exchange)
    shutil.move(kept, home.exchange)
    with open_ledger(home, profile) as ledger:
        ledger.request_gateway_check("ZZJG", "restored", "2026-12-03 11:00:00")


def test_after_a_restore_taken_while_a_package_was_unanswered_its_receipt_and_the_next_are_taken(
    home, profile
):
    """The backup holds sequence 2 unanswered; after it, 2 was answered and 3 sent and answered.
    The next publish records 2's receipt, adopts 3 and sends 4: no number twice."""
    rows = [org("1000"), org("1001", parent="1000")]
    assert deliver(home, profile, rows)[1] == "ACCEPTED"
    rows.append(org("1002", parent="1000"))
    assert publish_feed("ZZJG", feed(profile, rows), as_of="2026-12-03", now=NOW).sequence == 2
    kept = _keep_exchange(home)  # the backup: 2 is SENT, unanswered
    assert answered(home, profile).status == "ACCEPTED"
    rows.append(org("1003", parent="1000"))
    sent, status = deliver(home, profile, rows)
    assert (sent.sequence, status) == (3, "ACCEPTED")
    _put_back(home, profile, kept)
    rows.append(org("1004", parent="1000"))
    sent, status = deliver(home, profile, rows)
    assert (sent.package_id, sent.mode, status) == ("4161010704-ZZJG-D-000004", "DELTA", "ACCEPTED")
    with open_ledger(home, profile) as ledger:
        assert [(e.sequence, e.status) for e in ledger.packages("ZZJG")] == [
            (1, "ACCEPTED"), (2, "ACCEPTED"), (3, "ACCEPTED"), (4, "ACCEPTED")
        ]  # fmt: skip
        assert not ledger.gateway_check_requested("ZZJG")
    assert platform(home, profile) == rows_of(feed(profile, rows))


def test_after_a_restore_a_rejected_package_in_the_inbox_gives_its_number_back(home, profile):
    """After the backup a FULL was asked for and REJECTED, then a DELTA took the number: the
    DELTA is adopted, never the rejected FULL beside it."""
    from campusdx.exchange.publisher import request_full

    rows = [org("1000"), org("1001", parent="1000")]
    assert deliver(home, profile, rows)[1] == "ACCEPTED"
    kept = _keep_exchange(home)
    request_full("ZZJG", "test")
    rows.append(org("1002", parent="1000"))
    publish_feed("ZZJG", feed(profile, rows), as_of="2026-12-03", now=NOW)
    province = Province.for_home(home, profile, reject_once=["ZZJG"])
    try:
        province.process_inbox()
    finally:
        province.close()
    [rejected] = collect_receipts(timeout_s=1, poll_s=0.05, datasets=["ZZJG"])
    assert (rejected.package_id, rejected.status) == ("4161010704-ZZJG-F-000002", "REJECTED")
    sent, status = deliver(home, profile, rows)
    assert (sent.package_id, status) == ("4161010704-ZZJG-D-000002", "ACCEPTED")
    _put_back(home, profile, kept)
    rows.append(org("1003", parent="1000"))
    sent, status = deliver(home, profile, rows)
    assert (sent.package_id, sent.mode, status) == ("4161010704-ZZJG-D-000003", "DELTA", "ACCEPTED")
    with open_ledger(home, profile) as ledger:
        adopted = [e.package_id for e in ledger.packages("ZZJG") if e.adopted_at]
    assert adopted == ["4161010704-ZZJG-D-000002"]
    assert platform(home, profile) == rows_of(feed(profile, rows))
