"""Snapshot publication against a plain file copy, and backup and restore, on built campuses.

    .venv/bin/python benchmarks/snapshot_bench.py [--scales default,1,5] [--backup-scale 1]

Per campus size (same seed): the simulated campus is generated and its warehouse built in one
process, no Airflow (at ``--backup-scale`` the whole cycle of ``scheduler_bench``'s floor:
extraction, dbt, reconciliation, gates, feeds, snapshot, packages, the province's answers;
elsewhere extraction and dbt's transform part, enough to publish). Then, fastest of
``--repeat``, page cache warm for both:

- **floor**: ``shutil.copyfile`` of the build database and an fsync of the copy (the same bytes);
- **publication**: ``campusdx.core.snapshots.publish`` (copy, the snapshot's own info table
  written into the copy and checkpointed, read-only, fsync, rename, ``current`` switched,
  prune).

At ``--backup-scale``: a full backup into a new repository (time, bytes stored; fastest of
``--repeat``), a restore into a new home (time, bytes written), then one working day
(``campusdx advance``), the cycle again and the day's incremental backup (time, bytes stored;
fastest of ``--repeat``, each into a copy of the repository the full backup left). Each timed
backup starts with the dirty pages of earlier work flushed (``os.sync()``): a backup makes its
objects durable with one ``syncfs`` of the repository's file system, which would otherwise
also flush what the cycle had just written; the day is also measured once without that flush,
right after the cycle. The
history export the cycle's snapshot publication did for the day is timed again from the
history as it was before the day. SM4-GCM and SHA-256 over 256 MiB in memory are
measured in the same run, as floors of what a backup does per byte.

Results: ``benchmarks/results/snapshot-<stamp>.json`` and ``snapshot-latest.md``. Never run by
pytest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.extract_bench import RESULTS, machine  # noqa: E402
from benchmarks.scheduler_bench import _ANSWER, _FLOOR, _python, _working_days  # noqa: E402

_TRANSFORM = """
from campusdx import pipeline
from campusdx.core.declarations import load_systems
from campusdx.pipeline import dbtbuild
for d in load_systems():
    for t in pipeline.landed_names(d.system):
        pipeline.extract(d.system, t)
dbtbuild.build("transform")
"""


def _fastest(work, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def _copy_floor(build: Path, target: Path) -> None:
    from campusdx.core.atomic import fsync_file

    shutil.copyfile(build, target)
    fsync_file(target)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build_home(work: Path, scale: float | None, whole_cycle: bool) -> Path:
    from campusdx.core.settings import Paths
    from campusdx.demo.campus import generate
    from campusdx.demo.keys import demo_key_file, ensure_demo_key

    home = work / f"scale-{scale if scale else 'default'}"
    generate(home / "sources", scale=scale)
    ensure_demo_key(demo_key_file(Paths(home)))
    started = time.perf_counter()
    _python(home, _FLOOR if whole_cycle else _TRANSFORM)
    if whole_cycle:
        _python(home, _ANSWER)
    print(f"built {home.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return home


def publication(home: Path, repeat: int) -> dict:
    from campusdx.core import snapshots
    from campusdx.core.settings import Paths

    paths = Paths(home)
    os.environ["CAMPUSDX_HOME"] = str(home)
    floor_copy = home.parent / f"{home.name}-floor.duckdb"
    _copy_floor(paths.warehouse, floor_copy)  # warm-up: the file in the page cache
    floor = _fastest(lambda: _copy_floor(paths.warehouse, floor_copy), repeat)
    floor_copy.unlink()
    publish = _fastest(lambda: snapshots.publish(paths, "bench", keep=1), repeat)
    return {
        "bytes": paths.warehouse.stat().st_size,
        "file_copy_s": floor,
        "publication_s": publish,
        "publication_over_copy": round(publish / floor, 2),
    }


def cipher_floors() -> dict:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    data = os.urandom(256 << 20)
    start = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    sha = time.perf_counter() - start
    start = time.perf_counter()
    for offset in range(0, len(data), 4 << 20):
        enc = Cipher(algorithms.SM4(os.urandom(16)), modes.GCM(os.urandom(12))).encryptor()
        enc.update(data[offset : offset + (4 << 20)])
        enc.finalize()
    sm4 = time.perf_counter() - start
    return {
        "sha256_MB_per_s": round(256 / sha * 1.048576, 1),
        "sm4_gcm_MB_per_s": round(256 / sm4 * 1.048576, 1),
    }


def _timed_backup(home: Path, repository: Path, key: Path, *, settled: bool):
    """One backup, timed; ``settled``: the dirty pages of earlier work (the cycle, the copy of a
    repository) are flushed first, so the backup's one ``syncfs`` flushes its own writes only."""
    from campusdx.core.settings import Paths
    from campusdx.pipeline import backup

    if settled:
        os.sync()
    start = time.perf_counter()
    result = backup.backup(Paths(home), repository, key_file=key)
    return time.perf_counter() - start, result


