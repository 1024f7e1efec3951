"""Token measurements with a tiny real BPE tokenizer and a real chat template, built here."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("jinja2")

from tokenizers import Tokenizer  # noqa: E402

from doctor.probes.dataset import DatasetOptions, scan_dataset  # noqa: E402
from doctor.probes.dataset.tokens import ALPACA_PROMPT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_tokenizers", ROOT / "fixtures/datasets/build_tokenizers.py")
build_tokenizers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_tokenizers)

MARKER = "<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizers.build(tmp_path_factory.mktemp("tok") / "chatml")


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def chatml(messages: list[dict]) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def test_percentiles_are_of_the_rendered_text_in_tokens(tmp_path: Path, tok_dir: Path) -> None:
    words = "the quick brown fox jumps over the lazy dog".split()
    rows = []
    for i in range(40):
        sentence = " ".join(words[: 1 + i % 9]) * (1 + i % 4)
        if i % 2:
            rows.append({"instruction": f"Translate {i}", "input": "", "output": sentence})
        else:
            rows.append({"messages": [{"role": "user", "content": f"q {i}"},
                                      {"role": "assistant", "content": sentence}]})
    path = write_rows(tmp_path / "d.jsonl", rows)
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    expected = []
    for r in rows:
        if "messages" in r:
            expected.append(len(tok.encode(chatml(r["messages"]), add_special_tokens=False)))
        else:
            text = ALPACA_PROMPT.format(r["instruction"], r["input"], r["output"]) + "<|im_end|>"
            expected.append(len(tok.encode(text).ids))
    cap = nearest_rank(expected, 50)
    result = scan_dataset(str(path), DatasetOptions(tokenizer=str(tok_dir), max_seq_length=cap))
    facts = result.facts
    for q in (50, 90, 95, 99):
        assert facts[f"dataset.tokens.p{q}"] == nearest_rank(expected, q)
    assert facts["dataset.tokens.max"] == max(expected)
    assert facts["dataset.tokens.truncated_rows"] == sum(n > cap for n in expected)
    assert facts["dataset.tokens.truncated_share"] == round(sum(n > cap for n in expected) / len(rows), 6)
    assert facts["dataset.tokens.recommended_max_seq_length"] == max(256, math.ceil(nearest_rank(expected, 99) / 256) * 256)
    truncated = sorted(o.location.line for o in result.observations if o.entry_id == "DATA-TOKENS-TRUNCATED")
    assert truncated == [i + 1 for i, n in enumerate(expected) if n > cap][:20]


def test_response_marker_missing_and_truncated_away(tmp_path: Path, tok_dir: Path) -> None:
    long_question = "The quick brown fox jumps over the lazy dog. " * 4
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"messages": [{"role": "user", "content": long_question}, {"role": "assistant", "content": "ok"}]},
        {"text": "no marker in here<|im_end|>"},
    ]
    path = write_rows(tmp_path / "d.jsonl", rows)
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    prefix = chatml(rows[1]["messages"]).split(MARKER)[0] + MARKER
    cap = len(tok.encode(prefix, add_special_tokens=False)) - 1   # the marker ends past the cap
    assert cap > len(tok.encode(chatml(rows[0]["messages"]), add_special_tokens=False))
    result = scan_dataset(str(path), DatasetOptions(tokenizer=str(tok_dir), max_seq_length=cap,
                                                    response_part=MARKER))
    found = {(o.entry_id, o.location.line) for o in result.observations}
    assert ("DATA-RESPONSE-TRUNCATED", 2) in found
    assert ("DATA-RESPONSE-MARKER-MISSING", 3) in found
    assert not {f for f in found if f[1] == 1 and f[0].startswith("DATA-RESPONSE")}
    # With room for the marker and one answer token, the row keeps a label.
    roomy = scan_dataset(str(path), DatasetOptions(tokenizer=str(tok_dir), max_seq_length=cap + 2,
                                                   response_part=MARKER))
    assert "DATA-RESPONSE-TRUNCATED" not in {o.entry_id for o in roomy.observations}


def test_eos_template_failures_and_missing_template(tmp_path: Path) -> None:
    instruct = build_tokenizers.build(tmp_path / "instruct")
    base = build_tokenizers.build(tmp_path / "base", eos="<|endoftext|>")
    bare = build_tokenizers.build(tmp_path / "bare", template=None)
    convo = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    rows = [convo, {"text": "Say hi. hi"}, {"text": "Say hi. hi<|im_end|>"},
            {"messages": [{"role": "tool", "content": "42"}, {"role": "assistant", "content": "ok"}]}]
    path = write_rows(tmp_path / "d.jsonl", rows)

    def found(folder: Path) -> set:
        return {(o.entry_id, o.location.line)
                for o in scan_dataset(str(path), DatasetOptions(tokenizer=str(folder))).observations}

    with_instruct = found(instruct)
    assert ("DATA-TEXT-NO-EOS", 2) in with_instruct and ("DATA-TEXT-NO-EOS", 3) not in with_instruct
    assert ("DATA-TEMPLATE-RENDER-FAILED", 4) in with_instruct
    assert not {f for f in with_instruct if f[0] == "DATA-CHAT-NO-EOS"}
    assert ("DATA-CHAT-NO-EOS", 1) in found(base)
    assert ("DATA-TOKENIZER-NO-CHAT-TEMPLATE", 1) in found(bare)


def test_chat_template_jinja_file_is_used(tmp_path: Path) -> None:
    folder = build_tokenizers.build(tmp_path / "tok", template=None)
    (folder / "chat_template.jinja").write_text(
        "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{{ eos_token }}{% endfor %}")
    path = write_rows(tmp_path / "d.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}])
    result = scan_dataset(str(path), DatasetOptions(tokenizer=str(folder), response_part="[assistant]"))
    ids = {o.entry_id for o in result.observations}
    assert "DATA-TOKENIZER-NO-CHAT-TEMPLATE" not in ids and "DATA-RESPONSE-MARKER-MISSING" not in ids
    assert result.facts["dataset.tokens.measured_rows"] == 1


def test_an_unusable_tokenizer_is_a_finding_and_the_scan_goes_on(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-tokenizer"
    empty.mkdir()
    path = write_rows(tmp_path / "d.jsonl", [{"instruction": "a", "output": ""}])
    result = scan_dataset(str(path), DatasetOptions(tokenizer=str(empty)))
    ids = [o.entry_id for o in result.observations]
    assert "DATA-TOKENIZER-UNUSABLE" in ids and "DATA-FIELD-EMPTY" in ids
    assert "dataset.tokens.p50" not in result.facts
    broken = build_tokenizers.build(tmp_path / "broken")
    (broken / "tokenizer.json").write_text("{not json")
    result = scan_dataset(str(path), DatasetOptions(tokenizer=str(broken)))
    unusable = [o for o in result.observations if o.entry_id == "DATA-TOKENIZER-UNUSABLE"]
    assert unusable and "tokenizer.json" in unusable[0].values["detail"]


def test_double_bos_only_where_the_tokenizer_adds_one(tmp_path: Path) -> None:
    llama_like = build_tokenizers.build(tmp_path / "bos", bos="<s>", eos="</s>", template=None)
    chatml = build_tokenizers.build(tmp_path / "chatml")
    path = write_rows(tmp_path / "d.jsonl", [{"text": "<s>Hello world</s>"}, {"text": "Hello world</s>"}])
    tok = Tokenizer.from_file(str(llama_like / "tokenizer.json"))
    bos_id = tok.token_to_id("<s>")
    assert tok.encode("<s>Hello world").ids[:2] == [bos_id, bos_id]   # the double BOS is real

    def double(folder: Path) -> list:
        return [o.location.line for o in scan_dataset(str(path), DatasetOptions(tokenizer=str(folder))).observations
                if o.entry_id == "DATA-TEXT-DOUBLE-BOS"]
    assert double(llama_like) == [1]
    assert double(chatml) == []


def test_a_response_marker_typed_with_backslash_n_is_the_marker(tmp_path: Path, tok_dir: Path) -> None:
    """`--response-part '<|im_start|>assistant\\n'` as Unsloth's notebooks write it: in single
    quotes the shell passes a backslash and an n; the marker ends in a newline."""
    from tests.helpers.cli import run_cli

    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 3
    path = write_rows(tmp_path / "d.jsonl", [dict(r, id=i) for i, r in enumerate(rows)])
    r = run_cli("scan", "--data", str(path), "--tokenizer", str(tok_dir), "--max-seq-length", "512",
                "--response-part", "<|im_start|>assistant\\n", "--format", "json")
    ids = [f["id"] for f in json.loads(r.stdout)["findings"]]
    assert "DATA-RESPONSE-MARKER-MISSING" not in ids, ids


def test_the_console_says_which_form_of_the_marker_was_read(tmp_path: Path, tok_dir: Path) -> None:
    """The typed \\n is read as a line break and the report says so; a marker that is missing
    is quoted with its line break shown as \\n, on one line."""
    from tests.helpers.cli import run_cli

    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 2
    path = write_rows(tmp_path / "d.jsonl", [dict(r, id=i) for i, r in enumerate(rows)])
    r = run_cli("scan", "--data", str(path), "--tokenizer", str(tok_dir), "--max-seq-length", "512",
                "--response-part", "<|im_start|>assistant\\n")
    assert "--response-part <|im_start|>assistant\\n: read \\n as a line break" in r.stdout

    r = run_cli("scan", "--data", str(path), "--tokenizer", str(tok_dir), "--max-seq-length", "512",
                "--response-part", "<|no_such|>\\n", "--format", "json")
    missing = [f for f in json.loads(r.stdout)["findings"] if f["id"] == "DATA-RESPONSE-MARKER-MISSING"]
    assert missing and '"<|no_such|>\\n"' in missing[0]["message"] and "\n" not in missing[0]["message"]


def test_a_typed_double_backslash_is_one_backslash() -> None:
    from doctor.cli.commands import escapes_note, typed_escapes

    assert typed_escapes("a\\\\nb") == "a\\nb"        # \\n typed: a backslash and an n
    assert typed_escapes("x\\qy") == "x\\qy"          # unknown escapes stay as typed
    assert escapes_note("--response-part", "plain") is None
