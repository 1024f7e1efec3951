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
from doctor.probes import adapters, limits, pickles
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format caps its JSON header at 100 MB
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")
MAX_PICKLE_FILES = 64   # pickle files scanned per folder (a checkpoint folder has a handful)
SHOWN = 3               # tensor names quoted in one observation


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
        data = limits.load_json(text)   # one parse: the depth check\'s
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


def scan_model(folder: str, base: str | None = None) -> ProbeResult:
    """`base`: the base model folder to check an adapter against, instead of its
    base_model_name_or_path."""
    return _scan(folder, Caps(), base)


def _scan(folder: str, caps: Caps, base: str | None = None) -> ProbeResult:
    root = Path(folder)
    obs: list[Observation] = []
    facts = FactCollector(f"model:{folder}")
    config = _json(root / "config.json", obs, caps.json_bytes) if (root / "config.json").exists() else None
    adapter = (_json(root / "adapter_config.json", obs, caps.json_bytes)
               if (root / "adapter_config.json").exists() else None)
    where = Location(str(root / ("config.json" if config is not None else "adapter_config.json")), 1, 1)
    tensors, bad, per_file = _all_tensors(root, obs, caps)
    facts.set("model.tensors", len(tensors))
    if config is not None and adapter is not None:
        obs.append(Observation("MODEL-ADAPTER-AND-MERGED", where))
    if config is not None:
        facts.set("model.max_position_embeddings", max_positions(config))   # a script's max_seq_length is checked against it
        obs += _config_checks(root, config, tensors, where, bad)
        obs += _remote_code(root, config, where, caps)
    if adapter is not None:
        obs += _adapter_checks(root, adapter, per_file, facts, caps, base)
    gguf_only = config is None and adapter is None and root.is_dir() and any(root.glob("*.gguf"))
    if gguf_only:
        pass   # a GGUF file carries its own tokenizer
    elif not any((root / n).exists() for n in TOKENIZER_FILES):
        obs.append(Observation("MODEL-NO-TOKENIZER", where, {"kind": "adapter" if adapter and not config else "model"}))
    elif config is not None and tensors:
        obs += _tokenizer_fits(root, tensors, where, caps)
    pickled = sorted(p for p in root.iterdir() if p.suffix.lower() in pickles.PICKLE_SUFFIXES and p.is_file()) \
        if root.is_dir() else []
    scanned = _pickle_checks(pickled[:MAX_PICKLE_FILES])
    dangerous = any(o.entry_id == "MODEL-PICKLE-CODE" for o in scanned)
    if not list(root.glob("*.safetensors")) and pickled and not dangerous:   # re-saving is no advice for those
        obs.append(Observation("MODEL-PICKLE-WEIGHTS", where))
    obs += scanned
    kind, what, loader = classify(root, config, adapter, tensors, pickled)
    facts.set("model.kind", kind)
    facts.set("model.loader", loader)
    facts.set("model.pickle_files", len(pickled))
    return ProbeResult(facts=facts.freeze(), observations=obs,
                       areas=[AreaStatus("model", f"Model {folder}", f"{what}, {len(tensors)} tensors; load with {loader}",
                                         path=str(folder))])


