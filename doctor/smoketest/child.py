"""The smoke test itself, run in a child process: `python -m doctor.smoketest.child SPEC RESULT`.

It imports unsloth first (before transformers, trl and peft, as Unsloth asks), then runs each
stage and appends one JSON line per event to RESULT. Unsloth prints a lot to stdout, so the
parent reads results only from that file and keeps stdout/stderr as the log to diagnose.
Each stage is timed; the first failing stage stops the run with its traceback.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

# Logits of the trained model and of the reloaded merged model must agree within
# atol + rtol * max|logit|. The merged file stores weights in the model's 16-bit (or fp32 on
# CPU) dtype, so the only difference is weight rounding when W + B·A is cast back.
TOLERANCE = {"float32": (1e-4, 1e-4), "float16": (2e-2, 1e-2), "bfloat16": (8e-2, 4e-2)}


class Emitter:
    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")

    def emit(self, **event: Any) -> None:
        self._file.write(json.dumps(event, default=str) + "\n")
        self._file.flush()

    def fact(self, name: str, value: Any) -> None:
        if value is not None:
            self.emit(type="fact", name=name, value=value)


def run_stage(out: Emitter, name: str, fn: Callable[[], str | None]) -> bool:
    print(f"\n[doctor-smoke] stage {name} starts", flush=True)
    start = time.perf_counter()
    try:
        detail = fn() or ""
        ok = True
        tb = None
    except SkipStage as skip:
        out.emit(type="stage", name=name, ok=True, skipped=True,
                 seconds=round(time.perf_counter() - start, 3), detail=str(skip))
        return True
    except BaseException as exc:  # a failing stage is a result, not a crash
        ok = False
        detail = f"{type(exc).__name__}: {exc}".strip()[:2000]
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
    out.emit(type="stage", name=name, ok=ok, seconds=round(time.perf_counter() - start, 3),
             detail=detail, traceback=tb)
    return ok


class SkipStage(Exception):
    """Raised by a stage that does not apply here (e.g. 4-bit without a CUDA GPU)."""


class Smoke:
    def __init__(self, spec: dict[str, Any], out: Emitter) -> None:
        self.spec = spec
        self.out = out
        self.work = Path(spec.get("workdir") or tempfile.mkdtemp(prefix="doctor-smoke-"))
        self.model_dir = Path(spec["model"]) if spec.get("model") else self.work / "tiny-llama"
        self.max_seq = int(spec.get("max_seq_length", 128))
        self.batch = int(spec.get("batch_size", 2))
        self.steps = int(spec.get("steps", 8))
        self.lr = float(spec.get("learning_rate", 5e-3))
        self.s: dict[str, Any] = {}

    # -- stages ---------------------------------------------------------------------------
    def stage_import(self) -> str:
        import unsloth  # noqa: F401  (must come before transformers/trl/peft)
        from unsloth import FastLanguageModel  # noqa: F401
        import torch

        self.s["torch"] = torch
        cuda = torch.cuda.is_available()
        self.s["cuda"] = cuda
        out = self.out
        out.fact("smoke.unsloth_version", getattr(unsloth, "__version__", None))
        out.fact("smoke.torch_version", torch.__version__)
        out.fact("smoke.cuda_available", cuda)
        out.fact("smoke.device", "cuda" if cuda else "cpu")
        if cuda:
            out.fact("smoke.gpu_name", torch.cuda.get_device_name(0))
            cap = torch.cuda.get_device_capability(0)
            out.fact("smoke.gpu_capability", f"{cap[0]}.{cap[1]}")
            out.fact("smoke.torch_cuda", torch.version.cuda)
            torch.cuda.reset_peak_memory_stats()
        for mod in ("triton", "bitsandbytes", "xformers", "flash_attn", "transformers", "trl", "peft"):
            out.fact(f"smoke.has.{mod}", _has_module(mod))
        return f"unsloth {getattr(unsloth, '__version__', '?')} on {'cuda' if cuda else 'cpu'}"

    def stage_build(self) -> str:
        if self.spec.get("model"):
            raise SkipStage(f"using the model folder {self.model_dir.name}")
        from doctor.smoketest.build import build

        self._start_reload_server()
        build(self.model_dir, hidden=int(self.spec.get("hidden", 64)), layers=int(self.spec.get("layers", 2)))
        files = sorted(p.name for p in self.model_dir.iterdir())
        return "tiny Llama + BPE tokenizer: " + ", ".join(files)

    def _load(self, load_in_4bit: bool):
        from unsloth import FastLanguageModel

        return FastLanguageModel.from_pretrained(
            model_name=str(self.model_dir),
            max_seq_length=self.max_seq,
            dtype=None,
            load_in_4bit=load_in_4bit,
            local_files_only=True,
        )

    def stage_load_4bit(self) -> str:
        if not self.s.get("cuda"):
            raise SkipStage("no CUDA GPU: the 4-bit path needs bitsandbytes on CUDA")
        if not _has_module("bitsandbytes"):
            raise SkipStage("bitsandbytes is not installed")
        model, tok = self._load(True)
        n4 = sum(1 for _, m in model.named_modules() if type(m).__name__ in ("Linear4bit",))
        self.out.fact("smoke.bnb_4bit_layers", n4)
        if n4 == 0:
            raise RuntimeError("load_in_4bit=True produced no bitsandbytes Linear4bit layers")
        del model, tok
        self._free()
        return f"{n4} Linear4bit layers"

    def stage_load(self) -> str:
        model, tok = self._load(False)
        self.s["model"], self.s["tok"] = model, tok
        p = next(model.parameters())
        self.s["compute_dtype"] = str(p.dtype).replace("torch.", "")
        self.out.fact("smoke.model_dtype", self.s["compute_dtype"])
        self.out.fact("smoke.model_device", str(p.device))
        self.out.fact("smoke.attn_implementation", getattr(model.config, "_attn_implementation", None))
        return f"16-bit load: dtype {p.dtype}, device {p.device}"

    def stage_lora(self) -> str:
        from unsloth import FastLanguageModel

        model = FastLanguageModel.get_peft_model(
            self.s["model"],
            r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            use_gradient_checkpointing="unsloth",
            random_state=3407,
        )
        self.s["model"] = model
        lora = {n: p.detach().float().clone() for n, p in model.named_parameters() if "lora_" in n and p.requires_grad}
        self.s["lora_before"] = lora
        modules = sorted({n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora})
        self.out.fact("smoke.lora_targets", modules)
        if len(modules) != 7:
            raise RuntimeError(f"LoRA reached {len(modules)} of 7 projections: {modules}")
        return f"{len(lora)} LoRA tensors on {', '.join(modules)}"

    def _dataset(self):
        from datasets import Dataset
        from doctor.smoketest.build import conversations

        tok = self.s["tok"]
        if getattr(tok, "chat_template", None):
            texts = [tok.apply_chat_template(c, tokenize=False) for c in conversations()]
        else:  # a base model's tokenizer may have no template: plain text, ended by EOS
            texts = [c[-1]["content"] + (tok.eos_token or "") for c in conversations()]
        return Dataset.from_dict({"text": texts})

    def _start_reload_server(self) -> None:
        """On a GPU, start the plain-transformers reload process early: its 5-10 s of imports
        overlap loading and training. Not on the CPU path: there it competes with training's
        threads for the cores, and the stages it could overlap take about a second there."""
        import subprocess
        if self.s.get("cuda") and not self.spec.get("model"):
            self.s["reload_server"] = subprocess.Popen(
                [sys.executable, "-m", "doctor.smoketest.reload", "--serve"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stage_train(self) -> str:
        from trl import SFTConfig, SFTTrainer
        torch = self.s["torch"]

        model, tok = self.s["model"], self.s["tok"]
        grads_ok: list[bool] = []

        from transformers import TrainerCallback

        class GradCheck(TrainerCallback):
            # Runs after backward and before the optimizer step: the grads are still there.
            def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
                if model is None:
                    return
                finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters()
                             if p.grad is not None)
                grads_ok.append(finite)

        args = SFTConfig(
            output_dir=str(self.work / "trainer"),
            per_device_train_batch_size=self.batch,
            gradient_accumulation_steps=1,
            max_steps=self.steps,
            learning_rate=self.lr,
            warmup_steps=0,
            lr_scheduler_type="constant",
            logging_steps=1,
            optim="adamw_torch",
            weight_decay=0.0,
            seed=3407,
            report_to="none",
            save_strategy="no",
            dataset_text_field="text",
            max_length=self.max_seq,
            dataloader_num_workers=0,
        )
        from doctor.training.watchdog import DoctorCallback

        # The training watchdog rides along: this also proves it works inside Unsloth's trainer.
        watchdog = DoctorCallback(policy="stop", stream=sys.stderr)
        trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=self._dataset(),
                             args=args, callbacks=[GradCheck(), watchdog])
        trainer.train()
        self.out.fact("smoke.watchdog_findings", [f.id for f in watchdog.findings])
        if watchdog.stopped_by:
            raise RuntimeError(f"the training watchdog stopped the run: {watchdog.stopped_by}")
        logs = [h for h in trainer.state.log_history if "loss" in h]
        losses = [float(h["loss"]) for h in logs]
        gnorms = [float(h["grad_norm"]) for h in logs if "grad_norm" in h]
        self.out.fact("smoke.losses", [round(x, 5) for x in losses])
        self.out.fact("smoke.grad_norms", [round(x, 5) for x in gnorms])
        self.s["model"] = trainer.model
        if not losses:
            raise RuntimeError("the trainer logged no loss")
        if not all(math.isfinite(x) for x in losses):
            raise FloatingPointError(f"loss is not finite: {losses}")
        if not all(math.isfinite(x) for x in gnorms) or (grads_ok and not all(grads_ok)):
            raise FloatingPointError(f"gradients are not finite: grad_norm {gnorms}")
        if self.spec.get("model") is None and not losses[-1] < losses[0]:
            raise RuntimeError(f"loss did not fall in {len(losses)} steps: {losses[0]:.4f} -> {losses[-1]:.4f}")
        changed = self._lora_changed()
        self.out.fact("smoke.lora_tensors_changed", changed)
        if changed == 0:
            raise RuntimeError("no LoRA weight changed during training")
        checked = f", grads finite in {len(grads_ok)} steps" if grads_ok else ""
        return (f"loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} steps{checked}; "
                f"{changed}/{len(self.s['lora_before'])} LoRA tensors changed")

    def _lora_changed(self) -> int:
        before = self.s["lora_before"]
        now = {n: p for n, p in self.s["model"].named_parameters() if n in before}
        return sum(1 for n, p in now.items() if not self.s["torch"].equal(p.detach().float().cpu(), before[n].cpu()))

    def _probe_ids(self):
        tok = self.s["tok"]
        msgs = [{"role": "user", "content": "Repeat sentence number 0."}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return ids["input_ids"] if hasattr(ids, "keys") else ids

    def stage_generate(self) -> str:
        from unsloth import FastLanguageModel
        torch = self.s["torch"]

        model, tok = self.s["model"], self.s["tok"]
        ids = self._probe_ids().to(next(model.parameters()).device)
        # Unsloth may skip materialising logits in its training path; ask for them explicitly.
        os.environ["UNSLOTH_RETURN_LOGITS"] = "1"
        FastLanguageModel.for_inference(model)
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        if logits is None or logits.numel() == 0:
            raise RuntimeError("the trained model returned no logits")
        self.s["ref_logits"] = logits.float().cpu()
        with torch.no_grad():
            out = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[0, ids.shape[1]:]
        if new.numel() == 0:
            raise RuntimeError("generate returned no new tokens")
        return f"{new.numel()} new tokens: {tok.decode(new, skip_special_tokens=False)[:60]!r}"

    def stage_save(self) -> str:
        model, tok = self.s["model"], self.s["tok"]
        adapter = self.work / "adapter"
        merged = self.work / "merged"
        model.save_pretrained(str(adapter))
        tok.save_pretrained(str(adapter))
        model.save_pretrained_merged(str(merged), tok, save_method="merged_16bit")
        cfg = json.loads((merged / "config.json").read_text())
        self.out.fact("smoke.merged_auto_map", "auto_map" in cfg)
        self.out.fact("smoke.merged_dtype", cfg.get("torch_dtype") or cfg.get("dtype"))
        self.out.fact("smoke.merged_files", sorted(p.name for p in merged.iterdir()))
        self.s["merged"] = merged
        has_adapter = (adapter / "adapter_config.json").exists()
        return (f"adapter ({'adapter_config.json' if has_adapter else 'no adapter_config.json'}), "
                f"merged 16-bit: {', '.join(sorted(p.name for p in merged.iterdir()))}; "
                f"auto_map in config.json: {'auto_map' in cfg}")

    def stage_reload(self) -> str:
        import subprocess
        torch = self.s["torch"]

        merged = self.s["merged"]
        ids_path, out_path = self.work / "probe_ids.json", self.work / "reload_logits.pt"
        ids_path.write_text(json.dumps(self._probe_ids().tolist()))
        args = [str(merged), str(ids_path), str(out_path)]
        # A fresh interpreter: Unsloth patches transformers' classes in this one.
        server = self.s.pop("reload_server", None)
        if server is not None:
            stdout, stderr = server.communicate(json.dumps(args) + "\n", timeout=300)
            code = server.returncode
        else:
            done = subprocess.run([sys.executable, "-m", "doctor.smoketest.reload", *args],
                                  capture_output=True, text=True, timeout=300)
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        if code != 0:
            print(stdout[-4000:], stderr[-8000:], file=sys.stderr)
            raise RuntimeError("plain transformers could not load or run the merged model: "
                               + (stderr.strip().splitlines() or ["(no output)"])[-1])
        got = torch.load(str(out_path))
        if got["unsloth_loaded"]:
            raise RuntimeError("the reload process imported unsloth; the check would prove nothing")
        logits, dtype = got["logits"], got["dtype"]
        ref = self.s["ref_logits"]
        if logits.shape != ref.shape:
            raise RuntimeError(f"logits shape {tuple(logits.shape)} != trained {tuple(ref.shape)}")
        # The trained model may compute in a 16-bit dtype even when stored fp32: use the looser.
        ref_dtype = self.s.get("compute_dtype") or dtype
        atol, rtol = max(TOLERANCE.get(dtype, TOLERANCE["bfloat16"]), TOLERANCE.get(ref_dtype, TOLERANCE["bfloat16"]))
        diff = float((logits - ref).abs().max())
        scale = float(ref.abs().max())
        bound = atol + rtol * scale
        agree = float((logits.argmax(-1) == ref.argmax(-1)).float().mean())
        self.out.fact("smoke.logit_max_abs_diff", diff)
        self.out.fact("smoke.logit_bound", bound)
        self.out.fact("smoke.logit_argmax_agreement", agree)
        self.out.fact("smoke.reload_class", got["class"])
        msg = (f"fresh process, plain transformers {got['class']}, trust_remote_code=False, stored {dtype}: "
               f"max |Δlogit| {diff:.2e} ≤ {bound:.2e} (atol {atol:g} + rtol {rtol:g}·max|logit| {scale:.2f}); "
               f"argmax agree {agree:.0%}")
        if not diff <= bound:
            raise AssertionError("merged model disagrees with the trained model: " + msg)
        return msg

    def finish(self) -> None:
        server = self.s.pop("reload_server", None)
        if server is not None:  # an earlier stage failed: the reload never ran
            server.kill()
            server.wait()
        torch = self.s.get("torch")
        if torch is not None and self.s.get("cuda"):
            self.out.fact("smoke.peak_gpu_mib", round(torch.cuda.max_memory_allocated() / 2**20, 1))
            self.out.fact("smoke.peak_gpu_reserved_mib", round(torch.cuda.max_memory_reserved() / 2**20, 1))
        kernels = _triton_kernels_compiled()
        self.out.fact("smoke.triton_kernels_compiled", None if kernels is None else len(kernels))
        self.out.fact("smoke.triton_kernels", kernels)

    def _free(self) -> None:
        import gc
        gc.collect()
        if self.s.get("cuda"):
            self.s["torch"].cuda.empty_cache()

    def plan(self) -> list[tuple[str, Callable[[], str | None]]]:
        full = [("import", self.stage_import), ("build", self.stage_build), ("load_4bit", self.stage_load_4bit),
                ("load", self.stage_load), ("lora", self.stage_lora), ("train", self.stage_train),
                ("generate", self.stage_generate), ("save", self.stage_save), ("reload", self.stage_reload)]
        if self.spec.get("model"):  # the user's model: load, LoRA and a step or two, nothing written
            return [s for s in full if s[0] in ("import", "build", "load", "lora", "train")]
        return full


def _has_module(name: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _triton_kernels_compiled() -> list[str] | None:
    """Names of Unsloth's Triton kernels that hold a compiled binary (built or loaded from the
    Triton cache during this run); None when Triton was never imported."""
    if "triton" not in sys.modules:
        return None
    try:
        from triton.runtime.jit import JITFunction
    except ImportError:
        return None
    seen: set[int] = set()
    names: list[str] = []
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith(("unsloth", "unsloth_zoo")):
            continue
        for obj in list(vars(mod).values()):
            fn = obj
            for _ in range(4):  # heuristics and autotuners wrap the JITFunction in .fn
                if isinstance(fn, JITFunction):
                    break
                fn = getattr(fn, "fn", None)
            if not isinstance(fn, JITFunction) or id(fn) in seen:
                continue
            seen.add(id(fn))
            caches = getattr(fn, "device_caches", None) or getattr(fn, "cache", None) or {}
            if any(_nonempty(v) for v in caches.values()):
                names.append(getattr(fn, "__name__", None) or getattr(getattr(fn, "fn", None), "__name__", "?"))
    return sorted(names)


def _nonempty(value: Any) -> bool:
    if isinstance(value, tuple) and value:
        value = value[0]
    try:
        return len(value) > 0
    except TypeError:
        return bool(value)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    out = Emitter(Path(argv[1]))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    smoke = Smoke(spec, out)
    out.emit(type="start", pid=os.getpid(), python=sys.version.split()[0])
    ok = True
    for name, fn in smoke.plan():
        if not run_stage(out, name, fn):
            ok = False
            break
    try:
        smoke.finish()
    except Exception as exc:  # facts at the end are best-effort
        out.emit(type="note", detail=f"finish: {exc}")
    out.emit(type="done", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
