"""`scan --gpus`'s decisions, without GPUs: recorded machine records (fixtures/gpus/) through the
real verdict, link arithmetic, the strategy for a run, the child's output read after a kill, and
the CLI judging a recorded machine (`--gpus-from`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.distributed.gpu_probe import parse_child
from doctor.distributed.gpus_scan import judge, p2p_disable_inherited
from doctor.distributed.links import expected_pair, nvlink_rate, pcie_rate
from doctor.distributed.nvml_topology import bus_key, pair_links
from doctor.distributed.preflight import gpus_facts, gpus_observations
from doctor.distributed.run_info import params_from_folder, params_from_name, run_for, run_from_config, run_from_script
from doctor.distributed.strategy import Run, strategy, topology_class
from tests.helpers.cli import ROOT, run_cli

FIXTURES = ROOT / "fixtures" / "gpus"


def record(name: str, **extra: object) -> dict:
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), **extra}


def ids(rec: dict) -> list[str]:
    return [o.entry_id for o in gpus_observations(rec)]


# --- recorded machines ------------------------------------------------------------------------

def test_a_healthy_8x_h100_nvswitch_machine_has_no_problem_and_every_pair_is_nvlink_rated() -> None:
    rec = record("h100x8-nvswitch")
    assert ids(rec) == ["GPUS-STRATEGY-GENERIC"]
    facts = gpus_facts(rec)
    assert facts["gpus.pair.0-7.level"] == "SYS" and facts["gpus.pair.0-7.nvlink"] is True
    assert facts["gpus.pair.0-7.expected_gbps"] == 18 * 25.0      # NVLink 4: 18 links x 25 GB/s
    assert facts["gpus.peer_copy.7->6"] == "ok"
    # idle links report Gen1: not a finding, and the rated speed uses the maximum generation
    assert not any(i.startswith("GPUS-PCIE") for i in ids(rec))


def test_consumer_pcie_cards_without_p2p_get_a_note_and_the_x8_slot_a_warning() -> None:
    found = gpus_observations(record("rtx4090x2-phb"))
    by_id = {o.entry_id: o for o in found}
    assert by_id["GPUS-P2P-READ-UNCONFIRMED"].values["pairs"] == "0-1"
    assert by_id["GPUS-PCIE-WIDTH-DEGRADED"].values == {"gpu": 1, "width": 8, "max_width": 16,
                                                        "name": "NVIDIA GeForce RTX 4090"}
    assert "GPUS-LINK-SLOW" not in by_id        # 9.6 GB/s over SHM on a Gen4 x8 link is normal
    assert by_id["GPUS-STRATEGY-GENERIC"].values["host_pairs"] == "0-1"


def test_cards_across_sockets_without_nvlink_are_a_host_bridge_topology() -> None:
    rec = record("rtx4090x2-sys")
    assert topology_class(rec["pairs"]) == "host-bridge"
    assert "GPUS-PCIE-WIDTH-DEGRADED" not in ids(rec)


def test_mixed_cards_are_named_and_the_bf16_split_is_found() -> None:
    found = {o.entry_id: o for o in gpus_observations(record("mixed-a100-t4"))}
    assert "Tesla T4" in found["DIST-GPU-MISMATCH"].values["ranks_text"]
    assert "DIST-BF16-MIXED" in found
    # the pair is rated by its slower side: the T4's Gen3 x16
    rec = record("mixed-a100-t4")
    assert expected_pair(rec["gpus"][0], rec["gpus"][1], rec["pairs"]["0-1"]) == (15.8, "PCIe Gen3 x16")


def test_dropped_peer_copies_are_an_error_and_the_p2p_retry_prescribes_the_variable() -> None:
    found = {o.entry_id: o for o in gpus_observations(record("iommu-dropped-copy"))}
    assert found["GPUS-PEER-COPY-CORRUPT"].values["pairs"] == "0->1, 1->0"
    assert found["GPUS-ALLREDUCE-NEEDS-P2P-DISABLE"].values["what"] == "hung"
    assert "GPUS-P2P-READ-UNCONFIRMED" not in found     # NVML said yes; the copy says otherwise


def test_a_hung_allreduce_that_passes_without_p2p_becomes_set_this_variable() -> None:
    rec = record("allreduce-hang-p2p-fix")
    assert ids(rec)[0] == "GPUS-ALLREDUCE-NEEDS-P2P-DISABLE"
    # the bandwidth measured in the retry is what the pair gets with the variable set
    assert gpus_facts(rec)["gpus.pair.0-1.busbw_gbps"] == 12.0
    failed_again = {**rec, "allreduce_retry": rec["allreduce"]}
    found = gpus_observations(failed_again)
    assert [o.entry_id for o in found][0] == "GPUS-ALLREDUCE-FAILED"
    assert "again with NCCL_P2P_DISABLE=1" in found[0].values["retried"]
    inherited = {**rec, "allreduce_retry": None, "p2p_disable_inherited": True}
    assert "already set" in gpus_observations(inherited)[0].values["retried"]


def test_nvlink_running_at_pcie_speed_is_a_degraded_link() -> None:
    found = {o.entry_id: o for o in gpus_observations(record("h100x2-slow-nvlink"))}
    assert found["GPUS-LINK-SLOW"].values["share"] == "8%"
    assert found["GPUS-LINK-SLOW"].values["link"] == "18 NVLink links x 25 GB/s"


def test_rocm_says_what_it_did_not_check() -> None:
    assert ids(record("mi300x2-rocm"))[0] == "GPUS-ROCM"


def test_no_nccl_single_gpu_no_gpu_and_non_cuda_stop_early() -> None:
    rec = record("rtx4090x2-sys")
    no_nccl = {**rec, "torch": {**rec["torch"], "nccl_available": False}}
    del no_nccl["allreduce"]
    assert "GPUS-NO-NCCL" in ids(no_nccl)
    assert ids({**rec, "gpus": rec["gpus"][:1]})[0] == "GPUS-SINGLE"
    assert ids({"torch": {"version": "2.13.0+cpu"}, "gpus": []}) == ["GPUS-NONE"]
    assert ids({"torch": {"version": "2.13.0", "accelerator": "xpu"}, "gpus": []}) == ["GPUS-NON-CUDA"]


# --- strategy for a run -----------------------------------------------------------------------

@pytest.mark.parametrize("name,run,expected", [
    ("rtx4090x2-phb", Run("qlora", 8), "GPUS-STRATEGY-DDP"),
    ("rtx4090x2-phb", Run("lora", 8), "GPUS-STRATEGY-DDP"),            # 14.9 GiB of a 24 GiB card
    ("rtx4090x2-phb", Run("lora", 14), "GPUS-STRATEGY-SHARDING-OVER-PCIE"),
    ("rtx4090x2-phb", Run("full", 8), "GPUS-STRATEGY-DOES-NOT-FIT"),
    ("h100x8-nvswitch", Run("full", 8), "GPUS-STRATEGY-SHARDED"),
    ("h100x8-nvswitch", Run("qlora", 70), "GPUS-STRATEGY-DDP"),
    ("h100x8-nvswitch", Run("full", 70), "GPUS-STRATEGY-DOES-NOT-FIT"),
    ("h100x8-nvswitch", Run(None, None), "GPUS-STRATEGY-GENERIC"),
])
def test_the_strategy_follows_size_method_and_topology(name: str, run: Run, expected: str) -> None:
    rec = record(name)
    assert strategy(run, rec["gpus"], rec["pairs"])[0] == expected


def test_model_sizes_come_from_names_and_safetensors_headers(tmp_path: Path) -> None:
    assert params_from_name("unsloth/Meta-Llama-3.1-8B-bnb-4bit") == 8.0
    assert params_from_name("unsloth/Qwen2.5-0.5B-Instruct") == 0.5
    assert params_from_name("mistralai/Mixtral-8x7B-v0.1") == 56.0
    assert params_from_name("unsloth/SmolLM2-135M") == 0.135
    assert params_from_name("my-model") is None
    import torch
    from safetensors.torch import save_file

    save_file({"a.weight": torch.zeros(1000, 1000), "b.weight": torch.zeros(500, 1000)}, str(tmp_path / "model.safetensors"))
    assert params_from_folder(str(tmp_path)) == 0.002     # 1.5 M parameters, rounded to 3 decimals
    assert run_for([], [str(tmp_path)], method="full").params_b == 0.002


def lora_script(folder: Path, loader_args: str) -> Path:
    """A training script: Unsloth's loader called with `loader_args`, then a LoRA adapter."""
    script = folder / "train.py"
    script.write_text("from unsloth import FastLanguageModel\n"
                      f"model, tok = FastLanguageModel.from_pretrained({loader_args})\n"
                      "model = FastLanguageModel.get_peft_model(model, r=16)\n")
    return script


