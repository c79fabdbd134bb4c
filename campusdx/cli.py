"""``campusdx``: the command line of the platform.

campusdx demo [--scale S] [--seed N] [--regenerate]   the main job on the embedded default
campusdx generate [--scale S] [--seed N]              write the simulated campus only
campusdx gen-feeds                                    regenerate the feed contracts from the profile
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
    sub.add_parser("gen-feeds", help="regenerate dbt feed contracts from schemas/exchange/px-1.0")
    return parser


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
    elif args.command == "gen-feeds":
        from campusdx.feedgen import write

        print(f"wrote {write()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
