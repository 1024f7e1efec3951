"""The pure halves of `scan --distributed`: launch detection, cross-rank checks, NCCL settings,
the script's device_map, bus bandwidth. No torch needed."""
from __future__ import annotations

import pytest

from doctor.distributed.bandwidth import allreduce_observations, bus_bandwidth, pairs_for
from doctor.distributed.checks import cross_rank_observations, describe_groups, rank_ranges
from doctor.distributed.envchecks import ifname_matches, launch_observations
from doctor.distributed.launch_env import detect_launch, expand_nodelist
from doctor.distributed.rankinfo import compile_cache_info, mount_fs_type
from doctor.distributed.script_split import scan_source
from doctor.probes.script import Source


def ids(observations) -> list[str]:
    return [o.entry_id for o in observations]


# --- launchers ----------------------------------------------------------------------------

def test_torchrun_variables_give_rank_and_world() -> None:
    launch = detect_launch({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                            "GROUP_RANK": "0", "MASTER_ADDR": "n1", "MASTER_PORT": "29500",
                            "TORCHELASTIC_RUN_ID": "x"})
    assert (launch.launcher, launch.rank, launch.world_size, launch.local_rank) == ("torchrun", 3, 8, 1)
    assert launch.torch_vars and launch.master_port == 29500


def test_accelerate_launch_is_told_apart_by_its_variables() -> None:
    launch = detect_launch({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h",
                            "MASTER_PORT": "1", "ACCELERATE_MIXED_PRECISION": "bf16"})
    assert launch.launcher == "accelerate" and launch.world_size == 2


def test_srun_without_master_addr_meets_at_the_first_node_of_the_job() -> None:
    launch = detect_launch({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
                            "SLURM_NODEID": "2", "SLURM_JOB_NODELIST": "gpu[07-09],login1", "SLURM_JOB_ID": "1234"})
    assert (launch.launcher, launch.rank, launch.world_size, launch.local_rank) == ("slurm", 5, 8, 1)
    assert launch.master_addr == "gpu07" and not launch.torch_vars
    assert launch.master_port == 29500 + 1234


def test_a_loopback_master_in_a_multi_node_job_is_a_launch_problem() -> None:
    env = {"RANK": "0", "WORLD_SIZE": "16", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}
    assert detect_launch({**env, "GROUP_WORLD_SIZE": "2"}).problems == (
        "MASTER_ADDR=localhost is a loopback address, but the job spans 2 nodes",)
    assert detect_launch({**env, "GROUP_WORLD_SIZE": "1"}).problems == ()


def test_no_launcher_is_one_process() -> None:
    assert detect_launch({"PATH": "/bin"}).world_size == 1


