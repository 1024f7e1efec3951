"""Whole machines through the probes, the knowledge base and the engine: what `scan` would say."""
from __future__ import annotations

import json
from pathlib import Path

from doctor.engine import match_text
from doctor.findings import Severity
from tests.helpers.env_shapes import (GTX_1080, RTX_3060, RTX_4090, RTX_5090, TESLA_T4, V100, Machine, RecordedNvml,
                              knowledge, real_metadata, scan)


def errors(result: dict) -> set[str]:
    return {f.id for f in result["_all"] if f.severity is Severity.ERROR}


def test_t4_with_an_old_driver_and_a_cu128_torch(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("470.182.03", 11040, [TESLA_T4]))
    m.site.torch("2.8.0+cu128", "12.8")
    r = scan(m.view())
    f = r["ENV-DRIVER-TOO-OLD"]
    assert "CUDA 12.8" in f.message and "470.182.03" in f.message and "CUDA 11.4" in f.message
    assert "ENV-GPU-NO-BF16" in r and r["ENV-GPU-NO-BF16"].severity is Severity.INFO
    assert "ENV-TORCH-CPU-ON-GPU-HOST" not in r


def test_same_major_older_minor_driver_is_a_warning_not_an_error(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("535.104.05", 12020, [TESLA_T4]))
    m.site.torch("2.8.0+cu128", "12.8")
    r = scan(m.view())
    assert "ENV-DRIVER-TOO-OLD" not in r
    assert r["ENV-DRIVER-OLDER-MINOR"].severity is Severity.WARNING


def test_cpu_torch_on_a_gpu_host(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [TESLA_T4]))
    m.site.torch("2.13.0+cpu")
    r = scan(m.view())
    f = r["ENV-TORCH-CPU-ON-GPU-HOST"]
    assert "2.13.0+cpu" in f.message and "Tesla T4" in f.message
    assert any(fix.command and "--torch-backend=auto" in fix.command for fix in f.fixes)
    assert "ENV-NO-GPU" not in r


def test_blackwell_card_with_a_cu126_torch(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("575.57.08", 12090, [RTX_5090]))
    m.site.torch("2.7.1+cu126", "12.6")
    r = scan(m.view())
    assert "12.0" in r["ENV-BLACKWELL-OLD-CUDA"].message
    assert "ENV-DRIVER-TOO-OLD" not in r


def test_blackwell_card_with_a_cu128_torch_is_fine(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("575.57.08", 12090, [RTX_5090]))
    m.site.torch("2.8.0+cu128", "12.8")
    r = scan(m.view())
    assert "ENV-BLACKWELL-OLD-CUDA" not in r and "ENV-TORCH-CUDA-UNSUPPORTED" not in r


def test_torch_2_13_on_cu128_is_not_an_unsloth_install_target(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("580.65.06", 13000, [RTX_5090]))
    m.site.torch("2.13.0+cu128", "12.8")
    assert "12.8" in scan(m.view())["ENV-TORCH-CUDA-UNSUPPORTED"].message


def test_v100_cannot_run_a_cuda_13_torch(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("580.65.06", 13000, [V100]))
    m.site.torch("2.10.0+cu130", "13.0")
    r = scan(m.view())
    assert "ENV-GPU-TOO-OLD-FOR-TORCH-BUILD" in r and "ENV-DRIVER-TOO-OLD" not in r


def test_pascal_card_with_a_torch_2_8_cu128_build(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("570.133.07", 12080, [GTX_1080]))
    m.site.torch("2.8.0+cu128", "12.8")
    assert "cu126" in scan(m.view())["ENV-GPU-TOO-OLD-FOR-TORCH-BUILD"].fixes[0].command


def test_pascal_card_warns_about_speed(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [GTX_1080]))
    m.site.torch("2.6.0+cu124", "12.4")
    r = scan(m.view())
    assert r["ENV-GPU-BELOW-VOLTA"].severity is Severity.WARNING
    assert "ENV-GPU-NO-BF16" not in r  # one note is enough; below-Volta already says fp16


