#!/usr/bin/env bash
# `scan --gpus` on a GPU machine, with Unsloth's own `unsloth doctor --gpus` as the baseline in
# the same run. Usage (repo root): bash bench/gpu/run_gpus.sh OUT_DIR
# Wheels the machine lacks (nvidia-ml-py, unsloth, typer for Unsloth's CLI, ...) travel in .whl/.
set -uo pipefail
OUT=${1:?give an output folder}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NO_COLOR=1 HF_HUB_OFFLINE=1
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
fi
export PYTHONPATH=/tmp/site
secs() { python3 -c "import time; print(round(time.time() - $1, 2))"; }
{
  nvidia-smi --query-gpu=index,name,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,driver_version --format=csv
  nvidia-smi topo -m
  nvidia-smi nvlink -s 2>&1 | head -20
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count(), 'nccl', torch.cuda.nccl.version())"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

echo "== ours: unsloth-doctor scan --gpus"
t=$(python3 -c "import time; print(time.time())")
timeout 300 python3 -m doctor scan --gpus --timeout 60 --gpus-record "$OUT/machine.json" --format json -o "$OUT/scan-gpus.json" 2> "$OUT/scan-gpus.stderr"
echo "exit $? in $(secs "$t") s"
python3 -m doctor scan --gpus --gpus-from "$OUT/machine.json" --no-config > "$OUT/scan-gpus-console.txt" 2>&1
cat "$OUT/scan-gpus-console.txt" | tail -25

echo "== baseline: Unsloth's unsloth doctor --gpus (unsloth_cli/commands/doctor.py)"
t=$(python3 -c "import time; print(time.time())")
timeout 300 python3 bench/gpu/unsloth_doctor_gpus.py 60 > "$OUT/unsloth-doctor-gpus.txt" 2>&1
echo "exit $? in $(secs "$t") s"
cat "$OUT/unsloth-doctor-gpus.txt" | tail -25

echo "== our local ranks on NCCL (one rank per GPU; with one GPU a 1-rank NCCL group), then with NCCL_P2P_DISABLE=1, then a deadline too short"
timeout 300 python3 - <<'PY' | tee "$OUT/local-ranks.txt"
import json, time, torch
from doctor.distributed.local_ranks import run_local_ranks
n = torch.cuda.device_count()
for label, env, timeout, startup in (("plain", None, 60, 60), ("NCCL_P2P_DISABLE=1", {"NCCL_P2P_DISABLE": "1"}, 60, 60),
                                     ("deadline 1 s", None, 0.5, 0.5)):
    t = time.time()
    r = run_local_ranks(n, timeout, env, startup_s=startup)
    world = r.get("world") or {}
    print(json.dumps({"run": label, "ranks": n, "seconds": round(time.time() - t, 2), "backend": r.get("backend"),
                      "ok": world.get("ok"), "got": world.get("got"), "busbw_gbps": world.get("busbw_gbps"),
                      "hung": r.get("hung"), "error": (r.get("error") or "")[:200],
                      "devices": [x.get("device") for x in r.get("runtime", [])]}))
PY
if [ "${WITH_TESTS:-0}" = 1 ]; then   # the gpu-marked test repeats the scan above; off to save GPU time
  echo "== gpu-marked tests"
  timeout 300 python3 -m pytest -q -m gpu tests/test_gpus_local_ranks.py -p no:cacheprovider 2>&1 | tail -8
fi
