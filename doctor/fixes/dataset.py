"""`scan --data PATH --fix`: write a repaired copy and a rejects file; never lose a row.

Every input record ends up in exactly one of the two outputs: the repaired file, or the
rejects file with its line number and the reason it could not be repaired. Safe repairs
only change spelling (JSON syntax, control characters, line breaks inside values); content
changes (dropping duplicates, trimming, ShareGPT -> messages) need `unsafe_fixes=True`. A clean
record is copied byte for byte, so repairing a repaired file changes nothing. Where the
outputs go, and what they may replace: `outputs`.
"""
from __future__ import annotations

import base64
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import orjson

from doctor.fixes import dataset_table, outputs
from doctor.atomic import atomic_writer
from doctor.fixes.dataset_model import Discard, RepairError, RepairOptions, RepairSummary, Writer
from doctor.fixes.journal import Journal, Transaction
from doctor.fixes.values import clean_value
from doctor.probes import limits
from doctor.probes.dataset import reader, syntax
from doctor.probes.dataset.content import ROLE_ALIASES

# RepairError, RepairOptions and RepairSummary live in dataset_model; callers import them from here.
__all__ = ["RepairError", "RepairOptions", "RepairSummary", "repair_dataset", "sharegpt_to_messages"]

# What each syntax issue's repair is called in the summary.
_ACTION_NAMES = {
    syntax.SINGLE_QUOTES: "single quotes replaced by double quotes",
    syntax.TRAILING_COMMA: "trailing commas removed",
    syntax.COMMENT: "comments removed",
    syntax.NAN: "NaN/Infinity written as null",
    syntax.PYTHON_LITERAL: "Python True/False/None written as JSON",
    syntax.BAD_ESCAPE: "lone backslashes escaped",
    syntax.CONTROL_CHAR: "raw control characters in strings escaped",
    syntax.BOM: "byte order mark removed",
}


def sharegpt_to_messages(obj: dict[str, Any], actions: Counter[str]) -> dict[str, Any]:
    """`conversations: [{from, value}]` -> `messages: [{role, content}]`, as standardize_sharegpt."""
    convo = obj.get("conversations")
    if "messages" in obj or type(convo) is not list or not all(type(t) is dict for t in convo):
        return obj
    turns = []
    for turn in convo:
        role = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        tool_turn = _llamafactory_tool_turn(str(role).strip().lower(), content)
        if tool_turn is not None:
            turns.append(tool_turn)
            actions["LLaMA-Factory function_call/observation turns converted to tool_calls/tool"] += 1
            continue
        role = ROLE_ALIASES.get(str(role).strip().lower(), role)
        turns.append({"role": role, "content": content})
    actions["ShareGPT conversations converted to messages (unsafe)"] += 1
    return {("messages" if k == "conversations" else k): (turns if k == "conversations" else v)
            for k, v in obj.items()}


def _llamafactory_tool_turn(role: str, value: Any) -> dict[str, Any] | None:
    """LLaMA-Factory's tool-calling turns as chat templates take them (its converter.py does
    the same): a function_call (JSON of one call or a list) becomes an assistant message with
    tool_calls, an observation a tool message. None for any other turn, or a call that is
    not JSON of {name, arguments} (left for a person)."""
    if role == "observation":
        return {"role": "tool", "content": value}
    if role != "function_call" or type(value) is not str:
        return None
    try:
        calls = orjson.loads(value)
    except ValueError:
        return None
    calls = calls if type(calls) is list else [calls]
    if not all(type(c) is dict and "name" in c and "arguments" in c for c in calls):
        return None
    return {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]}


# -- records ------------------------------------------------------------------------------------

@dataclass
class _Outcome:
    data: bytes | None          # the line to write, without newline
    reason: str | None = None   # why it was rejected
    entry_id: str | None = None
    changed: bool = False
    value: Any = None


