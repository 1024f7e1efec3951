"""The pattern set answers exactly as each pattern alone, with its bounded gaps loosened."""
from __future__ import annotations

from doctor.kb import load_knowledge
from doctor.textmatch import PatternSet, compile_pattern, loosened

LINES = [
    "RTX 5090 not supported? training fails right after loading",
    "RTX 5090 is a great card, and much later in a long line we say it is not supported",
    "保存gguf时显存不足",
    "保存模型后，推理时显存不足",
    "Getting OOM when saving the model to GGUF on colab",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.95 GiB.",
    "nothing to see here",
]


def test_loosening_only_unbounds_bounded_gaps():
    assert loosened(r"(?i)\bfoo\b.{0,40}\bbar") == r"(?i)\bfoo\b.*\bbar"
    assert loosened(r"(保存)[^，,。]{0,10}(时)") == r"(保存)[^，,。]*(时)"
    assert loosened(r"a{2,3}b\d{4}") == r"a{2,3}b\d{4}"   # other counts are kept


def test_the_set_gives_each_pattern_its_own_answer():
    patterns = [s.pattern for e in load_knowledge().entries for s in e.symptoms]
    assert any(loosened(p) != p for p in patterns)
    pattern_set = PatternSet(patterns)
    gap = "x" * 300
    for line in [*LINES, f"RTX 5090 {gap} not supported", f"bf16 {gap} is not supported on T4"]:
        expected = sorted(i for i, p in enumerate(patterns) if compile_pattern(p).search(line))
        assert sorted(pattern_set.match(line)) == expected, line
