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
from doctor.findings import AreaStatus, Fix, Location, Observation, Safety
from doctor.probes import adapters, limits, model_arch, model_repairs, model_shape, model_tokenizer, pickles
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target
from doctor.probes.gguf import LFS_POINTER

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format caps its JSON header at 100 MB
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")
MAX_PICKLE_FILES = 64   # pickle files scanned per folder (a checkpoint folder has a handful)
SHOWN = 3               # tensor names quoted in one observation
TRAINER_STATE = ("optimizer", "scheduler", "rng_state", "scaler", "training_args")   # a checkpoint-N's, not weights


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int = 0     # where its bytes begin and end in the file (absolute offsets)
    end: int = 0


# Bytes per element of the safetensors dtypes (the format's Dtype enum); packed 4/6-bit kinds
# and any newer name are left out of the size check.
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


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
    if not isinstance(header, dict):
        raise HeaderError("the JSON header is not an object")
    meta = header.pop("__metadata__", {}) or {}
    tensors: dict[str, Tensor] = {}
    for name, info in header.items():
        try:
            begin, stop = (int(x) for x in info["data_offsets"])
            shape = tuple(int(d) for d in info["shape"])
            tensors[name] = Tensor(name, str(info["dtype"]), shape, 8 + n + begin, 8 + n + stop)
        except (KeyError, TypeError, ValueError, IndexError):
            raise HeaderError(f"tensor {name!r} has a malformed entry") from None
        _check_extent(name, tensors[name])
    end = _check_layout(tensors.values(), 8 + n)
    if end > size:
        raise HeaderError(f"the tensors need {end} bytes but the file has {size}: truncated")
    if end < size:   # safetensors refuses it too: "incomplete metadata, file not fully covered"
        raise HeaderError(f"the tensors end at byte {end} but the file has {size}: bytes no tensor covers")
    return tensors, meta


def _check_extent(name: str, t: Tensor) -> None:
    """dtype x shape must be exactly the bytes its offsets span."""
    if t.end < t.start or any(d < 0 for d in t.shape):
        raise HeaderError(f"tensor {name!r} has negative offsets or dimensions")
    width = DTYPE_BYTES.get(t.dtype)
    if width is None:
        return
    count = 1
    for d in t.shape:
        count *= d
    if count * width != t.end - t.start:
        raise HeaderError(f"tensor {name!r} is {t.dtype} {list(t.shape)} ({count * width} bytes) "
                          f"but its offsets span {t.end - t.start} bytes")


