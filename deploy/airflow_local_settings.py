"""Airflow's local settings for a campusdx deployment: every Airflow process imports this module
at start (it is on ``PYTHONPATH``; Airflow looks for ``airflow_local_settings``).

In the processes that run tasks (the scheduler, whose LocalExecutor workers fork every task, a
Celery worker, whose pool does, and an edge worker, which forks each job) it loads the
pipeline's heavy stages once, before any fork: a task process then starts with Great
Expectations, dbt and the publisher already imported instead of paying for them again (``python
-c "import campusdx.quality.gate"`` alone is about 3 CPU seconds here; measured per cycle in
benchmarks/scheduler_bench.py). Every other Airflow process (the API server, the DAG processor,
the triggerer, a CLI command) skips it.
"""

from __future__ import annotations

import sys

_RUNS_TASKS = {("scheduler",), ("celery", "worker"), ("edge", "worker")}

if tuple(sys.argv[1:2]) in _RUNS_TASKS or tuple(sys.argv[1:3]) in _RUNS_TASKS:
    import dbt.cli.main  # noqa: F401

    import campusdx.exchange.publisher
    import campusdx.pipeline.dbtbuild
    import campusdx.quality.gate
    import campusdx.sources.sql  # noqa: F401
