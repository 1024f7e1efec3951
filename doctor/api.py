"""The Python API: the one core every door (CLI, CI, training callback, your own script) calls.

    import doctor
    report = doctor.scan(["my-project/"], env=False)        # -> doctor.Report
    result = doctor.explain(open("crash.log").read())        # -> doctor.ExplainResult
    smoke = doctor.smoke(timeout=600)                        # -> doctor.SmokeReport
    kb = doctor.load_knowledge(extra_dirs=["my-rules/"])     # -> doctor.KnowledgeBase

Bad arguments raise `doctor.UsageError` with a one-line message (the CLI exits 2 on it); a
knowledge base that does not load raises `doctor.KnowledgeBroken`. Nothing here imports
torch, transformers or unsloth: what must import them runs in a child process.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Sequence

from doctor.errors import KnowledgeBroken, UsageError
from doctor.kb import KnowledgeBase, KnowledgeError
from doctor.kb import load_knowledge as _load_files
from doctor.kb.loader import default_knowledge_dir
from doctor.results.explain import ExplainResult
from doctor.results.report import Report
from doctor.results.smoke import SmokeReport
from doctor.results.words import counted

__all__ = ["explain", "live_facts", "load_knowledge", "project_config", "run", "scan", "smoke", "write_baseline"]


def _registry_areas() -> frozenset[str]:
    """The areas entries may name; asked only when files are validated (a cache hit imports
    neither the registry nor a probe)."""
    from doctor.probes.registry import area_names

    return area_names()


def load_knowledge(extra_dirs: Iterable[str | os.PathLike[str]] = (), *, use_cache: bool = True) -> KnowledgeBase:
    """The bundled knowledge base plus entries from `extra_dirs` (folders or YAML files),
    validated by the same schema; entries may name only the registry's areas."""
    paths: list[str | Path] = [default_knowledge_dir()]
    for extra in extra_dirs:
        if not Path(extra).exists():
            raise UsageError(f"knowledge folder {str(extra)!r} does not exist")
        paths.append(Path(extra))
    try:
        return _load_files(paths, use_cache=use_cache, areas=_registry_areas)
    except KnowledgeError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems[:50])
        more = f"\n  ... and {len(exc.problems) - 50} more" if len(exc.problems) > 50 else ""
        raise KnowledgeBroken(f"the knowledge base has {counted(len(exc.problems), 'problem')}:\n{lines}{more}") from None


def project_config(paths: Sequence[str | os.PathLike[str]] = (), config: Any = None) -> Any:
    """The project configuration a scan of `paths` reads (`doctor.project.ProjectConfig`):
    `config` itself when it is one, the file it names, none when it is False, else the nearest
    .unsloth-doctor.toml or pyproject.toml with [tool.unsloth-doctor] above the first path
    (or the current folder)."""
    from doctor.project import ProjectConfig, find_config, load_config

    if isinstance(config, ProjectConfig):
        return config
    if config is False:
        return ProjectConfig()
    if config not in (None, True):
        return load_config(_existing(config, "--project-config"))
    found = find_config(Path(paths[0]) if paths else Path.cwd())
    return load_config(found) if found else ProjectConfig()