def _check_layout(tensors: Any, data_start: int) -> int:
    """The tensors tile the data section from its first byte, without gap or overlap, as the
    safetensors loader demands ("invalid offset"); returns where the last one ends."""
    end, previous = data_start, None
    for t in sorted(tensors, key=lambda t: (t.start, t.end)):
        if t.start < end:
            raise HeaderError(f"tensors {previous!r} and {t.name!r} overlap in the file")
        if t.start > end:
            raise HeaderError(f"tensor {t.name!r} starts at byte {t.start}, leaving a gap after "
                              f"{repr(previous) if previous else 'the header'}")
        end, previous = t.end, t.name
    return end


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
        obs += _config_checks(root, config, tensors, per_file, bad, caps)
        obs += _remote_code(root, config, where, caps)
    base_folder = Path(base) if base else adapters.local_base(adapter, root) if adapter is not None else None
    if adapter is not None:
        obs += _adapter_checks(root, adapter, per_file, facts, caps, base)
    gguf_only = config is None and adapter is None and root.is_dir() and any(root.glob("*.gguf"))
    if gguf_only:
        pass   # a GGUF file carries its own tokenizer
    elif not any((root / n).exists() for n in TOKENIZER_FILES):
        obs.append(Observation("MODEL-NO-TOKENIZER", where, {"kind": "adapter" if adapter and not config else "model"},
                               fixes=model_repairs.copy_tokenizer(root, base_folder, caps.tokenizer_bytes)))
    else:
        obs += _tokenizer_checks(root, config, adapter, tensors, caps, base_folder)
    pickled = sorted(p for p in root.iterdir() if p.suffix.lower() in pickles.PICKLE_SUFFIXES and p.is_file()) \
        if root.is_dir() else []
    scanned = _pickle_checks(pickled[:MAX_PICKLE_FILES])
    dangerous = any(o.entry_id == "MODEL-PICKLE-CODE" for o in scanned)
    # weights, not a checkpoint-N's trainer state (optimizer.pt, rng_state.pth, training_args.bin)
    downloaded = [p for p in pickled if lfs_pointer(p) is None and not p.name.startswith(TRAINER_STATE)]
    if not list(root.glob("*.safetensors")) and downloaded and not dangerous:   # re-saving is no advice for those
        obs.append(Observation("MODEL-PICKLE-WEIGHTS", where, fixes=(Fix(
            "Convert the pickle weights to safetensors in a child process with torch.load(weights_only=True); "
            "the pickle files are kept.", Safety.UNSAFE, "model"),)))
    obs += scanned
    kind, what, loader = classify(root, config, adapter, tensors, pickled)
    if kind == "unknown" and config is not None and any(o.entry_id == "MODEL-LFS-POINTER" for o in obs):
        kind, what = "lfs-pointers", "model whose weight files are Git LFS pointers (not downloaded)"
        loader = "nothing yet: fetch the weights first (git lfs pull)"
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
        pointer = lfs_pointer(file)
        if pointer is not None:
            obs.append(Observation("MODEL-LFS-POINTER", Location(str(file), 1, 1), {"file": file.name, "size": pointer}))
            bad = True
            continue
        try:
            found, _ = read_safetensors_header(file)
            tensors.update(found)
            per_file[file.name] = found
        except HeaderError as exc:
            obs.append(Observation("MODEL-SAFETENSORS-BROKEN", Location(str(file)), {"file": file.name, "error": str(exc)}))
            bad = True
    if index_file is not None and weight_map:
        obs += _index_against_shards(index_file, weight_map, per_file, caps, complete=not bad)
    return tensors, bad, per_file


def _index_against_shards(index_file: Path, weight_map: dict[str, str], per_file: dict[str, dict[str, Tensor]],
                          caps: Caps, complete: bool = True) -> list[Observation]:
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

    shards = {f: found for f, found in per_file.items() if not f.startswith("adapter_model")}
    held = {name for found in shards.values() for name in found}
    # a rebuilt index is offered only where every shard's header was read
    fix = model_repairs.rebuilt_index(index_file, text, shards, sorted(set(weight_map) - held)) if complete and text else ()
    for shard, names in sorted(listed.items()):
        if shard not in per_file:
            continue   # missing or unreadable: reported on its own
        stale = sorted(names - per_file[shard].keys())
        # held by another shard the index names: transformers 5.x still finds those
        misplaced = [n for n in stale if any(n in per_file.get(other, {}) for other in listed if other != shard)]
        lost = [n for n in stale if n not in misplaced]
        if lost:
            out.append(Observation("MODEL-INDEX-STALE", at(lost[0]),
                                   {"shard": shard, "count": len(lost), "tensors": ", ".join(lost[:SHOWN])}, fixes=fix))
        if misplaced:
            out.append(Observation("MODEL-INDEX-MISPLACED", at(misplaced[0]),
                                   {"shard": shard, "count": len(misplaced), "tensors": ", ".join(misplaced[:SHOWN])},
                                   fixes=fix))
    for file, found in sorted(per_file.items()):
        if file.startswith("adapter_model"):
            continue
        extra = sorted(found.keys() - weight_map.keys())   # mapped to another shard: MISPLACED says it
        if extra:   # a shard the index never names is not even opened: its tensors are missing
            out.append(Observation("MODEL-INDEX-UNLISTED" if file in listed else "MODEL-INDEX-SHARD-UNNAMED",
                                   Location(str(index_file), 1, 1),
                                   {"file": file, "count": len(extra), "tensors": ", ".join(extra[:SHOWN])}, fixes=fix))
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
    out += _vocabulary_grown(root, shapes, base_shapes, base_name, caps)
    out += _targets_absent(root, adapter, base_shapes, base_name)
    return out + adapters.base_mismatches(shapes, base_shapes, base_name, modules,
                                          lambda _tensor: where)


