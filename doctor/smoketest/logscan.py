"""Read what the smoke child printed: Unsloth's banners and the warning lines.

Pure functions over text, so they are tested on real captured logs without running anything.
"""
from __future__ import annotations

import re
from typing import Any

# Unsloth's model banner (unsloth/models/llama.py:3568-3573):
#   "O^O/ \_/ \    Torch: 2.11.0+cu130. CUDA: 9.0. CUDA Toolkit: 13.0. Triton: 3.6.0"
#   "\        /    Bfloat16 = TRUE. FA [Xformers = None. FA2 = False]"
_FA = re.compile(r"FA \[Xformers = (?P<xformers>[^.\]]*(?:\.[^.\]\s]+)*)\. FA2 = (?P<fa2>True|False)\]")
_TRITON = re.compile(r"Triton: (?P<triton>\S+)")
_BF16 = re.compile(r"Bfloat16 = (?P<bf16>TRUE|FALSE)")
_PATCHING = re.compile(r"Unsloth (?P<version>\d{4}\.\d+\.\d+): Fast (?P<arch>\w+) patching")
_CPU_FALLBACK = re.compile(r"no GPU found, training on CPU")
_CPU_LOAD = re.compile(r"Unsloth \(CPU\): (?P<cls>\w+) on (?P<threads>\d+) CPU threads?\. dtype = (?P<dtype>[\w.]+)")
_PATCHED = re.compile(r"patched (?P<layers>\d+) layers with (?P<qkv>\d+) QKV layers, (?P<o>\d+) O layers and (?P<mlp>\d+) MLP layers")

# A line worth showing as a warning: Python warnings, loggers' WARNING, Unsloth's own notices.
_WARNING = re.compile(
    r"(?i)(\bwarn(ing)?\b|UserWarning|FutureWarning|DeprecationWarning|^\W*Unsloth( \(CPU\))?: |"
    r"\bnot supported\b|\bdeprecated\b|will be removed)"
)
# Progress bars and our own stage markers are noise.
_NOISE = re.compile(r"(\d+%\|)|(^\[doctor-smoke\])|(it/s\]|s/it\]|examples/s\])")


def banner_facts(text: str) -> dict[str, Any]:
    """Facts read from Unsloth's banners: attention backend, Triton, CPU fallback, patched layers."""
    facts: dict[str, Any] = {}
    if m := _FA.search(text):
        xformers = m.group("xformers").strip()
        fa2 = m.group("fa2") == "True"
        facts["smoke.banner.xformers"] = xformers
        facts["smoke.banner.fa2"] = fa2
        # Unsloth prefers FlashAttention 2, then xformers, then PyTorch SDPA.
        facts["smoke.attention"] = "FA2" if fa2 else ("xformers" if xformers not in ("None", "") else "SDPA")
    if m := _TRITON.search(text):
        facts["smoke.banner.triton"] = m.group("triton")
    if m := _BF16.search(text):
        facts["smoke.banner.bf16"] = m.group("bf16") == "TRUE"
    if m := _PATCHING.search(text):
        facts["smoke.banner.arch"] = m.group("arch")
    if _CPU_FALLBACK.search(text):
        facts["smoke.cpu_fallback"] = True
    if m := _CPU_LOAD.search(text):
        facts["smoke.cpu.threads"] = int(m.group("threads"))
        facts["smoke.cpu.dtype"] = m.group("dtype").replace("torch.", "")
    if m := _PATCHED.search(text):
        facts["smoke.patched"] = {k: int(v) for k, v in m.groupdict().items()}
    return facts


def warning_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line, text) of each distinct warning-like line, in order of first appearance."""
    seen: set[str] = set()
    out = []
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rsplit("\r", 1)[-1].strip()  # keep what a terminal would show last
        if not line or _NOISE.search(line) or not _WARNING.search(line):
            continue
        key = re.sub(r"^[WIE]\d{4} [\d:.]+ \d+ ", "", line)  # torch's glog prefix varies per line
        if key in seen:
            continue
        seen.add(key)
        out.append((no, line))
    return out
