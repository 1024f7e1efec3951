"""Measure the peak GPU memory of real Unsloth LoRA runs, next to the doctor's VRAM estimate.

    python3 bench/gpu/vram_calibrate.py OUT_DIR [--jobs 4] [--quick]

Builds random-weight Llama models of growing width (bf16 safetensors, a tiny BPE tokenizer),
then, one fresh process per run, loads each with FastLanguageModel (16-bit or 4-bit), adds
LoRA, and trains a few steps with Unsloth's SFTTrainer on sequences of exactly the run's
length. Each run reports torch's peak allocated and reserved memory and the process's whole
use from nvidia-smi (CUDA context included); the parent writes OUT_DIR/vram-measured.json
and prints the estimate against the measurement (bench/vram_table.py makes the table).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# VRAM_WIDTHS / VRAM_SEQS override the grid (a CPU dry run of the script uses tiny ones).
WIDTHS = tuple(int(x) for x in os.environ.get("VRAM_WIDTHS", "1024,2048,4096").split(","))
SEQS = tuple(int(x) for x in os.environ.get("VRAM_SEQS", "512,2048").split(","))
LAYERS = 8
VOCAB = int(os.environ.get("VRAM_VOCAB", "32000"))   # 151936: a Qwen-size vocabulary, where the loss chunk's floor binds
BATCH = 2
RANK = 16
STEPS = 3


def shape(width: int) -> dict[str, int]:
    heads = width // 128
    return {"hidden": width, "intermediate": (width * 43 // 16) // 256 * 256, "layers": LAYERS,
            "heads": heads, "kv_heads": max(1, heads // 4), "vocab": VOCAB}


def grid(quick: bool) -> list[dict]:
    runs = []
    widths = WIDTHS[:1] if quick else WIDTHS
    for w in widths:
        for s in SEQS:
            # VRAM_MODES: 16u = 16-bit + Unsloth checkpointing, 4u = 4-bit + Unsloth, 16n = 16-bit, none
            modes = os.environ.get("VRAM_MODES", "16u,4u,16n").split(",")
            for mode, four, gc in (("16u", False, "unsloth"), ("4u", True, "unsloth"), ("16n", False, False)):
                if mode in modes:
                    runs.append({"width": w, "seq": s, "load_in_4bit": four, "gc": gc, "optim": "adamw_8bit"})
    if not quick and os.environ.get("VRAM_FULL", "1") == "1":   # full fine-tuning: optimizer state dominates
        for w in WIDTHS[:2]:
            for s in SEQS:
                runs.append({"width": w, "seq": s, "load_in_4bit": False, "gc": "unsloth", "optim": "adamw_8bit",
                             "full_finetuning": True})
    for r in runs:
        r.update(batch=BATCH, rank=RANK, steps=STEPS)
    return runs


# ---------------------------------------------------------------- building the models (parent)
def build_models(root: Path, widths) -> dict[int, Path]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from doctor.smoketest.build import build_tokenizer

    folders = {}
    for w in widths:
        folder = root / f"llama-w{w}"
        if (folder / "config.json").exists():
            folders[w] = folder
            continue
        folder.mkdir(parents=True, exist_ok=True)
        tok = build_tokenizer(folder)
        s = shape(w)
        config = LlamaConfig(vocab_size=s["vocab"], hidden_size=w, intermediate_size=s["intermediate"],
                             num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                             num_key_value_heads=s["kv_heads"], max_position_embeddings=4096,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id, tie_word_embeddings=False, torch_dtype="bfloat16")
        torch.manual_seed(0)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        with torch.device(device):
            model = LlamaForCausalLM(config).to(torch.bfloat16)
        model.save_pretrained(str(folder), safe_serialization=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
        folders[w] = folder
    return folders


# ---------------------------------------------------------------- one run (child)
def process_mib(pid: int) -> float | None:
    """The process's whole use of the GPU (context included), as nvidia-smi reports it."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            return float(parts[1])
    return None