def _same(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _existing(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {str(path)!r} does not exist")
    return p


def _positive(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UsageError(f"{what} must be a whole number of at least 1, not {value!r}")


def scan(paths: Sequence[str | os.PathLike[str]] = (), *, data: Sequence[str] = (), scripts: Sequence[str] = (),
         configs: Sequence[str] = (), models: Sequence[str] = (), named: Mapping[str, Sequence[str]] | None = None,
         env: bool | None = None,
         python: str | None = None, deep: bool = False, smoke: bool = False, timeout: float = 120.0,
         tokenizer: str | None = None, max_seq_length: int | None = None, response_part: str | None = None,
         base: str | None = None, jobs: int = 1, fix: bool = False, unsafe_fixes: bool = False, in_place: bool = False,
         progress: bool = False, distributed: Any = None, kb: KnowledgeBase | None = None,
         config: Any = None, select: Sequence[str] = (), ignore: Sequence[str] = (),
         severity: Mapping[str, str] | None = None, baseline: str | os.PathLike[str] | bool | None = None,
         kb_dirs: Sequence[str | os.PathLike[str]] = ()) -> Report:
    """Examine the environment and every target, as `unsloth-doctor scan` does.

    `paths`: folders (searched for every kind of file a probe reads) or files (routed by their
    suffix). `data`/`scripts`/`configs`/`models`: one target each, of that kind; `named`: the
    same by probe name, for every registered probe ({"gguf": ["model.Q4_K_M.gguf"]}). `env`:
    also the environment (default: when a folder is given or nothing else is). `base`: the
    base model folder LoRA adapters are checked against (default: each adapter's
    base_model_name_or_path, when that is a local folder).
    `config`: the project configuration (see `project_config`); its targets are scanned when
    none is given here, its `select`/`ignore`/`severity`/`kb`/`baseline` add to these.
    `baseline`: a file written by `write_baseline`; findings in it are not reported (False:
    not even the configuration's)."""
    from doctor.project import parse_severities, resolve
    from doctor.scanner import ScanOptions, run_scan
    from doctor.suppress import Policy

    project = project_config(paths, config)
    nothing_named = not (paths or data or scripts or configs or models or any((named or {}).values()))
    if nothing_named and project.path:
        paths, (data, scripts, configs, models), env = _project_targets(project, env)
    if tokenizer is None and project.tokenizer:
        tokenizer = resolve(project, project.tokenizer)
    if max_seq_length is None:
        max_seq_length = project.max_seq_length
    policy = Policy(select=[*project.select, *select], ignore=[*project.ignore, *ignore],
                    severity={**project.severity, **parse_severities(dict(severity or {}), "severity")})
    if baseline is None and project.baseline:
        baseline = resolve(project, project.baseline)
    baseline_file = str(_existing(baseline, "--baseline")) if baseline not in (None, False, True) else None
    by_kind: dict[str, list[str]] = {"dataset": list(data), "script": list(scripts), "config": list(configs),
                                     "model": list(models)}
    for kind, given in (named or {}).items():
        by_kind.setdefault(kind, []).extend(given)
    targets = _gather_targets(paths, by_kind)
    _check_scan_options(tokenizer, max_seq_length, jobs, timeout, fix, unsafe_fixes, in_place)
    if base:
        _existing(base, "--base")
    if python:
        python = _interpreter(python)
    nothing_else = not (targets.items or targets.projects)
    targets.env = env if env is not None else (targets.env or nothing_else)
    if distributed is not None:
        targets.env = False   # the gathered result holds rank 0's environment
    elif not targets.env and not targets.items:
        skipped = sum(targets.skipped.values())
        raise UsageError(f"nothing to examine: {', '.join(targets.projects) or 'no target given'} holds no file "
                         f"the doctor reads ({skipped} {'file' if skipped == 1 else 'files'} skipped)")
    if baseline_file:   # a baseline under another name is still no dataset
        targets.items = [t for t in targets.items if t.path is None or not _same(t.path, baseline_file)]
    opts = ScanOptions(deep=deep, smoke=smoke, fix=fix, unsafe_fixes=unsafe_fixes, in_place=in_place,
                       tokenizer=tokenizer, max_seq_length=max_seq_length, response_part=response_part, base=base,
                       jobs=jobs, progress=progress, timeout=timeout, python=python, distributed=distributed,
                       policy=policy, baseline=baseline_file, extra=list(project.problems))
    if kb is None:
        kb = load_knowledge(extra_dirs=[*(resolve(project, k) for k in project.kb), *kb_dirs])
    return run_scan(kb, targets, opts)


def _project_targets(project: Any, env: bool | None) -> tuple[list[str], tuple[list[str], ...], bool | None]:
    """`unsloth-doctor scan` in a project: what its configuration names, else its folder."""
    from doctor.project import resolve

    if not project.has_targets():
        return [str(project.root)], ([], [], [], []), env
    kinds = tuple([resolve(project, p) for p in kind]
                  for kind in (project.data, project.scripts, project.configs, project.models))
    return [], kinds, project.env if env is None else env


def write_baseline(output: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]] = (),
                   **scan_options: Any) -> tuple[Report, int]:
    """Scan as `scan` does (ignoring any baseline) and write the findings to `output`, so a
    later `scan(baseline=output)` reports only new ones. Returns the report and the count."""
    from doctor.baseline import write_baseline as write

    report = scan(paths, **{**scan_options, "baseline": False})
    target = Path(output)
    if not target.parent.is_dir():
        raise UsageError(f"--output: folder {target.parent} does not exist")
    return report, write(report.findings, target)


def _gather_targets(paths: Sequence[str | os.PathLike[str]], named: Mapping[str, Sequence[str]]) -> Any:
    """Folders are searched, files routed by suffix, `named` targets taken as their kind."""
    from doctor.probes import registry
    from doctor.targets import Targets, discover_project

    targets = Targets(env=False)
    for raw in paths:
        path = _existing(raw, "path")
        if path.is_dir():
            owner = registry.probe_for_folder(path, os.listdir(path))
            if owner is not None:
                targets.add(owner.name, str(path))
            else:
                targets.extend(discover_project(path))
            targets.env = True
            continue
        probe = registry.probe_for_file(path)
        if probe is None:
            known = ", ".join(registry.file_suffixes())
            raise UsageError(f"don't know how to scan {str(raw)!r}: give a folder, or a file ending in {known}")
        targets.add(probe.name, str(path))
    for name, given in named.items():
        try:
            probe = registry.get(name)
        except KeyError:
            raise UsageError(f"no probe named {name!r}: one of {', '.join(p.name for p in registry.probes())}") from None
        for raw in given:
            path = _existing(raw, probe.option or name)
            if probe.folder and not path.is_dir():
                raise UsageError(f"{probe.option} {str(raw)!r} is not a folder "
                                 "(give the folder with config.json or adapter_config.json)")
            targets.add(name, str(raw) if probe.folder else str(path))
    return targets


def _check_scan_options(tokenizer: str | None, max_seq_length: int | None, jobs: int, timeout: float,
                        fix: bool, unsafe_fixes: bool, in_place: bool) -> None:
    if tokenizer:
        _existing(tokenizer, "--tokenizer")
    if max_seq_length is not None and not tokenizer:
        raise UsageError("--max-seq-length measures datasets in tokens: give --tokenizer DIR too")
    _positive(max_seq_length, "--max-seq-length")
    _positive(jobs, "--jobs")
    if jobs > 256:   # each job is a process reading its own range; past the cores it only costs
        raise UsageError(f"--jobs {jobs} is more processes than any machine here has cores; give at most 256")
    if timeout is None or timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout!r}")
    if unsafe_fixes and not fix:
        raise UsageError("--unsafe-fixes goes with --fix")
    if in_place and not fix:
        raise UsageError("--in-place goes with --fix")