def max_positions(config: dict[str, Any]) -> int | None:
    """The context length the model was built for (a multimodal model's is its text model's)."""
    for part in (config, config.get("text_config")):
        value = part.get("max_position_embeddings") if isinstance(part, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def classify(root: Path, config: dict[str, Any] | None, adapter: dict[str, Any] | None,
             tensors: dict[str, Tensor], pickled: list[Path]) -> tuple[str, str, str]:
    """(kind, what it is, how it is loaded) for the folder's status line and facts."""
    ggufs = sorted(p.name for p in root.glob("*.gguf")) if root.is_dir() else []
    if adapter is not None:
        base = adapter.get("base_model_name_or_path") or "its base model"
        return ("lora-adapter", f"LoRA adapter (r={adapter.get('r', '?')}) for {base}",
                "PEFT PeftModel.from_pretrained over the base, or Unsloth FastLanguageModel.from_pretrained on this folder")
    if config is not None and (tensors or pickled):
        remote = "trust_remote_code=True (config.json has an auto_map)" if config.get("auto_map") else "no trust_remote_code"
        quant = config.get("quantization_config") or {}
        method = quant.get("quant_method") if isinstance(quant, dict) else None
        if isinstance(quant, dict) and (method == "bitsandbytes" or quant.get("load_in_4bit") or quant.get("load_in_8bit")):
            bits = "8bit" if quant.get("load_in_8bit") and not quant.get("load_in_4bit") else "4bit"
            return (f"merged-{bits}", f"merged model, bitsandbytes {bits[0]}-bit",
                    f"transformers AutoModelForCausalLM with bitsandbytes installed ({remote}), or Unsloth FastLanguageModel")
        if method:
            return ("merged-quantized", f"merged model, {method}-quantized",
                    f"transformers AutoModelForCausalLM with {method} support ({remote})")
        dtypes = [t.dtype for t in tensors.values()]
        common = max(set(dtypes), key=dtypes.count) if dtypes else None
        kind = {"F16": "merged-16bit", "BF16": "merged-16bit", "F32": "merged-32bit"}.get(common or "", "merged")
        what = {"merged-16bit": f"merged 16-bit model ({common})", "merged-32bit": "merged 32-bit model (F32)"}.get(
            kind, "merged model" + (" (pickle weights)" if not tensors else ""))
        return kind, what, f"transformers AutoModelForCausalLM ({remote}), or Unsloth FastLanguageModel"
    if ggufs:
        return ("gguf", f"GGUF export ({', '.join(ggufs[:SHOWN])}{', ...' if len(ggufs) > SHOWN else ''})",
                "llama.cpp (llama-cli -m FILE) or Ollama (a Modelfile with FROM FILE)")
    return "unknown", "no model weights or adapter recognised", "nothing: neither a model, an adapter nor a GGUF file"


def _all_tensors(root: Path, obs: list[Observation], caps: Caps) -> tuple[dict[str, Tensor], bool, dict[str, dict[str, Tensor]]]:
    tensors: dict[str, Tensor] = {}
    per_file: dict[str, dict[str, Tensor]] = {}
    bad = False
    index_file = next(iter(root.glob("*.safetensors.index.json")), None)
    weight_map: dict[str, str] = {}
    if index_file is not None:
        index = _json(index_file, obs, caps.json_bytes) or {}
        raw_map = index.get("weight_map")
        weight_map = {k: v for k, v in raw_map.items() if isinstance(v, str)} if isinstance(raw_map, dict) else {}
        for shard in sorted(set(weight_map.values())):
            if not (root / shard).exists():
                obs.append(Observation("MODEL-SHARD-MISSING", Location(str(index_file), 1, 1), {"shard": shard}))
                bad = True
    for file in sorted(root.glob("*.safetensors")):
        try:
            found, _ = read_safetensors_header(file)
            tensors.update(found)
            per_file[file.name] = found
        except HeaderError as exc:
            obs.append(Observation("MODEL-SAFETENSORS-BROKEN", Location(str(file)), {"file": file.name, "error": str(exc)}))
            bad = True
    if index_file is not None and weight_map:
        obs += _index_against_shards(index_file, weight_map, per_file, caps)
    return tensors, bad, per_file


def _index_against_shards(index_file: Path, weight_map: dict[str, str], per_file: dict[str, dict[str, Tensor]],
                          caps: Caps) -> list[Observation]:
    """The index names, for each tensor, the shard that holds it; transformers trusts it to
    decide which keys are missing. A tensor its shard lacks loads as random weights."""
    out: list[Observation] = []
    listed: dict[str, set[str]] = {}
    for name, shard in weight_map.items():
        listed.setdefault(shard, set()).add(name)
    try:
        text = limits.read_text(index_file, caps.json_bytes, errors="replace")
    except (limits.Refusal, OSError):
        text = ""

    def at(name: str) -> Location:   # the line of the tensor's entry in the index
        pos = text.find(json.dumps(name))
        return Location(str(index_file), *limits.position(text, pos)) if pos >= 0 else Location(str(index_file), 1, 1)

    for shard, names in sorted(listed.items()):
        if shard not in per_file:
            continue   # missing or unreadable: reported on its own
        stale = sorted(names - per_file[shard].keys())
        if stale:
            out.append(Observation("MODEL-INDEX-STALE", at(stale[0]),
                                   {"shard": shard, "count": len(stale), "tensors": ", ".join(stale[:SHOWN])}))
    for file, found in sorted(per_file.items()):
        if file.startswith("adapter_model"):
            continue
        extra = sorted(found.keys() - listed.get(file, set()))
        if extra:
            out.append(Observation("MODEL-INDEX-UNLISTED", Location(str(index_file), 1, 1),
                                   {"file": file, "count": len(extra), "tensors": ", ".join(extra[:SHOWN]),
                                    "listed": "listed in the index" if file in listed else "not named in the index at all"}))
    return out


def _adapter_checks(root: Path, adapter: dict[str, Any], per_file: dict[str, dict[str, Tensor]], facts: FactCollector,
                    caps: Caps, given_base: str | None = None) -> list[Observation]:
    """LoRA shapes against r, and against the base model's weights when it is a local folder."""
    name = "adapter_model.safetensors"
    shapes = {n: t.shape for n, t in per_file.get(name, {}).items()}
    where = Location(str(root / name))
    out = adapters.rank_mismatches(adapter, shapes, where)
    facts.set("model.lora_r", adapter.get("r") if isinstance(adapter.get("r"), int) else None)
    base = Path(given_base) if given_base else adapters.local_base(adapter, root)
    base_name = given_base or str(adapter.get("base_model_name_or_path"))
    facts.set("model.base", given_base or str(adapter.get("base_model_name_or_path") or "") or None)
    facts.set("model.base_local", base is not None)
    if base is None or not shapes:
        return out
    base_config = _json(base / "config.json", [], caps.json_bytes) or {}
    if base_config.get("quantization_config"):
        return out   # quantized weights are packed: their shapes are not the layer's [out, in]
    base_shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(base.glob("*.safetensors")):
        try:
            base_shapes.update({n: t.shape for n, t in read_safetensors_header(file)[0].items()})
        except HeaderError:
            continue   # the base's own scan reports it
    modules = adapter.get("modules_to_save") or []
    modules = [m for m in modules if isinstance(m, str)] if isinstance(modules, list) else []
    return out + adapters.base_mismatches(shapes, base_shapes, base_name, modules,
                                          lambda _tensor: where)


def _remote_code(root: Path, config: dict[str, Any], where: Location, caps: Caps) -> list[Observation]:
    """auto_map names the Python files trust_remote_code=True would run: `module.Class`, or
    `repo--module.Class` for code fetched from another repository."""
    maps: list[Any] = [config.get("auto_map")]
    tok = root / "tokenizer_config.json"
    if tok.exists():
        maps.append((_json(tok, [], caps.json_bytes) or {}).get("auto_map"))
    refs: list[str] = []
    for auto_map in maps:
        if not isinstance(auto_map, dict):
            continue
        for value in auto_map.values():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, str) and "." in ref and ref not in refs:
                    refs.append(ref)
    if not refs:
        return []
    local = sorted({ref.rsplit(".", 1)[0].replace(".", "/") + ".py" for ref in refs if "--" not in ref})
    remote = sorted({ref.split("--", 1)[0] for ref in refs if "--" in ref})
    present = [f for f in local if (root / f).is_file()]
    missing = [f for f in local if f not in present]
    classes = ", ".join(sorted(config["auto_map"])) if isinstance(config.get("auto_map"), dict) else "tokenizer"
    out = [Observation("MODEL-REMOTE-CODE", where, {
        "classes": classes, "files": ", ".join(present) or "none here",
        "other_repos": ", ".join(remote) or "none"})]
    for f in missing:
        out.append(Observation("MODEL-REMOTE-CODE-MISSING", where, {"file": f}))
    return out


