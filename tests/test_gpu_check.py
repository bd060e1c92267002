"""benchmarks/gpu_check.sh, the prepared device check, runs end to end in its CPU smoke mode, so that it
works the day a GPU is lent. It covers every mode of benchmarks/pipeline_bench.py (regions with the
fused_convs path, video, the null-model driver ceiling, regions with --image-decode gpu) and the decoding
comparisons."""

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
    assert results == {
        "pipeline",
        "pipeline-video",
        "video-decode",
        "pipeline-null",
        "pipeline-nvjpeg",
        "image-decode",
    }
    assert "fused_convs declined (no cuDNN)" in out  # the path ran; on CPU cuDNN declines it
    assert "regions defaults pipeline/bare extractor (start-up excluded)" in out.split("== summary")[1]
    # without CUDA the nvjpeg step checks the refusal and runs the actor's decode path on the CPU
    assert "--image-decode gpu on cpu: refused: --image-decode gpu needs a CUDA GPU" in out
    assert "torchvision on the CPU vs PIL max abs pixel difference: 0" in out
