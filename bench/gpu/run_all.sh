#!/usr/bin/env bash
# Every GPU check of the project in one call on a GPU machine with no network.
# Wheels for what the machine lacks travel in .whl/ (requirements/smoke-gpu-wheels.txt lists them).
# Usage (repo root): bash bench/gpu/run_all.sh OUT_DIR   (SMOKE_ONLY=1: skip the import profile and scans)
set -uo pipefail
OUT=${1:?give an output folder}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
t0=$(date +%s.%N)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site
echo "wheels installed in $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
  python3 -V
  python3 -m pip list 2>/dev/null | grep -i -E '^(torch|triton|transformers|trl|peft|accelerate|datasets|bitsandbytes|unsloth|unsloth.zoo|xformers|flash.attn|torchao|tokenizers|safetensors) '
} > "$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt"
echo "== smoke (cold: fresh machine, first unsloth import, empty Triton cache)"
python3 bench/gpu/smoke_gpu.py "$OUT" cold
echo "== smoke (warm: caches from the first run)"
python3 bench/gpu/smoke_gpu.py "$OUT" warm
if [ "${SMOKE_ONLY:-0}" != 1 ]; then
echo "== where 'import unsloth' spends its time (python -X importtime, cumulative us, top 25)"
python3 -X importtime -c "import unsloth" 2> /tmp/importtime.txt >/dev/null
sort -t'|' -k2 -n -r /tmp/importtime.txt | head -25
echo "== scan"
timeout 120 python3 -m doctor scan > "$OUT/scan.txt" 2>&1; echo "scan exit $?"
echo "== scan --deep --format json"
timeout 240 python3 -m doctor scan --deep --format json > "$OUT/scan-deep.json" 2> "$OUT/scan-deep.stderr"; echo "scan --deep exit $?"
tail -c 2000 "$OUT/scan-deep.stderr"; rm -f "$OUT/scan-deep.stderr"
fi
echo "== gpu-marked smoke/watchdog tests"
timeout 200 python3 -m pytest -q -m gpu tests/test_smoke.py tests/test_watchdog.py -p no:cacheprovider 2>&1 | tail -15
echo "total $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
