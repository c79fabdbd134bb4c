"""Run the simulated province: ``python -m campusdx.demo.province serve --home DIR [--idle-exit SECONDS]``.

``serve`` answers packages arriving in ``<home>/gateway/inbox`` until stopped (Ctrl-C) or idle
for ``--idle-exit`` seconds; ``once`` answers what is there now and exits. The exchange key is
``<home>/secrets/px-hmac.key`` (created for the demo when missing), the key id comes from
profile.yml, and the platform's state lives in ``<home>/province``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from campusdx.core import settings
from campusdx.demo.province.simulator import Province


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m campusdx.demo.province",
        description="The simulated provincial platform (PX-1.0 receiver).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="answer packages until stopped or idle")
    once = commands.add_parser("once", help="answer the packages in the inbox now, then exit")
    for command in (serve, once):
        command.add_argument("--home", type=Path, help="campusdx home (default: $CAMPUSDX_HOME or var/)")
        command.add_argument(
            "--delay-receipts", type=float, default=0.0, metavar="SECONDS",
            help="misbehave: answer a package only once it has waited this long",
        )  # fmt: skip
        command.add_argument(
            "--reject-once", action="append", default=[], metavar="DATASET",
            help="misbehave: answer the next package of DATASET REJECTED (repeatable)",
        )  # fmt: skip
    serve.add_argument(
        "--idle-exit", type=float, metavar="SECONDS", help="stop after this long without packages"
    )
    serve.add_argument("--poll", type=float, default=0.5, metavar="SECONDS", help="inbox poll interval")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths = settings.Paths(args.home.resolve()) if args.home else settings.paths()
    province = Province.for_home(paths, receipt_delay_s=args.delay_receipts, reject_once=args.reject_once)
    try:
        if args.command == "once":
            for receipt in province.process_inbox():
                print(f"{receipt['package_id']}: {receipt['status']}")
        else:
            province.serve(poll_s=args.poll, idle_exit_s=args.idle_exit)
    except KeyboardInterrupt:
        pass
    finally:
        province.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
