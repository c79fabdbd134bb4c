"""Package build benchmark: PX-1.0 packages of all seven feeds, against DuckDB's own CSV writer.

    .venv/bin/python benchmarks/package_bench.py --home DIR [--repeat 3]

``--home`` is a home already generated, extracted and built (e.g. by ``gate_bench.py --keep`` or
``campusdx demo --scale 1``). Per dataset, fastest of ``--repeat``, in one process (imports and
one warm-up build first, so neither side pays a first-call cost):

- **campusdx**: read the feed from the warehouse (``pipeline.read_feed``) and ``build_package``
  (CSV parts, sha256 and sm3 of every part, manifest, HMAC-SM3 signature, fsync);
- **floor**: ``COPY (select <fields> from feeds.feed_px__<dataset> order by <key>) TO '…'
  (FORMAT csv, HEADER)``: DuckDB reading and writing the same rows, nothing else.

Throughput is the package's data bytes per second. The XSJBXX package is then checked with
``scripts/verify_px_package.py`` (a verifier that knows only PX-1.0). Results:
``benchmarks/results/package-<stamp>.json`` and ``package-latest.md``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.extract_bench import RESULTS, machine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a home already built")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["CAMPUSDX_HOME"] = str(args.home.resolve())

    from campusdx.core import snapshots
    from campusdx.core.profile import load_profile
    from campusdx.core.settings import paths
    from campusdx.exchange.package import build_package
    from campusdx.pipeline import published_datasets, read_feed

    profile = load_profile()
    key = bytes(range(32))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def ours(code: str, run: int) -> tuple[float, int, Path]:
            start = time.perf_counter()
            package = build_package(
                profile, code, "FULL", read_feed(code), school_code=profile.school_code, sequence=1 + run,
                batch_id=f"bench-{run}", as_of="2026-12-03", generated_at="2026-12-03 10:00:00", key=key,
                key_id=profile.key_id, alg=profile.default_signature, encoding=profile.default_encoding,
                out_dir=out / code,
            )  # fmt: skip
            return (
                time.perf_counter() - start,
                sum(f["bytes"] for f in package.manifest["files"]),
                package.path,
            )

        def floor(code: str, run: int) -> tuple[float, int]:
            declared = profile.dataset(code)
            cols = ", ".join(f'"{f}"' for f in declared.field_codes)
            order = ", ".join(f'"{f}"' for f in (*declared.primary_key, *declared.field_codes))
            target = out / f"{code}-floor-{run}.csv"
            start = time.perf_counter()
            with snapshots.connect(paths()) as conn:
                conn.execute(
                    f"copy (select {cols} from feeds.feed_px__{code.lower()} order by {order}) "
                    f"to '{target}' (format csv, header)"
                )
            return time.perf_counter() - start, target.stat().st_size

        ours("ZZJG", 99), floor("ZZJG", 99)  # warm-up: imports, first Arrow kernels
        for code in published_datasets():
            mine = [ours(code, run) for run in range(args.repeat)]
            base = [floor(code, run) for run in range(args.repeat)]
            results[code] = {
                "rows": read_feed(code).num_rows,
                "bytes": mine[0][1],
                "floor_bytes": base[0][1],
                "campusdx_s": min(m[0] for m in mine),
                "floor_s": min(b[0] for b in base),
            }
            print(code, json.dumps(results[code]), flush=True)
            if code == "XSJBXX":
                key_file = out / "key.hex"
                key_file.write_text(key.hex())
                verified = subprocess.run(
                    [sys.executable, "-I", str(REPO / "scripts" / "verify_px_package.py"), str(mine[0][2]),
                     "--key-file", str(key_file), "--fields", ",".join(profile.dataset(code).field_codes)],
                    capture_output=True, text=True,
                )  # fmt: skip
                results[code]["verified"] = (verified.returncode, verified.stdout.strip())
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report = {"when": stamp, "machine": machine(), "repeat": args.repeat, "datasets": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"package-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "package-latest.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0 if results.get("XSJBXX", {}).get("verified", [1])[0] == 0 else 1


def _markdown(report: dict) -> str:
    m, rows = report["machine"], report["datasets"]
    mb = 1024 * 1024
    total = {k: sum(d[k] for d in rows.values()) for k in ("rows", "bytes", "campusdx_s", "floor_s")}
    ratio = total["campusdx_s"] / total["floor_s"]
    lines = [
        "# Package build benchmark",
        "",
        f"{report['when']} · {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB · "
        f"fastest of {report['repeat']}",
        "",
        "| dataset | rows | MiB | campusdx s | MiB/s | floor (DuckDB COPY) s | MiB/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {c} | {d['rows']:,} | {d['bytes'] / mb:.1f} | {d['campusdx_s']:.3f} | "
            f"{d['bytes'] / mb / d['campusdx_s']:.1f} | {d['floor_s']:.3f} | "
            f"{d['floor_bytes'] / mb / d['floor_s']:.1f} |"
            for c, d in rows.items()
        ],
        f"| all | {total['rows']:,} | {total['bytes'] / mb:.1f} | {total['campusdx_s']:.3f} | "
        f"{total['bytes'] / mb / total['campusdx_s']:.1f} | {total['floor_s']:.3f} | "
        f"{total['bytes'] / mb / total['floor_s']:.1f} |",
        "",
        f"**campusdx takes {ratio:.2f}× the floor's time** (target: within 2×), reading the feed, writing "
        "the parts, sha256 and sm3 of each, the manifest and its HMAC-SM3 signature, with fsync.",
        "",
    ]
    if "verified" in rows.get("XSJBXX", {}):
        code, said = rows["XSJBXX"]["verified"]
        lines += [f"`scripts/verify_px_package.py` on the XSJBXX package: exit {code}, `{said}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
