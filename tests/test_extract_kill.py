"""An extraction killed with SIGKILL in the middle of a table leaves nothing partial visible,
and running it again lands every row exactly once."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pyarrow.parquet as pq

from campusdx.sources.landing import Landing

ROWS = 300_000
CHILD = """
import sys
from pathlib import Path
from campusdx.core.declarations import SystemDecl, TableDecl
from campusdx.sources.landing import Landing
from campusdx.sources.sql import extract_table
db, landing = sys.argv[1], sys.argv[2]
decl = SystemDecl("demo", "demo", None, f"sqlite:///{db}",
                  (TableDecl("lines", ("id",), "changed", deletes="key_snapshot"),), Path(db))
extract_table(decl, decl.tables[0], decl.default_url, Landing(Path(landing)), chunk_rows=2_000)
"""


def _source(path):
    with sqlite3.connect(path) as conn:
        conn.execute("create table lines (id integer primary key, amount numeric(18,2), changed text)")
        conn.executemany(
            "insert into lines values (?, ?, ?)",
            ((i, f"{i % 1000}.25", f"2026-01-01 00:{i % 60:02d}:00") for i in range(ROWS)),
        )


def _run(db, landing):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(landing)], env=env)


def test_sigkill_mid_table_then_rerun_lands_every_row_once(tmp_path):
    db, root = tmp_path / "src.sqlite", tmp_path / "landing"
    _source(db)
    landing = Landing(root)
    folder = landing.table_dir("demo", "lines")
    child = _run(db, root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the batch is being written, then kill
        partial = list(folder.glob("*.parquet.tmp")) if folder.exists() else []
        if partial and partial[0].stat().st_size > 200_000:
            break
        time.sleep(0.005)
    else:
        child.kill()
        raise AssertionError("the extraction never started writing")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not list(folder.glob("*.parquet")), "no committed batch after a kill"
    assert list(landing.manifests("demo", "lines")) == []
    assert landing.watermark("demo", "lines") is None

    rerun = _run(db, root)
    assert rerun.wait(timeout=120) == 0
    files = list(folder.glob("*.parquet"))
    assert len(files) == 1 and not list(folder.glob("*.tmp")), "leftovers removed, one batch"
    ids = pq.read_table(files[0], columns=["id"]).column("id").to_pylist()
    assert len(ids) == ROWS and len(set(ids)) == ROWS
    manifest = next(landing.manifests("demo", "lines"))
    assert manifest["rows"] == ROWS and manifest["keys"] == ROWS


KILL_AT_SNAPSHOT_RENAME = """
import json, os, signal, sys
from pathlib import Path
from campusdx.core.declarations import SystemDecl, TableDecl
from campusdx.sources.landing import Landing
from campusdx.sources.sql import extract_table

synced, real_fsync, real_replace = set(), os.fsync, os.replace
def fsync(fd):
    synced.add(os.readlink(f"/proc/self/fd/{fd}"))
    return real_fsync(fd)
def replace(src, dst, *args, **kwargs):
    if "_keys" in Path(src).parts and str(src).endswith(".tmp"):  # the key snapshot's commit
        Path(sys.argv[3]).write_text(json.dumps({"snapshot": str(src), "synced": str(src) in synced}))
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.fsync, os.replace = fsync, replace
db, landing = sys.argv[1], sys.argv[2]
decl = SystemDecl("demo", "demo", None, f"sqlite:///{db}",
                  (TableDecl("lines", ("id",), "changed", deletes="key_snapshot"),), Path(db))
extract_table(decl, decl.tables[0], decl.default_url, Landing(Path(landing)), chunk_rows=2_000)
"""


def test_sigkill_between_key_snapshot_write_and_rename_then_deletes_are_still_found(tmp_path):
    from pathlib import Path

    from campusdx.core.declarations import SystemDecl, TableDecl
    from campusdx.sources.sql import extract_table

    db, root, marker = tmp_path / "src.sqlite", tmp_path / "landing", tmp_path / "killed.json"
    with sqlite3.connect(db) as conn:
        conn.execute("create table lines (id integer primary key, amount numeric(18,2), changed text)")
        conn.executemany(
            "insert into lines values (?, ?, ?)", ((i, "1.25", "2026-01-01") for i in range(1000))
        )
    decl = SystemDecl(
        "demo",
        "demo",
        None,
        f"sqlite:///{db}",
        (TableDecl("lines", ("id",), "changed", deletes="key_snapshot"),),
        Path(db),
    )
    landing = Landing(root)
    first = extract_table(decl, decl.tables[0], decl.default_url, landing)
    with sqlite3.connect(db) as conn:
        conn.execute("delete from lines where id < 10")

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run(
        [sys.executable, "-c", KILL_AT_SNAPSHOT_RENAME, str(db), str(root), str(marker)], env=env, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, "killed at the snapshot's rename"
    killed = json.loads(marker.read_text())
    assert killed["synced"], f"the snapshot {killed['snapshot']} was renamed into place before it was fsynced"
    assert [m["batch_id"] for m in landing.manifests("demo", "lines")] == [first.batch_id]

    after = extract_table(decl, decl.tables[0], decl.default_url, landing)
    assert after.tombstones == 10, "the deletes are still found"
    keys = landing.table_dir("demo", "lines") / "_keys"
    assert sorted(p.name for p in keys.iterdir()) == sorted(
        f"{b}.parquet" for b in (first.batch_id, after.batch_id)
    )