def _pickle_checks(files: list[Path]) -> list[Observation]:
    """Each pickle's imports, read from its opcodes; it is never unpickled."""
    out: list[Observation] = []
    for path in files:
        try:
            report = pickles.scan_file(path)
        except OSError as exc:
            out.append(Observation("MODEL-PICKLE-UNCHECKED", Location(str(path)), {"file": path.name, "reason": str(exc)}))
            continue
        code = report.code + (["an import whose name is computed while unpickling"] if report.unresolved else [])
        if code:
            out.append(Observation("MODEL-PICKLE-CODE", Location(str(path)), {"file": path.name, "imports": ", ".join(code)}))
        if report.known_classes:
            out.append(Observation("MODEL-PICKLE-OBJECTS", Location(str(path)),
                                   {"file": path.name, "imports": ", ".join(report.known_classes[:SHOWN * 2])}))
        if report.unchecked:
            out.append(Observation("MODEL-PICKLE-UNCHECKED", Location(str(path)), {"file": path.name, "reason": report.unchecked}))
    return out


def _config_checks(root: Path, config: dict[str, Any], tensors: dict[str, Tensor], where: Location,
                   incomplete: bool) -> list[Observation]:
    out: list[Observation] = []
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") == "bitsandbytes" or quant.get("load_in_4bit") or quant.get("load_in_8bit"):
        out.append(Observation("MODEL-BNB-QUANTIZED", where))
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
    """kb test: `input` is a JSON object of file name (a subfolder allowed) -> content: text,
    a safetensors spec {"tensors": {name: [dtype, shape]}}, or a zip {"zip": {member: text}}."""
    import tempfile

    spec = json.loads(text)
    caps = Caps(**{k: int(v) for k, v in options.items() if k in ("json_bytes", "tokenizer_bytes")})
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in spec.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)   # "base/config.json": a base model beside
            if isinstance(content, dict) and "tensors" in content:
                target.write_bytes(_safetensors_bytes(content["tensors"], content.get("truncate", 0)))
            elif isinstance(content, dict) and "zip" in content:   # torch.save's format: {member: text}
                import zipfile

                with zipfile.ZipFile(target, "w") as zf:
                    for member, data in content["zip"].items():
                        zf.writestr(member, data.encode("latin-1"))
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
        weights = (".safetensors", ".bin", ".pt", ".pth")
        return "adapter_config.json" in files or ("config.json" in files and any(f.endswith(weights) for f in files))

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        return scan_model(target.path, context.options.base)


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