def test_a_training_script_gives_method_and_size(tmp_path: Path) -> None:
    script = lora_script(tmp_path, "model_name='unsloth/Llama-3.2-3B-Instruct', max_seq_length=2048, load_in_4bit=False")
    found = run_from_script(str(script))
    assert (found.method, found.params_b, found.source) == ("lora", 3.0, f"{script} (unsloth/Llama-3.2-3B-Instruct)")
    assert 5 < found.state_gib < 8   # 16-bit weights (about 6 GiB) + LoRA state, as the VRAM estimate sizes it
    script.write_text("from unsloth import FastLanguageModel\n"
                      "model, tok = FastLanguageModel.from_pretrained('unsloth/Qwen3-14B', full_finetuning=True)\n")
    assert run_from_script(str(script)).method == "full"


CONFIGS = ROOT / "fixtures" / "configs"


@pytest.mark.parametrize("config,expected", [
    ("axolotl/llama-3_qlora.yml", Run("qlora", 8.0)),                       # adapter: qlora
    ("axolotl/mistral_lora.yml", Run("lora", 7.0)),                         # adapter: lora
    ("llama-factory/train_full_qwen3_full_sft.yaml", Run("full", 4.0)),     # finetuning_type: full
    ("llama-factory/train_lora_qwen3_lora_sft.yaml", Run("lora", 4.0)),
])
def test_a_real_training_config_gives_method_and_size(config: str, expected: Run) -> None:
    found = run_from_config(str(CONFIGS / config))
    assert (found.method, found.params_b) == (expected.method, expected.params_b)
    assert str(CONFIGS / config) in found.source