def _repair_record(raw: bytes, unsafe: bool, actions: Counter[str]) -> _Outcome:
    try:
        value = orjson.loads(raw)
        changed = b"\n" in raw  # an object spread over lines is joined onto one
    except orjson.JSONDecodeError:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return _Outcome(None, f"invalid UTF-8 (byte 0x{raw[err.start]:02X} at offset {err.start} "
                                  "of the record); re-encode the file as UTF-8",
                            "DATA-FILE-INVALID-UTF8")
        d = syntax.diagnose(text)
        if d.fatal is not None:
            _, col = syntax.line_col(text, d.fatal.pos)
            return _Outcome(None, f"{d.fatal.detail} (column {col})", d.fatal.entry_id)
        unsure = [i for i in d.issues if not i.repairable]
        if unsure and not unsafe:
            _, col = syntax.line_col(text, unsure[0].pos)
            return _Outcome(None, f"{unsure[0].detail} at column {col}: fix it by hand, or use "
                                  "--unsafe-fixes to keep the backslash as text", unsure[0].entry_id)
        for kind in {i.entry_id for i in d.issues}:
            actions[_ACTION_NAMES.get(kind, kind)] += 1
        value, changed = d.value, True
    if type(value) is not dict:
        return _Outcome(None, f"the record is a JSON {type(value).__name__}, not an object",
                        "DATA-JSON-NOT-OBJECT")
    if limits.nests_deeper(value):   # orjson writes at most 255 levels, and no trainer wants more
        return _Outcome(None, f"nested deeper than {limits.MAX_NESTING} levels", "DATA-NESTING-TOO-DEEP")
    before = sum(actions.values())
    fixed = clean_value(value, unsafe, actions)
    if unsafe:
        fixed = sharegpt_to_messages(fixed, actions)
    if changed or sum(actions.values()) != before:
        return _Outcome(orjson.dumps(fixed), changed=True, value=fixed)
    return _Outcome(raw, value=fixed)


def records_under_key(path: str) -> tuple[str, list[Any]] | None:
    """A .json file holding one object with its records in a list under a key (as
    load_dataset(..., field=KEY) reads it): the key and the records; else None."""
    from doctor.probes.dataset import JSON_OBJECT_MAX_BYTES

    if (reader.kind_of(path) != "json" or reader.first_significant_byte(path) != b"{"
            or Path(path).stat().st_size > JSON_OBJECT_MAX_BYTES):
        return None
    whole = reader.read_json_object(path)
    if whole is None or whole[0] is None:
        return None
    return whole[0], whole[1]


def _dump_any_depth(item: Any) -> bytes:
    """JSON for a record parsed whole; orjson stops at 255 levels, the parse went to 1024, and
    the repair then rejects such a record by its depth."""
    try:
        return orjson.dumps(item)
    except TypeError:
        import json
        import sys

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 5000))
        try:
            return json.dumps(item, ensure_ascii=False).encode()
        finally:
            sys.setrecursionlimit(limit)


def _records(path: str, under_key: tuple[str, list[Any]] | None, is_array: bool
             ) -> Iterator[reader.LineRecord | reader.ArrayTrouble]:
    if under_key is not None:
        # Parsed whole, so a record's place is its number in the list, not a line.
        for number, item in enumerate(under_key[1], start=1):
            yield reader.LineRecord(number, number, _dump_any_depth(item))
        return
    with open(path, "rb") as f:
        if is_array:
            for item in reader.iter_array_elements(f):
                if isinstance(item, reader.ArrayTrouble):
                    yield item
                else:
                    yield reader.LineRecord(item.line, item.end_line, item.raw)
        else:
            yield from reader.iter_jsonl_records(f)


def _reject_line(rec: reader.LineRecord, reason: str, entry_id: str | None) -> bytes:
    row: dict[str, Any] = {"line": rec.line, "end_line": rec.end_line, "reason": reason,
                           "entry_id": entry_id}
    try:
        row["text"] = rec.raw.decode("utf-8")
    except UnicodeDecodeError:
        row["text"] = rec.raw.decode("utf-8", "replace")
        row["raw_base64"] = base64.b64encode(rec.raw).decode("ascii")  # the bytes, losslessly
    return orjson.dumps(row)