def test_no_gpu_at_all_is_information_not_an_error(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.site.torch("2.13.0+cpu")
    r = scan(m.view())
    assert r["ENV-NO-GPU"].severity is Severity.INFO
    assert "CPU" in r["ENV-NO-GPU"].message
    assert not errors(r)


def test_cuda_visible_devices_hides_the_only_gpu(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [TESLA_T4]), environ={"CUDA_VISIBLE_DEVICES": "1"})
    m.site.torch("2.6.0+cu124", "12.4")
    assert "ENV-CUDA-VISIBLE-HIDES-ALL" in scan(m.view())


def test_mixed_gpus_want_pci_bus_order(tmp_path: Path) -> None:
    machine = lambda env, d: Machine(tmp_path / d, nvml=RecordedNvml("570.133.07", 12080, [RTX_4090, RTX_3060]),  # noqa: E731
                                     environ=env)
    assert "ENV-MIXED-GPUS-NO-ORDER" in scan(machine({}, "a").view())
    assert "ENV-MIXED-GPUS-NO-ORDER" not in scan(machine({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, "b").view())


def test_bitsandbytes_without_a_library_for_cuda_13(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("580.65.06", 13000, [RTX_5090]))
    m.site.torch("2.10.0+cu130", "13.0")
    m.site.bitsandbytes("0.45.5")
    f = scan(m.view())["ENV-BNB-NO-CUDA-LIB"]
    assert "13.0" in f.message and "12.8" in f.message


def test_bitsandbytes_with_a_matching_library(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("580.65.06", 13000, [RTX_5090]))
    m.site.torch("2.10.0+cu130", "13.0")
    m.site.bitsandbytes("0.49.2")
    r = scan(m.view())
    assert "ENV-BNB-NO-CUDA-LIB" not in r and "ENV-BNB-EXCLUDED-VERSION" not in r


def test_triton_without_a_c_compiler(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [TESLA_T4]), tools={})
    m.site.torch("2.6.0+cu124", "12.4")
    m.site.install("triton", "3.2.0")
    assert "ENV-NO-C-COMPILER" in scan(m.view())


def test_cuda_torch_without_triton(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [TESLA_T4]))
    m.site.torch("2.6.0+cu124", "12.4")
    assert "ENV-TRITON-MISSING" in scan(m.view())


def test_xformers_built_for_another_torch(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("580.65.06", 13000, [RTX_5090]))
    m.site.torch("2.8.0+cu130", "13.0")
    build = json.dumps({"version": {"cuda": 1208, "torch": "2.8.0+cu128", "python": "3.11.13"}})
    m.site.install("xformers", "0.0.32.post2", requires=["numpy", "torch==2.8.0"],
                   files={"xformers/__init__.py": "", "xformers/cpp_lib.json": build})
    f = scan(m.view())["ENV-XFORMERS-BUILT-FOR-OTHER-TORCH"]
    assert "2.8.0+cu128" in f.message and "2.8.0+cu130" in f.message