def _day_backups(home: Path, work: Path, key: Path, repeat: int, settled: bool) -> tuple[float, object]:
    """The day's incremental backup, fastest of ``repeat``, each into a copy of the repository
    as the full backup left it (hard links: a backup never rewrites an object or a manifest, and
    the copy leaves no data of its own for the backup's ``syncfs`` to flush)."""
    best, result = float("inf"), None
    for attempt in range(repeat):
        repository = work / f"day-{int(settled)}-{attempt}"
        shutil.copytree(work / "backups", repository, copy_function=os.link)
        took, result = _timed_backup(home, repository, key, settled=settled)
        best = min(best, took)
        shutil.rmtree(repository)
    return best, result


def _history_export(home: Path, before: Path) -> float:
    """The day's export of the SCD2 history (done by the cycle's snapshot publication), timed
    again from the history as it was before the day; it must come to the same index."""
    from campusdx.core.settings import Paths
    from campusdx.pipeline import history

    after = home / history.DIRECTORY
    kept = home.parent / "history-after"
    after.rename(kept)
    shutil.copytree(before, after)
    start = time.perf_counter()
    history.export(Paths(home))
    took = time.perf_counter() - start
    same = (after / history.INDEX).read_bytes() == (kept / history.INDEX).read_bytes()
    shutil.rmtree(after)
    kept.rename(after)
    if not same:
        raise SystemExit("the history export timed again did not come to the cycle's index")
    return took


