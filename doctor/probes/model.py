"""Saved model folders, checked from their files: config.json, safetensors headers, the
shard index, adapter and tokenizer files. No weight is loaded (headers are a few KB).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Location, Observation
from doctor.probes import limits
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format caps its JSON header at 100 MB
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]


class HeaderError(Exception):
    pass


def read_safetensors_header(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors a safetensors file declares, checked against the file's real size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise HeaderError(f"the file is {size} bytes: too short to hold a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise HeaderError(f"the header claims {n} bytes but the file has {size} (truncated download or not safetensors)")
        try:
            header = json.loads(f.read(n))
        except ValueError as exc:
            raise HeaderError(f"the JSON header does not parse: {exc}") from None
    meta = header.pop("__metadata__", {}) or {}
    tensors: dict[str, Tensor] = {}
    end = 0
    for name, info in header.items():
        try:
            tensors[name] = Tensor(name, info["dtype"], tuple(info["shape"]))
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise HeaderError(f"tensor {name!r} has a malformed entry") from None
    if 8 + n + end > size:
        raise HeaderError(f"the tensors need {8 + n + end} bytes but the file has {size}: truncated")
    return tensors, meta


@dataclass(frozen=True)
class Caps:
    """Largest JSON files read whole (kb examples lower them)."""

    json_bytes: int = limits.MODEL_JSON_MAX_BYTES
    tokenizer_bytes: int = limits.TOKENIZER_JSON_MAX_BYTES


def _json(path: Path, obs: list[Observation], max_bytes: int = limits.MODEL_JSON_MAX_BYTES) -> dict[str, Any] | None:
    """A JSON object file of the folder, bounded in size and nesting; None (with the
    observation that says why) when it cannot be read as one."""
    try:
        text = limits.read_text(path, max_bytes)
        limits.check_json_nesting(text)
        data = json.loads(text)
    except limits.Refusal as refused:
        entry = "MODEL-FILE-TOO-LARGE" if refused.kind == limits.TOO_LARGE else "MODEL-JSON-TOO-DEEP"
        obs.append(Observation(entry, Location(str(path), refused.line, refused.column), {"file": path.name, **refused.values}))
        return None
    except ValueError as exc:
        line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        obs.append(Observation("MODEL-JSON-INVALID", Location(str(path), line, col), {"file": path.name, "error": str(exc)}))
        return None
    except OSError:
        return None
    if not isinstance(data, dict):
        obs.append(Observation("MODEL-JSON-INVALID", Location(str(path), 1, 1),
                               {"file": path.name, "error": f"a JSON {type(data).__name__}, not an object"}))
        return None
    return data


def scan_model(folder: str) -> ProbeResult:
    return _scan(folder, Caps())


def _scan(folder: str, caps: Caps) -> ProbeResult:
    root = Path(folder)
    obs: list[Observation] = []
    facts = FactCollector(f"model:{folder}")
    config = _json(root / "config.json", obs, caps.json_bytes) if (root / "config.json").exists() else None
    adapter = (_json(root / "adapter_config.json", obs, caps.json_bytes)
               if (root / "adapter_config.json").exists() else None)
    where = Location(str(root / ("config.json" if config is not None else "adapter_config.json")), 1, 1)
    tensors, bad = _all_tensors(root, obs, caps)
    facts.set("model.tensors", len(tensors))
    if config is not None and adapter is not None:
        obs.append(Observation("MODEL-ADAPTER-AND-MERGED", where))
    if config is not None:
        obs += _config_checks(root, config, tensors, where, bad)
    if not any((root / n).exists() for n in TOKENIZER_FILES):
        obs.append(Observation("MODEL-NO-TOKENIZER", where, {"kind": "adapter" if adapter and not config else "model"}))
    elif config is not None and tensors:
        obs += _tokenizer_fits(root, tensors, where, caps)
    if not list(root.glob("*.safetensors")) and list(root.glob("*.bin")):
        obs.append(Observation("MODEL-PICKLE-WEIGHTS", where))
    kind = "LoRA adapter" if adapter and not config else (config or {}).get("model_type", "model")
    return ProbeResult(facts=facts.freeze(), observations=obs,
                       areas=[AreaStatus("model", f"Model {folder}", f"{kind}, {len(tensors)} tensors", path=str(folder))])


def _all_tensors(root: Path, obs: list[Observation], caps: Caps) -> tuple[dict[str, Tensor], bool]:
    tensors: dict[str, Tensor] = {}
    bad = False
    index_file = next(iter(root.glob("*.safetensors.index.json")), None)
    if index_file is not None:
        index = _json(index_file, obs, caps.json_bytes) or {}
        for shard in sorted(set((index.get("weight_map") or {}).values())):
            if not (root / shard).exists():
                obs.append(Observation("MODEL-SHARD-MISSING", Location(str(index_file), 1, 1), {"shard": shard}))
                bad = True
    for file in sorted(root.glob("*.safetensors")):
        try:
            found, _ = read_safetensors_header(file)
            tensors.update(found)
        except HeaderError as exc:
            obs.append(Observation("MODEL-SAFETENSORS-BROKEN", Location(str(file)), {"file": file.name, "error": str(exc)}))
            bad = True
    return tensors, bad


def _config_checks(root: Path, config: dict[str, Any], tensors: dict[str, Tensor], where: Location,
                   incomplete: bool) -> list[Observation]:
    out: list[Observation] = []
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") == "bitsandbytes" or quant.get("load_in_4bit") or quant.get("load_in_8bit"):
        out.append(Observation("MODEL-BNB-QUANTIZED", where))
    if config.get("auto_map"):
        out.append(Observation("MODEL-REMOTE-CODE", where, {"classes": ", ".join(sorted(config["auto_map"]))}))
    if not tensors or incomplete:
        return out
    embed = next((t for n, t in tensors.items() if n.endswith("embed_tokens.weight")), None)
    vocab = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    if embed is not None and vocab and embed.shape and embed.shape[0] != vocab:
        out.append(Observation("MODEL-VOCAB-MISMATCH", where, {"rows": embed.shape[0], "vocab_size": vocab}))
    tied = config.get("tie_word_embeddings", True)
    if not tied and not any(n.endswith("lm_head.weight") for n in tensors) and embed is not None:
        out.append(Observation("MODEL-LM-HEAD-MISSING", where))
    return out


def _tokenizer_fits(root: Path, tensors: dict[str, Tensor], where: Location, caps: Caps) -> list[Observation]:
    embed = next((t for n, t in tensors.items() if n.endswith("embed_tokens.weight")), None)
    tok = root / "tokenizer.json"
    if embed is None or not tok.exists():
        return []
    refused: list[Observation] = []
    data = _json(tok, refused, caps.tokenizer_bytes)
    if data is None:   # a tokenizer.json that is not JSON is the tokenizers library's to report
        return [o for o in refused if o.entry_id != "MODEL-JSON-INVALID"]
    vocab = (data.get("model") or {}).get("vocab") or {}
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [t.get("id", 0) for t in data.get("added_tokens") or []]
    highest = max(ids, default=-1)
    if highest >= embed.shape[0]:
        return [Observation("MODEL-TOKENIZER-EXCEEDS-EMBEDDINGS", Location(str(tok), 1, 1),
                            {"token_id": highest, "rows": embed.shape[0]})]
    return []


def _example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test: `input` is a JSON object of file name -> content (text, or a tensor spec)."""
    import tempfile

    spec = json.loads(text)
    caps = Caps(**{k: int(v) for k, v in options.items() if k in ("json_bytes", "tokenizer_bytes")})
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in spec.items():
            target = Path(tmp) / name
            if isinstance(content, dict) and "tensors" in content:
                target.write_bytes(_safetensors_bytes(content["tensors"], content.get("truncate", 0)))
            else:
                target.write_text(content if isinstance(content, str) else json.dumps(content))
        return _scan(tmp, caps).observations


class ModelProbe(Probe):
    """Saved model and adapter folders, from config.json and safetensors headers (no weights)."""

    name, area, label = "model", "model", "Model"
    headings = {"model": "Model"}
    folder = True
    option, option_help = "--model", "a saved model or adapter folder"
    examples = {"model.folder": _example}

    def claims_folder(self, path: Path, files: list[str]) -> bool:
        # a merged model (config.json beside safetensors shards) or a LoRA adapter
        return "adapter_config.json" in files or ("config.json" in files and any(f.endswith(".safetensors") for f in files))

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        return scan_model(target.path)


PROBE = ModelProbe()


def _safetensors_bytes(tensors: dict[str, list[Any]], truncate: int = 0) -> bytes:
    """A real safetensors file (zero-filled data) from {name: [dtype, shape]}."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    data = struct.pack("<Q", len(raw)) + raw + b"\0" * offset
    return data[: len(data) - truncate] if truncate else data