def _write_all(path: str, out_file: BinaryIO | None, rej_file: BinaryIO | None, options: RepairOptions,
               summary: RepairSummary) -> None:
    """Repair a JSONL or JSON file record by record; None sinks are a dry run."""
    out: BinaryIO | Discard = out_file if out_file is not None else Discard()
    rej: BinaryIO | Discard = rej_file if rej_file is not None else Discard()
    seen: dict[int, int] = {}
    is_array = reader.first_significant_byte(path) == b"["
    if is_array:
        summary.actions["JSON array written as JSON Lines"] += 1
    under_key = records_under_key(path)   # read and parsed once, here
    if under_key is not None:
        summary.actions[f'records under "{under_key[0]}" written as JSON Lines (rows are numbered '
                        "by their place in that list)"] += 1
    rewritten = is_array or under_key is not None   # every row of such a file is rewritten
    for rec in _records(path, under_key, is_array):
        if isinstance(rec, reader.ArrayTrouble):
            if rec.entry == reader.TRAILING_COMMA:   # JSON Lines has no place for it
                summary.actions["comma after the array's last element dropped"] += 1
            else:
                summary.actions[f"array problem noted: {rec.detail} (line {rec.line})"] += 1
            continue
        if rec.blank:
            summary.blank_lines += 1
            continue
        summary.input_rows += 1
        outcome = _repair_record(rec.raw, options.unsafe_fixes, summary.actions)
        if outcome.data is not None and options.unsafe_fixes:
            key = hash(orjson.dumps(outcome.value, option=orjson.OPT_SORT_KEYS))  # same content
            if key in seen:
                outcome = _Outcome(None, f"duplicate of line {seen[key]} (dropped with --unsafe-fixes)",
                                   "DATA-ROW-DUPLICATE")
            else:
                seen[key] = rec.line
        if outcome.data is None:
            summary.rejected_rows += 1
            reason = outcome.reason or "unreadable"
            kind = outcome.entry_id or "DATA-JSON-INVALID"
            summary.reasons[kind] += 1
            summary.first_reason.setdefault(kind, f"line {rec.line}: {reason}")
            rej.write(_reject_line(rec, reason, outcome.entry_id) + b"\n")
            continue
        summary.repaired_rows += 1
        if outcome.changed or rewritten or rec.end_line != rec.line:
            summary.changed_rows += 1
        out.write(outcome.data + b"\n")


def repair_dataset(path: str, options: RepairOptions | None = None, *, tx: Transaction | None = None,
                   run_inputs: Iterable[str] = ()) -> RepairSummary:
    """Write the repaired copy and the rejects file (names: `outputs.output_paths`), or replace
    the input with a backup. Inside `tx` when given (one `scan --fix` run), else in a
    transaction of its own; `run_inputs` are the run's other inputs, never overwritten."""
    options = options or RepairOptions()
    if not Path(path).is_file():
        raise RepairError(f"{path}: no such file")
    kind = reader.kind_of(path)
    write: Writer = {"csv": dataset_table.write_csv, "parquet": dataset_table.write_parquet}.get(kind, _write_all)
    fixed_path, rejects_path = outputs.output_paths(path)
    output = path if options.in_place else (options.output or fixed_path)
    rejects = options.rejects or rejects_path

    if options.in_place:
        # A dry pass first: when nothing would change, the input is not rewritten at all.
        probe = RepairSummary(path, output, rejects)
        _run(write, path, None, None, options, probe)
        if not (probe.changed_rows or probe.rejected_rows or probe.blank_lines):
            return probe

    if tx is None:
        with Journal(options.journal_root).transaction(f"fix dataset {path}") as own:
            return _write_outputs(write, path, output, rejects, options, own, run_inputs)
    return _write_outputs(write, path, output, rejects, options, tx, run_inputs)


def _write_outputs(write: Writer, path: str, output: str, rejects: str, options: RepairOptions,
                   tx: Transaction, run_inputs: Iterable[str]) -> RepairSummary:
    outputs.check_outputs(path, (output, rejects), tx, run_inputs)
    summary = RepairSummary(path, output, rejects)
    mode = outputs.output_mode(path)
    with tx.savepoint():   # a file that cannot be read leaves nothing of its own in the run
        for target in (output, rejects):
            kept = tx.prepare(target, source=path)
            if target == path and kept is not None:
                summary.backup_path = str(kept)
        with ExitStack() as stack:
            out = stack.enter_context(atomic_writer(output, mode))
            rej = stack.enter_context(atomic_writer(rejects, mode))
            _run(write, path, out, rej, options, summary)
    summary.wrote = True
    return summary


def _run(write: Writer, path: str, out: BinaryIO | None, rej: BinaryIO | None, options: RepairOptions,
         summary: RepairSummary) -> None:
    try:
        write(path, out, rej, options, summary)
    except reader.MissingExtra as err:
        raise RepairError(f"{path}: {err}") from err
    except (OSError, ValueError) as err:     # pyarrow refusing a broken table
        raise RepairError(f"{path}: cannot be read: {type(err).__name__}: {err}") from err
