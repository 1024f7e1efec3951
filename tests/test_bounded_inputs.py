"""Every parser of a user's file is bounded: a YAML alias bomb, a self-referencing alias, an
array nested 100,000 deep or an absurdly large file becomes a located finding, quickly and in
little memory, instead of a hang, a multi-GB allocation or a probe crash."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from doctor.probes.config import scan_config
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.deadline import deadline

DEEP = 100_000   # levels of nesting in the hostile inputs


def ids(result) -> list[str]:
    return sorted(o.entry_id for o in result.observations)


def located(result, entry_id: str) -> tuple[str, int, int]:
    """(file name, line, column) of the one observation with this id; it must have all three."""
    (obs,) = [o for o in result.observations if o.entry_id == entry_id]
    loc = obs.location
    assert loc is not None and loc.path and loc.line and loc.column, obs
    return Path(loc.path).name, loc.line, loc.column


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["lol0: &lol0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * width) + "]")
    return "learning_rate: 2.0e-4\nlora_r: 16\n" + "\n".join(lines) + "\n"


def run_cli_measured(*args: str, timeout: float = 60) -> tuple[float, int, str]:
    """`python -m doctor ARGS` in a child process: (seconds, its peak RSS in MiB, stdout)."""
    import subprocess

    # The peak is read from /proc (VmHWM: this process's own memory). ru_maxrss would carry
    # over the test runner's peak: Linux keeps it across the exec that starts the child.
    wrapper = ("import resource, runpy, sys\n"
               "sys.argv = ['doctor', *sys.argv[1:]]\n"
               "def peak():\n"
               "    try:\n"
               "        status = open('/proc/self/status').read()\n"
               "        return int(status.split('VmHWM:')[1].split()[0])\n"
               "    except (OSError, IndexError):\n"
               "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
               "try:\n    runpy.run_module('doctor', run_name='__main__', alter_sys=True)\n"
               "finally:\n"
               "    print(f'PEAK_KB={peak()}', file=sys.stderr)\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**__import__("os").environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - start
    peak = int(done.stderr.rsplit("PEAK_KB=", 1)[1].split()[0]) // 1024
    return seconds, peak, done.stdout


# -- YAML configs ----------------------------------------------------------------------------

def scan_config_within_a_second(path: Path):
    """The config probe on `path`: refused or reported in well under a second, never hung."""
    start = time.perf_counter()
    with deadline(20):
        result = scan_config(str(path))
    assert time.perf_counter() - start < 1.0
    return result


def test_billion_laughs_config_is_refused_at_its_alias_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(billion_laughs())          # 9 levels x 9 aliases: 9**9 values once expanded
    result = scan_config_within_a_second(path)
    assert ids(result) == ["CONFIG-YAML-ALIAS-BOMB"]
    name, line, column = located(result, "CONFIG-YAML-ALIAS-BOMB")
    (obs,) = result.observations
    text_line = path.read_text().splitlines()[line - 1]
    assert name == "train.yaml" and text_line[column - 1] == "*"   # at an alias
    assert obs.values["anchor"] in text_line


def test_billion_laughs_found_in_a_scanned_folder_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text(billion_laughs())
    seconds, peak_mib, out = run_cli_measured("scan", str(tmp_path), "--no-env", "--format", "json")
    findings = json.loads(out)["findings"]
    (bomb,) = [f for f in findings if f["id"] == "CONFIG-YAML-ALIAS-BOMB"]
    assert bomb["location"]["path"].endswith("train.yaml") and bomb["location"]["line"] >= 4
    assert seconds < 1.0 + 1.0   # a second of work at most, plus the interpreter's start-up
    assert peak_mib < 200


@pytest.mark.parametrize("text, anchor", [
    ("learning_rate: 2.0e-4\nlora_r: 16\nlayers: &a [*a]\n", "a"),
    ("learning_rate: 2.0e-4\nlora_r: 16\nlora: &x {k: *x}\n", "x"),
    ("learning_rate: 2.0e-4\nlora_r: 16\nouter: &o\n  inner: [1, {back: *o}]\n", "o"),
])
def test_self_referencing_alias_is_a_located_finding_not_a_crash(tmp_path: Path, text: str, anchor: str) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    result = scan_config_within_a_second(path)
    assert ids(result) == ["CONFIG-YAML-RECURSIVE-ALIAS"]
    _, line, column = located(result, "CONFIG-YAML-RECURSIVE-ALIAS")
    assert path.read_text().splitlines()[line - 1][column - 1:].startswith(f"*{anchor}")


def test_aliases_that_are_only_reused_still_check_the_config(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("defaults: &d {lora_alpha: 8}\nlearning_rate: 2.0e-4\nlora_r: 16\n"
                    "run_a: *d\nrun_b: *d\n")
    assert ids(scan_config(str(path))) == ["CONFIG-LORA-ALPHA-LOW"]


@pytest.mark.parametrize("name, body", [
    ("deep.yaml", "x: " + "[" * DEEP + "]" * DEEP),            # libyaml refuses this itself at 1000
    ("block.yaml", "".join(" " * i + f"k{i}:\n" for i in range(300)) + " " * 300 + "v: 1"),
    ("deep.json", '{"learning_rate": 2e-4, "lora_r": 16, "x": ' + "[" * DEEP + "]" * DEEP + "}"),
    ("dicts.json", '{"lora_r": 16, "x": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"),
])
def test_config_nested_too_deep_is_located_at_the_first_level_past_the_limit(tmp_path: Path, name: str,
                                                                             body: str) -> None:
    path = tmp_path / name
    path.write_text("lora_r: 16\n" + body + "\n" if name.endswith(".yaml") else body + "\n")
    with deadline(20):
        result = scan_config(str(path))
    assert ids(result) == ["CONFIG-NESTING-TOO-DEEP"]
    _, line, column = located(result, "CONFIG-NESTING-TOO-DEEP")
    assert result.observations[0].values["limit"] == 100
    if name in ("deep.yaml", "deep.json"):
        assert path.read_text().splitlines()[line - 1][column - 1] == "["


def test_yaml_nested_just_under_the_limit_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 1.0e-2\nlora_r: 16\nx: " + "[" * 98 + "]" * 98 + "\n")
    assert ids(scan_config(str(path))) == ["CONFIG-LR-TOO-HIGH"]


def test_config_with_too_many_values_is_refused_before_it_is_built(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 2.0e-4\nlora_r: 16\nitems:\n" + "".join(f"  - {i}\n" for i in range(120_000)))
    start = time.perf_counter()
    result = scan_config(str(path))
    assert time.perf_counter() - start < 2.0
    assert ids(result) == ["CONFIG-TOO-LARGE"]
    assert located(result, "CONFIG-TOO-LARGE")[1] > 99_000   # the value past the budget


def test_config_over_the_byte_limit_is_not_read(tmp_path: Path) -> None:
    from doctor.probes import limits

    path = tmp_path / "train.yaml"
    with open(path, "wb") as f:              # sparse: no disk or memory is spent on it
        f.write(b"learning_rate: 2.0e-4\nlora_r: 16\n")
        f.truncate(limits.CONFIG_MAX_BYTES + 1)
    result = scan_config(str(path))
    assert ids(result) == ["CONFIG-TOO-LARGE"]
    assert located(result, "CONFIG-TOO-LARGE") == ("train.yaml", 1, 1)
    assert result.observations[0].values["limit"] == "64.0 MiB"


# -- datasets --------------------------------------------------------------------------------

GOOD_ROW = '{"instruction": "hi", "output": "there"}'
DEEP_ROW = '{"instruction": "a", "output": "b", "meta": ' + "[" * DEEP + "]" * DEEP + "}"


def test_jsonl_row_nested_100k_deep_is_one_bad_row_and_the_rest_is_checked(tmp_path: Path) -> None:
    from doctor.probes.dataset import scan_dataset

    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([GOOD_ROW, DEEP_ROW, '{"instruction": "x", "output": ""}']) + "\n")
    with deadline(20):
        result = scan_dataset(str(path))
    assert ids(result) == ["DATA-FIELD-EMPTY", "DATA-NESTING-TOO-DEEP"]   # line 3 still checked
    assert located(result, "DATA-NESTING-TOO-DEEP") == ("data.jsonl", 2, DEEP_ROW.index("[") + 100)
    assert result.facts["dataset.rows"] == 3 and result.facts["dataset.unreadable_rows"] == 1


@pytest.mark.parametrize("options", [{"fast_path": False}, {"jobs": 2, "jobs_min_bytes": 0}])
def test_deep_row_is_found_on_every_reading_path(tmp_path: Path, options: dict) -> None:
    from doctor.probes.dataset import DatasetOptions, scan_dataset

    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([GOOD_ROW] * 300 + [DEEP_ROW] + [GOOD_ROW.replace("hi", "yo")] * 300) + "\n")
    with deadline(20):
        result = scan_dataset(str(path), DatasetOptions(**options))
    assert located(result, "DATA-NESTING-TOO-DEEP")[1] == 301


def test_json_array_element_nested_100k_deep(tmp_path: Path) -> None:
    from doctor.probes.dataset import scan_dataset

    path = tmp_path / "data.json"
    path.write_text("[\n" + ",\n".join([GOOD_ROW, DEEP_ROW, GOOD_ROW.replace("hi", "yo")]) + "\n]\n")
    with deadline(20):
        result = scan_dataset(str(path))
    assert ids(result) == ["DATA-NESTING-TOO-DEEP"]
    assert located(result, "DATA-NESTING-TOO-DEEP")[1] == 3


def test_record_under_a_key_too_deep_to_write_back_is_one_bad_row(tmp_path: Path) -> None:
    """orjson reads 1024 levels but writes only 254: a record of a .json object between the two
    crashed the scan with TypeError."""
    from doctor.probes.dataset import scan_dataset

    deep = '{"instruction": "a", "output": "b", "meta": ' + "[" * 300 + "]" * 300 + "}"
    path = tmp_path / "data.json"
    path.write_text('{"data": [' + ", ".join([GOOD_ROW, deep, GOOD_ROW.replace("hi", "yo")]) + "]}")
    result = scan_dataset(str(path))
    assert ids(result) == ["DATA-JSON-RECORDS-UNDER-KEY", "DATA-NESTING-TOO-DEEP"]
    (obs,) = [o for o in result.observations if o.entry_id == "DATA-NESTING-TOO-DEEP"]
    assert obs.location.line == 2 and result.facts["dataset.rows"] == 3


def test_rows_the_strict_parser_accepts_1000_deep_get_their_content_checked(tmp_path: Path) -> None:
    """orjson parses up to 1024 levels; the text checks walked rows recursively and crashed."""
    from doctor.probes.dataset import scan_dataset

    row = '{"instruction": "a", "output": "b", "meta": ' + "[" * 1000 + '"x\\u0001"' + "]" * 1000 + "}"
    path = tmp_path / "data.jsonl"
    path.write_text(GOOD_ROW + "\n" + row + "\n")
    result = scan_dataset(str(path))
    assert ids(result) == ["DATA-TEXT-CONTROL-CHARS"]


def test_fix_rejects_the_deep_row_and_keeps_the_others(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text("\n".join([GOOD_ROW, DEEP_ROW, GOOD_ROW.replace("hi", "yo")]) + "\n")
    done = run_cli("scan", str(tmp_path), "--no-env", "--fix", timeout=60)
    assert "internal error" not in done.stderr, done.stderr
    fixed = (tmp_path / "data.fixed.jsonl").read_text().splitlines()
    (reject,) = [json.loads(line) for line in (tmp_path / "data.jsonl.rejects.jsonl").read_text().splitlines()]
    assert len(fixed) == 2 and reject["line"] == 2 and reject["entry_id"] == "DATA-NESTING-TOO-DEEP"


def test_value_repair_copies_a_deep_value_without_recursion() -> None:
    from collections import Counter

    from doctor.fixes.values import clean_value

    value: list = []
    inner = value
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    inner.append("a\r\nb")
    actions: Counter[str] = Counter()
    copy = clean_value({"k": value, "n": 1}, False, actions)
    for _ in range(1 + 5001):   # the key, then 5001 lists
        copy = copy["k"] if isinstance(copy, dict) else copy[0]
    assert copy == "a\nb" and sum(actions.values()) == 1


def test_tokenizer_config_nested_100k_deep_is_reported_at_its_place(tmp_path: Path) -> None:
    import shutil

    from doctor.probes.dataset import DatasetOptions, scan_dataset

    tok = tmp_path / "tok"
    shutil.copytree(ROOT / "fixtures/datasets/tokenizers/tiny-chatml", tok)
    (tok / "tokenizer_config.json").write_text('{"eos_token": "<|im_end|>", "x": ' + "[" * DEEP + "]" * DEEP + "}")
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "hello"}\n')
    with deadline(20):
        result = scan_dataset(str(data), DatasetOptions(tokenizer=str(tok)))
    assert located(result, "DATA-TOKENIZER-UNUSABLE") == ("tokenizer_config.json", 1, 133)


# -- one very long JSONL line ----------------------------------------------------------------

def test_a_line_past_the_cap_is_skipped_in_pieces_and_reported(tmp_path: Path) -> None:
    from doctor.probes.dataset import DatasetOptions, scan_dataset

    path = tmp_path / "data.jsonl"
    long_row = '{"instruction": "a", "output": "' + "x" * (3 << 20) + '"}'   # 3 MiB: read in 1 MiB pieces
    path.write_text("\n".join([GOOD_ROW, long_row, '{"instruction": "x", "output": ""}']) + "\n")
    for options in ({}, {"fast_path": False}):
        result = scan_dataset(str(path), DatasetOptions(max_line_bytes=2 << 20, **options))
        assert ids(result) == ["DATA-FIELD-EMPTY", "DATA-LINE-TOO-LONG"]
        assert located(result, "DATA-LINE-TOO-LONG") == ("data.jsonl", 2, 1)
        (obs,) = [o for o in result.observations if o.entry_id == "DATA-LINE-TOO-LONG"]
        assert obs.values["size"] == "3.0 MiB" and obs.values["limit"] == "2.0 MiB"
    # under the default cap the same line is read whole, as before
    assert ids(scan_dataset(str(path))) == ["DATA-FIELD-EMPTY", "DATA-ROW-LONG"]


def test_a_500_mib_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    """It was read whole and parsed: 1.5 GB at the peak, 3.9 s."""
    path = tmp_path / "data.jsonl"
    with open(path, "wb") as f:   # sparse: the line's 500 MiB are a hole that reads as NUL bytes
        f.write(GOOD_ROW.encode() + b"\n" + b'{"instruction": "a", "output": "')
        f.seek(500 << 20, 1)
        f.write(b'"}\n' + GOOD_ROW.replace("hi", "yo").encode() + b"\n")
    seconds, peak_mib, out = run_cli_measured("scan", "--data", str(path), "--format", "json")
    findings = json.loads(out)["findings"]
    assert [f["id"] for f in findings] == ["DATA-LINE-TOO-LONG"]
    assert peak_mib < 400    # the cap (256 MiB) while the line is read, and nothing after


# -- model folders ---------------------------------------------------------------------------

def _model_folder(folder: Path, **files: str) -> Path:
    from doctor.probes.model import _safetensors_bytes

    folder.mkdir(exist_ok=True)
    (folder / "model.safetensors").write_bytes(_safetensors_bytes({"model.embed_tokens.weight": ["F16", [4, 2]]}))
    # a tokenizer.json the tokenizers library loads (a WordLevel model), as a saved one would be
    (folder / "tokenizer.json").write_text('{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], '
                                           '"normalizer": null, "pre_tokenizer": null, "post_processor": null, '
                                           '"decoder": null, "model": {"type": "WordLevel", "vocab": {"a": 0}, '
                                           '"unk_token": "a"}}')
    (folder / "config.json").write_text('{"model_type": "llama", "vocab_size": 4}')
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors.index.json",
                                  "adapter_config.json"])
def test_model_json_file_nested_100k_deep_is_located(tmp_path: Path, name: str) -> None:
    from doctor.probes.model import scan_model

    body = '{"weight_map": {}, "x": ' + "[" * DEEP + "]" * DEEP + "}"
    folder = _model_folder(tmp_path / "m", **{name.replace(".", "__"): body})
    with deadline(20):
        result = scan_model(str(folder))
    assert located(result, "MODEL-JSON-TOO-DEEP") == (name, 1, body.index("[") + 100)


def test_model_json_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    from doctor.probes import limits
    from doctor.probes.model import scan_model

    folder = _model_folder(tmp_path / "m")
    with open(folder / "model.safetensors.index.json", "wb") as f:   # sparse: nothing is spent on it
        f.write(b'{"weight_map": {}}')
        f.truncate(limits.MODEL_JSON_MAX_BYTES + 1)
    result = scan_model(str(folder))
    assert located(result, "MODEL-FILE-TOO-LARGE") == ("model.safetensors.index.json", 1, 1)


def test_model_config_that_is_not_an_object_is_invalid_not_a_crash(tmp_path: Path) -> None:
    from doctor.probes.model import scan_model

    folder = _model_folder(tmp_path / "m", config__json="[1, 2]")
    assert "MODEL-JSON-INVALID" in ids(scan_model(str(folder)))


# -- scripts and notebooks -------------------------------------------------------------------

def test_notebook_nested_100k_deep_is_located(tmp_path: Path) -> None:
    from doctor.probes.script import scan_script

    body = '{"cells": [{"cell_type": "code", "source": ["import os"]}], "metadata": ' + "[" * DEEP + "]" * DEEP + "}"
    path = tmp_path / "train.ipynb"
    path.write_text(body)
    with deadline(20):
        result = scan_script(str(path))
    assert ids(result) == ["SCRIPT-NESTING-TOO-DEEP"]
    assert located(result, "SCRIPT-NESTING-TOO-DEEP") == ("train.ipynb", 1, body.index("[[") + 100)


@pytest.mark.parametrize("statement", [
    "x = " + "1 + " * DEEP + "1",          # RecursionError while the syntax tree is built
    "x = " + "-" * DEEP + "1",             # MemoryError: the parser's stack overflows
    "x = a" + ".b" * DEEP,
    "x = f" + "()" * DEEP,
])
def test_python_statement_nested_too_deep_is_located_at_it(tmp_path: Path, statement: str) -> None:
    from doctor.probes.script import scan_script

    path = tmp_path / "train.py"
    path.write_text("import unsloth\n\n" + statement + "\nprint(x)\n")
    with deadline(20):
        result = scan_script(str(path))
    assert ids(result) == ["SCRIPT-NESTING-TOO-DEEP"]
    assert located(result, "SCRIPT-NESTING-TOO-DEEP") == ("train.py", 3, 1)


def test_long_attribute_chain_that_python_parses_is_read(tmp_path: Path) -> None:
    """2000 attributes parse; the dotted-name reader recursed and crashed on them."""
    from doctor.probes.script import scan_script

    path = tmp_path / "train.py"
    path.write_text("x = a" + ".b" * 2000 + ".SFTConfig(learning_rate=1e-2)\n")   # a config: the LR rule reads it
    assert ids(scan_script(str(path))) == ["SCRIPT-LR-TOO-HIGH"]


@pytest.mark.parametrize("name", ["train.py", "train.ipynb"])
def test_script_over_its_size_limit_is_not_read(tmp_path: Path, name: str) -> None:
    from doctor.probes import limits
    from doctor.probes.script import scan_script

    path = tmp_path / name
    with open(path, "wb") as f:
        f.write(b"import unsloth\n")
        f.truncate((limits.NOTEBOOK_MAX_BYTES if name.endswith(".ipynb") else limits.SCRIPT_MAX_BYTES) + 1)
    result = scan_script(str(path))
    assert located(result, "SCRIPT-TOO-LARGE") == (name, 1, 1)


def test_every_hostile_input_in_one_folder_scan(tmp_path: Path) -> None:
    """A project folder holding all of them: one real scan, every finding located, no crash."""
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    (tmp_path / "loop.yaml").write_text("learning_rate: 2.0e-4\nlora_r: 16\na: &a [*a]\n")
    (tmp_path / "deep.yaml").write_text("lora_r: 16\nx: " + "[" * DEEP + "]" * DEEP + "\n")
    (tmp_path / "data.jsonl").write_text(GOOD_ROW + "\n" + DEEP_ROW + "\n")
    (tmp_path / "nb.ipynb").write_text('{"cells": [], "x": ' + "[" * DEEP + "]" * DEEP + "}")
    (tmp_path / "train.py").write_text("x = " + "1 + " * DEEP + "1\n")
    _model_folder(tmp_path / "model", config__json='{"x": ' + "[" * DEEP + "]" * DEEP + "}")
    seconds, peak_mib, out = run_cli_measured("scan", str(tmp_path), "--no-env", "--format", "json")
    found = {f["id"]: f["location"] for f in json.loads(out)["findings"]}
    assert set(found) == {"CONFIG-YAML-ALIAS-BOMB", "CONFIG-YAML-RECURSIVE-ALIAS", "CONFIG-NESTING-TOO-DEEP",
                          "DATA-NESTING-TOO-DEEP", "SCRIPT-NESTING-TOO-DEEP", "MODEL-JSON-TOO-DEEP"}
    assert all(loc["path"] and loc["line"] and loc["column"] for loc in found.values())
    assert seconds < 5 and peak_mib < 200


def test_fix_rejects_a_deep_record_under_a_key(tmp_path: Path) -> None:
    """orjson writes at most 255 levels; a 300-deep record parsed whole is rejected, not a crash."""
    from doctor.fixes.dataset import repair_dataset

    deep = "[" * 300 + "1" + "]" * 300
    path = tmp_path / "data.json"
    path.write_text('{"data": [{"text": "ok"}, {"text": ' + deep + "}]}")
    summary = repair_dataset(str(path))
    assert summary.input_rows == 2 and summary.rejected_rows == 1 and summary.balanced
    assert "DATA-NESTING-TOO-DEEP" in summary.reasons


def test_distributed_script_reading_survives_a_deep_statement(tmp_path: Path) -> None:
    from doctor.distributed.script_split import scan_source
    from doctor.probes.script import Source

    assert scan_source(Source(str(tmp_path / "t.py"), "x = " + "-" * 100_000 + "1\n")) == []


def test_smoke_estimate_refuses_a_deep_config(tmp_path: Path) -> None:
    from doctor.smoketest.estimate import EstimateError, read_folder

    (tmp_path / "config.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(EstimateError, match="refused"):
        read_folder(tmp_path)
