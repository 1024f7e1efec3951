"""The layout DESIGN.md draws, checked: no import cycles, imports only point down the layers,
one probe registry from which the CLI, discovery, console and knowledge areas are derived."""
from __future__ import annotations

import ast
import os
import re

import pytest

from doctor.probes import registry
from tests.helpers.imports import PACKAGE, cycles, import_graph, modules

# Lowest first; a module may import its own layer or any below (never one above).
LAYERS: list[tuple[str, ...]] = [
    ("doctor.version", "doctor.errors", "doctor.findings", "doctor.facts", "doctor.paths",
     "doctor.textmatch", "doctor.atomic", "doctor.interrupts", "doctor.results", "doctor.progress"),
    ("doctor.kb",),
    ("doctor.engine",),
    ("doctor.probes", "doctor.explainer", "doctor.training"),
    ("doctor.smoketest", "doctor.fixes", "doctor.distributed", "doctor.targets",
     "doctor.project", "doctor.suppress", "doctor.baseline"),
    ("doctor.scanner", "doctor.selftest", "doctor.bugreport"),
    ("doctor.report",),
    ("doctor.api",),
    ("doctor.cli", "doctor.__main__", "doctor"),
]


def layer_of(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py"
    return best[0]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_imports_only_point_down_the_layers() -> None:
    upward = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
              for m, targets in import_graph().items() for t in sorted(targets) if layer_of(t) > layer_of(m)]
    assert upward == []


def test_reporters_read_only_results() -> None:
    allowed = ("doctor.report", "doctor.results", "doctor.findings", "doctor.version")
    graph = import_graph()
    wrong = [f"{m} imports {t}" for m, targets in graph.items() if m.startswith("doctor.report")
             for t in targets if not t.startswith(allowed)]
    assert wrong == []


