"""Pickle weights read as opcodes only: a real malicious pickle (plain and inside a torch zip
checkpoint) is named by its import and never runs; a real torch.save state dict is clean."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from doctor.probes.model import scan_model
from doctor.probes.pickles import scan_file


class Payload:
    """Unpickling this runs `touch PWNED` in the current directory."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch PWNED",))


def ids(result) -> list[str]:
    # the config here is a stand-in ({"model_type": "llama"}): its left-out keys are not the point
    return sorted(o.entry_id for o in result.observations if o.entry_id != "MODEL-CONFIG-KEY-DEFAULTED")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # PWNED would be created in the working directory: make that the folder we check
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return tmp_path


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_plain_pickle_is_an_error_and_never_runs(in_tmp: Path, protocol: int) -> None:
    (in_tmp / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": Payload()}, protocol=protocol))
    result = scan_model(str(in_tmp))
    (code,) = [o for o in result.observations if o.entry_id == "MODEL-PICKLE-CODE"]
    assert code.values == {"file": "pytorch_model.bin", "imports": f"{os.system.__module__}.system"}
    assert code.location.path.endswith("pytorch_model.bin")
    assert "MODEL-PICKLE-WEIGHTS" not in ids(result)   # "re-save as safetensors" is no advice for this file
    assert not (in_tmp / "PWNED").exists()


def test_malicious_zip_checkpoint_from_torch_save_is_an_error_and_never_runs(in_tmp: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"weight": torch.zeros(2, 2), "extra": Payload()}, in_tmp / "model.pt")
    assert (in_tmp / "model.pt").read_bytes()[:2] == b"PK"   # the zip format, data.pkl inside
    result = scan_model(str(in_tmp))
    assert "MODEL-PICKLE-CODE" in ids(result)
    assert scan_file(in_tmp / "model.pt").code == [f"{os.system.__module__}.system"]
    assert not (in_tmp / "PWNED").exists()
    # the legacy (non-zip) format: several pickles in a row, then raw storages
    torch.save({"extra": Payload()}, in_tmp / "legacy.bin", _use_new_zipfile_serialization=False)
    assert scan_file(in_tmp / "legacy.bin").code == [f"{os.system.__module__}.system"]
    assert not (in_tmp / "PWNED").exists()
    # and it was a real payload: unpickling it here does create the file
    with open(in_tmp / "pytorch_model.bin", "wb") as f:
        pickle.dump(Payload(), f)
    pickle.loads((in_tmp / "pytorch_model.bin").read_bytes())
    assert (in_tmp / "PWNED").exists()


def test_real_state_dict_is_clean_in_both_torch_formats(in_tmp: Path) -> None:
    torch = pytest.importorskip("torch")
    state = torch.nn.Linear(4, 3).state_dict()
    torch.save(state, in_tmp / "pytorch_model.bin")
    torch.save(state, in_tmp / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("pytorch_model.bin", "legacy.pt"):
        report = scan_file(in_tmp / name)
        assert report.code == [] and report.known_classes == [] and report.unchecked is None, name
        assert "torch._utils._rebuild_tensor_v2" in report.imports
    # no safetensors: the note that suggests them, and nothing worse
    assert ids(scan_model(str(in_tmp))) == ["MODEL-NO-TOKENIZER", "MODEL-PICKLE-WEIGHTS"]


def test_obfuscated_stack_global_is_an_error(in_tmp: Path) -> None:
    # STACK_GLOBAL whose module name is built by a call, not pushed as a string
    data = (b"\x80\x04" b"\x8c\x08builtins\x94\x8c\x03str\x94\x93\x94"   # builtins.str
            b"\x8c\x02os\x94\x85\x94R\x94"                                  # str("os"), a computed value
            b"\x8c\x06system\x94\x93\x94.")                                 # STACK_GLOBAL(computed, "system")
    (in_tmp / "model.ckpt").write_bytes(data)
    (code,) = [o for o in scan_model(str(in_tmp)).observations if o.entry_id == "MODEL-PICKLE-CODE"]
    assert "builtins.str" in code.values["imports"] and "computed" in code.values["imports"]


def test_pickle_scan_is_bounded(in_tmp: Path) -> None:
    # a long but harmless pickle: the opcode bound stops the scan, and says so
    (in_tmp / "big.bin").write_bytes(pickle.dumps(list(range(50_000)), protocol=0))
    report = scan_file(in_tmp / "big.bin", max_opcodes=1_000)
    assert report.unchecked and "1,000 opcodes" in report.unchecked
    assert scan_file(in_tmp / "big.bin").unchecked is None


def test_hostile_length_field_reads_only_the_budget(in_tmp: Path) -> None:
    # BINUNICODE8 claiming 2**40 bytes, then 4 MiB of padding: only the budget is read
    path = in_tmp / "model.bin"
    path.write_bytes(b"\x80\x04\x8d" + (1 << 40).to_bytes(8, "little") + b"a" * (4 << 20))
    report = scan_file(path, max_bytes=1 << 20)
    assert report.unchecked is not None and report.imports == []


def test_random_bytes_never_crash_the_scan(tmp_path: Path) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(st.binary(max_size=200), st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"PK\x03\x04"]))
    def scan(data: bytes, head: bytes) -> None:
        path = tmp_path / "w.bin"
        path.write_bytes(head + data)
        report = scan_file(path)
        assert isinstance(report.imports, list)

    scan()


def test_cli_scan_of_a_malicious_checkpoint_folder(in_tmp: Path) -> None:
    """As a user runs it: the doctor's own process reports the import and nothing runs."""
    from tests.helpers.cli import run_cli

    torch = pytest.importorskip("torch")
    torch.save({"weight": torch.zeros(2), "extra": Payload()}, in_tmp / "pytorch_model.bin")
    r = run_cli("scan", "--model", str(in_tmp), "--format", "json", cwd=in_tmp)
    data = json.loads(r.stdout)
    found = {f["id"]: f for f in data["findings"]}
    assert r.returncode == 1 and "MODEL-PICKLE-CODE" in found, r.stdout + r.stderr
    assert f"{os.system.__module__}.system" in found["MODEL-PICKLE-CODE"]["title"]
    assert not (in_tmp / "PWNED").exists()


def test_trainer_state_is_a_warning_and_library_functions_are_not(in_tmp: Path) -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    # what the Trainer writes beside a checkpoint's weights
    torch.save(transformers.TrainingArguments(output_dir=str(in_tmp / "out"), report_to=[]), in_tmp / "training_args.bin")
    (in_tmp / "model.safetensors").write_bytes(b"")   # only the pickle matters here
    report = scan_file(in_tmp / "training_args.bin")
    assert report.code == [] and "transformers.training_args.TrainingArguments" in report.known_classes
    found = {o.entry_id for o in scan_model(str(in_tmp)).observations}
    assert "MODEL-PICKLE-OBJECTS" in found and "MODEL-PICKLE-CODE" not in found
    # a function of the same library is not an object being rebuilt: it runs when loaded
    (in_tmp / "x.pt").write_bytes(b"ctransformers.utils.hub\ncached_file\n(Vx\ntR.")
    assert scan_file(in_tmp / "x.pt").code == ["transformers.utils.hub.cached_file"]
