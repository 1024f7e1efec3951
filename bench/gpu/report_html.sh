#!/usr/bin/env bash
# `unsloth-doctor report --format html` on a GPU machine with no network: a dataset measured
# with the tiny tokenizer, a Llama-shaped model folder (safetensors headers, for the VRAM
# estimate against this GPU's memory) and the real smoke test (its stage times).
# Usage (repo root, the wheels in .whl/ as for run_all.sh): bash bench/gpu/report_html.sh OUT_DIR
# So far run on a CPU only (without the wheel install and --smoke): no GPU machine was available
# on 2026-12-07 (tests/test_bug_report.py runs report --smoke on the CPU).
set -uo pipefail
OUT=${1:?give an output folder}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
WORK=$(mktemp -d)
python3 - "$WORK" <<'PY'
import json, random, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
work = Path(sys.argv[1])
rng = random.Random(7)
words = "the quick brown fox jumps over a lazy dog while the model trains".split()
with open(work / "train.jsonl", "w") as f:
    for _ in range(2000):
        f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(int(rng.lognormvariate(4.5, 0.8))))}) + "\n")
h, inter, layers, vocab = 1024, 2816, 8, 32000   # a 0.5B-parameter Llama shape
folder = work / "model"; folder.mkdir()
(folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": h, "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 16,
    "num_key_value_heads": 16, "vocab_size": vocab, "torch_dtype": "bfloat16"}))
t = {"model.embed_tokens.weight": torch.zeros(vocab, h, dtype=torch.bfloat16), "lm_head.weight": torch.zeros(vocab, h, dtype=torch.bfloat16)}
for n in range(layers):
    for name, shape in (("self_attn.q_proj", (h, h)), ("self_attn.k_proj", (h, h)), ("self_attn.v_proj", (h, h)),
                        ("self_attn.o_proj", (h, h)), ("mlp.gate_proj", (inter, h)), ("mlp.up_proj", (inter, h)), ("mlp.down_proj", (h, inter))):
        t[f"model.layers.{n}.{name}.weight"] = torch.zeros(shape, dtype=torch.bfloat16)
save_file(t, str(folder / "model.safetensors"))
PY
cd "$WORK" || exit 3
start=$(date +%s.%N)
timeout 500 python3 -m doctor report train.jsonl --model model --tokenizer "$OLDPWD/fixtures/datasets/tokenizers/tiny-chatml" \
  --max-seq-length 512 --smoke --timeout 400 --format html --output "$OUT/report.html"; echo "report exit $? in $(python3 -c "print(round($(date +%s.%N)-$start,1))") s"
python3 -m doctor report train.jsonl --model model --output "$OUT/report.md" >/dev/null
sed -i -e "s#/tmp/site#SITE#g" -e "s#$WORK#WORK#g" -e "s#/tmp/[A-Za-z0-9_.-]*#TMP#g" "$OUT/report.html" "$OUT/report.md"
grep -o '<figcaption>[^<]*</figcaption>' "$OUT/report.html"