def test_a_file_that_is_no_training_config_gives_no_run() -> None:
    assert run_from_config(str(CONFIGS / "llama-factory" / "deepspeed_ds_z3_config.json")) == Run()


def test_scan_gpus_takes_the_run_from_config() -> None:
    """The verdict for the config's run: a full fine-tune of a 4B model on two 24 GiB PCIe cards."""
    done = run_cli("scan", "--gpus", "--gpus-from", str(FIXTURES / "rtx4090x2-phb.json"), "--no-config",
                   "--config", str(CONFIGS / "llama-factory" / "train_full_qwen3_full_sft.yaml"), "--format", "json")
    report = json.loads(done.stdout)
    assert report["facts"]["gpus.run.method"] == "full" and report["facts"]["gpus.run.params_b"] == 4.0, done.stderr
    assert report["facts"]["gpus.strategy"] != "generic"
    # one size for one run: the verdict's need is the VRAM note's weights and training state, with
    # the Trainer's 32-bit AdamW (LLaMA-Factory sets no optim): 4B x (4 + 4 + 8) bytes
    estimate = next(f for f in report["findings"] if f["id"] == "RUN-VRAM-ESTIMATE")
    assert report["facts"]["gpus.run.need_gib"] == 59.6
    assert "optimizer state 29.8 GiB" in json.dumps(estimate)


def test_device_map_auto_is_flagged_for_ddp_but_not_when_the_model_must_be_split(tmp_path: Path) -> None:
    script = lora_script(tmp_path, "'unsloth/Llama-3.1-8B', load_in_4bit=False, device_map='balanced'")
    rec = record("rtx4090x2-phb")
    fits = judge(rec, run_from_script(str(script)), [str(script)])
    assert {"GPUS-STRATEGY-DDP", "GPUS-DEVICE-MAP-SPLIT-FITS"} <= {o.entry_id for o in fits.observations}
    too_big = judge(rec, Run("lora", 14.0, "test"), [str(script)])
    found = {o.entry_id for o in too_big.observations}
    assert "GPUS-STRATEGY-SHARDING-OVER-PCIE" in found and "GPUS-DEVICE-MAP-SPLIT-FITS" not in found
    assert "DIST-DEVICE-MAP-STRATEGY" not in found


