"""Cycle after cycle on Airflow's own scheduler (tests/cycles.py): the demo's FULL cycle, then
on a copy of its home two more cycles, each after one simulated day, with Airflow's components
started again as an operator would after a restart. Every DAG run succeeds, the gates run side
by side, each warehouse run starts only after every extract DAG of its cycle has landed, the
province holds exactly the feeds after each cycle, and nothing started is left running."""

from __future__ import annotations

import pytest

from campusdx.core import snapshots
from campusdx.core.declarations import load_systems
from campusdx.core.profile import load_profile
from campusdx.core.settings import Paths
from campusdx.exchange.publisher import open_ledger
from tests.warehouse.test_exchange_cycle import assert_platform_equals_feeds

pytestmark = pytest.mark.e2e
EXTRACTS = {f"extract_{d.system}" for d in load_systems()}


@pytest.fixture(scope="module")
def made(demo_first_run):
    assert demo_first_run.first.returncode == 0, demo_first_run.first.stdout[-3000:]
    cycles = demo_first_run.cycles
    assert cycles.error is None, cycles.error + "\n" + "\n".join(cycles.said)
    return demo_first_run


def _cycles(runs) -> list[list]:
    """The DAG runs grouped by cycle: a cycle starts with its extract runs."""
    grouped: list[list] = []
    for run in sorted(runs, key=lambda r: r.queued_at):
        if run.dag_id in EXTRACTS and (not grouped or any(r.dag_id == "publish" for r in grouped[-1])):
            grouped.append([])
        grouped[-1].append(run)
    return grouped


def test_make_demo_leaves_no_process_behind(made):
    assert made.left_after_demo == [], "campusdx demo left processes running"
    assert made.left_after_cycles == [], "the stack left processes running after it stopped"


def test_three_cycles_every_dag_run_succeeds(made):
    cycles = _cycles(made.cycles.every_run)
    assert len(cycles) == 3, [[(r.dag_id, r.state) for r in c] for c in cycles]
    for number, runs in enumerate(cycles, start=1):
        assert sorted(r.dag_id for r in runs) == sorted([*EXTRACTS, "warehouse", "publish"]), number
        assert {r.state for r in runs} == {"success"}, (number, [(r.dag_id, r.state) for r in runs])


def test_each_warehouse_run_reads_the_landings_of_its_own_cycle(made):
    """One warehouse run per cycle, started after every extract task of that cycle ended: never
    on a mix of this cycle's and an older landing. The publish run starts after the feeds."""
    instances = made.cycles.every_instance
    for runs in _cycles(made.cycles.every_run):
        (warehouse,) = [r for r in runs if r.dag_id == "warehouse"]
        landed = [t["end_date"] for r in runs if r.dag_id in EXTRACTS for t in instances[r.run_id]]
        assert len(landed) > len(EXTRACTS) and None not in landed
        assert warehouse.start_date >= max(landed)
        (publish,) = [r for r in runs if r.dag_id == "publish"]
        (feeds,) = [t for t in instances[warehouse.run_id] if t["task_id"] == "dbt_feeds"]
        assert publish.start_date >= feeds["end_date"]


def test_an_analyst_holding_the_snapshot_through_a_cycle_blocks_nothing(made):
    """A read-only connection opened before a cycle and held through it: the cycle succeeds (every
    run of it) and publishes a new snapshot; the held connection still answers from the old one;
    a new connection sees the new one, which the cycle's packages were built from."""
    before, held_after, new = made.cycles.analyst
    assert held_after == before, "the held connection's view changed under it"
    assert new[0] != before[0], "a new connection does not see the cycle's build"
    first_day = made.cycles.records[0]
    assert {r.state for r in first_day.runs} == {"success"}, [(r.dag_id, r.state) for r in first_day.runs]
    published = snapshots.current_id(Paths(first_day.home))
    with snapshots.connect(Paths(first_day.home)) as conn:
        assert str(conn.execute("select dbt_invocation_id from campusdx_build.info").fetchone()[0]) == new[0]
    with open_ledger(Paths(first_day.home), load_profile()) as ledger:
        cycle_packages = [p for p in ledger.packages() if p.sequence > 1]  # the demo sent the firsts
    assert {p.snapshot for p in cycle_packages} <= {published}, "built from the snapshot the cycle published"


def test_the_gates_ran_side_by_side(made):
    overlaps = 0
    for run in made.cycles.every_run:
        if run.dag_id != "warehouse":
            continue
        gates = [t for t in made.cycles.every_instance[run.run_id] if t["task_id"].startswith("gate_")]
        assert len(gates) == 7 and {t["state"] for t in gates} == {"success"}
        overlaps += sum(
            1
            for i, a in enumerate(gates)
            for b in gates[i + 1 :]
            if a["start_date"] < b["end_date"] and b["start_date"] < a["end_date"]
        )
    assert overlaps >= 1, "no two gate tasks ever ran at the same time"


def test_after_each_cycle_the_platform_equals_the_feeds(made):
    looks = [made.home.with_name(made.home.name + "-cycles-after-0")]
    looks += [record.home for record in made.cycles.records]
    for look in looks:
        assert_platform_equals_feeds(look)


def test_the_day_cycles_send_deltas_in_sequence(made):
    """After each simulated day the changed datasets go as DELTAs, every sequence used once."""
    last = made.cycles.records[-1].home
    with open_ledger(Paths(last), load_profile()) as ledger:
        packages = list(ledger.packages())
    assert {p.status for p in packages} <= {"ACCEPTED", "PARTIAL"}, [
        (p.package_id, p.status) for p in packages
    ]
    by_dataset: dict[str, list[int]] = {}
    for p in packages:
        by_dataset.setdefault(p.dataset, []).append(p.sequence)
    for dataset, sequences in by_dataset.items():
        assert sorted(sequences) == list(range(1, len(sequences) + 1)), (dataset, sequences)
    assert any("-D-" in p.package_id for p in packages), "a simulated day changed nothing?"
