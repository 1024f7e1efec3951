"""The dataset probe: JSONL, JSON, CSV/TSV and Parquet files, streamed in one pass.

`scan_dataset` (in `check`) returns facts and located observations whose ids are the entries
of knowledge/dataset.yaml. Wording and severity live there, not here.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from typing import Any

from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target
from doctor.probes.dataset import reader
from doctor.probes.dataset.examples import EXAMPLES

__all__ = ["JSON_OBJECT_MAX_BYTES", "PROBE", "DatasetOptions", "DatasetProbe", "scan_dataset", "split_ranges"]
# The checking code loads when a dataset is checked, not when the registry lists the probes
# (every command's start-up): these names resolve from `check` on first use.
_FROM_CHECK = {"JSON_OBJECT_MAX_BYTES", "DatasetOptions", "scan_dataset", "split_ranges"}


def __getattr__(name: str) -> Any:
    if name in _FROM_CHECK:
        from doctor.probes.dataset import check

        return getattr(check, name)
    raise AttributeError(f"module 'doctor.probes.dataset' has no attribute {name!r}")


class DatasetProbe(Probe):
    name, area, label = "dataset", "dataset", "Dataset"
    headings = {"dataset": "Datasets"}
    suffixes = reader.SUPPORTED_SUFFIXES   # every suffix the reader reads (.jsonl .ndjson .json .csv .pq ...)
    option, option_help = "--data", "a dataset file (JSONL, JSON, Parquet, CSV, TSV)"
    examples = EXAMPLES

    def claims_file(self, path: Path) -> bool:
        # .json is also the suffix of every model, tokenizer and tool config; only other
        # .json files are taken for datasets
        return super().claims_file(path) and not (path.suffix.lower() == ".json" and _is_config_json(path.name))

    not_found_reason = "a JSON file without records (a config, not a dataset)"

    def finds(self, path: Path) -> bool:
        # In a folder, a .json file is a dataset when it holds records: an array, an object
        # with a list of records under a key, or JSON Lines. DeepSpeed configs and
        # LLaMA-Factory's dataset_info.json are objects of settings: not datasets. A CSV/TSV
        # table is one when its header names a training column (results tables are not).
        if not self.claims_file(path):
            return False
        suffix = path.suffix.lower()
        if suffix == ".json":
            return _holds_records(path)
        if suffix in _TABLES:
            return _header_trains(path, _TABLES[suffix])
        return True

    def skip_reason(self, path: Path) -> str | None:
        return "a table whose header names no training column" if path.suffix.lower() in _TABLES else None

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        from doctor.probes.dataset.check import DatasetOptions, scan_dataset

        assert target.path is not None
        shared = {f.name for f in dataclasses.fields(DatasetOptions)}
        values = {k: v for k, v in dataclasses.asdict(context.options).items() if k in shared}
        return scan_dataset(target.path, DatasetOptions(**values))


PROBE = DatasetProbe()

_CONFIG_JSON = re.compile(r"(?i)^(config|generation_config|adapter_config|tokenizer|tokenizer_config|"
                          r"special_tokens_map|added_tokens|vocab|preprocessor_config|processor_config|"
                          r"chat_template|trainer_state|training_args|package(-lock)?|tsconfig|"
                          r"launch|settings|ds_config.*|deepspeed.*|.*\.index)\.json$")


def _is_config_json(name: str) -> bool:
    return bool(_CONFIG_JSON.match(name))


def _holds_records(path: Path) -> bool:
    try:
        first = reader.first_significant_byte(path)
        if first != b"{" or path.stat().st_size > (64 << 20):
            return True   # an array, JSON Lines of other shapes, or too big to look at: the probe reads it
        import orjson

        whole = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return True       # unreadable or not one JSON value (JSON Lines): the probe says what it is
    if type(whole) is not dict:
        return True
    # records under a key count only when they are training records (a known format's keys):
    # a project's benchmark results or API dumps also keep lists of objects under a key
    from doctor.probes.dataset.schema import UNKNOWN, classify

    def training_like(record: dict) -> bool:   # a known format's keys, or a chat turn's
        return classify(tuple(record)).name != UNKNOWN or {"role", "content"} <= record.keys() \
            or {"from", "value"} <= record.keys()

    # the reader takes the longest list of objects (reader.py): that list decides
    lists = [v for v in whole.values() if type(v) is list and v and all(type(x) is dict for x in v[:100])]
    return bool(lists) and any(training_like(x) for x in max(lists, key=len)[:100])


_TABLES = {".csv": ",", ".tsv": "\t"}


def _header_trains(path: Path, delimiter: str) -> bool:
    """The table's first line names a column some training format reads (text, messages,
    instruction, prompt, chosen...): what a folder scan takes for a dataset."""
    import csv

    from doctor.probes.dataset.schema import UNKNOWN, classify

    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            header = next(csv.reader([f.readline(1 << 16)], delimiter=delimiter), [])
    except OSError:
        return True   # the probe says what is wrong with it
    names = tuple(h.strip() for h in header if h.strip())
    return not names or classify(names).name != UNKNOWN or bool(classify(names).missing) \
        or bool(_TRAINING_WORDS & {n.lower() for n in names})


# Column names of question-answer tables people train from, in no format of their own: such a
# table is taken, so the scan can say how to turn it into one.
_TRAINING_WORDS = frozenset({"question", "answer", "query", "response", "reply", "input", "output", "context",
                             "instruction", "prompt", "completion", "text", "content", "messages", "conversation",
                             "conversations", "chosen", "rejected", "system", "user", "assistant", "label"})
