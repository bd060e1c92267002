#!/usr/bin/env bash
# The prepared device check: run it as one command when a GPU machine is lent (under 8 minutes on one
# H100/H200). Every step prints its table and a RESULT line; the last lines gather the ratios.
#
#   benchmarks/gpu_check.sh            # on the GPU machine, from the repository root
#   benchmarks/gpu_check.sh --smoke    # tiny sizes on CPU, a minute: what tests/test_gpu_check.py runs
#
# Steps (each bounded by `timeout`, so one stuck step cannot eat the lease):
#   1. regions: the bare extractor loop (images decoded beforehand) vs `vlprep regions` (default
#      resources: one worker per GPU) on 384 JPEG files written to disk, into a store, bf16, test scale
#      600/1000, 36 boxes, batch 32 (goals: pipeline >= 0.9x bare; bare >= 150 images/s); then the bare
#      extractor with fused_convs (cuDNN conv + bias + ReLU) against without: images/s, largest difference
#   2. video: `vlprep video` vs the bare extractor loop, s3d fp16, 16 videos 640x360 (goal >= 0.9x)
#   3. decoding: our reader per backend vs the fastest raw decoder on the same frames, 640x360 and 720p
#   4. the driver's ceiling: run_job with a null model vs a bare StoreWriter, on the machine's cores
#      (default options, then each --shard-writes mode; 2 rounds)
#   5. nvjpeg: the bare extractor loop vs `vlprep regions --image-decode gpu` (the model actor decodes
#      the JPEG files on its GPU) on 256 files, and nvjpeg's pixel difference from PIL
#   6. image decoding: JPEG decode + resize images/s per core, PIL vs torchvision, and nvjpeg on the GPU
# Worst case 105 + 90 + 105 + 60 + 75 + 40 s = 7.9 minutes: the step limits keep the whole run under 8
# minutes even if every step hangs; on an H100/H200 the steps should take about 1.5, 1, 1.5, 0.5, 0.8
# and 0.3 minutes. In --smoke mode (no CUDA) step 5 checks the refusal and the decode path on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
LOG=$(mktemp -t vlprep-gpu-check.XXXXXX)
export RAY_USAGE_STATS_ENABLED=0

if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu
  REGIONS=(--quick --images 4)
  VIDEO=(--quick)
  DECODE=(--quick --decode-only)
  NULL=(--quick)
  NVJPEG=(--quick --images 4)
  IMAGE=(--quick)
  LIMIT=240
else
  DEVICE=cuda
  REGIONS=(--images 384 --size 480x640 --precision bf16 --boxes 36 --batch-size 32)
  VIDEO=(--device cuda --precision fp16 --videos 16)
  DECODE=(--decode-only --repeat 2)
  NULL=(--items 3000 --rounds 2)
  NVJPEG=(--device cuda --images 256 --size 480x640 --precision bf16 --boxes 36 --batch-size 32)
  IMAGE=(--device cuda)
  LIMIT=105
fi

step() {  # step NAME COMMAND...: run with a time limit, keep the output, never stop the script
  local name=$1
  shift
  echo "== $name: $*"
  local start=$SECONDS
  timeout "$LIMIT" "$@" 2>&1 | grep -v -e "WARNING authentication" -e "Started a local Ray" | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  [ "$rc" = 0 ] || FAILED="${FAILED:-} $name"
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, ray; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ray', ray.__version__, \
'gpus', torch.cuda.device_count())"
echo "load $(cut -d' ' -f1-3 /proc/loadavg), cpus $(nproc)"

step regions "$PY" benchmarks/pipeline_bench.py --regions --fused-convs --device "$DEVICE" "${REGIONS[@]}"
SHORT=$LIMIT
[ "$SMOKE" = 1 ] || SHORT=90
LIMIT=$SHORT step video "$PY" benchmarks/pipeline_bench.py --video "${VIDEO[@]}"
step decode "$PY" benchmarks/video_bench.py "${DECODE[@]}"
[ "$SMOKE" = 1 ] || SHORT=60
LIMIT=$SHORT step driver "$PY" benchmarks/pipeline_bench.py --null-model "${NULL[@]}"
[ "$SMOKE" = 1 ] || SHORT=75
LIMIT=$SHORT step nvjpeg "$PY" benchmarks/pipeline_bench.py --regions --image-decode gpu "${NVJPEG[@]}"
LIMIT=40 step image "$PY" benchmarks/image_decode_bench.py "${IMAGE[@]}"

echo "== summary (device $DEVICE)"
grep '^RESULT ' "$LOG" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line[7:])
    name = r["benchmark"]
    for k, v in r["ratios"].items():
        print(f"{name:>16}  {k}: {v:.3f}x")
    for k, v in r.get("values", {}).items():
        print(f"{name:>16}  {k}: {v:.4g}")
'
rm -f "$LOG"
if [ -n "${FAILED:-}" ]; then
  echo "failed steps:${FAILED}"
  exit 1
fi