def _targets_absent(root: Path, adapter: dict[str, Any], base_shapes: dict[str, tuple[int, ...]],
                    base_name: str) -> list[Observation]:
    """PEFT matches each target_modules name against the base's module names (equal, or ending
    with "." + name); when none matches, loading raises NoMatchingPeftModuleError."""
    targets = adapter.get("target_modules")
    if not isinstance(targets, list) or not targets or not base_shapes or not all(isinstance(t, str) for t in targets):
        return []   # a regex string, "all-linear", or nothing to compare with
    modules: set[str] = set()
    for name in base_shapes:
        parts = name.split(".")[:-1]   # the module of a parameter, and every module above it
        modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    if any(m == t or m.endswith("." + t) for t in targets for m in modules):
        return []
    return [Observation("MODEL-ADAPTER-TARGETS-ABSENT", Location(str(root / "adapter_config.json"), 1, 1),
                        {"targets": ", ".join(targets), "base": base_name})]


def _vocabulary_grown(root: Path, shapes: dict[str, tuple[int, ...]], base_shapes: dict[str, tuple[int, ...]],
                      base_name: str, caps: Caps) -> list[Observation]:
    """An adapter whose tokenizer has more tokens than the base's embedding has rows must
    carry the resized embed_tokens and lm_head (modules_to_save), or the new ids index past
    the base's embedding."""
    tok = root / "tokenizer.json"
    base_rows = next((s[0] for n, s in base_shapes.items() if n.endswith("embed_tokens.weight") and s), None)
    if base_rows is None or not tok.exists():
        return []
    data = _json(tok, [], caps.tokenizer_bytes)
    length = max(model_tokenizer.token_ids(data).values(), default=-1) + 1 if data else 0
    if length <= base_rows:
        return []
    # whole modules (modules_to_save) or PEFT's trainable_tokens deltas; LoRA factors don't resize
    saved = [n for n in shapes if ("embed_tokens" in n or "lm_head" in n) and ".lora_" not in n]
    if saved:
        return []
    return [Observation("MODEL-ADAPTER-VOCAB-UNSAVED", Location(str(root / "adapter_config.json"), 1, 1),
                        {"tokens": length, "base_rows": base_rows, "base": base_name})]


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
    fix: tuple = ()
    if missing and isinstance(config.get("auto_map"), dict):
        text = _bounded_text(root / "config.json", caps.json_bytes)
        fix = model_repairs.remove_config_key(root / "config.json", text, "auto_map",
                                              "then the model_type's own transformers class loads it, if there is one")
    for f in missing:
        out.append(Observation("MODEL-REMOTE-CODE-MISSING", where, {"file": f}, fixes=fix))
    return out


def lfs_pointer(path: Path) -> str | None:
    """The size a Git LFS pointer file declares for the real file ("?" if none), or None when
    `path` is not such a pointer (a clone without git-lfs leaves these ~130-byte texts)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if not head.startswith(LFS_POINTER):
        return None
    for line in head.decode("latin-1").splitlines():
        if line.startswith("size ") and line[5:].strip().isdigit():
            return f"{int(line[5:]) / 1e9:.2f} GB" if int(line[5:]) >= 10**8 else f"{int(line[5:])} bytes"
    return "?"


def _pickle_checks(files: list[Path]) -> list[Observation]:
    """Each pickle's imports, read from its opcodes; it is never unpickled."""
    out: list[Observation] = []
    for path in files:
        pointer = lfs_pointer(path)
        if pointer is not None:
            out.append(Observation("MODEL-LFS-POINTER", Location(str(path), 1, 1), {"file": path.name, "size": pointer}))
            continue
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


