"""The GGUF probe on real files written by gguf-py (llama.cpp's reference writer)."""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")

from doctor.probes.gguf import BLOCKS, examine, write_example_gguf  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402


def ids(path: Path) -> list[str]:
    return [o.entry_id for o in examine(path)[0]]


def test_block_sizes_are_gguf_pys() -> None:
    assert BLOCKS == {int(t): sizes for t, sizes in gguf.GGML_QUANT_SIZES.items()}


def test_a_sound_file_has_no_findings_and_says_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    write_example_gguf(path, {"output.weight": [32, 64], "norm.weight": [64]}, tokens=1000)
    observations, facts = examine(path)
    assert observations == []
    assert facts == {"version": 3, "tensors": 2, "architecture": "llama", "file_type": 0, "name": "tiny"}


def _quantized(path: Path, cut: int) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    data = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    q8 = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])


@pytest.mark.parametrize("cut,expected", [(0, []), (1, ["GGUF-TRUNCATED"])])
def test_quantized_tensor_sizes_decide_truncation_to_the_byte(tmp_path: Path, cut: int, expected: list) -> None:
    path = tmp_path / "q8.gguf"
    _quantized(path, cut)
    assert ids(path) == expected


def test_a_file_cut_inside_its_header(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    write_example_gguf(path, {"output.weight": [4, 8]}, tokens=50)
    path.write_bytes(path.read_bytes()[:200])
    [obs] = examine(path)[0]
    assert obs.entry_id == "GGUF-TRUNCATED" and "the header" in obs.values["what"]


@pytest.mark.parametrize("content,entry", [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 4920733056\n", "GGUF-LFS-POINTER"),
    (b"<!DOCTYPE html><html>Not found</html>", "GGUF-NOT-GGUF"),
    (b"", "GGUF-NOT-GGUF"),
    (b"GGUF" + struct.pack("<I", 1) + b"\0" * 16, "GGUF-VERSION-UNSUPPORTED"),
])
def test_what_is_not_a_loadable_gguf(tmp_path: Path, content: bytes, entry: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    assert ids(path) == [entry]


@pytest.mark.parametrize("counts", [(2**60, 0), (0, 2**60), (1, 1)])
def test_a_header_that_lies_about_its_counts_ends_at_once(tmp_path: Path, counts: tuple[int, int]) -> None:
    path = tmp_path / "model.gguf"
    # a real header whose tensor/metadata counts claim far more than the file holds
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, *counts) + struct.pack("<Q", 2**62) + b"x" * 64)
    start = time.perf_counter()
    assert ids(path) == ["GGUF-TRUNCATED"]
    assert time.perf_counter() - start < 1.0


def test_split_models_need_every_part(tmp_path: Path) -> None:
    write_example_gguf(tmp_path / "m-00001-of-00003.gguf", {"w": [8]}, 0)
    write_example_gguf(tmp_path / "m-00003-of-00003.gguf", {"w": [8]}, 0)
    [obs] = examine(tmp_path / "m-00001-of-00003.gguf")[0]
    assert obs.entry_id == "GGUF-SPLIT-PART-MISSING" and obs.values["missing"] == ["m-00002-of-00003.gguf"]
    assert ids(tmp_path / "m-00003-of-00003.gguf") == []      # said once, by the first part


def test_a_folder_scan_finds_gguf_files_and_the_flag_names_one(tmp_path: Path) -> None:
    write_example_gguf(tmp_path / "model-unsloth.Q8_0.gguf", {"w": [8]}, 3)
    (tmp_path / "broken.gguf").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    r = run_cli("scan", str(tmp_path), "--no-env", "--format", "json")
    data = json.loads(r.stdout)
    assert r.returncode == 1 and [f["id"] for f in data["findings"]] == ["GGUF-LFS-POINTER"]
    assert {a["label"].rsplit("/", 1)[-1] for a in data["areas"]} == {"broken.gguf", "model-unsloth.Q8_0.gguf"}
    one = run_cli("scan", "--gguf", str(tmp_path / "model-unsloth.Q8_0.gguf"), "--format", "json")
    assert one.returncode == 0, one.stdout + one.stderr


def test_explain_reads_llama_cpps_messages() -> None:
    r = run_cli("explain", "--no-env", "--format", "json",
                stdin="gguf_init_from_file_impl: invalid magic characters: 'vers', expected 'GGUF'\n")
    assert json.loads(r.stdout)["explain"]["diagnoses"][0]["id"] == "RT-GGUF-LFS-POINTER"


def test_a_vocabulary_only_file_is_a_note_not_a_truncation(tmp_path: Path) -> None:
    """Like llama.cpp's models/ggml-vocab-*.gguf: no tensors, and no padding after the header."""
    path = tmp_path / "ggml-vocab-tiny.gguf"
    write_example_gguf(path, {}, tokens=100)
    data = path.read_bytes()
    end = len(data.rstrip(b"\0")) if data.endswith(b"\0") else len(data)
    path.write_bytes(data[:end])     # the header's end, unpadded, as llama.cpp's vocab files are
    assert ids(path) == ["GGUF-NO-TENSORS"]
