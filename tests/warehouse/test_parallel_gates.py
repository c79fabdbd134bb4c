"""The quality gates of all seven PX datasets started at the same moment, as the warehouse DAG
starts them on Airflow's scheduler: every gate succeeds, judges as the gates run one by one
did, and the Data Docs afterwards list every validation of every dataset."""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import shutil
import time
import traceback
from pathlib import Path

import pyarrow.parquet as pq

from campusdx.core.settings import Paths
from campusdx.pipeline import published_datasets

ROUNDS = 5
SAME = ("dataset", "record_key", "rule_id", "severity", "field", "value", "value_fingerprint")
SAME += ("source_system", "batch_id", "first_seen")
VERDICT = ("dataset", "status", "rows_checked", "rows_quarantined", "failures", "warnings", "blocking")
VERDICT += ("checks_passed", "checks_failed", "tolerances")


def _gate(home: str, dataset: str, delay: float, start, errors) -> None:
    """One gate in its own OS process, released with the others by ``start`` (a Barrier), then
    after ``delay`` seconds: released at the very same instant, the gates all read before any
    writes; staggered by a fraction of a second, one gate's reads meet another's writes."""
    try:
        from campusdx import pipeline

        start.wait(timeout=300)
        time.sleep(delay)
        pipeline.gate(dataset, paths=Paths(Path(home)), run_id=f"parallel-{dataset}")
    except BaseException:
        errors.put(f"{dataset}: {traceback.format_exc()[-2500:]}")
        raise


def _findings(paths: Paths) -> dict[str, set[tuple]]:
    return {
        f.stem: {tuple(row.get(k) for k in SAME) for row in pq.read_table(f).to_pylist()}
        for f in sorted((paths.quality / "findings").glob("*.parquet"))
    }


def _verdicts(paths: Paths) -> dict[str, dict]:
    return {
        f.stem: {k: v for k, v in json.loads(f.read_text(encoding="utf-8")).items() if k in VERDICT}
        for f in sorted((paths.quality / "gate").glob("*.json"))
    }


def test_seven_gates_started_at_once_agree_with_one_by_one_and_keep_the_data_docs(warehouse, tmp_path):
    paths = Paths(tmp_path / "home")
    shutil.copytree(warehouse.home, paths.home, ignore=shutil.ignore_patterns("dbt-target"), symlinks=True)
    datasets = published_datasets()
    assert len(datasets) == 7
    # the fixture judged the datasets one by one (referenced datasets first): the reference answer
    serial_findings, serial_verdicts = _findings(paths), _verdicts(paths)
    assert sorted(serial_verdicts) == sorted(datasets) and any(serial_findings.values())
    validations_before = len(_stored_validations(paths))

    # forked from a server that has imported GX already: the seven start within half a second
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["campusdx.pipeline", "campusdx.quality.gate", "great_expectations"])
    started = time.monotonic()
    for round_no in range(ROUNDS):
        start, errors, delays = context.Barrier(len(datasets)), context.Queue(), random.Random(round_no)
        workers = [
            context.Process(
                target=_gate,
                args=(str(paths.home), d, delays.uniform(0, 0.5), start, errors),
                name=f"gate-{d}",
            )
            for d in datasets
        ]
        for w in workers:  # all started before any is waited on
            w.start()
        for w in workers:
            w.join(timeout=600)
        failed = [w.name for w in workers if w.exitcode != 0]
        messages = [errors.get(timeout=5) for _ in failed if not errors.empty()]
        assert not failed, f"round {round_no + 1}: {failed} failed:\n" + "\n".join(messages)
        assert _verdicts(paths) == serial_verdicts, f"round {round_no + 1}: verdicts differ from one by one"
        assert _findings(paths) == serial_findings, f"round {round_no + 1}: findings differ from one by one"
    seconds = time.monotonic() - started
    print(f"{ROUNDS} rounds of {len(datasets)} gates at once: {seconds:.0f} s")

    # every verdict of every round is in the history, each line whole
    history = (paths.quality / "history.jsonl").read_text(encoding="utf-8").splitlines()
    runs = [json.loads(line)["run_id"] for line in history]
    assert runs.count("parallel-XSJBXX") == ROUNDS and len(runs) == len(datasets) * (ROUNDS + 1)
    summary = json.loads((paths.quality / "summary.json").read_text(encoding="utf-8"))
    assert sorted(summary["datasets"]) == sorted(datasets)

    # the Data Docs index lists every stored validation of every dataset, each page on disk
    stored = _stored_validations(paths)
    assert len(stored) == validations_before + len(datasets) * ROUNDS
    site = paths.quality / "gx" / "uncommitted" / "data_docs" / "local_site"
    index = (site / "index.html").read_text(encoding="utf-8")
    listed = set(re.findall(r"'_table_row_link_path': '(validations/[^']+\.html)'", index))
    assert listed == {f"validations/{p}.html" for p in stored}
    assert all((site / page).is_file() for page in listed)
    assert {page.split("/")[1] for page in listed} == {f"px_{d.lower()}" for d in datasets}
    assert summary["data_docs"] and (paths.quality / summary["data_docs"]).exists()
    # no gate rewrote a shared GX project file (the race this test was written for)
    assert not (paths.quality / "great_expectations.yml").exists()
    assert not (paths.quality / "gx" / "great_expectations.yml").exists()


def _stored_validations(paths: Paths) -> list[str]:
    """suite/run/time/batch of every validation result in the shared store."""
    root = paths.quality / "gx" / "uncommitted" / "validations"
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.json"))
