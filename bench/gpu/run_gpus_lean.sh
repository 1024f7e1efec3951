#!/usr/bin/env bash
# The short form of run_gpus.sh for little GPU time: scan --gpus (record kept), Unsloth's
# `unsloth doctor --gpus` as the baseline, and a 1-rank-per-GPU NCCL all-reduce through our launcher.
set -uo pipefail
OUT=${1:?give an output folder}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NO_COLOR=1 HF_HUB_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=index,name,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1
s=$(date +%s.%N); timeout 100 python3 -m doctor scan --gpus --no-config --timeout 40 --gpus-record "$OUT/machine.json" > "$OUT/scan-gpus-console.txt" 2>&1; echo "ours exit $? $(python3 -c "print(round($(date +%s.%N)-$s,1))") s"
tail -12 "$OUT/scan-gpus-console.txt"; cat "$OUT/machine.json"
s=$(date +%s.%N); timeout 60 python3 bench/gpu/unsloth_doctor_gpus.py 40 > "$OUT/unsloth-doctor-gpus.txt" 2>&1; echo "unsloth exit $? $(python3 -c "print(round($(date +%s.%N)-$s,1))") s"
tail -12 "$OUT/unsloth-doctor-gpus.txt"
timeout 60 python3 -c "
import json, time, torch
from doctor.distributed.local_ranks import run_local_ranks
t = time.time(); r = run_local_ranks(torch.cuda.device_count(), 30, backend='nccl')
print(json.dumps({'seconds': round(time.time() - t, 1), 'backend': r.get('backend'), 'world': r.get('world'), 'error': r.get('error'), 'devices': [x.get('device') for x in r.get('runtime', [])]}))" | tee "$OUT/local-ranks.txt"
