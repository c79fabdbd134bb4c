"""The gate on a broken source: one unbalanced voucher blocks CWKMYE, and only CWKMYE."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from campusdx.core.settings import REPO_ROOT
from tests.warehouse.conftest import _env, copy_home, rebuild_system

pytestmark = pytest.mark.slow  # a copy of the session's warehouse, its finance part rebuilt

PUBLISH = "import sys\nfrom campusdx import pipeline\nprint(pipeline.publish(sys.argv[1])['action'])"


def _publish(home, dataset: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PUBLISH, dataset],
        env=_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_unbalanced_voucher_blocks_cwkmye_while_the_others_publish(warehouse, tmp_path):
    home = copy_home(warehouse, tmp_path / "home", "exchange", "gateway", "province").home
    with sqlite3.connect(home / "sources" / "finance.sqlite") as conn:
        (line,) = conn.execute("select min(flid) from gl_fl where jfje > 0").fetchone()
        conn.execute(
            "update gl_fl set jfje = jfje + 0.01, xgsj = '2026-11-30 09:00:00' where flid = ?", (line,)
        )
    # the next run, finance only: its build warns on the voucher tests and goes on, then the gate
    built = rebuild_system(home, "finance", "CWKMYE")
    assert "assert_voucher_debits_equal_credits" in built.stdout and "WARN=0" not in built.stdout

    verdicts = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in (home / "quality" / "gate").glob("*.json")
    }
    assert verdicts["CWKMYE"]["status"] == "blocked"
    assert [b.split(":")[0] for b in verdicts["CWKMYE"]["blocking"]] == ["CDX-D017"]
    assert all(v["status"] == "passed" for code, v in verdicts.items() if code != "CWKMYE"), verdicts

    blocked = _publish(home, "CWKMYE")
    assert blocked.returncode != 0 and "CDX-D017" in blocked.stderr
    sent = _publish(home, "ZZJG")
    assert sent.returncode == 0, sent.stderr[-2000:]
    assert sent.stdout.strip().splitlines()[-1] == "sent"
    assert [p.name for p in (home / "gateway" / "inbox").iterdir()] == ["4161010704-ZZJG-F-000001"]
