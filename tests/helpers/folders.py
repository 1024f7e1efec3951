"""Folders the fix and undo tests build and compare."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

SCRIPT = "from trl import SFTTrainer\nfrom unsloth import FastLanguageModel\n"


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` (hidden ones too): its bytes' hash, or "dir"."""
    out = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(dirpath, name), folder)] = "dir"
        for name in files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, folder)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def project(tmp_path: Path) -> Path:
    """Several datasets (JSONL, CSV, a JSONL in a subfolder) and two scripts needing fixes."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data/train.jsonl").write_text('{"text": "a",}\n{\'text\': \'b\'}\n{"text": "cut\n')
    (root / "data/table.csv").write_bytes(b'text,label\r\n"bell\x07",1\r\nonly\r\nok,2\r\n')
    (root / "data/extra").mkdir()
    (root / "data/extra/more.jsonl").write_text('{"text": "x"} // a comment\n{"text": "y"}\n')
    (root / "train.py").write_text(SCRIPT)
    (root / "data/extra/finetune.py").write_text(SCRIPT)
    return root


