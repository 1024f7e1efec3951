"""Does explain find where a real Unsloth message is raised, from the message alone?

Samples raise statements of the installed unsloth and unsloth_zoo (read with ast, never
imported) with a fixed seed, fills each message template's holes with plausible values,
pastes the message as a user would (one line; sometimes with the exception type, sometimes
in backticks) and runs the real explain pipeline in-process. Reports how many are diagnosed
with the raising file named (top-1 and among the sites shown), how many with the exact line,
and how many a knowledge entry answered strongly instead (the index is then not consulted).

    python bench/bench_raise_sites.py [--n 200] [--seed 2026] [--verbose]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.explainer.diagnosis import diagnose  # noqa: E402
from doctor.explainer.raiseindex import installed_root  # noqa: E402
from doctor.explainer.raisesites import HOLE, build_package  # noqa: E402
from doctor.kb import load_knowledge  # noqa: E402

PACKAGES = ("unsloth", "unsloth_zoo")   # Unsloth's own raise statements (the index also has trl and peft)
VALUES = ["q4_k_m", "model.layers.3.self_attn.q_proj", "4096", "/content/outputs/checkpoint-60",
          "bfloat16", "Qwen2ForCausalLM", "unsloth/Llama-3.2-1B-Instruct", "cuda:0", "2.8.0", "None",
          "['input_ids', 'labels']", "lora_dropout", "32768", "True", "gemma3"]


def paste(rng: random.Random, exc_type: str, message: str) -> tuple[str, str]:
    one_line = " ".join(message.split())
    short = exc_type.rsplit(".", 1)[-1]
    style = rng.choice(["plain", "typed", "typed-backticks", "backticks"])
    text = {"plain": one_line, "typed": f"{short}: {one_line}",
            "typed-backticks": f"`{short}: {one_line}`", "backticks": f"`{one_line}`"}[style]
    return style, text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    sites = []
    for package in PACKAGES:
        root = installed_root(package)
        if root is None:
            raise SystemExit(f"{package} is not installed in this Python")
        sites += [s for s in build_package(root, package) if s.kind == "raise"]
    rng = random.Random(args.seed)
    sample = rng.sample(sorted(sites), min(args.n, len(sites)))
    kb = load_knowledge()
    top1 = anywhere = exact = strong = 0
    by_style: dict[str, list[int]] = {}
    misses = []
    start = time.perf_counter()
    for site in sample:
        message = _fill(site.template, rng)
        style, text = paste(rng, site.exc_type, message)
        result = diagnose(text, kb)
        files = [r.file for r in result.raise_sites]
        hit = site.file in files
        top1 += bool(files) and files[0] == site.file
        anywhere += hit
        exact += any((r.file, r.line) == (site.file, site.line) for r in result.raise_sites)
        if not result.raise_sites and result.diagnoses and result.diagnoses[0].confidence >= 0.5:
            strong += 1
        counts = by_style.setdefault(style, [0, 0])
        counts[0] += hit
        counts[1] += 1
        if not hit:
            misses.append((site, text, result.diagnoses[0].id if result.diagnoses else None))
    elapsed = time.perf_counter() - start
    n = len(sample)
    print(f"raise statements: {len(sites)} in {', '.join(PACKAGES)}; sampled {n} (seed {args.seed})")
    print(f"  raising file named first      {top1:4d}/{n} = {100 * top1 / n:5.1f}%")
    print(f"  raising file among the sites  {anywhere:4d}/{n} = {100 * anywhere / n:5.1f}%")
    print(f"  exact file and line           {exact:4d}/{n} = {100 * exact / n:5.1f}%")
    print(f"  a knowledge entry answered strongly instead (index not consulted): {strong}")
    print(f"  file named, or a knowledge entry answered  {anywhere + strong:4d}/{n} = {100 * (anywhere + strong) / n:5.1f}%")
    print("  by paste style: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_style.items())))
    print(f"  {1000 * elapsed / n:.2f} ms per paste (in-process, after the first)")
    print(f"\nmisses ({len(misses)}):")
    for site, text, entry in misses[: None if args.verbose else 25]:
        print(f"  {site.file}:{site.line} [{site.exc_type}] entry={entry}: {text[:140]}")
    return 0


def _fill(template: str, rng: random.Random) -> str:
    return "".join(rng.choice(VALUES) if part == HOLE else part for part in _split(template))


def _split(template: str) -> list[str]:
    out: list[str] = []
    for i, part in enumerate(template.split(HOLE)):
        if i:
            out.append(HOLE)
        out.append(part)
    return out


if __name__ == "__main__":
    sys.exit(main())
