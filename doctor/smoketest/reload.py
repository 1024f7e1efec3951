"""Reload a merged export with plain transformers in a process that never imported Unsloth.

    python -m doctor.smoketest.reload MERGED_DIR IDS_JSON OUT_FILE
    python -m doctor.smoketest.reload --serve      (imports first, then reads the three from stdin)

Unsloth patches transformers' model classes in the process that imports it (a reload there
runs Unsloth's forward, not transformers'), so the proof that an export needs no Unsloth and
no remote code has to run in a fresh interpreter. Writes the logits (fp32, CPU) with torch.save
and prints the stored dtype on its last line.
"""
from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    if argv == ["--serve"]:
        # Started early (while the GPU trains) so the 5-10 s of imports overlap other work.
        merged, ids_path, out = json.loads(sys.stdin.readline())
    else:
        merged, ids_path, out = argv

    model = AutoModelForCausalLM.from_pretrained(merged, trust_remote_code=False, local_files_only=True)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    model = model.float().eval()
    ids = torch.tensor(json.loads(open(ids_path).read()))
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    torch.save({"logits": logits, "dtype": dtype, "class": type(model).__name__,
                "unsloth_loaded": "unsloth" in sys.modules}, out)
    print(dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