def test_stack_versions_out_of_step(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.site.torch("2.8.0+cpu")
    m.site.install("unsloth", "2026.10.9", metadata=real_metadata("unsloth-2026.10.9"))
    m.site.install("unsloth_zoo", "2026.7.2")
    m.site.install("trl", "1.16.0")
    m.site.install("datasets", "4.4.1")
    m.site.install("peft", "0.21.2")
    m.site.install("torchao", "0.14.1")
    m.site.install("bitsandbytes", "0.46.0")
    r = scan(m.view())
    trl = [f for f in r["_all"] if f.id == "ENV-REQUIREMENT-UNMET" and "trl" in f.message][0]
    assert "trl 1.16.0 is installed; unsloth 2026.10.9 requires trl!=0.19.0,<=1.15.0,>=0.18.2" in trl.message
    assert trl.location is not None and trl.location.line == 43
    assert {"ENV-ZOO-OLD", "ENV-DATASETS-RECURSION", "ENV-TORCHAO-TOO-OLD", "ENV-BNB-EXCLUDED-VERSION"} <= set(r)
    assert "0.14.1" in r["ENV-TORCHAO-TOO-OLD"].message


def test_a_healthy_stack_raises_no_errors(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("580.65.06", 13000, [RTX_4090]))
    m.site.torch("2.8.0+cu128", "12.8")
    m.site.install("unsloth", "2026.10.9", metadata=real_metadata("unsloth-2026.10.9"))
    m.site.install("unsloth_zoo", "2026.10.9", metadata=real_metadata("unsloth_zoo-2026.10.9"))
    for name, version in [("trl", "1.15.0"), ("peft", "0.19.1"), ("transformers", "4.57.6"), ("datasets", "4.3.0"),
                          ("accelerate", "1.10.1"), ("torchao", "0.16.0"), ("triton", "3.4.0"), ("xformers", "0.0.32.post2"),
                          ("torchvision", "0.23.0+cu128"), ("sentencepiece", "0.2.1"), ("huggingface_hub", "0.35.3")]:
        m.site.install(name, version)
    m.site.bitsandbytes("0.49.2")
    r = scan(m.view())
    assert not errors(r) - {"ENV-REQUIREMENT-UNMET"}
    unmet = [f.message for f in r["_all"] if f.id == "ENV-REQUIREMENT-UNMET"]
    assert unmet == [], unmet


def test_memory_reserved_zero_is_a_myth() -> None:
    ranked = match_text(knowledge(), "print(torch.cuda.memory_reserved())\ntorch.cuda.memory_reserved() = 0.00 GB\n")
    assert ranked and ranked[0].entry.id == "ENV-MYTH-MEMORY-RESERVED-ZERO"
    assert ranked[0].entry.myth
    assert not any(m.entry.id == "ENV-MYTH-MEMORY-RESERVED-ZERO"
                   for m in match_text(knowledge(), "torch.cuda.memory_reserved() = 7.25 GB"))


def test_every_env_entry_cites_a_source_and_has_examples() -> None:
    entries = [e for e in knowledge().entries if e.id.startswith("ENV-")]
    assert len(entries) >= 30
    for e in entries:
        assert e.refs and e.examples.get("match"), e.id
        if e.when is not None:
            assert e.examples.get("no_match"), e.id


def test_system_cuda_on_ld_library_path(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [TESLA_T4]),
                environ={"LD_LIBRARY_PATH": "/usr/local/cuda-12.1/lib64:"})
    m.site.torch("2.5.1+cu124", "12.4")
    assert "/usr/local/cuda-12.1/lib64" in scan(m.view())["ENV-LD-LIBRARY-PATH-CUDA"].message
    clean = Machine(tmp_path / "clean", nvml=RecordedNvml("550.54.15", 12040, [TESLA_T4]))
    clean.site.torch("2.5.1+cu124", "12.4")
    assert "ENV-LD-LIBRARY-PATH-CUDA" not in scan(clean.view())


def test_container_without_gpu_access_on_a_gpu_host(tmp_path: Path) -> None:
    # /proc/driver is the host kernel's, so a container sees the module without its libraries
    m = Machine(tmp_path)
    proc = tmp_path / "root" / "proc" / "driver" / "nvidia"
    proc.mkdir(parents=True)
    (proc / "version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
                                  "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n")
    m.site.torch("2.6.0+cu124", "12.4")
    r = scan(m.view())
    assert "550.54.15" in r["ENV-DRIVER-LIBRARY-NOT-VISIBLE"].message
    assert "ENV-NO-GPU" not in r  # a GPU host is not a GPU-less machine


def test_a_gpu_already_busy_before_training(tmp_path: Path) -> None:
    from dataclasses import replace

    busy = replace(TESLA_T4, used_bytes=9523 * 2**20)
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [busy]))
    m.site.torch("2.6.0+cu124", "12.4")
    r = scan(m.view())
    assert "9523 MiB" in r["ENV-GPU-MEMORY-IN-USE"].message
    idle = Machine(tmp_path / "idle", nvml=RecordedNvml("550.54.15", 12040, [replace(TESLA_T4, used_bytes=3 * 2**20)]))
    idle.site.torch("2.6.0+cu124", "12.4")
    assert "ENV-GPU-MEMORY-IN-USE" not in scan(idle.view())
