"""The batched fast path is an optimisation only: with it or without it (every row checked
one by one), a scan reports the same findings at the same places. Property-tested over files
of random rows in every format, with the problems the content checks look for mixed in."""
from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doctor.probes.dataset import DatasetOptions, scan_dataset

WORDS = st.sampled_from(["hello", "world", "", "  ", "café", "Ã©", "\u0000", "\ufffd", "<|im_start|>",
                         "[INST]", "a\r\nb", "x" * 300, "数据", "\u0085"])
TEXT = st.lists(WORDS, max_size=4).map(" ".join) | WORDS
# Never blank: rows that keep a batch on the fast path while holding a text problem.
SOME_TEXT = st.sampled_from(["hello", "Ã©", "nul\u0000", "lost \ufffd", "<|im_start|>", "[INST] x",
                             "a\r\nb", "c1 \u0085", "café 数据"])
ROLE = st.sampled_from(["user", "assistant", "system", "human", "gpt", "tool", "narrator", None, 3])
TURN = st.fixed_dictionaries({"role": ROLE, "content": TEXT})
SHARE = st.fixed_dictionaries({"from": ROLE, "value": TEXT})
ROW = st.one_of(
    st.fixed_dictionaries({"instruction": TEXT, "input": TEXT, "output": TEXT}),
    st.fixed_dictionaries({"instruction": TEXT, "output": st.one_of(TEXT, st.none(), st.integers(-1000, 1000))}),
    st.fixed_dictionaries({"text": TEXT}),
    st.fixed_dictionaries({"prompt": TEXT, "completion": TEXT}),
    st.fixed_dictionaries({"messages": st.lists(TURN, max_size=5)}),
    st.fixed_dictionaries({"conversations": st.lists(SHARE, max_size=5)}),
    st.fixed_dictionaries({"prompt": TEXT, "chosen": TEXT, "rejected": TEXT}),
    # Preference answers as one message or a list of them, one side missing, KTO labels, and
    # assistant turns that only call tools.
    st.fixed_dictionaries({"conversations": st.lists(SHARE, max_size=3),
                           "chosen": SHARE | TEXT | st.lists(TURN, max_size=2), "rejected": SHARE | st.none()}),
    st.fixed_dictionaries({"prompt": TEXT, "chosen": TEXT | st.lists(TURN, max_size=2)}),
    st.fixed_dictionaries({"prompt": TEXT, "completion": TEXT, "label": st.booleans() | TEXT}),
    st.fixed_dictionaries({"messages": st.lists(TURN, max_size=3), "label": st.booleans() | st.none()}),
    st.fixed_dictionaries({"messages": st.lists(TURN | st.fixed_dictionaries({
        "role": st.just("assistant"), "content": st.none() | st.just(""),
        "tool_calls": st.lists(st.just({"type": "function", "function": {"name": "f", "arguments": {}}}),
                               max_size=1)}), max_size=4)}),
)


def located(path: Path, fast: bool) -> list:
    result = scan_dataset(str(path), DatasetOptions(cap=100_000, long_row_bytes=400, fast_path=fast))
    return sorted((o.entry_id, o.location.line, o.location.column, repr(sorted(o.values.items())))
                  for o in result.observations)


def clean_row(kind: str, i: int) -> dict:
    if kind == "alpaca":
        return {"instruction": f"question {i}", "input": "", "output": f"answer {i}"}
    if kind == "kto":
        return {"prompt": f"question {i}", "completion": f"answer {i}", "label": i % 2 == 0}
    if kind == "preference":
        return {"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
    return {"messages": [{"role": "user", "content": f"question {i}"},
                         {"role": "assistant", "content": f"answer {i}"}]}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(odd=st.lists(ROW, min_size=1, max_size=8), kind=st.sampled_from(["alpaca", "messages", "kto", "preference"]),
       size=st.integers(300, 1500), data=st.data())
def test_fast_and_row_by_row_agree(tmp_path: Path, odd: list, kind: str, size: int, data) -> None:
    # Long runs of one clean format (batches the fast path takes) with random rows dropped in
    # (batches it must hand to the row-by-row check).
    rows = [clean_row(kind, i) for i in range(size)]
    # Rows of the same shape whose text may still hold a problem: they keep a batch uniform.
    # Mostly never blank, sometimes anything (blank, None, a number): both must agree.
    field = SOME_TEXT | SOME_TEXT | TEXT | st.none() | st.integers(-1000, 1000)
    same = {
        "alpaca": st.fixed_dictionaries({"instruction": field, "input": TEXT, "output": field}),
        "messages": st.fixed_dictionaries({"messages": st.tuples(
            st.fixed_dictionaries({"role": st.just("user"), "content": field}),
            st.fixed_dictionaries({"role": st.just("assistant"), "content": field})).map(list)}),
        "kto": st.fixed_dictionaries({"prompt": field, "completion": field,
                                      "label": st.booleans() | field}),
        "preference": st.fixed_dictionaries({"prompt": field, "chosen": field, "rejected": field | SHARE}),
    }[kind]
    odd = odd + data.draw(st.lists(same, min_size=1, max_size=6))
    for row in odd:
        rows.insert(data.draw(st.integers(0, len(rows))), row)
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    assert located(path, fast=True) == located(path, fast=False)
