"""The child side of `scan --deep`: import the heavy stack and run real GPU ops, reporting as it goes.

This file runs in the *examined* interpreter (`python -c <this source>`), which may not have
the doctor installed, so it imports nothing from `doctor`. Each step prints a marker line
(MARK + JSON) before and after it runs, flushed at once: when the process segfaults or hangs,
the parent still knows which step it was in. Everything else the stack prints (banners,
warnings) goes to the same stream for the parent to match against the knowledge base.
"""
import json
import os
import sys
import time
import traceback
import warnings

MARK = "@@unsloth-doctor@@ "


def emit(record):
    sys.stdout.write(MARK + json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def step(name, fn):
    emit({"step": name, "status": "start"})
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # show, don't swallow, what the stack warns
            data = fn() or {}
        emit({"step": name, "status": "ok", "seconds": round(time.perf_counter() - t0, 3), "data": data})
        return data
    except BaseException as exc:  # an import that raises SystemExit is a finding too
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        emit({"step": name, "status": "error", "seconds": round(time.perf_counter() - t0, 3),
              "error": "%s: %s" % (type(exc).__name__, exc), "traceback": "".join(tb[-6:])})
        return None


def import_torch():
    import torch

    info = {"version": torch.__version__, "cuda": torch.version.cuda,
            "hip": getattr(torch.version, "hip", None), "cuda_available": bool(torch.cuda.is_available())}
    info["device_count"] = torch.cuda.device_count() if info["cuda_available"] else 0
    try:
        info["arch_list"] = list(torch.cuda.get_arch_list())  # the kernels compiled into this build
    except Exception:
        info["arch_list"] = None
    devices = []
    for i in range(info["device_count"]):
        major, minor = torch.cuda.get_device_capability(i)
        devices.append({"index": i, "name": torch.cuda.get_device_name(i), "capability": major + minor / 10})
    info["devices"] = devices
    return info


def matmul(index, dtype_name):
    import torch

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    a = torch.randn(256, 256)
    b = torch.randn(256, 256)
    want = a @ b
    dev = torch.device("cuda", index)
    got = (a.to(dev, dtype) @ b.to(dev, dtype)).float().cpu()
    torch.cuda.synchronize(dev)
    err = float((got - want).abs().max() / want.abs().max())
    # fp16/bf16 round to 11/8 bits: a relative error far above that is a broken kernel, not rounding
    limit = 0.05 if dtype_name == "bfloat16" else 0.01
    if not bool(torch.isfinite(got).all()) or err > limit:
        raise ArithmeticError("matmul result off: max relative error %.3g (limit %.3g)" % (err, limit))
    return {"max_rel_error": err}


def cpu_speed():
    import torch

    n = 512
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    a @ b  # warm up
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    dt = time.perf_counter() - t0
    return {"matmul_gflops": round(2 * n ** 3 * reps / dt / 1e9, 2), "threads": torch.get_num_threads()}


def import_module(name):
    def run():
        mod = __import__(name)
        return {"version": getattr(mod, "__version__", None)}
    return run


def main():
    emit({"step": "python", "status": "ok", "data": {"version": "%d.%d.%d" % sys.version_info[:3],
                                                   "executable": sys.executable}})
    torch_info = step("import_torch", import_torch)
    if torch_info is not None:
        for dev in torch_info["devices"]:
            i = dev["index"]
            step("matmul_fp16:%d" % i, lambda i=i: matmul(i, "float16"))
            if dev["capability"] >= 8.0:
                step("matmul_bf16:%d" % i, lambda i=i: matmul(i, "bfloat16"))
        step("cpu_speed", cpu_speed)
    skip = set(filter(None, os.environ.get("UNSLOTH_DOCTOR_DEEP_SKIP", "").split(",")))
    for name in ("bitsandbytes", "triton", "unsloth"):
        if name not in skip:
            step("import_" + name, import_module(name))
    emit({"step": "done", "status": "ok"})


if __name__ == "__main__":
    main()