def _interpreter(python: str) -> str:
    """An absolute path to an interpreter that runs (a relative path or a name on PATH is
    resolved here, once), or a one-line UsageError."""
    from doctor.probes.child_python import check_python
    from doctor.probes.system import NotAPython

    try:
        return check_python(python)
    except NotAPython as exc:
        raise UsageError(f"--python: {exc}") from None


def live_facts() -> dict[str, Any]:
    """This machine's environment facts (no requirement checks), for explain's correlation."""
    try:
        from doctor.probes.env import collect_environment

        return dict(collect_environment(requirements=False).facts)
    except Exception:  # noqa: BLE001 - explain must work even where the env probe can't
        return {}


def explain(text: str | bytes | IO[bytes], *, facts: Mapping[str, Any] | None = None, env: bool = True,
            top: int = 3, kb: KnowledgeBase | None = None) -> ExplainResult:
    """Explain a traceback or log (a string, bytes, or a binary stream read in bounded memory).

    `facts`: live facts to confirm or rule out diagnoses with (default: this machine's, unless
    `env=False`)."""
    from doctor.explainer import diagnose, diagnose_stream

    _positive(top, "--top")
    kb = kb or load_knowledge()
    if facts is None:
        facts = live_facts() if env else {}
    if isinstance(text, str):
        result = diagnose(text, kb, facts=facts, top=top)
    elif isinstance(text, bytes):
        import io

        result = diagnose_stream(io.BytesIO(text), kb, facts=facts, top=top)
    else:
        result = diagnose_stream(text, kb, facts=facts, top=top)
    return _commands_for(result, facts)


