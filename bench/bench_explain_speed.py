"""How fast `explain` answers, as whole processes, against named baselines in the same run.

1. A 2 KB traceback: `python -m doctor explain FILE --format json --no-env` against the
   baseline `python -c pass` (interpreter start-up). Target: under 0.3 s.
2. A 50 MB training log (generated here: tqdm updates, loss lines, repeated warnings, an
   early caught traceback, the real failure at the end), streamed through the explain
   pipeline, against the baseline `wc -l` (reading the file once). Target: under 3 s, with
   peak memory far below the file size.

Run: python bench/bench_explain_speed.py [--mb 50] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "fixtures" / "logs" / "plain_oom.log"
# no knowledge entry knows it: explain loads the raise-site index to say where it is raised
UNKNOWN = ROOT / "fixtures" / "logs" / "unknown_raise_site.log"
# raised by transformers: the first tier has no site, so the second (transformers) is loaded too
SECOND_TIER_PASTE = "ValueError: `torch_empty_cache_steps` must be an integer bigger than 0, got -1.\n"

STREAM_CODE = (
    "import sys\n"
    "from doctor.kb import load_knowledge\n"
    "from doctor.explainer import diagnose_stream\n"
    "from doctor.report.jsonout import render_explain_json as render_json\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    sys.stdout.write(render_json(diagnose_stream(f, load_knowledge())))\n"
)


# Installed packages carry compiled bytecode; a checkout gets it on the first run unless
# PYTHONDONTWRITEBYTECODE forbids writing it, and then every run compiles every module
# again (about 0.1 s here). Measure what users get: bytecode allowed, one warm-up run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one child process. CPU time (user +
    system) is shown too because wall time on a busy machine measures the neighbours."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):   # 1 = findings, the normal answer for a failing log
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({proc.returncode}): {err[-400:]}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def median_run(argv: list[str], repeat: int) -> tuple[float, float, int]:
    timed(argv)   # warm-up: bytecode written, files in the page cache
    runs = [timed(argv) for _ in range(repeat)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            max(r[2] for r in runs))


def row(label: str, wall: float, cpu: float, rss: int) -> str:
    return f"  {label:<46} {wall:6.3f} s wall  {cpu:6.3f} s cpu  {rss:4d} MiB"


def make_big_log(path: Path, megabytes: int) -> None:
    rng = random.Random(4711)
    target = megabytes * 1024 * 1024
    early = ("Traceback (most recent call last):\n"
             '  File "/usr/lib/python3.11/site-packages/wandb/sdk/wandb_run.py", line 12, in _log\n'
             "    self._backend.send()\n"
             "ConnectionResetError: [Errno 104] Connection reset by peer\n")
    with path.open("w", encoding="utf-8") as f:
        f.write(SMALL.read_text().split("Traceback")[0])   # the Unsloth banner
        f.write(early)
        written, step = 0, 0
        while written < target:
            step += 1
            bar = "".join(f"\r {step % 100:3d}%|{'#' * (step % 10):<10}| {step}/400000 "
                          f"[00:{k:02d}<12:00, {rng.uniform(1, 3):.2f}it/s]" for k in range(8))
            line = (f"{bar}\r{{'loss': {rng.uniform(0.5, 2):.4f}, 'grad_norm': {rng.uniform(0, 1):.3f}, "
                    f"'learning_rate': {2e-4 * (1 - step / 1e6):.3e}, 'epoch': {step / 4000:.2f}}}\n")
            if step % 997 == 0:
                line += ("/usr/lib/python3.11/site-packages/torch/utils/checkpoint.py:87: UserWarning: "
                         "None of the inputs have requires_grad=True. Gradients will be None\n")
            f.write(line)
            written += len(line)
        f.write(SMALL.read_text().split("\n", 5)[5])     # the traceback that ended the run


def print_wording_index(repeat: int) -> None:
    """The wording index (leads by wording) is built in each process that needs it: a report
    nothing else answers. Its build, in-process, against loading the knowledge base it reads."""
    sys.path.insert(0, str(ROOT))
    from doctor.explainer.wording import WordingIndex
    from doctor.kb import load_knowledge

    loads, builds = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        kb = load_knowledge()
        loads.append(time.perf_counter() - start)
        runtime = [e for e in kb.entries if e.area == "runtime"]
        start = time.perf_counter()
        WordingIndex(runtime)
        builds.append(time.perf_counter() - start)
    load, build = statistics.median(loads), statistics.median(builds)
    print(f"\nwording index, in-process, median of {repeat}: loading the knowledge base {1000 * load:.1f} ms, "
          f"building the index of its {len(runtime)} runtime entries {1000 * build:.1f} ms "
          f"(ratio {build / load:.2f})")


def print_history_index(repeat: int) -> None:
    """The raise-site history (older releases' messages) is loaded whole by a process whose
    message no current index has: each package's snapshots, in-process, against loading the
    knowledge base."""
    sys.path.insert(0, str(ROOT))
    from doctor.explainer import raiseindex
    from doctor.kb import load_knowledge

    paths = sorted(raiseindex.HISTORY.glob("*.json.gz"))
    packages = sorted({p.name.split("-", 1)[0] for p in paths})
    loads, kbs, sizes = {}, [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        load_knowledge()
        kbs.append(time.perf_counter() - start)
        for package in packages:
            start = time.perf_counter()
            index = raiseindex.RaiseIndex(raiseindex.load(p) for p in paths if p.name.startswith(package + "-"))
            loads.setdefault(package, []).append(time.perf_counter() - start)
            sizes[package] = len(index)
    kb = statistics.median(kbs)
    parts = ", ".join(f"{p} {1000 * statistics.median(loads[p]):.1f} ms ({sizes[p]} messages)" for p in packages)
    whole = sum(statistics.median(v) for v in loads.values())
    print(f"raise-site history, in-process, median of {repeat}: {parts}; all {1000 * whole:.1f} ms "
          f"(ratio {whole / kb:.2f} to loading the knowledge base, {1000 * kb:.1f} ms)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    cli = [py, "-m", "doctor", "explain"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")

    base = median_run([py, "-c", "pass"], args.repeat)
    small = median_run(cli + [str(SMALL), "--format", "json", "--no-env"], args.repeat)
    print(f"\n2 KB traceback ({SMALL.stat().st_size} bytes), median of {args.repeat}:")
    print(row("baseline  python -c pass", *base))
    print(row("explain   python -m doctor explain --format json", *small))
    with_env = median_run(cli + [str(SMALL), "--format", "json"], args.repeat)
    print(row("explain   ... with the live environment probe", *with_env))
    sites = median_run(cli + [str(UNKNOWN), "--format", "json", "--no-env"], args.repeat)
    print(row(f"explain   unknown error, raise-site index ({UNKNOWN.stat().st_size} B)", *sites))
    with tempfile.TemporaryDirectory() as tmp:
        paste = Path(tmp) / "transformers.txt"
        paste.write_text(SECOND_TIER_PASTE)
        second = median_run(cli + [str(paste), "--format", "json", "--no-env"], args.repeat)
    print(row(f"explain   a transformers message, both index tiers ({len(SECOND_TIER_PASTE)} B)", *second))
    for label, m in (("--no-env", small), ("default, with the environment", with_env),
                     ("--no-env, raise-site index loaded", sites), ("--no-env, both index tiers", second)):
        print(f"  {label}: ratio {m[0] / base[0]:.1f}x the interpreter's start-up (wall); target < 0.300 s: "
              f"wall {'PASS' if m[0] < 0.3 else 'FAIL'}, cpu {'PASS' if m[1] < 0.3 else 'FAIL'}")

    print_wording_index(args.repeat)
    print_history_index(args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "train.log"
        make_big_log(big, args.mb)
        size_mib = big.stat().st_size / 2 ** 20
        repeat = max(1, args.repeat // 2)
        wc = median_run(["wc", "-l", str(big)], repeat)
        stream = median_run([py, "-c", STREAM_CODE, str(big)], repeat)
        whole = median_run(cli + [str(big), "--format", "json", "--no-env"], repeat)
        print(f"\n{size_mib:.0f} MiB training log, median of {repeat}:")
        print(row("baseline  wc -l", *wc))
        print(row("explain   streamed (diagnose_stream)", *stream))
        print(row("explain   python -m doctor explain FILE", *whole))
        print(f"  whole command: ratio {whole[0] / wc[0]:.1f}x wc -l (wall); target < 3 s: "
              f"wall {'PASS' if whole[0] < 3 else 'FAIL'}, cpu {'PASS' if whole[1] < 3 else 'FAIL'}; "
              f"peak memory {whole[2]} MiB for a {size_mib:.0f} MiB file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
