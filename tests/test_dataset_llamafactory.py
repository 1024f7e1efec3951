"""LLaMA-Factory's formats recognised for what they are, each said once per file with the
conversion trl and Unsloth need; and the columns that decided a file's format."""
from __future__ import annotations

import json
from pathlib import Path

from doctor.probes.dataset import scan_dataset


def write(tmp_path: Path, rows: list, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(rows, indent=2))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ids(path: Path) -> list[str]:
    return sorted(o.entry_id for o in scan_dataset(str(path)).observations)


def v1_turn(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "value": text}], "loss_weight": 1.0}


def test_v1_content_parts_are_one_finding_not_an_empty_turn_per_row(tmp_path: Path) -> None:
    rows = [{"messages": [v1_turn("user", f"hi {i}"), v1_turn("assistant", "hello")]} for i in range(40)]
    result = scan_dataset(str(write(tmp_path, rows)))
    assert [o.entry_id for o in result.observations] == ["DATA-LF-CONTENT-PARTS"]
    assert result.observations[0].values["count"] == 40


def test_v1_reasoning_and_tool_call_parts_hold_text(tmp_path: Path) -> None:
    call = json.dumps({"name": "f", "arguments": {}})
    rows = [{"messages": [v1_turn("user", "q"),
                          {"role": "assistant", "content": [{"type": "reasoning", "value": "think"},
                                                            {"type": "tool_call", "value": call}]},
                          v1_turn("tool", "result"), v1_turn("assistant", "done")], "tools": "[]"}] * 1
    assert ids(write(tmp_path, rows)) == ["DATA-LF-CONTENT-PARTS"]


def test_an_empty_v1_text_part_is_still_an_empty_turn(tmp_path: Path) -> None:
    rows = [{"messages": [v1_turn("user", "q"), v1_turn("assistant", " ")]}]
    assert "DATA-CHAT-EMPTY-TURN" in ids(write(tmp_path, rows))


def test_v1_preference_rows_are_recognised(tmp_path: Path) -> None:
    rows = [{"chosen_messages": [v1_turn("user", f"2+{i}?"), v1_turn("assistant", "4")],
             "rejected_messages": [v1_turn("user", f"2+{i}?"), v1_turn("assistant", "5")]} for i in range(3)]
    result = scan_dataset(str(write(tmp_path, rows)))
    assert [o.entry_id for o in result.observations] == ["DATA-SCHEMA-LF-PREFERENCE"]
    assert result.facts["dataset.schema"] == "llamafactory-v1-preference"


def test_sharegpt_tool_roles_say_standardize_sharegpt_cannot_map_them(tmp_path: Path) -> None:
    call = {"from": "function_call", "value": json.dumps({"name": "w", "arguments": {}})}
    rows = [{"conversations": [{"from": "human", "value": f"weather {i}?"}, call,
                               {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}],
             "tools": "[]"} for i in range(30)]
    rows += [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}], "tools": "[]"}]
    result = scan_dataset(str(write(tmp_path, rows, "data.json")))
    found = {o.entry_id: o for o in result.observations}
    assert sorted(found) == ["DATA-SCHEMA-SHAREGPT", "DATA-SHAREGPT-UNMAPPED-ROLE"]
    unmapped = found["DATA-SHAREGPT-UNMAPPED-ROLE"]
    assert unmapped.values["roles"] == "function_call, observation" and unmapped.values["count"] == 30


def test_image_markers_with_an_images_column(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "<image>Who?"}, {"role": "assistant", "content": "Kane."}],
             "images": [f"{i}.jpg"]} for i in range(3)]
    result = scan_dataset(str(write(tmp_path, rows, "data.json")))
    assert [o.entry_id for o in result.observations] == ["DATA-LF-IMAGE-MARKERS"]


def test_a_file_of_prompts_only_is_one_warning_not_an_error_per_row(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "Play"}], "env_config": {"seed": i}} for i in range(30)]
    result = scan_dataset(str(write(tmp_path, rows)))
    assert [(o.entry_id, o.values["count"]) for o in result.observations] == [("DATA-CHAT-PROMPTS-ONLY", 30)]


def test_one_row_without_an_answer_among_others_is_still_an_error(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "q2"}]}]
    assert ids(write(tmp_path, rows)) == ["DATA-CHAT-NO-ASSISTANT"]


def test_a_json_object_holding_one_conversation_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}))
    result = scan_dataset(str(path))
    assert result.facts["dataset.rows"] == 1 and result.facts["dataset.schema"] == "sharegpt"


def test_the_report_names_the_columns_that_decided_the_format(tmp_path: Path) -> None:
    cases = [({"instruction": "a", "input": "", "output": "b", "id": 1}, "alpaca by instruction/input/output"),
             ({"input": "a", "output": "b", "text": "a b"}, "text by text"),
             ({"prompt": "a", "chosen": "b", "rejected": "c"}, "preference by prompt/chosen/rejected"),
             ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
              "messages by messages")]
    for index, (row, detail) in enumerate(cases):
        result = scan_dataset(str(write(tmp_path, [row], f"d{index}.jsonl")))
        assert result.areas[0].detail == f"1 row, {detail}"
        assert result.facts["dataset.schema_columns"]


def test_media_markers_must_match_the_media_column(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "<image><image>Compare."}, {"role": "assistant", "content": "Same."}],
             "images": ["1.jpg"]},
            {"messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": "A goal."}],
             "videos": ["1.mp4"]},
            {"messages": [{"role": "user", "content": "Listen.<audio>"}, {"role": "assistant", "content": "Rain."}],
             "audios": []}]
    found = [(o.entry_id, o.location.line) for o in scan_dataset(str(write(tmp_path, rows))).observations]
    assert ("DATA-LF-MEDIA-COUNT", 1) in found and ("DATA-LF-MEDIA-COUNT", 3) in found
    assert ("DATA-LF-MEDIA-COUNT", 2) not in found
