"""Fuzzing: random bytes and mutated real files into every probe of the registry and into
explain. Nothing may escape as an exception, nothing may run past a bound, and the CLI exits
0, 1 or 2 only (3 would be a bug of ours, which is what this hunts)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doctor.probes import registry
from doctor.probes.base import ProbeContext, Target
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.deadline import deadline

BOUND_S = 10.0   # a probe on a few KB that takes longer than this is a hang, not slowness

# Real files of every kind a probe reads, to mutate: what nobody wrote for these tests.
SEEDS: dict[str, list[Path]] = {
    ".jsonl": [ROOT / "fixtures/demo/data/train.jsonl"],
    ".py": [ROOT / "fixtures/demo/train.py", ROOT / "fixtures/distributed/ddp_train.py"],
    ".yaml": [ROOT / "fixtures/demo/config.yaml"],
}


def mutate(data: bytes, ops: list[tuple[int, int, bytes]]) -> bytes:
    """Each op: (kind, position, bytes): flip, delete, insert, duplicate or truncate there."""
    out = bytearray(data)
    for kind, pos, blob in ops:
        at = pos % (len(out) + 1)
        if kind == 0 and out:
            out[at % len(out)] ^= 0xFF
        elif kind == 1:
            del out[at:at + len(blob) + 1]
        elif kind == 2:
            out[at:at] = blob
        elif kind == 3:
            out[at:at] = out[at:at + 64]
        else:
            del out[at:]
    return bytes(out)


_OPS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.binary(max_size=16)), max_size=8)
# CI runs the same examples every time (derandomize); FUZZ_RANDOM=1 FUZZ_EXAMPLES=400 hunts.
_RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
_FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None, derandomize=not _RANDOM,
                 database=None if not _RANDOM else settings.default.database,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
FILE_PROBES = [(p.name, suffix) for p in registry.probes() if p.suffixes for suffix in p.suffixes]


def run_file_probe(kb, probe_name: str, path: Path) -> None:
    probe = registry.get(probe_name)
    with deadline(BOUND_S):
        result = probe.run(Target(probe_name, str(path)), ProbeContext(kb))
    for obs in result.observations:
        assert obs.entry_id in kb, obs.entry_id     # every id it emits is a knowledge entry


@pytest.mark.parametrize("probe_name,suffix", FILE_PROBES)
@_FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_into_every_file_probe(knowledge_base, tmp_path_factory, probe_name: str, suffix: str,
                                            data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    run_file_probe(knowledge_base, probe_name, path)


@pytest.mark.parametrize("suffix", sorted(SEEDS))
@_FUZZ
@given(pick=st.integers(0, 10), ops=_OPS)
def test_mutated_real_files_into_their_probe(knowledge_base, tmp_path_factory, suffix: str, pick: int,
                                             ops: list) -> None:
    seeds = SEEDS[suffix]
    seed = seeds[pick % len(seeds)]
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(mutate(seed.read_bytes(), ops))
    probe = registry.probe_for_file(path)
    assert probe is not None
    run_file_probe(knowledge_base, probe.name, path)


@_FUZZ
@given(ops=_OPS, cut=st.integers(0, 400))
def test_mutated_gguf_files(knowledge_base, tmp_path_factory, ops: list, cut: int) -> None:
    pytest.importorskip("gguf")
    from doctor.probes.gguf import write_example_gguf

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "model.gguf"
    write_example_gguf(path, {"output.weight": [8, 16], "norm.weight": [16]}, tokens=20)
    data = path.read_bytes()
    path.write_bytes(mutate(data[: max(0, len(data) - cut)], ops))
    run_file_probe(knowledge_base, "gguf", path)


@_FUZZ
@given(config=st.binary(max_size=2048), index=st.binary(max_size=2048), tensors=st.binary(max_size=2048))
def test_random_model_folders(knowledge_base, tmp_path_factory, config: bytes, index: bytes, tensors: bytes) -> None:
    folder = tmp_path_factory.mktemp("model")
    (folder / "config.json").write_bytes(config)
    (folder / "model.safetensors.index.json").write_bytes(index)
    (folder / "model-00001-of-00001.safetensors").write_bytes(tensors)
    (folder / "tokenizer_config.json").write_bytes(config[::-1])
    with deadline(BOUND_S):
        result = registry.get("model").run(Target("model", str(folder)), ProbeContext(knowledge_base))
    assert all(o.entry_id in knowledge_base for o in result.observations)


_LOGS = sorted((ROOT / "fixtures/tracebacks").glob("*.yaml")) + sorted((ROOT / "fixtures/logs").glob("*.log"))


@_FUZZ
@given(data=st.binary(max_size=8192))
def test_random_bytes_into_explain(knowledge_base, data: bytes) -> None:
    import io

    from doctor.explainer import diagnose_stream

    with deadline(BOUND_S):
        diagnose_stream(io.BytesIO(data), knowledge_base, facts={}, top=3)


@_FUZZ
@given(pick=st.integers(0, 10_000), ops=_OPS)
def test_mutated_real_logs_into_explain(knowledge_base, pick: int, ops: list) -> None:
    import io

    from doctor.explainer import diagnose_stream

    data = mutate(_LOGS[pick % len(_LOGS)].read_bytes(), ops)
    with deadline(BOUND_S):
        diagnose_stream(io.BytesIO(data), knowledge_base, facts={}, top=3)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=2048), suffix=st.sampled_from([s for _, s in FILE_PROBES]))
def test_the_cli_exits_0_1_or_2_on_anything(tmp_path_factory, data: bytes, suffix: str) -> None:
    folder = tmp_path_factory.mktemp("cli")
    (folder / f"input{suffix}").write_bytes(data)
    start = time.perf_counter()
    scan = run_cli("scan", str(folder), "--no-env", "--format", "json", timeout=60)
    assert scan.returncode in (0, 1, 2), scan.stderr[-2000:]
    assert scan.returncode == 2 or json.loads(scan.stdout)["tool"]["name"] == "unsloth-doctor"
    explain = run_cli("explain", "--no-env", str(folder / f"input{suffix}"), timeout=60)
    assert explain.returncode in (0, 1, 2), explain.stderr[-2000:]
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("text", ["=\n", "a: !!python/object:os.system x\n", "a: !custom 1\n"])
def test_yaml_tags_without_a_constructor_are_syntax_findings(knowledge_base, tmp_path, text: str) -> None:
    """Found by this fuzz test: `=` is YAML's 'value' tag, which safe loading cannot build."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    run_file_probe(knowledge_base, "config", path)
