"""The fixes package stands on its own: no import cycle inside it, nothing of the CLI or reports."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top, in functions or under TYPE_CHECKING."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}   # `from doctor.fixes import x`
    return out


def test_the_fixes_package_has_no_import_cycle_and_imports_nothing_of_the_cli() -> None:
    folder = ROOT / "doctor/fixes"
    modules = {f"doctor.fixes.{p.stem}": _imports(p) for p in folder.glob("*.py") if p.stem != "__init__"}
    forbidden = ("doctor.report", "doctor.cli", "doctor.commands", "doctor.scan")
    for name, imported in modules.items():
        bad = sorted(m for m in imported if m.startswith(forbidden))
        assert not bad, f"{name} imports {bad}"
    graph = {name: {m for m in imported if m in modules and m != name} for name, imported in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not cycles, f"import cycle through {cycles}"
