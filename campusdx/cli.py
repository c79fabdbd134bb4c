"""``campusdx``: the command line of the platform.

campusdx demo [--scale S] [--seed N] [--regenerate]   the main job on the embedded default
campusdx generate [--scale S] [--seed N]              write the simulated campus only
campusdx gen-feeds                                    regenerate the feed contracts from the profile
campusdx dictionary [--out PATH]                      write the data dictionary (Markdown) under the home
"""

from __future__ import annotations

import argparse
import logging
import sys

from campusdx.settings import paths


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
    adv = sub.add_parser("advance", help="apply N simulated days to every source system")
    adv.add_argument("--days", type=int, required=True)
    adv.add_argument("--seed", type=int, default=20261122)
    load = sub.add_parser("load-sources", help="copy a generated system into PostgreSQL/MariaDB")
    load.add_argument("--system", required=True, choices=["hr", "student", "finance", "asset"])
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
    return parser


def _systems(only: list[str] | None):
    from connectors.sources.declarations import load_systems

    systems = [d for d in load_systems() if not only or d.system in only]
    if only and len(systems) != len(set(only)):
        raise SystemExit(f"unknown system in {only}; declared: {[d.system for d in load_systems()]}")
    return systems


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        from campusdx.runner import StepFailed, demo

        try:
            demo(scale=args.scale, seed=args.seed, regenerate=args.regenerate)
        except StepFailed as failed:
            print(f"\n{failed}", file=sys.stderr)
            return 1
    elif args.command == "generate":
        from demo.campus import generate

        campus = generate(paths().sources, scale=args.scale, **({"seed": args.seed} if args.seed else {}))
        print(f"wrote {paths().sources}: {campus.rows}; {len(campus.dirt)} injected faults in dirt.json")
    elif args.command == "advance":
        from campusdx.pipeline import source_url
        from demo.life import advance

        urls = {d.system: source_url(d.system)[0] for d in _systems(None)}
        counts = advance(urls, args.days, paths().sources / "clock.json", seed=args.seed)
        for what, n in sorted(counts.items()):
            print(f"  {what:<32} {n:>6}")
    elif args.command == "load-sources":
        from connectors.sources.sql import redact
        from demo.targets import copy_system

        copied = copy_system(paths().sources / f"{args.system}.sqlite", args.system, args.url)
        print(f"copied {args.system} to {redact(args.url)}: {copied}")
        print(f"point the pipeline at it: export CAMPUSDX_SOURCE_{args.system.upper()}_URL='<that url>'")
    elif args.command == "extract":
        from campusdx.pipeline import extract, landed_names
        from connectors.sources.sql import ExtractError  # file errors are ExtractErrors too

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
                        )
                    except ExtractError as exc:
                        failed.append(f"{decl.system}.{name}")
                        print(f"  {decl.system}.{name:<12} FAILED: {exc}", file=sys.stderr)
                        continue
                    print(f"  {decl.system}.{name:<12} {done['rows']:>8} rows  {done['mode']}")
        if failed:
            print(f"{len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
            return 1
    elif args.command == "gen-sources":
        from campusdx.sourcegen import write as write_sources

        for path in write_sources():
            print(f"wrote {path}")
    elif args.command == "gen-feeds":
        from campusdx.feedgen import write

        print(f"wrote {write()}")
    elif args.command == "dictionary":
        from campusdx.dictionary import write as write_dictionary

        out, gaps = write_dictionary(args.out)
        print(f"wrote {out}; {len(gaps)} gap(s) listed under Gaps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
