#!/usr/bin/env bash
# `scan --distributed` on a machine with NVIDIA GPUs: the NCCL path, and the failures it must
# turn into findings. Run from the repo root:
#
#   RESULTS_DIR=bench/results/gpu PYTHON=python3 bash bench/gpu/run_distributed.sh
#
# With N >= 2 GPUs: one rank per GPU (NCCL all-reduce, checked, busbw per pair), the bus
# bandwidth bench, then two broken launches: two ranks but one visible GPU (DIST-RANK-NO-GPU)
# and an NCCL_SOCKET_IFNAME that matches nothing (DIST-SOCKET-IFNAME-MISSING, and the NCCL
# all-reduce failing into DIST-ALLREDUCE-FAILED instead of hanging).
# With 1 GPU only the second half can run: its rank 1 has no GPU, so the job falls back to gloo.
# Wheels the doctor needs that the machine lacks (google-re2, orjson) may be put in WHEELS_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
R="${RESULTS_DIR:-bench/results/gpu}"
mkdir -p "$R"
if [ -n "${WHEELS_DIR:-}" ] && ls "$WHEELS_DIR"/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/doctor-site "$WHEELS_DIR"/*.whl
  export PYTHONPATH="/tmp/doctor-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 NO_COLOR=1
N=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
echo "GPUs visible to torch: $N"
nvidia-smi -L || true

expect() {  # expect REPORT ID [ID...]: each id must be among the report's findings
  "$PY" - "$@" <<'EOF'
import json, sys
path, wanted = sys.argv[1], sys.argv[2:]
report = json.load(open(path))
ids = [f["id"] for f in report["findings"]]
facts = {k: v for k, v in report["facts"].items() if k.startswith("dist.")}
print(path, json.dumps(facts, sort_keys=True))
for f in report["findings"]:
    if f["id"].startswith("DIST-"):
        print("  ", f["id"], "-", f["message"][:300])
missing = [w for w in wanted if w not in ids]
print("PASS" if not missing else f"FAIL: missing {missing}", path)
EOF
}

scan() {  # scan NAME NPROC [env...]: torchrun the doctor with the given environment
  local name=$1 n=$2; shift 2
  env "$@" timeout 300 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$n" \
    -m doctor scan --distributed --timeout 60 --format json -o "$R/$name.json" 2>"$R/$name.err"
  echo "$name: exit $? (1 = findings at error level)"
}

if [ "$N" -ge 2 ]; then
  scan nccl "$N"
  expect "$R/nccl.json"
  "$PY" - "$R/nccl.json" <<'EOF'
import json, sys
facts = json.load(open(sys.argv[1]))["facts"]
ok = facts.get("dist.allreduce.backend") == "nccl" and facts.get("dist.allreduce.ok") is True
print("PASS" if ok else "FAIL", "NCCL all-reduce checked:", facts.get("dist.allreduce.backend"), facts.get("dist.allreduce.ok"))
EOF
  "$PY" bench/bench_allreduce.py --nproc "$N" --mib 16 64 256 | tee "$R/bench_allreduce.txt"
  scan bad_ifname 2 NCCL_SOCKET_IFNAME=nonexistent0 NCCL_DEBUG=WARN
  expect "$R/bad_ifname.json" DIST-SOCKET-IFNAME-MISSING DIST-ALLREDUCE-FAILED
fi
scan one_gpu 2 CUDA_VISIBLE_DEVICES=0
expect "$R/one_gpu.json" DIST-RANK-NO-GPU