def backups(home: Path, repeat: int) -> dict:
    from campusdx.core.settings import Paths
    from campusdx.pipeline import backup, history

    work = home.parent
    key = backup.new_key(work / "backup.key")
    full_s, full = float("inf"), None
    for _ in range(repeat):  # the last one stays: the day's backups start from it
        repository = work / "backups"
        shutil.rmtree(repository, ignore_errors=True)
        took, full = _timed_backup(home, repository, key, settled=True)
        full_s = min(full_s, took)
    restored = work / "restored"
    start = time.perf_counter()
    backup.restore(work / "backups", restored, key_file=key)
    restore_s = time.perf_counter() - start
    restored_bytes = _size(restored)
    shutil.rmtree(restored)
    history_before = work / "history-before"
    shutil.copytree(Paths(home).home / history.DIRECTORY, history_before)
    changes = _working_days(home, 1)
    _python(home, _FLOOR)
    _python(home, _ANSWER)
    unsettled_s, _ = _day_backups(home, work, key, 1, settled=False)  # once: right after the cycle
    history_s = _history_export(home, history_before)
    day_s, day = _day_backups(home, work, key, repeat, settled=True)
    return {
        "full": {
            "s": round(full_s, 3),
            "files": full.files,
            "bytes": full.bytes,
            "stored_bytes": full.stored_bytes,
        },
        "restore": {"s": round(restore_s, 2), "bytes_written": restored_bytes},
        "one_day_changes": changes,
        "one_day": {
            "s": round(day_s, 3),
            "files": day.files,
            "unchanged_files_not_read": day.reused,
            "stored_bytes": day.stored_bytes,
            "s_right_after_other_writes": round(unsettled_s, 3),
            "history_export_at_publication_s": round(history_s, 3),
        },
        "one_day_over_full_time": round(day_s / full_s, 3),
        "one_day_right_after_other_writes_over_full_time": round(unsettled_s / full_s, 3),
        "one_day_with_history_export_over_full_time": round((day_s + history_s) / full_s, 3),
        "repository_bytes": _size(work / "backups"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="default,1,5", help="campus sizes, comma-separated")
    parser.add_argument("--backup-scale", default="1", help="the size the backup is measured at ('' = none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="campusdx-snapshot-bench-"))
    report: dict = {"publication": {}, "cipher_floors": cipher_floors()}
    for name in args.scales.split(","):
        scale = None if name == "default" else float(name)
        whole = name == args.backup_scale
        home = build_home(work, scale, whole)
        report["publication"][name] = publication(home, args.repeat)
        print(name, report["publication"][name], flush=True)
        if whole:
            report["backup"] = {"scale": name, **backups(home, args.repeat)}
            print(report["backup"], flush=True)
        shutil.rmtree(home)
    report["machine"] = machine()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"snapshot-{stamp}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (RESULTS / "snapshot-latest.md").write_text(_markdown(report, stamp), encoding="utf-8")
    print(_markdown(report, stamp))


def _markdown(report: dict, stamp: str) -> str:
    lines = [
        f"# Snapshots and backups ({stamp})",
        "",
        "`.venv/bin/python benchmarks/snapshot_bench.py` (fastest of 3; the floor is `shutil.copyfile`"
        " of the same bytes and an fsync). Target: publication at most 2x the copy.",
        "",
        "| campus | build database (MB) | file copy (s) | publication (s) | publication / copy |",
        "|---|---|---|---|---|",
    ]
    for name, p in report["publication"].items():
        lines.append(
            f"| {name} | {p['bytes'] / 1e6:.1f} | {p['file_copy_s']} | {p['publication_s']} | "
            f"**{p['publication_over_copy']}** |"
        )
    floors = report["cipher_floors"]
    lines += [
        "",
        f"In memory, same run: SHA-256 {floors['sha256_MB_per_s']} MB/s,"
        f" SM4-GCM {floors['sm4_gcm_MB_per_s']} MB/s.",
    ]
    if "backup" in report:
        b = report["backup"]
        lines += [
            "",
            f"## Backup and restore at scale {b['scale']}",
            "",
            "| | time (s) | files | bytes | stored / written (MB) |",
            "|---|---|---|---|---|",
            f"| full backup | {b['full']['s']} | {b['full']['files']} | {b['full']['bytes'] / 1e6:.1f} MB |"
            f" {b['full']['stored_bytes'] / 1e6:.1f} |",
            f"| restore | {b['restore']['s']} | | | {b['restore']['bytes_written'] / 1e6:.1f} |",
            f"| one day later, incremental | {b['one_day']['s']} | {b['one_day']['files']}"
            f" ({b['one_day']['unchanged_files_not_read']} unchanged, not read) | |"
            f" {b['one_day']['stored_bytes'] / 1e6:.1f} |",
            "",
            f"One day's incremental backup / the full backup's time: **{b['one_day_over_full_time']}**"
            " (target at most 0.10). Both fastest of 3, each started with the dirty pages of earlier work"
            " flushed (`os.sync()`), so the backup's one `syncfs` flushes its own writes. Started right"
            f" after the cycle's writes instead: {b['one_day']['s_right_after_other_writes']} s"
            f" ({b['one_day_right_after_other_writes_over_full_time']} of the full backup).",
            "",
            "The SCD2 history is exported by the cycle's snapshot publication, not by the backup:"
            f" the day's export took {b['one_day']['history_export_at_publication_s']} s; counted with"
            f" the backup, the day is {b['one_day_with_history_export_over_full_time']} of the full"
            " backup's time.",
            "",
            "The day: " + ", ".join(f"{k} {v}" for k, v in b["one_day_changes"].items()) + ".",
        ]
    lines += ["", f"Machine: {json.dumps(report['machine'])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
