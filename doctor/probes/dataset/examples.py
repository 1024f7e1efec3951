"""`unsloth-doctor kb test`: run the dataset probe on a knowledge entry's example input.

The example's text is written to a real temporary file (with the suffix the runner's name
gives) and scanned with the example's options.
"""
from __future__ import annotations

import sys
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator

from doctor.findings import Observation



def _fixtures_root() -> Path:
    """Examples name fixtures from the repository root; an installed wheel carries the same
    files beside its knowledge folder (doctor/fixtures/...)."""
    from doctor.kb import default_knowledge_dir

    return default_knowledge_dir().parent


def _example_options(raw: dict[str, Any]) -> Any:
    from doctor.probes.dataset.check import DatasetOptions

    names = {f.name for f in fields(DatasetOptions)}
    values = {k: v for k, v in raw.items() if k in names}
    tok = values.get("tokenizer")
    if tok and not Path(tok).is_dir() and (_fixtures_root() / tok).is_dir():
        values["tokenizer"] = str(_fixtures_root() / tok)
    return DatasetOptions(**values)


@contextmanager
def _without(packages: list[str]) -> Iterator[None]:
    """Make `import NAME` fail for these packages, the way Python does for a missing one
    (a None entry in sys.modules), so an example can show the message for an absent extra."""
    saved = {name: mod for name, mod in sys.modules.items()
             if any(name == p or name.startswith(p + ".") for p in packages)}
    try:
        for name in [*packages, *saved]:
            sys.modules[name] = None  # type: ignore[assignment]
        yield
    finally:
        for name in [*packages, *saved]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _runner(suffix: str) -> Callable[[str, dict[str, Any], Any], list[Observation]]:
    def run(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
        options = dict(options or {})
        blocked = list(options.pop("without_packages", []))
        encoding = options.pop("encoding", "utf-8")  # e.g. cp1252, to write bytes that are not UTF-8
        with tempfile.TemporaryDirectory() as tmp, _without(blocked):
            target = Path(tmp) / f"example{suffix}"
            target.write_bytes(text.encode(encoding))
            from doctor.probes.dataset.check import scan_dataset

            return scan_dataset(str(target), _example_options(options)).observations
    return run


EXAMPLES = {f"dataset{suffix}": _runner(suffix) for suffix in (".jsonl", ".json", ".csv", ".parquet")}
