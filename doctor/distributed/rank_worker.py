"""One local rank of `scan --gpus` (run as `python -m doctor.distributed.rank_worker` by
local_ranks.py, which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT as torchrun would).

The same steps as a rank of `scan --distributed`: meet over gloo, learn each rank's device,
then the checked all-reduce suite (NCCL when every rank has a GPU, else gloo). Rank 0 writes the
result as JSON to UNSLOTH_DOCTOR_RESULT_FILE.
"""
from __future__ import annotations

import json
import os
from datetime import timedelta


def main() -> int:
    from doctor.distributed import gather
    from doctor.distributed.allreduce import run_allreduce_suite
    from doctor.distributed.launch_env import detect_launch

    timeout_s = float(os.environ.get("UNSLOTH_DOCTOR_TIMEOUT", "60"))
    torch, dist = gather.import_torch()
    launch = detect_launch(os.environ)
    gather.join_group(dist, launch, timeout_s)
    result: dict[str, object]
    try:
        runtime = gather.runtime_facts(torch, launch.local_rank)
        records = gather.gather(dist, {"rank": launch.rank, "runtime": runtime}, launch.world_size)
        nccl = gather.nccl_possible(records)
        if nccl:
            gather.prefer_blocking_wait()
        backend = "nccl" if nccl else "gloo"
        device = torch.device(gather.collective_device(records, launch.rank))
        try:
            result = run_allreduce_suite(dist, torch, backend, device, launch.rank, launch.world_size,
                                         ["local"] * launch.world_size, timedelta(seconds=timeout_s))
        except Exception as exc:  # noqa: BLE001 - a failed collective is the finding
            result = {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}
        result["runtime"] = [r["runtime"] for r in records]
    finally:
        gather.leave_group(dist)
    if launch.rank == 0:
        with open(os.environ["UNSLOTH_DOCTOR_RESULT_FILE"], "w", encoding="utf-8") as fh:
            json.dump(result, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
