#!/usr/bin/env bash
# One-shot GPU check: every model family trains briefly with trainer=gpu (bf16-mixed) on the
# built-in photos, plus trainer=ddp and the GAN throughput benchmark. Writes OUT/gpu_check.md
# (return codes, wall time, images/s, val/test CIE76) and OUT/gpu_check.log (each run's tail).
#   bash benchmarks/gpu_check.sh OUT        (in the repo root, on a CUDA machine)
# TRAINER=cpu EXTRA='<overrides for every run>' makes a dry run on a machine without a GPU.
set -u
OUT=${1:-gpu-check}
PY=${PYTHON:-python3}
TRAINER=${TRAINER:-gpu}
WORK="$OUT/work"
mkdir -p "$WORK"
export WANDB_MODE=offline PYTHONUNBUFFERED=1
SUMMARY="$OUT/gpu_check.md"
LOG="$OUT/gpu_check.log"
{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
  $PY -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.is_available())"
  echo '```'
  echo
  echo "| run | command (after train.py) | rc | wall s | train img/s | val/cie76 | test/cie76 |"
  echo "|---|---|---|---|---|---|---|"
} > "$SUMMARY"
: > "$LOG"

train() {  # train NAME OVERRIDES...
  local name=$1; shift
  local dir="$WORK/runs/$name" start rc wall
  start=$SECONDS
  $PY train.py "paths.root_dir=$WORK" "hydra.run.dir=$dir" logger=csv trainer.enable_progress_bar=false "$@" ${EXTRA:-} \
    > "$WORK/$name.log" 2>&1
  rc=$?
  wall=$((SECONDS - start))
  local metrics
  metrics=$($PY - "$dir/metrics.json" <<'PYEOF'
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except OSError:
    m = {}
f = lambda k: f"{m[k]:.2f}" if k in m else "-"
print(f"{f('train/images_per_sec')} | {f('val/cie76')} | {f('test/cie76')}")
PYEOF
)
  echo "| $name | \`$*\` | $rc | $wall | $metrics |" >> "$SUMMARY"
  { echo "===== $name (rc=$rc): $*"; tail -n 25 "$WORK/$name.log"; } >> "$LOG"
}

train cnn "trainer=$TRAINER"
train pix2pix model=pix2pix "trainer=$TRAINER" trainer.max_epochs=3
train pix2pix_wgangp model=pix2pix model/gan_loss=wgangp "trainer=$TRAINER" trainer.max_epochs=2
train cwgan model=cwgan "trainer=$TRAINER" trainer.max_epochs=3
train eccv16 model=eccv16 "trainer=$TRAINER" trainer.max_epochs=2
train siggraph17 model=siggraph17 "trainer=$TRAINER" trainer.max_epochs=2
train unet_256 model=pix2pix "trainer=$TRAINER" model.generator.num_downs=8 data.image_size=256 \
  data.crop_size=256 "data.root=$WORK/data/sample256" trainer.max_epochs=2
if [ "$TRAINER" = gpu ]; then train ddp_1node trainer=ddp trainer.max_epochs=2; fi

{
  echo
  echo '## `python -m benchmarks gan`'
  echo
  $PY -m benchmarks gan 2>> "$LOG"
} >> "$SUMMARY"
cat "$SUMMARY"
