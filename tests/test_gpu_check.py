"""benchmarks/gpu_check.sh, the prepared device check, runs end to end in its CPU smoke mode, so that it
works the day a GPU is lent. It covers every mode of benchmarks/pipeline_bench.py (regions with the
fused_convs path, video, the null-model driver ceiling) and the decoding comparison."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_gpu_check_smoke_runs_every_step():
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    results = {json.loads(line[7:])["benchmark"] for line in out.splitlines() if line.startswith("RESULT ")}
    assert results == {"pipeline", "pipeline-video", "video-decode", "pipeline-null", "image-decode"}
    assert "fused_convs declined (no cuDNN)" in out  # the path ran; on CPU cuDNN declines it
    assert "regions defaults pipeline/bare extractor (start-up excluded)" in out.split("== summary")[1]
