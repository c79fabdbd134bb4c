"""One writer (dbt) or many readers (gate, reconciliation, publisher) of the warehouse file, and
they wait for each other instead of failing on DuckDB's file lock."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from campusdx.core.locks import Busy
from campusdx.core.settings import Paths
from campusdx.core.warehouse import open_warehouse, reading

WRITER = """
import sys, time, duckdb
from pathlib import Path
from campusdx.core.settings import Paths
from campusdx.core.warehouse import writing
paths = Paths(Path(sys.argv[1]))
with writing(paths, wait_s=float(sys.argv[2])):
    conn = duckdb.connect(str(paths.warehouse))
    conn.execute("create or replace table t as select 42 as x")
    print("writing", flush=True)
    time.sleep(1.5)
    conn.close()
"""


def _writer(paths: Paths, wait_s: float = 30) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(paths.home), str(wait_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def paths(tmp_path) -> Paths:
    paths = Paths(tmp_path / "home")
    paths.home.mkdir()
    duckdb.connect(str(paths.warehouse)).close()
    return paths


def test_a_reader_waits_for_the_writer_then_sees_what_it_wrote(paths):
    writer = _writer(paths)
    assert writer.stdout.readline() == "writing\n"
    with pytest.raises(duckdb.IOException):  # what a reader without the lock gets
        duckdb.connect(str(paths.warehouse), read_only=True)
    started = time.monotonic()
    with open_warehouse(paths) as conn:
        assert conn.execute("select x from t").fetchall() == [(42,)]
    assert time.monotonic() - started > 0.5, "the reader did not wait for the writer"
    assert writer.wait(timeout=30) == 0


def test_the_writer_waits_for_readers_and_fails_naming_the_warehouse_after_its_wait(paths):
    with reading(paths), reading(paths):  # two readers, nested, in this process
        refused = _writer(paths, wait_s=0.5)
        _, err = refused.communicate(timeout=60)
        assert refused.returncode != 0
        assert f"the warehouse {paths.warehouse} is being read; dbt waited 0.5 s" in err
        writer = _writer(paths)
        time.sleep(1.0)
        assert writer.poll() is None, "the writer did not wait for the readers"
    assert writer.stdout.readline() == "writing\n"  # the readers gone, it writes
    assert writer.wait(timeout=30) == 0


def test_a_reader_gives_up_after_its_wait_with_a_clear_error(paths):
    writer = _writer(paths)
    assert writer.stdout.readline() == "writing\n"
    with pytest.raises(Busy, match=r"is being written \(dbt\); waited 0\.2 s"), reading(paths, wait_s=0.2):
        pass
    writer.wait(timeout=30)
