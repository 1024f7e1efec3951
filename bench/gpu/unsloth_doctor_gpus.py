"""Unsloth's own `unsloth doctor --gpus` (unsloth_cli/commands/doctor.py), the baseline of
`scan --gpus`, run from its file: the CLI package's __init__ imports Unsloth Studio, which a
slimmed wheel leaves out, while doctor.py itself needs only typer and torch.

    python3 bench/gpu/unsloth_doctor_gpus.py [TIMEOUT_S]
"""
from __future__ import annotations

import importlib.util
import sys
import time

import typer


def main() -> int:
    spec = importlib.util.find_spec("unsloth_cli")
    if spec is None or not spec.submodule_search_locations:
        print("unsloth_cli is not installed")
        return 2
    path = f"{list(spec.submodule_search_locations)[0]}/commands/doctor.py"
    module_spec = importlib.util.spec_from_file_location("unsloth_cli_doctor", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    t0 = time.perf_counter()
    code = 0
    try:
        module._gpu_checks(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
    except typer.Exit as exc:
        code = exc.exit_code
    print(f"exit {code} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
