"""What the settings rules claim about Unsloth's patched trl, checked on a GPU machine, where
`import unsloth` patches trl's trainers and configs (on the CPU fallback it does not).

    python bench/gpu/settings_claims.py OUT_DIR

Each check builds the real object (a tiny random Llama saved locally, a tiny tokenizer from
fixtures/) and records what happened; the rule that makes the claim is named beside it.
Writes OUT_DIR/settings_claims.json and prints one line per check.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def attempt(fn):
    try:
        return {"ok": True, "result": fn()}
    except Exception as exc:   # the exception is the observation
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    import unsloth  # noqa: F401  (first: it patches trl)
    from unsloth import FastLanguageModel
    import torch
    import trl
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, TrainingArguments
    from datasets import Dataset

    tiny = "/tmp/tiny-llama"
    tok = AutoTokenizer.from_pretrained(str(ROOT / "fixtures/datasets/tokenizers/tiny-chatml"))
    tok.pad_token = tok.pad_token or tok.eos_token
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(tiny)
    tok.save_pretrained(tiny)
    data = Dataset.from_dict({"text": ["hello world"] * 8})
    checks: dict[str, object] = {}

    checks["trl patched (SFTConfig class)"] = {"rule": "-", "result": f"{trl.SFTConfig.__module__}.{trl.SFTConfig.__name__}"}
    checks["SFTConfig(max_seq_length=...)"] = {"rule": "unsloth extras accepted (no finding)", **attempt(
        lambda: getattr(trl.SFTConfig(output_dir="/tmp/o", max_seq_length=128), "max_seq_length", None))}
    checks["SFTConfig(warmup_ratio=0.1)"] = {"rule": "SCRIPT-TRL-KWARG-MOVED (renamed to warmup_steps)", **attempt(
        lambda: trl.SFTConfig(output_dir="/tmp/o", warmup_ratio=0.1).warmup_steps)}  # unsloth-doctor: ignore[SCRIPT-TRL-KWARG-MOVED]
    checks["GRPOConfig(max_prompt_length=256)"] = {"rule": "SCRIPT-TRL-KWARG-DROPPED", **attempt(
        lambda: hasattr(trl.GRPOConfig(output_dir="/tmp/o", max_prompt_length=256, per_device_train_batch_size=4,  # unsloth-doctor: ignore[SCRIPT-TRL-KWARG-DROPPED]
                                       num_generations=4), "max_prompt_length"))}
    checks["TrainingArguments(warmup_ratio=0.1)"] = {"rule": "SCRIPT-TRANSFORMERS-KWARG-REJECTED", **attempt(
        lambda: TrainingArguments(output_dir="/tmp/o", warmup_ratio=0.1).warmup_steps)}  # unsloth-doctor: ignore[SCRIPT-TRANSFORMERS-KWARG-REJECTED]
    checks["from trl import ORPOTrainer"] = {"rule": "SCRIPT-TRL-IMPORT-MOVED", **attempt(
        lambda: str(__import__("trl", fromlist=["ORPOTrainer"]).ORPOTrainer))}

    model, _ = FastLanguageModel.from_pretrained(tiny, max_seq_length=128, load_in_4bit=False, dtype=torch.bfloat16)
    model = FastLanguageModel.get_peft_model(model, r=8, lora_alpha=8)

    def trainer(**kwargs):
        t = trl.SFTTrainer(model=model, train_dataset=data, **kwargs)
        return {k: getattr(t.args, k, None) for k in ("dataset_text_field", "max_length", "packing", "fp16", "bf16")}

    checks["SFTTrainer(tokenizer=, dataset_text_field=, max_seq_length=, packing=)"] = {
        "rule": "no finding for tokenizer=, SCRIPT-TRL-KWARG-MOVED for the others", **attempt(lambda: trainer(
            tokenizer=tok, dataset_text_field="text", max_seq_length=64, packing=False,
            args=trl.SFTConfig(output_dir="/tmp/o", max_steps=1, report_to="none")))}
    checks["SFTTrainer(... same, no args=)"] = {"rule": "SCRIPT-TRL-KWARG-MOVED without args", **attempt(lambda: trainer(
        tokenizer=tok, dataset_text_field="text", max_seq_length=64, packing=False))}
    checks["SFTConfig(fp16=True) on a bf16 model"] = {"rule": "SCRIPT-FP16-ON-BF16-MODEL", **attempt(lambda: trainer(
        processing_class=tok, args=trl.SFTConfig(output_dir="/tmp/o", fp16=True, bf16=False, max_steps=1,
                                                 dataset_text_field="text", report_to="none")))}
    checks["SFTConfig(fp16=True, bf16=True)"] = {"rule": "SCRIPT-FP16-AND-BF16", **attempt(
        lambda: trl.SFTConfig(output_dir="/tmp/o", fp16=True, bf16=True).fp16)}  # unsloth-doctor: ignore[SCRIPT-FP16-AND-BF16]
    checks["from_pretrained(load_in_16bit=True) (load_in_4bit default)"] = {"rule": "SCRIPT-LOAD-PRECISION-CONFLICT", **attempt(
        lambda: str(type(FastLanguageModel.from_pretrained(tiny, max_seq_length=128, load_in_16bit=True)[0])))}  # unsloth-doctor: ignore[SCRIPT-LOAD-PRECISION-CONFLICT]
    checks["from_pretrained(max_seq_length=1024 > 256 positions)"] = {"rule": "SCRIPT-SEQ-LEN-ABOVE-MODEL", **attempt(
        lambda: getattr(FastLanguageModel.from_pretrained(tiny, max_seq_length=1024, load_in_4bit=False)[0].config,
                        "rope_scaling", None))}
    for name, check in checks.items():
        print(f"{name:70s} {json.dumps({k: v for k, v in check.items() if k != 'rule'}, default=str)[:300]}")
    (out / "settings_claims.json").write_text(json.dumps(checks, indent=1, default=str))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except Exception:
        traceback.print_exc()
        raise SystemExit(1)
