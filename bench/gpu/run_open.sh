#!/usr/bin/env bash
# The GPU checks still open, batched into one call of under 10 minutes (repo root, wheels in .whl/):
#   bash bench/gpu/run_open.sh OUT_DIR
# scan --gpus against Unsloth's `unsloth doctor --gpus` first (timed alone), then the VRAM
# calibration runs and the settings claims side by side.
set -uo pipefail
OUT=${1:?give an output folder}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
echo "wheels installed in $(( $(date +%s) - t0 )) s"
SKIP_INSTALL=1 timeout "${GPUS_BUDGET:-200}" bash bench/gpu/run_gpus.sh "$OUT/gpus" > "$OUT/gpus.log" 2>&1
echo "gpus exit $? at $(( $(date +%s) - t0 )) s"; tail -40 "$OUT/gpus.log"
export PYTHONPATH=/tmp/site:$PWD
timeout "${VRAM_BUDGET:-330}" python3 bench/gpu/vram_calibrate.py "$OUT/vram" --jobs "${VRAM_JOBS:-8}" --timeout 240 > "$OUT/vram.log" 2>&1 &
timeout 240 python3 bench/gpu/settings_claims.py "$OUT/claims" > "$OUT/claims.log" 2>&1
echo "claims exit $? at $(( $(date +%s) - t0 )) s"; tail -20 "$OUT/claims.log"
wait
echo "vram done at $(( $(date +%s) - t0 )) s"; tail -30 "$OUT/vram.log" | cut -c1-300
