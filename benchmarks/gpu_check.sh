#!/usr/bin/env bash
# One-shot GPU check, two parts. Writes OUT/gpu_check.md (the tables) and OUT/gpu_check.log.
#   bash benchmarks/gpu_check.sh OUT        (in the repo root, on a CUDA machine; sized for < 6 min on one H100)
# 1. Performance at 256 px in bf16 on a Kaggle-layout array set of random uint8 images written here
#    (IMAGES x SIZE x SIZE, 25,000 x 256 x 256 by default: Kaggle's count and layout, 256 px so that
#    pix2pix's unet_256 takes whole images): for pix2pix unet_256 and ECCV16, the full train.py loop
#    (data=kaggle, WORKERS loader workers, STEPS batches, Throughput callback) vs a plain PyTorch loop
#    on in-memory batches on the GPU (python -m benchmarks.gpu plain), and colorize_full images/s
#    fp32 / bf16 / bf16 + channels_last / compile (python -m benchmarks.gpu infer), and the colorize
#    command on COLORIZE_PHOTOS 1024x768 photos vs the bare colorize_full (python -m benchmarks colorize).
# 2. FAMILY_RUNS=1 (default 0): every family trains briefly on the built-in photos with trainer=gpu,
#    plus trainer=ddp; then the plain loop of each GAN loss at 128 px (what `python -m benchmarks train`
#    compares on the CPU).
# Dry run without a GPU (checks the script, not the numbers):
#   TRAINER=cpu IMAGES=64 SIZE=32 DOWNS=5 BATCH=1 WORKERS=0 STEPS=3 WARMUP=1 FAMILY_RUNS=0 bash benchmarks/gpu_check.sh OUT
set -u
OUT=${1:-gpu-check}
PY=${PYTHON:-python3}
TRAINER=${TRAINER:-gpu}
IMAGES=${IMAGES:-25000}
SIZE=${SIZE:-256}
DOWNS=${DOWNS:-8}          # U-Net levels: 8 = unet_256 (needs crops that are multiples of 256)
BATCH=${BATCH:-16}
WORKERS=${WORKERS:-8}
STEPS=${STEPS:-1000}         # 1000 batches: long enough that worker start-up and cuDNN autotuning drop out
WARMUP=${WARMUP:-20}         # batches the Throughput callback leaves out of the full loop's rate
FAMILY_RUNS=${FAMILY_RUNS:-0}
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
  $PY -c "import torch, lightning, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'lightning', lightning.__version__, 'numpy', numpy.__version__, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name())"
  nproc
  echo '```'
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

perf() {  # perf NAME OVERRIDES...: full train.py loop, then the plain loop, on the same config
  local name=$1; shift
  train "$name" "$@" data=kaggle "data.root=$ARRAYS" "data.crop_size=$SIZE" "data.batch_size=$BATCH" \
    "data.num_workers=$WORKERS" "trainer=$TRAINER" trainer.max_epochs=1 "++trainer.limit_train_batches=$STEPS" \
    "callbacks.throughput.warmup_batches=$WARMUP" ++trainer.limit_val_batches=2 test=false
  $PY -m benchmarks.gpu plain --name "$name" --steps "$STEPS" "$@" "data.crop_size=$SIZE" "data.batch_size=$BATCH" \
    "trainer=$TRAINER" >> "$SUMMARY" 2>> "$LOG"
}

ARRAYS="$WORK/kaggle_random_$SIZE"
written_s=$($PY -m benchmarks.gpu arrays "$ARRAYS" --images "$IMAGES" --size "$SIZE" 2>> "$LOG")
{
  echo
  echo "## Full train.py loop vs plain loop: $IMAGES random ${SIZE}-px images (Kaggle layout, written in ${written_s} s), batch $BATCH, $WORKERS workers, $STEPS batches"
  echo
  echo "Full-loop rows: the Throughput callback's train/images_per_sec (data loading included); plain-loop rows:"
  echo "python -m benchmarks.gpu plain, batches already on the device. Same model config and precision."
  echo
  echo "| run | command (after train.py) | rc | wall s | train img/s | val/cie76 | test/cie76 |"
  echo "|---|---|---|---|---|---|---|"
} >> "$SUMMARY"
perf unet_256 model=pix2pix "model.generator.num_downs=$DOWNS"
perf eccv16 model=eccv16 ++model.rebalance=false
rm -rf "$ARRAYS"
{
  echo
  echo "## Inference: colorize_full images/s at $SIZE px, batch $BATCH: median (min-max) over interleaved rounds"
  echo
  echo "| model | px | batch | fp32 | bf16 | bf16 + channels_last | compile (fp32) |"
  echo "|---|---|---|---|---|---|---|"
} >> "$SUMMARY"
for model in "model=pix2pix model.generator.num_downs=$DOWNS" "model=eccv16"; do
  # shellcheck disable=SC2086  # $model holds two overrides
  $PY -m benchmarks.gpu infer --batch "$BATCH" $model "data.crop_size=$SIZE" >> "$SUMMARY" 2>> "$LOG"
done

# the colorize command on the GPU (bf16, its default there) against colorize_full on decoded photos:
# does the device wait for decoding, colour conversion and encoding? (benchmarks/bench_colorize.py)
{
  echo
  echo "## colorize end to end vs the bare colorize_full, ${COLORIZE_PHOTOS:-64} photos of 1024x768"
  echo
} >> "$SUMMARY"
BENCH_PHOTOS=${COLORIZE_PHOTOS:-64} BENCH_BATCH=$BATCH BENCH_WORKERS=$WORKERS $PY -m benchmarks --no-write colorize \
  2>> "$LOG" | sed -n '/^| model/,/^$/p' >> "$SUMMARY"

if [ "$FAMILY_RUNS" != 1 ]; then cat "$SUMMARY"; exit 0; fi
{
  echo
  echo "## Every family on the built-in photos"
  echo
  echo "| run | command (after train.py) | rc | wall s | train img/s | val/cie76 | test/cie76 |"
  echo "|---|---|---|---|---|---|---|"
} >> "$SUMMARY"
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
  echo "## The GAN losses in the plain loop: batch 16 at 128 px, no data loading"
  echo
  echo "| run | command (after train.py) | rc | wall s | train img/s | val/cie76 | test/cie76 |"
  echo "|---|---|---|---|---|---|---|"
} >> "$SUMMARY"
for gan in "pix2pix model=pix2pix" "pix2pix_wgangp model=pix2pix model/gan_loss=wgangp" "cwgan model=cwgan"; do
  # shellcheck disable=SC2086  # $gan holds the name and its overrides
  $PY -m benchmarks.gpu plain --steps 100 --name $gan data.crop_size=128 data.batch_size=16 "trainer=$TRAINER" \
    >> "$SUMMARY" 2>> "$LOG"
done
cat "$SUMMARY"
