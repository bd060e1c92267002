"""Every benchmark runs with --quick, so none of them rots between `make bench` runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*_bench.py"))
# pipeline_bench's modes run, at smoke size, inside benchmarks/gpu_check.sh --smoke (test_gpu_check.py)
QUICK = [p for p in BENCHMARKS if p.stem != "pipeline_bench"]


@pytest.mark.parametrize("script", QUICK, ids=lambda p: p.stem)
def test_benchmark_quick_run(script):
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, f"{script.name} printed no RESULT line"


def test_there_are_benchmarks():
    assert {p.stem for p in BENCHMARKS} >= {
        "store_bench",
        "regions_bench",
        "pipeline_bench",
        "video_bench",
        "tokens_bench",
        "vocab_bench",
    }