def _commands_for(result: ExplainResult, facts: Mapping[str, Any]) -> ExplainResult:
    """Install commands with the installer this machine has, when explain looked at it (not
    with --no-env). A pasted log may come from another machine: GPU-only packages are kept
    and the interpreter stays `python`."""
    if not facts.get("python.executable"):
        return result
    import dataclasses
    import sys

    from doctor.fixes.commands import Machine, doctor_source, fit_findings

    machine = dataclasses.replace(Machine.from_facts(facts, sys.executable, doctor_source()),
                                  python=None, gpu=None, driver_cuda=None)
    fitted = fit_findings([d.finding for d in result.diagnoses], machine)
    result.diagnoses = [dataclasses.replace(d, finding=f) for d, f in zip(result.diagnoses, fitted)]
    return result


def smoke(*, model: str | None = None, max_seq_length: int | None = None, batch_size: int | None = None,
          steps: int | None = None, force: bool = False, timeout: float = 600.0, python: str | None = None,
          keep: str | None = None, kb: KnowledgeBase | None = None) -> SmokeReport:
    """Train a tiny model with real Unsloth in a child process (or one or two steps on `model`)."""
    from doctor.smoketest.runner import SmokeOptions, run_smoke

    if model:
        _existing(model, "--model")
    if python:
        python = _interpreter(python)
    options = SmokeOptions(model=model, max_seq_length=max_seq_length, batch_size=batch_size, steps=steps,
                           force=force, timeout=timeout, python=python, keep=keep)
    kb = kb or load_knowledge()
    return run_smoke(options, kb)


def run(argv: Sequence[str], *, env: bool = True, top: int = 3, kb: KnowledgeBase | None = None,
        report: Callable[[ExplainResult], None] | None = None,
        stdout: IO[bytes] | None = None, stderr: IO[bytes] | None = None) -> int:
    """Run a command, passing its output through; when it fails, explain it: to `report`, or
    as text on `stderr`. Returns the command's exit status."""
    from doctor.explainer.runner import run_and_explain

    argv = list(argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("give the command to run after --, e.g. unsloth-doctor run -- python train.py")
    err = stderr if stderr is not None else sys.stderr.buffer

    def as_text(result: ExplainResult) -> None:
        from doctor.report.explain import render_text, wants_color

        # wrapped at a terminal's width; into a pipe or a file, never (None)
        terminal = hasattr(err, "isatty") and err.isatty()
        width = shutil.get_terminal_size((100, 24)).columns if terminal else None
        text = "\n" + render_text(result, color=wants_color(err), width=width)
        try:
            err.write(text.encode("utf-8", "replace"))
            err.flush()
        except (OSError, ValueError):
            pass

    return run_and_explain(argv, kb or load_knowledge(), facts_provider=live_facts if env else None,
                           stdout=stdout, stderr=stderr, report=report or as_text, top=top)