def child(spec: dict) -> dict:
    import torch
    from unsloth import FastLanguageModel  # noqa: I001  (unsloth first, as it asks)
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    seq = spec["seq"]
    model, tok = FastLanguageModel.from_pretrained(
        model_name=spec["folder"], max_seq_length=seq, dtype=torch.bfloat16 if torch.cuda.is_available() else None,
        load_in_4bit=spec["load_in_4bit"], full_finetuning=bool(spec.get("full_finetuning")),
        local_files_only=True)
    after_load = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    if not spec.get("full_finetuning"):
        model = FastLanguageModel.get_peft_model(
            model, r=spec["rank"], lora_alpha=spec["rank"], lora_dropout=0.0, bias="none",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            use_gradient_checkpointing=spec["gc"], random_state=3407)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # Random words long enough that truncation leaves exactly `seq` tokens in every row.
    import random

    rng = random.Random(0)
    words = ["sloth", "tree", "leaf", "model", "token", "step", "loss", "green", "slow", "climb"]
    texts = [" ".join(rng.choice(words) + str(rng.randint(0, 99)) for _ in range(seq * 2)) for _ in range(16)]
    args = SFTConfig(output_dir=spec["work"], per_device_train_batch_size=spec["batch"], gradient_accumulation_steps=1,
                     max_steps=spec["steps"], learning_rate=1e-4, warmup_steps=0, logging_steps=1,
                     optim=spec["optim"], report_to="none", save_strategy="no", dataset_text_field="text",
                     max_length=seq, packing=False, dataloader_num_workers=0, seed=3407,
                     bf16=torch.cuda.is_available(), fp16=False)
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=Dataset.from_dict({"text": texts}), args=args)
    lengths = {len(x) for x in trainer.train_dataset["input_ids"]}
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    result = {"train_s": round(time.perf_counter() - t0, 2), "trainable_params": trainable,
              "row_lengths": sorted(lengths)[:3], "after_load_mib": round(after_load / 2**20, 1)}
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        result.update(peak_allocated_mib=round(torch.cuda.max_memory_allocated() / 2**20, 1),
                      peak_reserved_mib=round(torch.cuda.max_memory_reserved() / 2**20, 1),
                      reserved_now_mib=round(torch.cuda.memory_reserved() / 2**20, 1),
                      process_now_mib=process_mib(os.getpid()),
                      gpu=torch.cuda.get_device_name(0))
        if result["process_now_mib"] is not None:
            # What the process holds beyond torch's pool: context, cuBLAS/cuDNN, NCCL-free here.
            result["context_mib"] = round(result["process_now_mib"] - result["reserved_now_mib"], 1)
            result["peak_process_mib"] = round(result["peak_reserved_mib"] + result["context_mib"], 1)
    return result


def context_mib() -> dict:
    """CUDA context + cuBLAS workspace of a process that did one bf16 matmul, measured alone."""
    import torch

    if not torch.cuda.is_available():
        return {}
    free0, total = torch.cuda.mem_get_info()
    a = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
    (a @ a).sum().item()
    free1, _ = torch.cuda.mem_get_info()
    return {"context_mib": round((total - free1) / 2**20 - torch.cuda.memory_reserved() / 2**20, 1),
            "used_before_mib": round((total - free0) / 2**20, 1), "total_mib": round(total / 2**20, 1)}


def run_child(spec: dict, timeout: float) -> dict:
    t0 = time.perf_counter()
    # Each child in its own folder: Unsloth writes its compiled cache into the working directory,
    # and eight children writing one cache at once race.
    Path(spec["work"]).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])))
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout, cwd=spec["work"], env=env)
    except subprocess.TimeoutExpired:
        return dict(spec, wall_s=round(time.perf_counter() - t0, 1), rc=None, error=f"no result in {timeout:.0f} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    out = dict(spec, wall_s=round(time.perf_counter() - t0, 1), rc=proc.returncode)
    if lines:
        out.update(json.loads(lines[-1][7:]))
    else:
        out["error"] = (proc.stderr or proc.stdout)[-1500:]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?")
    ap.add_argument("--child")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="one width: check the script, not the model")
    ap.add_argument("--timeout", type=float, default=420)
    a = ap.parse_args()
    if a.child == "context":
        print("RESULT " + json.dumps(context_mib()), flush=True)
        return 0
    if a.child:
        print("RESULT " + json.dumps(child(json.loads(a.child))), flush=True)
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("VRAM_WORK", "/tmp/vram-calibrate"))
    runs = grid(a.quick)
    t0 = time.perf_counter()
    folders = build_models(work, sorted({r["width"] for r in runs}))
    print(f"models built in {time.perf_counter() - t0:.0f} s", flush=True)
    for i, r in enumerate(runs):
        r["folder"] = str(folders[r["width"]])
        r["work"] = str(work / f"run{i}")
    ctx = subprocess.run([sys.executable, __file__, "--child", "context"], capture_output=True, text=True,
                         timeout=120, cwd=str(ROOT)).stdout
    context = next((json.loads(ln[7:]) for ln in ctx.splitlines() if ln.startswith("RESULT ")), {})
    print("context", context, flush=True)
    results = []
    with cf.ThreadPoolExecutor(a.jobs) as pool:
        for res in pool.map(lambda r: run_child(r, a.timeout), runs):
            res.pop("folder", None)
            res.pop("work", None)
            results.append(res)
            print(json.dumps(res)[:400], flush=True)
            # Written after every run: a call cut short still brings back what finished.
            (out / "vram-measured.json").write_text(json.dumps(
                {"shape": {str(w): shape(w) for w in WIDTHS}, "context": context, "runs": results}, indent=1))
    print(f"{len(results)} runs in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