# --- links, NVML, the child's output --------------------------------------------------------------

def test_link_rates() -> None:
    assert nvlink_rate("7.0") == 25.0 and nvlink_rate("10.0") == 50.0 and nvlink_rate("6.0") == 20.0
    assert pcie_rate({"pcie": {"max_gen": 4, "width": 16}}) == 31.5
    assert pcie_rate({"pcie": {"max_gen": 5, "width": 16, "gen": 1}}) == 63.0     # idle Gen1 ignored
    assert pcie_rate({}) is None


def test_nvlink_counts_through_switches_and_directly() -> None:
    keys = ["0000:18:00", "0000:2a:00", "0000:3a:00"]
    switch = [["0000:c1:00"] * 18, ["0000:c2:00"] * 18, []]
    assert pair_links(keys, switch, 0, 1) == 18 and pair_links(keys, switch, 0, 2) == 0
    direct = [["0000:2a:00"] * 4, ["0000:18:00"] * 4, []]
    assert pair_links(keys, direct, 0, 1) == 4
    assert bus_key("00000000:18:00.0") == bus_key([0, 0x18, 0]) == "0000:18:00"


MARK = "UNSLOTH_DOCTOR_GPUS "
INFO = MARK + json.dumps({"torch": {"version": "2.11.0", "cuda": "13.0"},
                          "gpus": [{"index": i, "name": "X", "capability": "9.0"} for i in range(3)]})


def test_a_killed_peer_copy_child_names_the_pair_that_hung() -> None:
    out = "\n".join([INFO, MARK + '{"start": "0->1", "peer_access": true}', MARK + '{"copy": "0->1", "status": "ok"}',
                     MARK + '{"start": "0->2", "peer_access": true}', "some driver noise"])
    rec = parse_child(out, timed_out=True, timeout_s=30)
    assert rec["peer_copy"]["0->1"] == "ok"
    assert rec["peer_copy"]["0->2"].startswith("hung: ")
    assert rec["peer_copy"]["2->1"] == "inconclusive: not reached before the deadline"
    assert [o.entry_id for o in gpus_observations(rec)][:2] == ["GPUS-PEER-COPY-HUNG", "GPUS-PEER-COPY-INCONCLUSIVE"]


def test_a_child_that_never_reported_is_a_torch_error() -> None:
    rec = parse_child("Segmentation fault", timed_out=False, timeout_s=30)
    assert "ended without a report: Segmentation fault" in rec["torch"]["error"]
    assert parse_child("", timed_out=True, timeout_s=5)["torch"]["error"].endswith("did not answer within 5 s")


def test_nccl_p2p_disable_is_read_as_nccl_reads_it() -> None:
    assert p2p_disable_inherited({"NCCL_P2P_DISABLE": "1"}) and p2p_disable_inherited({"NCCL_P2P_DISABLE": " 0x1"})
    assert not p2p_disable_inherited({"NCCL_P2P_DISABLE": "true"}) and not p2p_disable_inherited({})


# --- the CLI on a recorded machine ----------------------------------------------------------------

def test_scan_gpus_from_a_recorded_machine_reports_the_fix(tmp_path: Path) -> None:
    done = run_cli("scan", "--gpus", "--gpus-from", str(FIXTURES / "allreduce-hang-p2p-fix.json"), "--format", "json")
    report = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr
    found = [f["id"] for f in report["findings"]]
    assert "GPUS-ALLREDUCE-NEEDS-P2P-DISABLE" in found
    assert report["facts"]["gpus.pair.0-1.level"] == "PXB"


def test_a_bad_machine_record_is_a_located_message(tmp_path: Path) -> None:
    bad = tmp_path / "record.json"
    bad.write_text('{"torch": {"version": 1},\n "gpus": [}\n')
    done = run_cli("scan", "--gpus", "--gpus-from", str(bad))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{bad}:2:" in done.stderr


def test_a_record_of_the_wrong_shape_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "record.json"
    bad.write_text('{"torch": {}, "gpus": [{"name": "X"}]}')
    done = run_cli("scan", "--gpus", "--gpus-from", str(bad))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "integer 'index'" in done.stderr
