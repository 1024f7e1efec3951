"""3.12 f-strings read on an older Python: do the nodes stand where Python 3.12 puts them?

    python bench/bench_pep701_positions.py FOLDER PYTHON312

For each notebook of FOLDER, the code the script probe reads (magics handled) is parsed here
with `doctor.probes.pep701.parse`, and by PYTHON312 (a Python 3.12 interpreter, the
baseline) with its own `ast.parse`. Every node's type and (line, column, end line, end
column) are compared, except inside f-strings (3.11 gives an f-string's parts no places of
their own; a rewritten one may be a plain string): the f-string node itself is compared,
as "str". Prints how many notebooks needed the rewrite, how many agree node for node, the
first differences, and the time of `pep701.parse` against `ast.parse` on this Python.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

Position = tuple[str, int, int, int, int]


def positions(tree: ast.AST) -> list[Position]:
    out: list[Position] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        is_str = isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
        if hasattr(node, "lineno"):
            kind = "str" if is_str else type(node).__name__
            out.append((kind, node.lineno, node.col_offset, node.end_lineno or 0, node.end_col_offset or 0))
        if not is_str:
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return out


def dump() -> int:
    """Run by PYTHON312: texts (JSON list on stdin) to their node positions, or null."""
    result = []
    for text in json.load(sys.stdin):
        try:
            result.append(positions(ast.parse(text)))
        except SyntaxError as exc:
            result.append({"error": exc.lineno})
        except (ValueError, RecursionError, MemoryError):
            result.append({"error": None})
    json.dump({"python": sys.version.split()[0], "positions": result}, sys.stdout)
    return 0


def _short(result: object) -> str:
    return f"{len(result)} nodes" if isinstance(result, list) else f"error at line {result['error']}"  # type: ignore[index]


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> int:
    from doctor.probes import pep701
    from doctor.probes.script import read_source

    folder, python312 = Path(sys.argv[1]), sys.argv[2]
    notebooks = sorted(folder.glob("*.ipynb")) or sorted(folder.rglob("*.py"))   # notebooks, else scripts
    texts = [read_source(str(p)).text for p in notebooks]
    done = subprocess.run([python312, __file__, "--dump"], input=json.dumps(texts), capture_output=True,
                          text=True, check=True)
    theirs = json.loads(done.stdout)
    rewritten, agree, compared, broken, differences = 0, 0, 0, 0, []
    ours_t: list[float] = []
    ours_r: list[float] = []   # pep701.parse on the files it rewrote
    base_t: list[float] = []
    for path, text, expected in zip(notebooks, texts, theirs["positions"]):
        try:
            ast.parse(text)
            plain = True
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            plain = False
        rewritten += not plain
        t = time.perf_counter()
        try:
            mine: object = positions(pep701.parse(text))
        except SyntaxError as exc:
            mine = {"error": exc.lineno}
        except (ValueError, RecursionError, MemoryError):
            mine = {"error": None}
        ours_t.append(time.perf_counter() - t)
        if not plain and isinstance(mine, list):   # the time's baseline: this Python's parser on the rewritten text
            ours_r.append(ours_t[-1])
            t = time.perf_counter()
            ast.parse(pep701.downlevel(text)[0])
            base_t.append(time.perf_counter() - t)
        if isinstance(expected, list):
            expected = [tuple(p) for p in expected]
        broken += isinstance(expected, dict)
        if mine == expected:
            agree += 1
            compared += len(mine) if isinstance(mine, list) else 0
        elif isinstance(mine, list) and isinstance(expected, list) and len(mine) == len(expected):
            first = next((a, b) for a, b in zip(mine, expected) if a != b)
            differences.append(f"  {path.relative_to(folder)}: first difference {first}")
        else:
            differences.append(f"  {path.relative_to(folder)}: here {_short(mine)}, Python 3.12 {_short(expected)}")
    print(f"files: {len(notebooks)} in {folder.name}; this Python {sys.version.split()[0]}, "
          f"baseline Python {theirs['python']}")
    print(f"parsed by this Python's ast.parse as they are: {len(notebooks) - rewritten}; "
          f"needing the PEP 701 rewrite: {rewritten}")
    print(f"same result as Python {theirs['python']}: {agree}/{len(notebooks)} files ({compared} node positions; "
          f"{broken} files that Python {theirs['python']} refuses, compared by the error's line)")
    print("differences:" if differences else "differences: none")
    print("\n".join(differences[:20])) if differences else None
    if base_t:
        print(f"time on the {len(base_t)} rewritten, median: pep701.parse {_median(ours_r) * 1000:.1f} ms, "
              f"baseline ast.parse of the rewritten text {_median(base_t) * 1000:.1f} ms, "
              f"ratio {_median(ours_r) / _median(base_t):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(dump() if sys.argv[1:] == ["--dump"] else main())
