"""A header-only `scan --model` of a large sharded model, against transformers loading the same
folder on the meta device, in one run.

    python bench/bench_model_scan.py [--gb 13.5] [--layers 32] [--repeat 3] [--keep DIR] [--tokenizer DIR]

The folder is a Llama-2-7B-shaped checkpoint (bf16, hidden 4096, 32 layers, vocab 32000,
untied lm_head: 13.5 GB) written as real safetensors shards whose headers are complete and
whose data are sparse (seek to the size): the disk holds a few MB. `--gb` scales the layer
count to reach at least that size. `--tokenizer DIR` copies a real tokenizer (tokenizer.json,
tokenizer_config.json, special_tokens_map.json) into the folder and sizes the embedding to it. Both sides run in a fresh child process, so each time
includes its imports and each peak RSS (ru_maxrss of the child) is its own:

- doctor:   `scan_model(DIR)` (config.json, every shard header, the index, tokenizer files; its
  peak RSS is the larger of its own and its children's: tokenizer.json is loaded by
  `tokenizers` in a child process);
- baseline: `AutoModelForCausalLM.from_pretrained(DIR, device_map="meta")` (transformers reads
  the same headers and builds the model without allocating weights).

Prints one line per run and the ratio of the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DOCTOR = """
import resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from doctor.probes.model import scan_model
result = scan_model(sys.argv[1])
dt = time.perf_counter() - t0
ids = sorted(o.entry_id for o in result.observations)
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(f"RESULT {dt:.4f} {rss} {result.facts.get('model.tensors')} {','.join(ids) or '-'}")
"""

BASELINE = """
import resource, sys, time
t0 = time.perf_counter()
import transformers
transformers.logging.set_verbosity_error()
model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], device_map="meta")
dt = time.perf_counter() - t0
n = sum(1 for _ in model.state_dict())
print(f"RESULT {dt:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {n} -")
"""


def llama_tensors(layers: int, hidden: int = 4096, inter: int = 11008, vocab: int = 32000) -> dict[str, list[int]]:
    t: dict[str, list[int]] = {"model.embed_tokens.weight": [vocab, hidden]}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{name}.weight"] = [hidden, hidden]
        t[p + "mlp.gate_proj.weight"] = [inter, hidden]
        t[p + "mlp.up_proj.weight"] = [inter, hidden]
        t[p + "mlp.down_proj.weight"] = [hidden, inter]
        t[p + "input_layernorm.weight"] = [hidden]
        t[p + "post_attention_layernorm.weight"] = [hidden]
    t["model.norm.weight"] = [hidden]
    t["lm_head.weight"] = [vocab, hidden]
    return t


def write_sparse_shard(path: Path, tensors: dict[str, list[int]]) -> int:
    """A valid safetensors file (bf16) whose data are a hole; returns its data size."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return offset


def build(folder: Path, layers: int, shard_bytes: int = 5 * 10**9, vocab: int = 32000) -> int:
    tensors = llama_tensors(layers, vocab=vocab)
    shards: list[dict[str, list[int]]] = [{}]
    size = 0
    for name, shape in tensors.items():
        n = 2
        for d in shape:
            n *= d
        if size + n > shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = shape
        size += n
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        total += write_sparse_shard(folder / name, shard)
        weight_map.update({t: name for t in shard})
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": 4096,
        "intermediate_size": 11008, "num_hidden_layers": layers, "num_attention_heads": 32,
        "num_key_value_heads": 32, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2}, indent=2))
    return total


def run(code: str, folder: Path) -> tuple[float, int, str, str]:
    done = subprocess.run([sys.executable, "-c", code, str(folder), str(ROOT)], capture_output=True, text=True,
                          timeout=900, cwd=tempfile.gettempdir())
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    _, seconds, rss_kb, count, ids = line.split(" ", 4)
    return float(seconds), int(rss_kb), count, ids


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=13.0)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="build the folder here and keep it")
    parser.add_argument("--tokenizer", help="a folder whose tokenizer files are copied in")
    args = parser.parse_args()
    per_layer = 2 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    layers = max(args.layers, int((args.gb * 1e9 - 2 * 2 * 32000 * 4096) / per_layer) + 1)
    with tempfile.TemporaryDirectory(prefix="model-bench-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp) / "llama-sparse"
        folder.mkdir(parents=True, exist_ok=True)
        vocab = 32000
        if args.tokenizer:
            import shutil

            for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                if (Path(args.tokenizer) / name).is_file():
                    shutil.copy(Path(args.tokenizer) / name, folder / name)
            data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            ids = list(data["model"]["vocab"].values()) + [t["id"] for t in data.get("added_tokens", [])]
            vocab = -(-(max(ids) + 1) // 64) * 64   # padded to a multiple of 64, as trainers do
            print(f"tokenizer: {(folder / 'tokenizer.json').stat().st_size / 1e6:.1f} MB, {max(ids) + 1} tokens")
        total = build(folder, layers, vocab=vocab)
        on_disk = sum(os.stat(p).st_blocks * 512 for p in folder.iterdir())
        shards = len(list(folder.glob("*.safetensors")))
        print(f"folder: {layers} layers, {shards} shards, {total / 1e9:.2f} GB of tensors, {on_disk / 1e6:.1f} MB on disk")
        doctor, baseline = [], []
        for i in range(args.repeat):
            d = run(DOCTOR, folder)
            b = run(BASELINE, folder)
            doctor.append(d)
            baseline.append(b)
            print(f"run {i + 1}: doctor {d[0]:.3f} s, peak RSS {d[1] / 1024:.0f} MB, {d[2]} tensors, findings {d[3]} | "
                  f"transformers meta {b[0]:.3f} s, peak RSS {b[1] / 1024:.0f} MB, {b[2]} tensors")
        dt, bt = statistics.median(x[0] for x in doctor), statistics.median(x[0] for x in baseline)
        dm, bm = statistics.median(x[1] for x in doctor) / 1024, statistics.median(x[1] for x in baseline) / 1024
        print(f"median: doctor {dt:.3f} s / {dm:.0f} MB; transformers meta {bt:.3f} s / {bm:.0f} MB; "
              f"time ratio transformers/doctor {bt / dt:.1f}x, memory ratio {bm / dm:.1f}x")
        print(f"targets: doctor under 1 s: {'yes' if dt < 1 else 'NO'}; under 100 MB: {'yes' if dm < 100 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