def _config_checks(root: Path, config: dict[str, Any], tensors: dict[str, Tensor], per_file: dict[str, dict[str, Tensor]],
                   incomplete: bool, caps: Caps) -> list[Observation]:
    """config.json against its architecture (installed transformers' source) and the headers."""
    out: list[Observation] = []
    path = root / "config.json"
    text = _bounded_text(path, caps.json_bytes)
    at = model_shape.key_locator(path, text)
    quant = config.get("quantization_config") or {}
    if isinstance(quant, dict) and (quant.get("quant_method") == "bitsandbytes" or quant.get("load_in_4bit")
                                    or quant.get("load_in_8bit")):
        out.append(Observation("MODEL-BNB-QUANTIZED", at("quantization_config")))
    shapes = {n: t.shape for n, t in tensors.items()} if not incomplete and not quant else {}
    found, arch = model_shape.architecture_checks(config, shapes, at, model_arch.installed_transformers())
    out += found
    if not tensors or incomplete:
        return out
    embed_name = next((n for n in tensors if n.endswith("embed_tokens.weight")), None)
    embed = tensors.get(embed_name) if embed_name else None
    vocab = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    if embed is not None and vocab and embed.shape and embed.shape[0] != vocab:
        out.append(Observation("MODEL-VOCAB-MISMATCH", at("vocab_size"), {"rows": embed.shape[0], "vocab_size": vocab}))
    head_name = next((n for n in tensors if n.endswith("lm_head.weight")), None)
    is_tied = model_shape.tied(config, arch)
    if not is_tied and head_name is None and embed is not None:
        out.append(Observation("MODEL-LM-HEAD-MISSING", at("tie_word_embeddings"),
                               fixes=model_repairs.set_config_key(path, text, "tie_word_embeddings", True)))
    if is_tied and head_name and embed_name and embed is not None:
        saved_in = {name: root / file for file, found in per_file.items() for name in found}
        head = tensors[head_name]
        if not model_shape.same_start((saved_in[embed_name], embed.start, embed.end - embed.start),
                                      (saved_in[head_name], head.start, head.end - head.start)):
            out.append(Observation("MODEL-TIED-HEAD-DIFFERS", at("tie_word_embeddings"),
                                   {"explicit": "says" if "tie_word_embeddings" in config else "defaults to"},
                                   fixes=model_repairs.set_config_key(path, text, "tie_word_embeddings", False)))
    return out


def _bounded_text(path: Path, max_bytes: int) -> str:
    try:
        return limits.read_text(path, max_bytes, errors="replace")
    except (limits.Refusal, OSError):
        return ""


