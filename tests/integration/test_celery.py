"""The CeleryExecutor profile (tests/cycles.py: celery_cycles): PostgreSQL as Airflow's metadata
database, Redis as its broker, two Celery workers started on this machine, the warehouse file's
tasks on their own queue (worker 1); FULL then two cycles each after one simulated day, every
DAG run succeeding and the province holding exactly the feeds after each."""

from __future__ import annotations

import pytest

from tests.cycles import BACKGROUND
from tests.warehouse.test_exchange_cycle import assert_platform_equals_feeds

pytestmark = pytest.mark.slow  # three scheduled cycles: `make test`, not `make check`


@pytest.fixture(scope="module")
def celery_made(postgres_admin_url, redis_url):
    if "celery" not in BACKGROUND:
        pytest.fail("the Celery cycles were not started (tests/conftest.py: start_celery_cycles)")
    return BACKGROUND["celery"].result()


def test_three_cycles_on_two_celery_workers(celery_made):
    runs = celery_made.every_run
    assert len(celery_made.looks) == 3
    assert {r.dag_id for r in runs if r.dag_id.startswith("extract_")} == {
        "extract_asset",
        "extract_finance",
        "extract_hr",
        "extract_student",
    }
    assert sum(r.dag_id == "warehouse" for r in runs) == 3 and sum(r.dag_id == "publish" for r in runs) == 3
    assert {r.state for r in runs} == {"success"}, [(r.dag_id, r.state) for r in runs]
    for look in celery_made.looks:
        assert_platform_equals_feeds(look.home)
    assert celery_made.left == [], "the Celery stack left processes running"


def test_the_warehouse_file_stays_on_one_worker_while_extraction_and_publishing_spread(celery_made):
    for run in celery_made.every_run:
        queues = {t["queue"] for t in celery_made.instances[run.run_id]}
        assert queues == ({"campusdx_warehouse"} if run.dag_id == "warehouse" else {"default"}), run.dag_id
    first, second = celery_made.workers[1], celery_made.workers[2]
    assert "dag_id=warehouse" in first and "dag_id=warehouse" not in second
    assert "dag_id=extract_" in second and "dag_id=publish" in second, "the second worker took no work"
