"""Where `--fix` writes a dataset's repair: names from the full input name, nothing overwritten
that is not an earlier repair of the same input, the input's permission bits."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from doctor.fixes.dataset import RepairError, RepairOptions, repair_dataset
from doctor.fixes.journal import Journal
from doctor.fixes.outputs import output_paths
from doctor.targets import discover_project
from tests.helpers.cli import run_cli
from tests.helpers.folders import project, tree


def test_a_csv_and_a_parquet_of_one_name_keep_their_own_rejects(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root = tmp_path / "project"
    root.mkdir()
    (root / "table.csv").write_text("text\ncsv row\ncsv row\n")
    pq.write_table(pa.table({"text": ["pq row", "pq row", "other"]}), root / "table.parquet")
    done = run_cli("scan", str(root), "--no-env", "--fix", "--unsafe-fixes")
    assert "not repaired" not in done.stdout, done.stdout
    rejects = {p.name: [json.loads(r["text"]) for r in map(json.loads, p.read_text().splitlines())]
               for p in root.glob("*.rejects.*")}
    # each input's rejected duplicate is kept, in a file of its own
    assert rejects == {"table.csv.rejects.jsonl": [{"text": "csv row"}],
                       "table.parquet.rejects.jsonl": [{"text": "pq row"}]}
    assert (root / "table.fixed.csv").read_text() == "text\ncsv row\n"
    assert pq.read_table(root / "table.fixed.parquet").to_pylist() == [{"text": "pq row"}, {"text": "other"}]
    assert not (root / "table.rejects.jsonl").exists()
    # the outputs are not taken for inputs by the next scan
    assert sorted(Path(p).name for p in discover_project(root).of("dataset")) == ["table.csv", "table.parquet"]


@pytest.mark.parametrize("name, fixed, rejects", [
    ("train.jsonl", "train.fixed.jsonl", "train.jsonl.rejects.jsonl"),
    ("train.json", "train.json.fixed.jsonl", "train.json.rejects.jsonl"),
    ("table.csv", "table.fixed.csv", "table.csv.rejects.jsonl"),
    ("table.TSV", "table.fixed.TSV", "table.TSV.rejects.jsonl"),
    ("table.parquet", "table.fixed.parquet", "table.parquet.rejects.jsonl"),
    ("notes.txt", "notes.txt.fixed.jsonl", "notes.txt.rejects.jsonl"),
])
def test_output_names_derive_from_the_full_input_name(tmp_path: Path, name: str, fixed: str, rejects: str) -> None:
    assert output_paths(str(tmp_path / name)) == (str(tmp_path / fixed), str(tmp_path / rejects))


def test_an_output_name_taken_by_a_file_not_ours_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    taken = root / "data/train.fixed.jsonl"
    theirs = "a file of the user's that happens to have this name\n"
    taken.write_text(theirs)
    before = tree(root)
    done = run_cli("scan", "--no-env", "--data", str(root / "data/train.jsonl"), "--data",
                   str(root / "data/table.csv"), "--fix")
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{root / 'data/train.jsonl'}: not repaired" in done.stdout
    assert "already exists" in done.stdout and "nothing was overwritten" in done.stdout
    assert taken.read_text() == theirs
    assert not (root / "data/train.jsonl.rejects.jsonl").exists()
    assert (root / "data/table.fixed.csv").exists()     # the other input is still repaired
    assert run_cli("undo").returncode == 0
    assert tree(root) == before


def test_an_output_that_is_another_input_of_the_run_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "a.fixed.jsonl"
    a.write_text('{"text": "a",}\n')
    b.write_text('{"text": "b"}\n')
    done = run_cli("scan", "--no-env", "--data", str(a), "--data", str(b), "--fix")
    assert "another input of this run" in done.stdout, done.stdout
    assert b.read_text() == '{"text": "b"}\n'
    assert (tmp_path / "a.fixed.fixed.jsonl").read_text() == '{"text": "b"}\n'


def test_two_inputs_of_one_run_never_share_an_output(tmp_path: Path) -> None:
    first, second = tmp_path / "t.json", tmp_path / "t.json.jsonl"   # both would write t.json.fixed.jsonl
    first.write_text('[{"text": "from the array"}]')
    second.write_text('{"text": "from the lines"}\n')
    with Journal(tmp_path / "journal").transaction("run") as tx:
        repair_dataset(str(first), tx=tx, run_inputs=[str(first), str(second)])
        with pytest.raises(RepairError, match="already written in this run from"):
            repair_dataset(str(second), tx=tx, run_inputs=[str(first), str(second)])
    assert (tmp_path / "t.json.fixed.jsonl").read_text() == '{"text": "from the array"}\n'


def test_rerunning_replaces_only_its_own_outputs_and_undo_restores_them(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "one",}\n')
    options = RepairOptions(journal_root=str(tmp_path / "journal"))
    repair_dataset(str(data), options)
    first = (tmp_path / "d.fixed.jsonl").read_bytes()
    data.write_text('{"text": "two",}\n')
    repair_dataset(str(data), options)                     # our own earlier output: replaced
    assert (tmp_path / "d.fixed.jsonl").read_bytes() == b'{"text":"two"}\n'
    Journal(tmp_path / "journal").undo_last()
    assert (tmp_path / "d.fixed.jsonl").read_bytes() == first
    Journal(tmp_path / "journal").undo_last()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "journal"]
    # Without the journal's word that it is ours, an existing output is left alone.
    (tmp_path / "d.fixed.jsonl").write_bytes(first)
    with pytest.raises(RepairError, match="already exists"):
        repair_dataset(str(data), options)
    assert (tmp_path / "d.fixed.jsonl").read_bytes() == first


@pytest.mark.parametrize("mode", [0o644, 0o664])
def test_outputs_keep_the_input_permission_bits(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.jsonl").write_text('{"text": "a",}\n')
    (root / "table.csv").write_bytes(b"text\nbell\x07\n")
    for name in ("train.jsonl", "table.csv"):
        os.chmod(root / name, mode)
    done = run_cli("scan", str(root), "--no-env", "--fix")
    assert "not repaired" not in done.stdout, done.stdout
    outputs = [p for p in root.iterdir() if ".fixed." in p.name or ".rejects." in p.name]
    assert len(outputs) == 4
    for p in outputs:
        assert oct(p.stat().st_mode & 0o777) == oct(mode), p.name


