"""`make bench`: run every benchmarks/*_bench.py and write benchmarks/REPORT.md with their ratios.

Usage: `python benchmarks/run_all.py [--quick] [--only store,vocab]`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

from common import machine

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke-run every benchmark")
    ap.add_argument("--only", help="comma-separated benchmark names (store, regions, ...)")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    rows, failed = [], []
    for script in sorted(HERE.glob("*_bench.py")):
        name = script.stem.removesuffix("_bench")
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            failed.append(name)
            continue
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                rows.extend((name, k, f"{v:.2f}×") for k, v in result["ratios"].items())
                rows.extend((name, k, f"{v:.3g}") for k, v in result.get("values", {}).items())
    lines = [
        "# Benchmark report",
        "",
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}."
        + (" Quick (smoke) run: numbers are not meaningful." if args.quick else ""),
        "",
        "| benchmark | ratio | value |",
        "|---|---|---|",
        *(f"| {b} | {k} | {v} |" for b, k, v in rows),
    ]
    if failed:
        lines += ["", f"Failed: {', '.join(failed)}"]
    (HERE / "REPORT.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'REPORT.md'}: {len(rows)} ratio(s), {len(failed)} failure(s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
