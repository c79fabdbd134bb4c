"""The CLI's commands of the simulated campus: ``demo``, ``generate``, ``advance``, ``load-sources``.

``campusdx.cli`` declares their arguments and imports this module only to run one of them, so
no other command (and no product module) loads the simulator.
"""

from __future__ import annotations

import sys

from campusdx.core.declarations import load_systems
from campusdx.core.settings import paths, redact
from campusdx.demo.campus import generate
from campusdx.demo.keys import demo_key_file, ensure_demo_key
from campusdx.demo.life import advance
from campusdx.demo.runner import StepFailed, demo
from campusdx.demo.targets import copy_system
from campusdx.pipeline import source_url


def run(args) -> int:
    if args.command == "demo":
        try:
            demo(
                scale=args.scale,
                seed=args.seed,
                regenerate=args.regenerate,
                sftp=args.sftp,
                serve=args.serve,
                celery=args.celery,
                edge=args.edge,
            )
        except StepFailed as failed:
            print(f"\n{failed}", file=sys.stderr)
            return 1
    elif args.command == "generate":
        campus = generate(paths().sources, scale=args.scale, **({"seed": args.seed} if args.seed else {}))
        ensure_demo_key(demo_key_file(paths()))  # the simulated province issues the exchange key
        print(f"wrote {paths().sources}: {campus.rows}; {len(campus.dirt)} injected faults in dirt.json")
    elif args.command == "advance":
        urls = {d.system: source_url(d.system)[0] for d in load_systems()}
        counts = advance(urls, args.days, paths().sources / "clock.json", seed=args.seed)
        for what, n in sorted(counts.items()):
            print(f"  {what:<32} {n:>6}")
    elif args.command == "load-sources":
        copied = copy_system(paths().sources / f"{args.system}.sqlite", args.system, args.url)
        print(f"copied {args.system} to {redact(args.url)}: {copied}")
        print(f"point the pipeline at it: export CAMPUSDX_SOURCE_{args.system.upper()}_URL='<that url>'")
    return 0