def test_the_doctor_process_never_imports_heavy_packages_at_module_level() -> None:
    heavy = {"torch", "transformers", "unsloth", "trl", "peft", "bitsandbytes", "triton"}
    # children and the training callback run in the user's own process, where these are wanted
    exempt = {"doctor.probes.deep_child", "doctor.smoketest.child", "doctor.smoketest.reload", "doctor.training.watchdog"}
    found = []
    for name, path in modules().items():
        if name in exempt or name.startswith("doctor.distributed"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{name}: {n}" for n in names if n.split(".")[0] in heavy]
    assert found == []


# --- the registry -------------------------------------------------------------------------

def test_every_probe_module_is_registered_once_and_declares_its_contract() -> None:
    names = [p.name for p in registry.probes()]
    assert len(names) == len(set(names))
    for probe in registry.probes():
        assert probe.area in probe.headings, probe.name
        assert probe.label and (probe.suffixes or probe.folder or probe.option is None)


def test_cli_flags_come_from_the_registry() -> None:
    from doctor.cli.parser import build_parser

    scan = build_parser()._subparsers._group_actions[0].choices["scan"]
    flags = {opt for action in scan._actions for opt in action.option_strings}
    assert {p.option for p in registry.probes() if p.option} <= flags


@pytest.mark.parametrize("name,probe", [
    ("data.tsv", "dataset"), ("data.json", "dataset"), ("train.jsonl", "dataset"), ("t.parquet", "dataset"),
    ("rows.ndjson", "dataset"), ("t.pq", "dataset"), ("model.Q4_K_M.gguf", "gguf"),
    ("train.py", "script"), ("nb.ipynb", "script"), ("axolotl.yml", "config"), ("config.json", "config"),   # it names a model config and skips it
    ("training_args.json", "config"),
    ("train.fixed.jsonl", None), ("README.md", None),
])
def test_files_are_routed_by_the_registry(tmp_path, name, probe) -> None:
    found = registry.probe_for_file(tmp_path / name)
    assert (found.name if found else None) == probe


def test_knowledge_areas_are_the_registrys(knowledge_base) -> None:
    assert {e.area for e in knowledge_base} <= registry.area_names()


def test_a_knowledge_entry_with_an_unknown_area_is_refused(tmp_path) -> None:
    from doctor.kb import KnowledgeError, load_knowledge

    text = (PACKAGE.parent / "knowledge" / "script.yaml").read_text(encoding="utf-8")
    first = "- id:" + text.split("- id:")[1]
    (tmp_path / "one.yaml").write_text(re.sub(r"\n  area: \w+", "\n  area: nosuch", first, count=1))
    with pytest.raises(KnowledgeError, match="area 'nosuch' is not one of"):
        load_knowledge([tmp_path], use_cache=False, areas=registry.area_names())


def test_a_cached_knowledge_base_keeps_its_area_check(tmp_path) -> None:
    """The registry is asked only when files are validated (a cache hit imports no probe), so a
    base cached by a caller that checked no area must not pass for one that was checked."""
    from doctor.kb import KnowledgeError, load_knowledge

    text = (PACKAGE.parent / "knowledge" / "script.yaml").read_text(encoding="utf-8")
    first = "- id:" + text.split("- id:")[1]
    (tmp_path / "one.yaml").write_text(re.sub(r"\n  area: \w+", "\n  area: nosuch", first, count=1))
    assert len(load_knowledge([tmp_path])) == 1   # cached without the check
    asked = []
    with pytest.raises(KnowledgeError, match="area 'nosuch' is not one of"):
        load_knowledge([tmp_path], areas=lambda: asked.append(1) or registry.area_names())
    with pytest.raises(KnowledgeError, match="area 'nosuch' is not one of"):
        load_knowledge([tmp_path], areas=registry.area_names)
    assert asked == [1]


def test_explaining_a_message_imports_no_probe(tmp_path) -> None:
    """`explain` needs neither the scan flags nor the probes' areas once the knowledge is
    cached: importing the registry, the probe base and every probe was a third of a one-line
    paste's run time."""
    import subprocess
    import sys

    watched = {*registry.PROBE_MODULES, "doctor.probes.registry", "doctor.probes.base"}
    env = {**os.environ, "UNSLOTH_DOCTOR_STATE": str(tmp_path)}
    code = ("import sys, io, contextlib\n"
            "from doctor.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['explain', 'ValueError: Unsloth: something odd', '--no-env', '--format', 'json'])\n"
            f"print(sorted(m for m in sys.modules if m in {watched!r}))\n")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "doctor.probes.env" in first.stdout    # the first run validates, asking the registry
    assert again.stdout.strip() == "[]", again.stdout


# --- every id a probe can emit exists, and every observed entry is emitted ------------------

_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def _ids_in_code(knowledge_base) -> dict[str, str]:
    """Every string constant in the doctor's code shaped like an entry id, with a prefix that
    knowledge ids use (ENV-, DATA-, GGUF-...)."""
    prefixes = tuple({e.id.split("-", 1)[0] + "-" for e in knowledge_base})
    out: dict[str, str] = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ID.match(node.value) \
                    and node.value.startswith(prefixes):
                out.setdefault(node.value, name)
    return out


def test_every_id_the_code_emits_is_a_knowledge_entry(knowledge_base) -> None:
    missing = {i: where for i, where in _ids_in_code(knowledge_base).items() if i not in knowledge_base}
    assert missing == {}


def test_every_observed_entry_is_emitted_somewhere(knowledge_base) -> None:
    in_code = set(_ids_in_code(knowledge_base))
    # ids built from a prefix and a rule name at run time
    dynamic = [p for p in ("DATA-", "TRAIN-") if any(e.id.startswith(p) for e in knowledge_base)]
    unused = [e.id for e in knowledge_base if e.observed and e.id not in in_code
              and not any(e.id.startswith(p) and _built_at_run_time(e.id) for p in dynamic)]
    assert unused == []


def _built_at_run_time(entry_id: str) -> bool:
    text = "\n".join(p.read_text(encoding="utf-8") for p in modules().values())
    suffix = entry_id.split("-", 1)[1]
    return f'"{suffix}"' in text or f"'{suffix}'" in text