@pytest.mark.parametrize("nodelist, hosts", [
    ("a", ["a"]), ("a,b", ["a", "b"]), ("gpu[01-03]", ["gpu01", "gpu02", "gpu03"]),
    ("n[1,3-4]x,m", ["n1x", "n3x", "n4x", "m"]),
])
def test_slurm_nodelists_expand(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


# --- cross-rank -----------------------------------------------------------------------------

def test_mismatch_text_names_the_odd_rank_first_and_the_majority_last() -> None:
    records = [{"rank": r, "host": "a" if r < 3 else "b", "facts": {"pkg.trl.version": "1.15.0" if r == 3 else "1.14.0"}}
               for r in range(4)]
    [obs] = [o for o in cross_rank_observations(records) if o.entry_id == "DIST-PACKAGE-MISMATCH"]
    assert obs.values["ranks_text"] == "rank 3 (host b) has trl 1.15.0; ranks 0-2 (host a) have trl 1.14.0"


def test_rank_ranges_compress() -> None:
    assert rank_ranges([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8"


def test_variables_set_on_some_ranks_only() -> None:
    records = [{"rank": 0, "host": "a", "vars": {"NCCL_ALGO": "Ring"}}, {"rank": 1, "host": "b", "vars": {}},
               {"rank": 2, "host": "b", "vars": {}}]
    [obs] = cross_rank_observations(records)
    assert obs.values["ranks_text"] == "rank 0 (host a) has NCCL_ALGO=Ring; ranks 1-2 (host b) have no NCCL_ALGO"


def test_identical_ranks_raise_nothing() -> None:
    record = {"host": "a", "facts": {"pkg.torch.version": "2.13.0", "python.version": "3.11.7",
                                     "torch.version": "2.13.0", "torch.build": "cpu"},
              "runtime": {"device": "cpu"}, "compile_cache": {"writable": True}}
    assert cross_rank_observations([{**record, "rank": 0}, {**record, "rank": 1}]) == []


def test_missing_package_reads_as_no_package() -> None:
    text = describe_groups({"not installed": [{"rank": 0, "host": "a"}], "1.0": [{"rank": 1, "host": "a"},
                                                                                   {"rank": 2, "host": "a"}]}, "peft")
    assert text == "rank 0 (host a) has no peft; ranks 1-2 (host a) have peft 1.0"


def test_two_local_ranks_on_one_card_are_reported_once() -> None:
    gpu = {"device": "cuda:0", "device_name": "L4", "capability": 8.9, "device_uuid": "GPU-1"}
    obs = cross_rank_observations([{"rank": r, "host": "a", "runtime": gpu} for r in range(3)])
    assert ids(obs) == ["DIST-SHARED-GPU"] and obs[0].values["ranks"] == "0-2"


def test_bf16_on_some_ranks_only_is_an_error_of_its_own() -> None:
    a100 = {"device": "cuda:0", "device_name": "A100", "capability": 8.0}
    t4 = {"device": "cuda:0", "device_name": "T4", "capability": 7.5}
    obs = ids(cross_rank_observations([{"rank": 0, "host": "a", "runtime": a100}, {"rank": 1, "host": "b", "runtime": t4}]))
    assert "DIST-BF16-MIXED" in obs and "DIST-GPU-MISMATCH" in obs


# --- NCCL and launch settings --------------------------------------------------------------

@pytest.mark.parametrize("spec, selected", [
    ("eth", ["eth0", "eth1"]), ("=eth0", ["eth0"]), ("^eth,lo", ["docker0", "ib0"]),
    ("^=eth0", ["docker0", "eth1", "ib0", "lo"]), ("ens", []),
])
def test_socket_ifname_follows_nccl_syntax(spec: str, selected: list[str]) -> None:
    assert ifname_matches(spec, ["docker0", "eth0", "eth1", "ib0", "lo"]) == selected


def test_p2p_disable_matters_only_with_several_ranks_on_a_node() -> None:
    one_per_node = [{"rank": r, "host": f"h{r}", "vars": {"NCCL_P2P_DISABLE": "1"}} for r in range(2)]
    two_on_one = [{"rank": r, "host": "h", "vars": {"NCCL_P2P_DISABLE": "1"}} for r in range(2)]
    assert ids(launch_observations(one_per_node)) == []
    obs = launch_observations(two_on_one)
    assert ids(obs) == ["DIST-NCCL-P2P-DISABLED"] and obs[0].values["ranks"] == "ranks 0-1"


def test_srun_ranks_without_torch_variables() -> None:
    records = [{"rank": r, "host": "h", "launcher": "slurm", "world_size": 2, "vars": {}} for r in range(2)]
    assert ids(launch_observations(records)) == ["DIST-LAUNCHER-NO-TORCH-VARS"]


# --- compiled cache -------------------------------------------------------------------------

def test_mount_type_is_the_longest_mount_point() -> None:
    mounts = "/dev/sda1 / ext4 rw 0 0\nserver:/home /home nfs4 rw 0 0\ntmpfs /home/u/tmp tmpfs rw 0 0\n"
    assert mount_fs_type("/home/u/run", mounts) == "nfs4"
    assert mount_fs_type("/home/u/tmp/x", mounts) == "tmpfs"
    assert mount_fs_type("/opt", mounts) == "ext4"


def test_compile_cache_follows_unsloth_compile_location(tmp_path) -> None:
    default = compile_cache_info({}, str(tmp_path))
    assert default["path"] == str(tmp_path / "unsloth_compiled_cache") and default["writable"]
    moved = compile_cache_info({"UNSLOTH_COMPILE_LOCATION": "/nonexistent-root-xyz/cache"}, str(tmp_path))
    assert moved["path"] == "/nonexistent-root-xyz/cache" and moved["from_env"]


# --- the training script ---------------------------------------------------------------------

SCRIPT = """\
import os, torch
from unsloth import FastLanguageModel
a = FastLanguageModel.from_pretrained("m", device_map="auto")
b = FastLanguageModel.from_pretrained("m", device_map={"": int(os.environ["LOCAL_RANK"])})
c = FastLanguageModel.from_pretrained("m", device_map={"model.embed_tokens": 0, "lm_head": "cuda:1"})
d = FastLanguageModel.from_pretrained("m", device_map=0)
e = torch.nn.DataParallel(a)
f = torch.nn.parallel.DistributedDataParallel(a)
"""


def test_script_device_maps_and_dataparallel_at_their_lines() -> None:
    obs = scan_source(Source("train.py", SCRIPT))
    assert [(o.entry_id, o.location.line) for o in obs] == [
        ("DIST-DEVICE-MAP-STRATEGY", 3), ("DIST-DEVICE-MAP-SPLIT", 5), ("DIST-DEVICE-MAP-FIXED", 6),
        ("DIST-DATAPARALLEL", 7)]
    assert obs[1].values["devices"] == "0, cuda:1"


# --- bandwidth ------------------------------------------------------------------------------

def test_bus_bandwidth_is_nccl_tests_formula() -> None:
    algbw, busbw = bus_bandwidth(8 * 10**9, 2.0, 8)   # 8 GB in 2 s over 8 ranks
    assert algbw == pytest.approx(4.0) and busbw == pytest.approx(4.0 * 2 * 7 / 8)
    assert bus_bandwidth(10**9, 1.0, 2) == pytest.approx((1.0, 1.0))


def test_pairs_are_all_pairs_then_a_ring() -> None:
    assert pairs_for(3) == [(0, 1), (0, 2), (1, 2)]
    assert len(pairs_for(8)) == 28
    ring = pairs_for(16)
    assert len(ring) == 16 and (0, 15) in ring


def test_wrong_sum_is_reported_with_what_came_back() -> None:
    obs = allreduce_observations({"backend": "gloo", "world": {"ranks": 2, "ok": False, "expected": 3.0, "got": 4.0}})
    assert ids(obs) == ["DIST-ALLREDUCE-WRONG"] and obs[0].values["got"] == 4.0


def test_gloo_fallback_keeps_every_rank_on_the_cpu() -> None:
    # seen on a 1-GPU machine: rank 0 on cuda:0 and rank 1 on the CPU hung gloo for the timeout
    from doctor.distributed.gather import collective_device

    mixed = [{"runtime": {"device": "cuda:0"}}, {"runtime": {"device": "cpu"}}]
    assert [collective_device(mixed, r) for r in range(2)] == ["cpu", "cpu"]
    gpus = [{"runtime": {"device": "cuda:0"}}, {"runtime": {"device": "cuda:1"}}]
    assert [collective_device(gpus, r) for r in range(2)] == ["cuda:0", "cuda:1"]


def test_findings_of_other_ranks_that_rank_0_does_not_share() -> None:
    from doctor.distributed.rank_only import rank_only_observations
    from doctor.kb import load_knowledge

    hidden = {"gpu.count": 1, "gpu.visible_count": 0}   # CUDA_VISIBLE_DEVICES hides every GPU
    records = [{"rank": 0, "host": "a", "facts": {"gpu.count": 1, "gpu.visible_count": 1}},
               {"rank": 1, "host": "b", "facts": hidden}, {"rank": 2, "host": "b", "facts": hidden}]
    [obs] = rank_only_observations(records, load_knowledge())
    assert obs.values["finding"] == "ENV-CUDA-VISIBLE-HIDES-ALL" and obs.values["ranks"] == "ranks 1-2"
    records[0]["facts"] = hidden
    assert rank_only_observations(records, load_knowledge()) == []


def test_torch_view_of_a_rank_wins_over_nvml() -> None:
    # seen on a 2-GPU machine with CUDA_VISIBLE_DEVICES=0: NVML still listed GPU 1 for rank 1
    nvml = {"gpu.0.name": "NVIDIA H200", "gpu.1.name": "NVIDIA H200", "gpu.0.capability": 9.0, "gpu.1.capability": 9.0}
    records = [{"rank": 0, "local_rank": 0, "host": "a", "facts": nvml,
                "runtime": {"device": "cuda:0", "device_name": "NVIDIA H200", "capability": 9.0}},
               {"rank": 1, "local_rank": 1, "host": "a", "facts": nvml,
                "runtime": {"device": "cpu", "cuda_error": "LOCAL_RANK 1 but only 1 CUDA device(s) visible"}}]
    assert "DIST-RANK-NO-GPU" in ids(cross_rank_observations(records))
