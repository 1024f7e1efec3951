"""Every finding of the chosen entries on a folder of notebooks (and scripts), one per line,
to judge by hand.

    python bench/list_notebook_findings.py FOLDER [ID,ID,...]

Prints: entry id, notebook name, cell and line, the raw file's line:column, and the values
the finding is worded from. Without ids, every finding is listed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from doctor.probes.script import read_source, scan_source

_LONG = ("declared_line",)   # repeated in every pin finding; declared_at names the place


def main() -> int:
    folder = Path(sys.argv[1])
    wanted = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    for path in sorted(folder.glob("*.ipynb")) + sorted(folder.glob("*.py")):
        for obs in scan_source(read_source(str(path))):
            if wanted is not None and obs.entry_id not in wanted:
                continue
            loc = obs.location
            values = {k: v for k, v in obs.values.items() if k not in _LONG}
            cell = f"cell {loc.cell}, line {loc.cell_line}" if loc.cell else f"line {loc.line}"
            print(f"{obs.entry_id}\t{path.name}\t{cell}\t{loc.line}:{loc.column}\t{values}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