def _tokenizer_checks(root: Path, config: dict[str, Any] | None, adapter: dict[str, Any] | None,
                      tensors: dict[str, Tensor], caps: Caps, base: Path | None) -> list[Observation]:
    """tokenizer.json loads and fits the embedding; chat template; eos/pad."""
    out: list[Observation] = []
    tok = root / "tokenizer.json"
    ids: dict[str, int] = {}
    pointers = [p for p in (tok, root / "tokenizer.model") if p.exists() and lfs_pointer(p) is not None]
    out += [Observation("MODEL-LFS-POINTER", Location(str(p), 1, 1), {"file": p.name, "size": lfs_pointer(p)})
            for p in pointers]
    if tok.exists() and tok not in pointers:
        error = model_tokenizer.load_check(tok)
        if error:
            out.append(Observation("MODEL-TOKENIZER-UNLOADABLE", Location(str(tok), 1, 1), {"error": error}))
        refused: list[Observation] = []
        data = _json(tok, refused, caps.tokenizer_bytes)
        out += [o for o in refused if o.entry_id != "MODEL-JSON-INVALID" or not error]
        ids = model_tokenizer.token_ids(data) if data else {}
    embed = next((t for n, t in tensors.items() if n.endswith("embed_tokens.weight")), None)
    highest = max(ids.values(), default=-1)
    if config is not None and embed is not None and embed.shape and highest >= embed.shape[0]:
        out.append(Observation("MODEL-TOKENIZER-EXCEEDS-EMBEDDINGS", Location(str(tok), 1, 1),
                               {"token_id": highest, "rows": embed.shape[0]}))
    tok_config_path = root / "tokenizer_config.json"
    tok_config = (_json(tok_config_path, out, caps.tokenizer_bytes) if tok_config_path.exists() else None) or {}
    gen_path = root / "generation_config.json"
    generation = _json(gen_path, out, caps.json_bytes) if gen_path.exists() else None
    if generation is None and config is not None and "eos_token_id" in config:
        gen_path, generation = root / "config.json", config   # GenerationConfig.from_model_config
    chat_name = model_tokenizer.looks_like_chat_model(root, config, adapter)
    if chat_name and not model_tokenizer.has_chat_template(root, tok_config):
        out.append(Observation("MODEL-NO-CHAT-TEMPLATE", Location(str(tok_config_path if tok_config_path.exists() else root)),
                               {"name": chat_name},
                               fixes=model_repairs.copy_chat_template(root, base, caps.tokenizer_bytes)))
    if tok_config_path.exists():   # without it, AutoTokenizer has no special tokens at all
        out += model_tokenizer.special_token_checks(
            root, tok_config, ids, generation, Location(str(tok_config_path), 1, 1),
            Location(str(gen_path), 1, 1))
    return out


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
                target.write_bytes(_safetensors_bytes(content["tensors"], content.get("truncate", 0),
                                                      content.get("fill", {})))
            elif isinstance(content, dict) and "zip" in content:   # torch.save's format: {member: text}
                import zipfile

                with zipfile.ZipFile(target, "w") as zf:
                    for member, data in content["zip"].items():
                        zf.writestr(member, data.encode("latin-1"))
            else:
                target.write_text(content if isinstance(content, str) else json.dumps(content))
        return _scan(str(Path(tmp) / str(options.get("folder", ""))), caps).observations


def _deep_example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    from doctor.probes.model_deep import output_example

    return output_example(text, options, kb)


class ModelProbe(Probe):
    """Saved model and adapter folders, from config.json and safetensors headers (no weights)."""

    name, area, label = "model", "model", "Model"
    headings = {"model": "Model"}
    folder = True
    option, option_help = "--model", "a saved model or adapter folder"
    examples = {"model.folder": _example, "model.deep_output": _deep_example}

    def claims_folder(self, path: Path, files: list[str]) -> bool:
        # a merged model (config.json beside safetensors shards) or a LoRA adapter
        weights = (".safetensors", ".bin", ".pt", ".pth")
        return "adapter_config.json" in files or ("config.json" in files and any(f.endswith(weights) for f in files))

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        result = scan_model(target.path, context.options.base)
        if context.options.deep:   # load it for real, in a child process
            from doctor.probes.model_deep import request, run_model_deep

            req = request(target.path, result.facts, result.observations, context.options.base)
            result = result.merge(run_model_deep(req, context.options.timeout, context.options.python))
        return result


PROBE = ModelProbe()


def _safetensors_bytes(tensors: dict[str, list[Any]], truncate: int = 0, fill: dict[str, int] | None = None) -> bytes:
    """A real safetensors file from {name: [dtype, shape]}: zero bytes, or the byte `fill`
    gives for a tensor."""
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
    body = b"".join(bytes([(fill or {}).get(name, 0)]) * (header[name]["data_offsets"][1] - header[name]["data_offsets"][0])
                    for name in header)
    data = struct.pack("<Q", len(raw)) + raw + body
    return data[: len(data) - truncate] if truncate else data
