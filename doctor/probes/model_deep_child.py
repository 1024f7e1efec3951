"""The child side of `scan --model DIR --deep`: load the folder with transformers on the CPU
(an adapter with PEFT over its base) and report exactly which keys were missing, unexpected
or of another shape; then stream every safetensors tensor, one at a time, for NaN and Inf.

Runs in the examined interpreter as `python -c <source>`, importing nothing from `doctor`:
the source is `scan --deep`'s step reporting (MARK, emit, step of deep_child.py) followed by
this file (model_deep.child_source). Its arguments come as JSON in UNSLOTH_DOCTOR_MODEL_DEEP.
Never passes trust_remote_code: the parent does not start it for folders that need it.
"""
import glob
import json
import os

# MARK, emit(record) and step(name, fn) are prepended from deep_child.py (model_deep.child_source).

def _names(keys):
    return sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in keys)


def load_model(folder):
    import transformers

    transformers.logging.set_verbosity_error()
    _, info = transformers.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True, device_map="cpu")
    mismatched = [{"key": str(k[0]), "checkpoint": list(k[1]), "model": list(k[2])} if isinstance(k, tuple) and len(k) == 3
                  else {"key": str(k)} for k in info.get("mismatched_keys") or []]
    return {"missing": _names(info.get("missing_keys") or []), "unexpected": _names(info.get("unexpected_keys") or []),
            "mismatched": mismatched, "errors": [str(e)[:500] for e in info.get("error_msgs") or []],
            "transformers": transformers.__version__}


def load_adapter(folder, base):
    import peft
    import transformers
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForCausalLM.from_pretrained(base, device_map="cpu")
    config = PeftConfig.from_pretrained(folder)
    wrapped = get_peft_model(model, config)
    result = set_peft_model_state_dict(wrapped, load_peft_weights(folder, device="cpu"))
    # missing_keys lists every base weight too: only the adapter's own (lora_, modules_to_save) count
    missing = [k for k in _names(result.missing_keys) if "lora_" in k or "modules_to_save" in k]
    return {"missing": missing, "unexpected": _names(result.unexpected_keys), "mismatched": [], "errors": [],
            "transformers": transformers.__version__, "peft": peft.__version__}


def nonfinite(folder, limit):
    import torch
    from safetensors import safe_open

    bad, checked = [], 0
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, framework="pt", device="cpu") as f:
            for name in f.keys():
                t = f.get_tensor(name)
                if not t.is_floating_point():
                    continue
                checked += 1
                finite = torch.isfinite(t)
                if not bool(finite.all()):
                    n_nan = int(torch.isnan(t).sum())
                    bad.append({"tensor": name, "file": os.path.basename(path), "nan": n_nan,
                                "inf": int((~finite).sum()) - n_nan, "numel": t.numel()})
                    if len(bad) >= limit:
                        return {"checked": checked, "bad": bad, "stopped": True}
    return {"checked": checked, "bad": bad, "stopped": False}


def main():
    args = json.loads(os.environ["UNSLOTH_DOCTOR_MODEL_DEEP"])
    folder, base = args["folder"], args.get("base")
    if args.get("adapter"):
        step("load_adapter", lambda: load_adapter(folder, base))
    else:
        step("load_model", lambda: load_model(folder))
    if args.get("nonfinite", True):
        step("nonfinite", lambda: nonfinite(folder, int(args.get("limit", 20))))
    emit({"step": "done", "status": "ok"})


if __name__ == "__main__":
    main()
