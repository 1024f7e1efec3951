"""Format detection by the rules trl applies, and the checks keyed to it: preference data in its
three shapes, KTO, tool calls, and format problems that every row of a file shares."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from doctor.probes.dataset import DatasetOptions, scan_dataset
from doctor.probes.dataset.schema import classify

RANKING = {"conversations": [{"from": "human", "value": "Which is larger, 2 or 3?"}],
           "chosen": {"from": "gpt", "value": "3 is larger."},
           "rejected": {"from": "gpt", "value": "2 is larger."}}
CONVERSATIONAL = {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
                  "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}]}


def write(tmp_path: Path, rows: list, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def scan(path: Path, **options):
    return scan_dataset(str(path), DatasetOptions(**options))


def problems(result) -> list[tuple[str, int | None]]:
    """(id, line) of every finding but the file-level facts about the format."""
    return sorted((o.entry_id, o.location.line) for o in result.observations
                  if o.entry_id not in ("DATA-SCHEMA-SHAREGPT", "DATA-SCHEMA-MIXED"))


@pytest.mark.parametrize("keys, schema", [
    (("conversations", "chosen", "rejected"), "preference"),   # LLaMA-Factory ranking rows
    (("messages", "chosen", "rejected"), "preference"),
    (("conversations", "chosen"), "preference"),               # one side: still preference, unpaired
    (("prompt", "completion", "label"), "kto"),
    (("messages", "label"), "kto"),                             # LLaMA-Factory kto_tag -> label
    (("conversations", "kto_tag"), "kto"),
    (("instruction", "input", "output", "text"), "text"),       # trl trains on dataset_text_field="text"
    (("input", "output", "text"), "text"),
    (("text", "label"), "text"),                                # a classification set is still text
])
def test_trl_order_of_formats(keys: tuple, schema: str) -> None:
    assert classify(keys).name == schema


@pytest.mark.parametrize("name", ["dpo.json", "dpo.jsonl"])
def test_llamafactory_ranking_rows_are_clean_preference_data(tmp_path: Path, name: str) -> None:
    rows = [dict(RANKING, chosen={"from": "gpt", "value": f"3 is larger ({i})."}) for i in range(300)]
    result = scan(write(tmp_path, rows, name))
    assert result.facts["dataset.schema"] == "preference"
    assert problems(result) == []


def test_conversational_and_standard_preference_rows_are_clean(tmp_path: Path) -> None:
    rows = [dict(CONVERSATIONAL, rejected=[*CONVERSATIONAL["rejected"][:1], {"role": "assistant", "content": f"no {i}"}])
            for i in range(3)]
    rows += [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
             {"prompt": [{"role": "user", "content": "Sky?"}], "chosen": [{"role": "assistant", "content": "Blue."}],
              "rejected": [{"role": "assistant", "content": "Green."}]}]
    assert problems(scan(write(tmp_path, rows))) == []


def test_preference_shape_problems_are_named(tmp_path: Path) -> None:
    rows = [
        RANKING,
        dict(RANKING, chosen={"value": "no role"}),                       # a message without a role
        dict(RANKING, rejected=[{"role": "assistant"}]),                  # a message without content
        dict(RANKING, chosen=3),                                          # not a shape trl reads
        {"conversations": RANKING["conversations"], "chosen": RANKING["chosen"]},   # one side only
        {"prompt": "q", "chosen": "   ", "rejected": "b"},
    ]
    found = problems(scan(write(tmp_path, rows)))
    assert ("DATA-CHAT-BAD-TURN", 2) in found and ("DATA-CHAT-BAD-TURN", 3) in found
    assert ("DATA-FIELD-TYPE", 4) in found
    assert ("DATA-PREF-UNPAIRED", 5) in found
    assert ("DATA-FIELD-EMPTY", 6) in found
    assert not [f for f in found if f[1] == 1]
    assert not [f for f in found if f[0] in ("DATA-CHAT-NO-ASSISTANT", "DATA-FIELD-MISSING")]


def test_kto_rows_need_a_bool_label(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "completion": "a", "label": True},
            {"prompt": "q", "completion": "b", "label": "good"},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "label": False}]
    result = scan(write(tmp_path, rows))
    assert result.facts["dataset.schema"] == "kto"
    assert problems(result) == [("DATA-FIELD-TYPE", 2)]


def test_tool_calls_without_content_and_tool_results_are_valid(tmp_path: Path) -> None:
    call = {"type": "function", "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}
    rows = [{"messages": [{"role": "user", "content": "What time is it?"},
                          {"role": "assistant", "tool_calls": [call]},
                          {"role": "tool", "content": "12:00"},
                          {"role": "assistant", "content": "It is noon."}]},
            {"messages": [{"role": "user", "content": "And now?"},
                          {"role": "assistant", "content": None, "tool_calls": [call]},
                          {"role": "tool", "name": "get_time", "content": "12:01"},
                          {"role": "assistant", "content": "", "tool_calls": [call]},
                          {"role": "tool", "content": "12:02"},
                          {"role": "assistant", "content": "A minute past noon."}]},
            {"conversations": [{"from": "human", "value": "Weather?"},
                               {"from": "function_call", "value": "{\"name\": \"weather\", \"arguments\": {}}"},
                               {"from": "observation", "value": "{\"sky\": \"blue\"}"},
                               {"from": "gpt", "value": "Sunny."}], "tools": "[]"}]
    # valid for chat templates; only standardize_sharegpt cannot map LLaMA-Factory's tool roles
    assert problems(scan(write(tmp_path, rows))) == [("DATA-SHAREGPT-UNMAPPED-ROLE", 3)]


def test_an_assistant_turn_without_content_or_tool_calls_is_still_bad(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": []}]}]
    found = problems(scan(write(tmp_path, rows)))
    assert ("DATA-CHAT-BAD-TURN", 1) in found and ("DATA-CHAT-EMPTY-TURN", 2) in found


def test_a_format_problem_on_every_row_is_one_finding(tmp_path: Path) -> None:
    rows = [{"query": f"q{i}", "response": "r", **({"history": []} if i % 2 else {})} for i in range(25)]
    result = scan(write(tmp_path, rows))
    unknown = [o for o in result.observations if o.entry_id == "DATA-SCHEMA-UNKNOWN"]
    assert len(unknown) == 1
    assert unknown[0].values["count"] == 25 and unknown[0].values["first_lines"] == [1, 2, 3]
    assert unknown[0].values["where"].startswith("All 25 rows")
    assert not [o for o in result.observations if o.entry_id == "DATA-MORE-LINES"]


def test_a_format_problem_on_some_rows_stays_per_row(tmp_path: Path) -> None:
    rows = [{"question": "a", "answer": "b"}, {"question": "c", "answer": "d"}, {"text": "fine"}]
    unknown = [o for o in scan(write(tmp_path, rows)).observations if o.entry_id == "DATA-SCHEMA-UNKNOWN"]
    assert [o.location.line for o in unknown] == [1, 2]
    assert unknown[0].values["where"] == "Line 1, column 1"


def test_a_tool_result_right_after_a_user_turn_is_out_of_order(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "Time?"}, {"role": "tool", "content": "12:00"},
                          {"role": "assistant", "content": "Noon."}]},
            {"conversations": [{"from": "human", "value": "Time?"}, {"from": "observation", "value": "12:00"},
                               {"from": "gpt", "value": "Noon."}]},
            {"messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello."}]}]
    found = [(o.entry_id, o.location.line, o.values.get("turn")) for o in scan(write(tmp_path, rows)).observations
             if o.entry_id == "DATA-CHAT-NOT-ALTERNATING"]
    assert found == [("DATA-CHAT-NOT-ALTERNATING", 1, 1), ("DATA-CHAT-NOT-ALTERNATING", 2, 1)]
