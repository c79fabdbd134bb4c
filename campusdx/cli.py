"""``campusdx``: the command line of the platform.

campusdx demo [--scale S] [--seed N] [--regenerate] [--sftp] [--serve]  the main job on the scheduler
campusdx generate [--scale S] [--seed N]              write the simulated campus only
campusdx gen-feeds                                    regenerate the feed contracts from the profile
campusdx dictionary [--out PATH]                      write the data dictionary (Markdown) under the home
campusdx gate-status [--json]                         the quality gate's latest verdict per dataset
campusdx reconcile [--json]                           per source table: rows read = landed = staging + ...
campusdx exchange packages [--dataset D] [--json]     the ledger: every package and its status
campusdx exchange receipt PACKAGE_ID [--json]         one receipt, its errors as a table
campusdx exchange resend PACKAGE_ID                   upload an unanswered package again, byte for byte
campusdx exchange full DATASET --reason TEXT          the next publish of DATASET sends a FULL
campusdx exchange adopt DATASET                       adopt what the gateway holds beyond the ledger
campusdx snapshots [list|path [ID]|publish|pin ID|unpin ID|prune [--keep N]]   warehouse snapshots
campusdx backup [--to DIR] [--keys] [--new-key FILE]  an encrypted backup (CAMPUSDX_BACKUP_DIR, _KEY_FILE)
campusdx backup-verify [--from DIR] [--backup ID]     check every file of a backup, restoring nothing
campusdx restore [--from DIR] [--backup ID] [--into HOME]  restore into an empty home, verified first

A command imports the stage it runs when it runs (``campusdx exchange packages`` need not load
Great Expectations, 5.6 s here), and the simulator only for its own commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from campusdx.core.declarations import load_systems
from campusdx.core.locks import Busy
from campusdx.core.profile import load_profile
from campusdx.core.settings import paths
from campusdx.pipeline import extract, feedgen, landed_names, published_datasets, reconcile

DEMO_COMMANDS = ("demo", "generate", "advance", "load-sources")
"""Commands of the simulated campus (campusdx.demo): no other command imports the simulator."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campusdx", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job end to end on the embedded default")
    gen = sub.add_parser("generate", help="write the simulated campus source systems")
    for p in (demo, gen):
        p.add_argument(
            "--scale", type=float, default=None, help="1 = the real university; default: demo size"
        )
        p.add_argument("--seed", type=int, default=None, help="generator seed (default: fixed)")
    demo.add_argument("--regenerate", action="store_true", help="rewrite the simulated campus first")
    demo.add_argument(
        "--sftp",
        action="store_true",
        help="send over SFTP to a local OpenSSH server (scripts/install-openssh.sh)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep Airflow running afterwards, its UI on 127.0.0.1 (Ctrl-C stops everything)",
    )
    executor = demo.add_mutually_exclusive_group()
    executor.add_argument(
        "--celery",
        action="store_true",
        help="CeleryExecutor profile: PostgreSQL metadata database, Redis broker, two workers",
    )
    executor.add_argument(
        "--edge",
        action="store_true",
        help="EdgeExecutor profile: PostgreSQL metadata database, one edge worker pulling work over HTTP",
    )
    adv = sub.add_parser("advance", help="apply N simulated days to every source system")
    adv.add_argument("--days", type=int, required=True)
    adv.add_argument("--seed", type=int, default=20261122)
    load = sub.add_parser("load-sources", help="copy a generated system into PostgreSQL/MariaDB")
    load.add_argument("--system", required=True, choices=[d.system for d in load_systems()])
    load.add_argument("--url", required=True, help="SQLAlchemy URL of the target database")
    ext = sub.add_parser("extract", help="land tables now (what the extract DAGs run)")
    ext.add_argument("--system", action="append", help="only this system (repeatable)")
    ext.add_argument("--table", action="append", help="only this table (repeatable)")
    ext.add_argument("--full-refresh", action="store_true", help="read whole tables, not only changes")
    ext.add_argument(
        "--key-snapshot", action="store_true", help="take the key snapshot (delete detection) now, due or not"
    )
    sub.add_parser("gen-feeds", help="regenerate dbt feed contracts from schemas/exchange/px-1.0")
    sub.add_parser("gen-sources", help="regenerate dbt sources of the landing zone from schemas/sources")
    dictionary = sub.add_parser("dictionary", help="write the data dictionary (Markdown) of codes and fields")
    dictionary.add_argument("--out", help="where to write it (default: <home>/docs/data-dictionary.md)")
    status = sub.add_parser("gate-status", help="the quality gate's latest verdict per dataset, as a table")
    status.add_argument("--json", action="store_true", help="the verdicts as JSON, for machines")
    rec = sub.add_parser(
        "reconcile", help="per source table: rows read = landed = staging + superseded + deleted + held"
    )
    rec.add_argument("--json", action="store_true", help="the counts as JSON, for machines")
    exchange = sub.add_parser("exchange", help="the provincial exchange: packages, receipts, resends")
    ex = exchange.add_subparsers(dest="action", required=True)
    packages = ex.add_parser("packages", help="every package in the ledger and its status")
    packages.add_argument("--dataset", help="only this dataset")
    packages.add_argument("--json", action="store_true", help="as JSON, for machines")
    receipt = ex.add_parser("receipt", help="one package's receipt, its errors as a table")
    receipt.add_argument("package_id")
    receipt.add_argument("--json", action="store_true", help="the receipt as JSON")
    again = ex.add_parser("resend", help="upload an unanswered package again (same bytes, same batch id)")
    again.add_argument("package_id")
    full = ex.add_parser("full", help="make the next publish of a dataset a FULL")
    full.add_argument("dataset")
    full.add_argument("--reason", required=True, help="why (kept in the ledger)")
    adopt = ex.add_parser(
        "adopt", help="adopt the packages the gateway shows beyond the ledger (after a restore)"
    )
    adopt.add_argument("dataset")
    snaps = sub.add_parser("snapshots", help="published warehouse snapshots: list, path, publish, pin, prune")
    sn = snaps.add_subparsers(dest="action")
    sn.add_parser("list", help="every snapshot, oldest first (the default)").add_argument(
        "--json", action="store_true"
    )
    sn.add_parser("path", help="the file of the current snapshot (or of ID)").add_argument("id", nargs="?")
    sn.add_parser("publish", help="publish the build as a snapshot now (the warehouse DAG does it)")
    pin = sn.add_parser("pin", help="keep a snapshot through every prune")
    pin.add_argument("id")
    pin.add_argument("--reason", default="", help="why (kept beside it)")
    sn.add_parser("unpin", help="let a snapshot be pruned again").add_argument("id")
    prune = sn.add_parser("prune", help="remove the snapshots beyond the newest N (never current or pinned)")
    prune.add_argument("--keep", type=int, help="how many to keep (default CAMPUSDX_SNAPSHOTS_KEEP, 3)")
    back = sub.add_parser("backup", help="write an encrypted backup of what cannot be recomputed")
    back.add_argument("--to", type=Path, help="the backup repository (default CAMPUSDX_BACKUP_DIR)")
    back.add_argument("--keys", action="store_true", help="include the keys under secrets/ (encrypted)")
    back.add_argument("--new-key", type=Path, metavar="FILE", help="write a new backup key to FILE and stop")
    check = sub.add_parser("backup-verify", help="check every file of a backup without restoring it")
    check.add_argument(
        "--from", dest="source", type=Path, help="the repository (default CAMPUSDX_BACKUP_DIR)"
    )
    check.add_argument("--backup", help="which backup (default: the newest)")
    rest = sub.add_parser("restore", help="restore a backup into an empty home, every file verified first")
    rest.add_argument("--from", dest="source", type=Path, help="the repository (default CAMPUSDX_BACKUP_DIR)")
    rest.add_argument("--backup", help="which backup (default: the newest)")
    rest.add_argument("--into", type=Path, help="the home to restore into (default CAMPUSDX_HOME)")
    serve = sub.add_parser(
        "serve", help="run the data-sharing service (HTTPS, or plain HTTP on 127.0.0.1 only)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8600)
    serve.add_argument("--certfile", help="TLS certificate (PEM): serve HTTPS")
    serve.add_argument("--keyfile", help="its private key (PEM)")
    serve.add_argument("--proxy", action="store_true", help="behind the school's reverse proxy on 127.0.0.1")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sharing = sub.add_parser("sharing", help="the sharing service's applications and people")
    sh = sharing.add_subparsers(dest="action", required=True)
    add = sh.add_parser("add", help="register an application or a person; prints its secret once")
    add.add_argument("name")
    add.add_argument(
        "--role", required=True, choices=["application", "admin", "steward", "dept_user", "auditor"]
    )
    add.add_argument("--department", help="单位号 (applications, stewards and department users)")
    add.add_argument("--json", action="store_true", help="print id and secret as JSON")
    sh.add_parser("list", help="every application and person")
    sh.add_parser("rotate", help="a new secret (the old one stops at once)").add_argument("id")
    sh.add_parser("revoke", help="end an application or person at once").add_argument("id")
    audit = sub.add_parser("audit", help="the sharing service's audit log: query it, or --verify its chain")
    audit.add_argument(
        "--verify", action="store_true", help="check the hash chain; exit 1 naming a broken entry"
    )
    audit.add_argument("--who", help="principal id")
    audit.add_argument("--dataset")
    audit.add_argument("--status", type=int, help="HTTP status")
    audit.add_argument("--since", help="ISO time (UTC)")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--json", action="store_true")
    return parser


def _sharing(args) -> int:
    """The sharing service's principals and audit log, from the command line."""
    from campusdx.service.store import Store, StoreError, verify_chain

    if args.command == "serve":
        from campusdx.service.server import ServeRefused, serve

        try:
            serve(
                args.host,
                args.port,
                certfile=args.certfile,
                keyfile=args.keyfile,
                proxy=args.proxy,
                workers=args.workers,
            )
        except ServeRefused as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0
    if args.command == "audit" and args.verify:
        report = verify_chain(paths())
        for problem in report.problems:
            print(problem, file=sys.stderr)
        print(f"{report.entries} entries; chain {'intact' if report.ok else 'BROKEN'}")
        return 0 if report.ok else 1
    store = Store(paths())
    try:
        if args.command == "audit":
            entries = store.audit_entries(
                principal=args.who,
                dataset=args.dataset,
                outcome=args.status,
                since=args.since,
                limit=args.limit,
            )
            if args.json:
                print(json.dumps(entries, ensure_ascii=False, indent=2))
            for e in [] if args.json else reversed(entries):
                print(
                    f"{e['seq']:>7} {e['at']}  {e.get('principal') or '-':<20} {e['status']} "
                    f"{e['method']} {e['path']}  rows={e.get('rows', '-')} {e.get('reason') or ''}"
                )
            return 0
        if args.action == "add":
            principal, secret = store.add_principal(args.name, args.role, args.department)
            if args.json:
                print(json.dumps({"id": principal.id, "secret": secret}))
            else:
                print(f"{principal.role} {principal.name}: id {principal.id}")
                print(f"secret (shown once, only its hash is kept): {secret}")
        elif args.action == "list":
            for p in store.principals():
                state = f"revoked {p.revoked_at}" if p.revoked_at else "active"
                print(f"{p.id:<22} {p.role:<12} {p.department or '-':<6} {state:<10} {p.name}")
        elif args.action == "rotate":
            print(f"new secret for {args.id} (shown once): {store.rotate_secret(args.id)}")
        elif args.action == "revoke":
            store.revoke_principal(args.id)
            print(f"revoked {args.id}")
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _exchange(args) -> int:
    """The operator's exchange tools; exit 1 when the package or dataset is unknown or refused."""

    from campusdx.exchange.publisher import PublishError, open_ledger, request_full, resend

    profile = load_profile()
    if args.action == "resend":
        try:  # an operator's command: fail at once when a publish of the dataset is running
            result = resend(args.package_id, lock_wait_s=0)
        except (PublishError, Busy) as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{result.package_id}: {result.message}")
        return 0
    if args.action == "adopt":
        from campusdx.exchange.ledger import LedgerError
        from campusdx.exchange.publisher import adopt_from_gateway

        try:
            adopted = adopt_from_gateway(args.dataset)
        except (KeyError, PublishError, LedgerError, Busy) as exc:
            print(exc.args[0] if isinstance(exc, KeyError) else exc, file=sys.stderr)
            return 1
        for result in adopted:
            print(f"{result.package_id}: {result.status} ({result.message or result.action})")
        if not adopted:
            print(f"{args.dataset}: the ledger matches the gateway")
        return 0
    if args.action == "full":
        try:
            request_full(args.dataset, args.reason)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 1
        print(f"{args.dataset}: the next publish sends a FULL ({args.reason})")
        return 0
    with open_ledger(paths(), profile) as ledger:
        entries = ledger.packages(getattr(args, "dataset", None))
    if args.action == "packages":
        if args.json:
            print(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
            return 0
        print(_table(
            ["package", "batch", "rows", "status", "attempts", "built", "answered"],
            [[e.package_id, e.batch_id[:8], e.rows, e.status, e.attempts, e.built_at, e.receipt_at or "-"]
             for e in entries],
        ))  # fmt: skip
        return 0
    found = [e for e in entries if e.package_id == args.package_id]
    if not found:
        print(f"{args.package_id}: no such package in the ledger", file=sys.stderr)
        return 1
    entry = found[-1]
    if entry.receipt is None:
        print(f"{entry.package_id}: {entry.status}, no receipt yet (attempts: {entry.attempts})")
        return 0
    r = entry.receipt
    if args.json:
        print(json.dumps(r, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{entry.package_id} ({entry.mode}, batch {entry.batch_id}): {r['status']} at {r['received_at']}, "
        f"{r['rows_accepted']} of {r['rows_received']} rows accepted, {r['rows_rejected']} rejected"
    )
    errors = r.get("errors") or []
    if errors:
        print(_table(
            ["rule", "file", "line", "field", "value", "message"],
            [[e.get("rule"), e.get("file") or "-", e.get("line") or "-", e.get("field") or "-",
              "-" if e.get("value") is None else e["value"], e.get("message")] for e in errors],
        ))  # fmt: skip
    return 0


def _snapshots(args) -> int:
    """List, locate, publish, pin and prune the published warehouse snapshots."""
    from campusdx.core import snapshots

    home = paths()
    try:
        if args.action == "path":
            print(snapshots.path_of(home, args.id))
        elif args.action == "publish":
            from campusdx.pipeline import publish_snapshot

            print(json.dumps(publish_snapshot(paths=home), indent=2))
        elif args.action in ("pin", "unpin"):
            done = snapshots.pin(home, args.id, getattr(args, "reason", ""), pinned=args.action == "pin")
            print(f"{done.id}: {'pinned' if done.pinned else 'not pinned'}")
        elif args.action == "prune":
            removed = snapshots.prune(home, args.keep)
            print(f"removed {len(removed)}: {', '.join(removed) or '-'}")
        else:
            every = snapshots.listed(home)
            if getattr(args, "json", False):
                print(json.dumps([s.as_dict() for s in every], indent=2))
                return 0
            print(_table(
                ["snapshot", "warehouse run", "created (UTC)", "MB", "current", "pinned"],
                [[s.id, s.run_id, s.created_at, f"{s.bytes / 1e6:.1f}", "*" if s.current else "",
                  "*" if s.pinned else ""] for s in every],
            ))  # fmt: skip
    except (snapshots.SnapshotError, Busy) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _backup(args) -> int:
    """Back up, verify a backup, restore one; exit 1 with the reason when refused."""
    from campusdx.pipeline import backup

    try:
        if args.command == "backup" and args.new_key:
            print(f"wrote a new backup key to {backup.new_key(args.new_key)}: keep it outside the home")
        elif args.command == "backup":
            done = backup.backup(target=args.to, keys=args.keys)
            keys = "included, encrypted" if done.keys else "not included"
            print(
                f"backup {done.backup_id}: {done.files} files, {done.bytes / 1e6:.1f} MB, "
                f"{done.stored_bytes / 1e6:.1f} MB stored ({done.reused} unchanged files not read again), "
                f"snapshot {done.snapshot or '-'}, keys {keys}"
            )
        elif args.command == "backup-verify":
            manifest = backup.verify(_repository(args.source), args.backup)
            print(f"backup {manifest['backup_id']}: {len(manifest['files'])} files verified")
        else:
            done = backup.restore(_repository(args.source), args.into, args.backup)
            print(f"restored backup {done['backup_id']} ({done['files']} files)")
            for note in done["notes"]:
                print(f"  {note}")
    except (backup.BackupError, Busy, OSError) as exc:  # a refusal or the disk: said, no traceback
        print(exc, file=sys.stderr)
        return 1
    return 0


def _repository(given):
    from campusdx.core.settings import current
    from campusdx.pipeline.backup import BackupError

    source = given or current().backup_dir
    if source is None:
        raise BackupError("no backup repository: pass --from DIR or set CAMPUSDX_BACKUP_DIR")
    return source


def _table(header: list[str], rows: list[list]) -> str:
    """Plain text columns, as wide as their widest value."""
    cells = [[str(v) for v in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _reconcile(as_json: bool) -> int:
    """Print the reconciliation of every source table; exit 1 when one does not add up."""

    results = reconcile.reconcile_sources(strict=False)
    if as_json:
        print(json.dumps(reconcile.as_rows(results), ensure_ascii=False, indent=2))
    else:
        print(reconcile.as_table(results))
    return 0 if all(r.ok for r in results) else 1


def _gate_status(as_json: bool) -> int:
    """Print the latest verdicts; exit 1 when a dataset is blocked, 2 when none was judged yet."""

    from campusdx.quality.gate import read_verdict
    from campusdx.quality.rules import load_rules

    verdicts = {code: read_verdict(code) for code in published_datasets()}
    judged = {code: v for code, v in verdicts.items() if v is not None}
    if as_json:
        print(json.dumps({code: asdict(v) for code, v in judged.items()}, ensure_ascii=False, indent=2))
    elif judged:
        columns = f"{'dataset':<8} {'status':<8} {'rows':>8} {'held':>6}"
        header = f"{columns}  {'checked at (UTC)':<20}  errors / warnings"
        print(header)
        print("-" * len(header))
        for code, v in judged.items():
            errors = ", ".join(f"{r} x{n}" for r, n in sorted(v.failures.items())) or "-"
            warnings = ", ".join(f"{r} x{n}" for r, n in sorted(v.warnings.items())) or "-"
            print(
                f"{code:<8} {v.status:<8} {v.rows_checked:>8} {v.rows_quarantined:>6}  {v.checked_at:<20}  "
                f"{errors} / {warnings}"
            )
            for reason in v.blocking:
                print(f"{'':<8} blocked: {reason}")
        book = load_rules()
        seen = sorted({r for v in judged.values() for r in (*v.failures, *v.warnings)})
        if seen:
            print("\nRules (how to fix at the source)")
            for rule_id in seen:
                print(f"  {rule_id}  {book.by_id(rule_id).fix}")
    missing = sorted(set(verdicts) - set(judged))
    if missing:
        print(f"not judged yet: {', '.join(missing)} (run the warehouse DAG)", file=sys.stderr)
    if not judged:
        return 2
    return 1 if any(v.blocked for v in judged.values()) else 0


def _systems(only: list[str] | None):
    systems = [d for d in load_systems() if not only or d.system in only]
    if only and len(systems) != len(set(only)):
        raise SystemExit(f"unknown system in {only}; declared: {[d.system for d in load_systems()]}")
    return systems


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command in DEMO_COMMANDS:  # the simulator, loaded for these commands only
        from campusdx.demo import commands

        return commands.run(args)
    if args.command == "extract":
        from campusdx.sources.sql import ExtractError  # file errors are ExtractErrors too

        logging.getLogger().setLevel(logging.INFO)
        failed = []
        for decl in _systems(args.system):
            for name in landed_names(decl.system):
                if not args.table or name in args.table:
                    try:  # one table failing does not stop the others
                        done = extract(
                            decl.system,
                            name,
                            full_refresh=args.full_refresh,
                            key_snapshot=True if args.key_snapshot else None,
                            lock_wait_s=0,  # an operator's command: fail at once, don't queue
                        )
                    except (ExtractError, Busy) as exc:
                        failed.append(f"{decl.system}.{name}")
                        print(f"  {decl.system}.{name:<12} FAILED: {exc}", file=sys.stderr)
                        continue
                    print(f"  {decl.system}.{name:<12} {done['rows']:>8} rows  {done['mode']}")
        if failed:
            print(f"{len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
            return 1
    elif args.command == "gate-status":
        return _gate_status(args.json)
    elif args.command == "reconcile":
        return _reconcile(args.json)
    elif args.command == "exchange":
        return _exchange(args)
    elif args.command == "snapshots":
        return _snapshots(args)
    elif args.command in ("backup", "backup-verify", "restore"):
        return _backup(args)
    elif args.command in ("serve", "sharing", "audit"):
        return _sharing(args)
    elif args.command == "gen-sources":
        from campusdx.pipeline import sourcegen  # it reads the file declarations (openpyxl)

        for path in sourcegen.write():
            print(f"wrote {path}")
    elif args.command == "gen-feeds":
        print(f"wrote {feedgen.write()}")
    elif args.command == "dictionary":
        from campusdx.pipeline.dictionary import ProjectRefused, write  # imports dbt (1.4 s)

        try:
            out, gaps = write(args.out)
        except ProjectRefused as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"wrote {out}; {len(gaps)} gap(s) listed under Gaps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
