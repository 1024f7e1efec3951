"""What one training step of a run will hold on the GPU, worked out before it runs.

Pure arithmetic over a model's shape (from config.json, the safetensors headers, or only a
parameter count read from the model's name) and the run's settings (batch, sequence length,
4/8/16-bit loading, LoRA rank or full fine-tuning, optimizer, gradient checkpointing). Each
term follows what Unsloth 2026.10.9 does. The activation constants are derived from the
tensors each layer saves for its backward pass, not fitted. bench/gpu/vram_calibrate.py
measured 22 real Unsloth runs on an H100 (3 widths, 2 sequence lengths, 16-bit, 4-bit, no
checkpointing, full fine-tuning; bench/results/vram-2026-12-07/): bench/vram_table.py puts
every run within 16% of its measured peak (mean 5%), inside the stated band of 25%.

  weights      16-bit: 2 bytes a parameter. 4-bit (bitsandbytes nf4, double quantization as
               Unsloth loads it): 0.5 + 1/64 + 4/(64*256) bytes for the decoder's Linear
               weights; embeddings, lm_head and norms stay 16-bit. 8-bit: 1 byte + a scale a row.
  trainable    LoRA: r * (in + out) per targeted projection per layer, kept in float32
               (unsloth_zoo/training_utils.py prepare_model_for_training upcasts lora_A/B), so
               4 bytes + 4 of gradient + the optimizer's state. Full fine-tuning: every
               parameter, trained in bfloat16 as loaded (2 bytes + 2 of gradient; measured).
  optimizer    bytes of state per trainable parameter: AdamW 8, 8-bit AdamW 2, Lion/Muon 4;
               torch's optimizers keep it in the weights' dtype, so half that beside 16-bit
               weights (full fine-tuning).
  activations  per token per layer ACT_H*h + ACT_I*i bytes, 16-bit: the layer norms' and
               attention's inputs, q/k/v, the attention output and o_proj's input (about 16*h
               with flash attention, which saves no score matrix), and the MLP's gate, up,
               activation and product (8*i). With gradient checkpointing only the layer inputs
               stay (2*h bytes a token a layer: "True"), or, with Unsloth's offloading
               ("unsloth", for max_seq_length >= 512), none of them stay on the GPU; one layer
               is recomputed in the backward pass either way. A mixture of experts runs only
               its active experts per token: a name's "A3B" sizes the activations.
  logits       Unsloth's fused linear cross-entropy (unsloth_zoo/fused_losses/fused_linear.py)
               never holds every token's logits: one chunk of rows at a time (fused_linear_rows:
               about tokens*h/vocab rows, at least 512*151936/vocab, at most 4096 and 2 GiB),
               4 bytes a logit.
  overhead     the CUDA context, cuBLAS workspaces and the allocator's rounding.

A model known only by its parameter count gets a wider band (its shape is guessed from the
count).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

MIB = 2**20
GIB = 2**30
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
# Unsloth's fused linear cross-entropy (unsloth_zoo/fused_losses/fused_linear.py, 2026.10.x)
# computes the logits one chunk of rows at a time: fused_linear_rows picks a power of two near
# tokens * hidden / vocab, at least 512 * 151936 / vocab rows (at least 512) and at most 4096.
CE_MIN_LOGITS = 512 * 151936
CE_MIN_ROWS, CE_MAX_ROWS = 512, 4096
CE_BYTES_PER_LOGIT = 4.0   # the chunk's float32 logits (bytes_per_logit = 4 in fused_linear_rows)
CE_BUDGET_BYTES = 2 * GIB  # _CHUNK_GB: a chunk's logits stay within 2 GiB (less when little is free)
UNSLOTH_OFFLOAD_MIN_SEQ = 512   # unsloth/models/_utils.py apply_unsloth_gradient_checkpointing

# Derived (see above); bench/gpu/vram_calibrate.py + bench/vram_table.py --fit measure them.
ACT_H = 16.0          # bytes per token per layer per hidden unit, no checkpointing
ACT_I = 8.0           # bytes per token per layer per MLP unit, no checkpointing
OVERHEAD_MIB = 700.0  # CUDA context + workspaces, measured alone
BAND = 0.25           # a prior until the GPU calibration has run
BAND_FROM_NAME = 0.40 # shape guessed from a parameter count: activations follow the guessed widths
# Names round the size, mostly down ("14B" is 14.7e9 for Qwen2.5-14B, "7B" 7.6e9 for Qwen2.5-7B),
# sometimes up ("Llama-2-7b" is 6.7e9): the counted parts may be 5% lower or 15% higher.
COUNT_LOW_FROM_NAME, COUNT_HIGH_FROM_NAME = 0.05, 0.15

OPTIMIZER_STATE_BYTES = {
    "adamw": 8.0, "adam": 8.0, "adamw_torch": 8.0, "adamw_torch_fused": 8.0, "adamw_hf": 8.0,
    "adamw_apex_fused": 8.0, "adamw_anyprecision": 8.0, "adamw_torch_4bit": 1.0, "adamw_torch_8bit": 2.0,
    "adamw_8bit": 2.0, "adamw_bnb_8bit": 2.0, "paged_adamw_8bit": 2.0, "paged_adamw_32bit": 8.0,
    "paged_adamw": 8.0, "ademamix": 12.0, "ademamix_8bit": 3.0, "paged_ademamix_8bit": 3.0,
    "lion": 4.0, "lion_32bit": 4.0, "paged_lion": 4.0, "lion_8bit": 1.0, "paged_lion_8bit": 1.0,
    "adafactor": 0.5, "sgd": 0.0, "muon": 4.0, "rmsprop": 4.0, "adagrad": 4.0, "lomo": 0.0, "adalomo": 0.5,
}
DEFAULT_OPTIMIZER_BYTES = 8.0   # an optimizer we do not know: assume AdamW


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    params: int                   # every stored parameter
    linear_params: int            # the decoder's Linear weights (what 4/8-bit quantizes)
    tied: bool = False
    source: str = "config.json"

    @property
    def billions(self) -> float:
        return self.params / 1e9


@dataclass(frozen=True)
class RunSettings:
    # Defaults are Unsloth's: its trainer configs default to batch 4 and adamw_8bit
    # (unsloth/models/rl.py:3313,3318), its loaders to max_seq_length 2048.
    batch: int = 4
    seq: int = 2048
    rank: int = 16
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    full_finetuning: bool = False
    optimizer: str = "adamw_8bit"
    gradient_checkpointing: bool | str = "unsloth"
    targets: tuple[str, ...] = PROJECTIONS
    # full fine-tuning with float32 master weights (LLaMA-Factory without pure_bf16); Unsloth
    # trains a bf16 model's weights in bf16
    fp32_trainable: bool = False


@dataclass(frozen=True)
class VramEstimate:
    weights_mib: float
    trainable_mib: float          # trainable parameters and their gradients
    optimizer_mib: float
    activations_mib: float
    logits_mib: float
    overhead_mib: float
    trainable_params: int
    band: float                   # relative error of activations, logits and overhead
    count_low: float = 0.0        # relative error of the counted parts (a size read from a name)
    count_high: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def counted_mib(self) -> float:
        """Weights, trainable parameters and optimizer state: counted from the shapes."""
        return self.weights_mib + self.trainable_mib + self.optimizer_mib

    @property
    def uncertain_mib(self) -> float:
        return self.activations_mib + self.logits_mib + self.overhead_mib

    @property
    def total_mib(self) -> float:
        return self.counted_mib + self.uncertain_mib

    @property
    def low_mib(self) -> float:
        return self.counted_mib * (1 - self.count_low) + self.uncertain_mib * (1 - self.band)

    @property
    def high_mib(self) -> float:
        return self.counted_mib * (1 + self.count_high) + self.uncertain_mib * (1 + self.band)

    def parts(self) -> list[tuple[str, float]]:
        return [("weights", self.weights_mib), ("trainable + gradients", self.trainable_mib),
                ("optimizer state", self.optimizer_mib), ("activations", self.activations_mib),
                ("logits (chunked loss)", self.logits_mib), ("CUDA context", self.overhead_mib)]

    def as_facts(self, prefix: str = "vram") -> dict[str, Any]:
        facts = {f"{prefix}.{key}_mib": round(v, 1) for key, v in (
            ("weights", self.weights_mib), ("trainable", self.trainable_mib), ("optimizer", self.optimizer_mib),
            ("activations", self.activations_mib), ("logits", self.logits_mib), ("overhead", self.overhead_mib),
            ("total", self.total_mib), ("low", self.low_mib), ("high", self.high_mib))}
        facts[f"{prefix}.band"] = self.band
        facts[f"{prefix}.trainable_params"] = self.trainable_params
        return facts


# ---------------------------------------------------------------- the model's shape
def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    # Multimodal configs keep the language model's sizes under text_config.
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) and inner.get("hidden_size") else config


def _int(c: Mapping[str, Any], *keys: str, default: int | None = None) -> int:
    for k in keys:
        v = c.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return int(v)
    if default is None:
        raise KeyError(keys[0])
    return default


def shape_from_config(config: Mapping[str, Any], stored_params: int | None = None,
                      linear_params: int | None = None) -> ModelShape:
    """The shape from config.json; parameter counts from the headers when given, else computed."""
    c = _text_config(config)
    h = _int(c, "hidden_size", "n_embd", "d_model")
    layers = _int(c, "num_hidden_layers", "n_layer", "num_layers")
    heads = _int(c, "num_attention_heads", "n_head", default=max(1, h // 128))
    kv = _int(c, "num_key_value_heads", default=heads)
    hd = _int(c, "head_dim", default=max(1, h // heads))
    i = _int(c, "intermediate_size", "n_inner", "ffn_dim", default=4 * h)
    experts = _int(c, "num_local_experts", "num_experts", "n_routed_experts", default=1)
    moe_i = _int(c, "moe_intermediate_size", default=i)
    vocab = _int(c, "vocab_size", default=32000)
    tied = bool(c.get("tie_word_embeddings", config.get("tie_word_embeddings", False)))
    attn = h * heads * hd * 2 + h * kv * hd * 2
    mlp = 3 * h * (moe_i * experts if experts > 1 else i)
    computed_linear = layers * (attn + mlp)
    computed = computed_linear + vocab * h * (1 if tied else 2) + layers * 2 * h + h
    return ModelShape(hidden=h, intermediate=moe_i if experts > 1 else i, layers=layers, heads=heads, kv_heads=kv,
                      head_dim=hd, vocab=vocab, params=stored_params or computed,
                      linear_params=linear_params or computed_linear, tied=tied,
                      source="config.json and the safetensors headers" if stored_params else "config.json")


# Typical shapes by size (Llama 3 / Qwen 2.5 families), to guess from a parameter count.
_SIZE_TABLE = (  # billions, hidden, intermediate, layers, heads, kv_heads, vocab
    (0.5, 896, 4864, 24, 14, 2, 151936), (1.0, 2048, 8192, 16, 32, 8, 128256),
    (1.5, 1536, 8960, 28, 12, 2, 151936), (3.0, 3072, 8192, 28, 24, 8, 128256),
    (4.0, 2560, 9728, 36, 32, 8, 151936), (7.0, 3584, 18944, 28, 28, 4, 152064),
    (8.0, 4096, 14336, 32, 32, 8, 128256), (14.0, 5120, 13824, 48, 40, 8, 152064),
    (27.0, 5376, 21504, 62, 32, 16, 262208), (32.0, 5120, 27648, 64, 40, 8, 152064),
    (70.0, 8192, 28672, 80, 64, 8, 128256),
)
_SIZE_RE = re.compile(r"(?<![A-Za-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bBmM])(?![a-zA-Z])")


def params_from_name(name: str) -> int | None:
    """'unsloth/Llama-3.2-3B-Instruct' -> 3e9; 'Qwen3-30B-A3B' -> 30e9 (every expert is loaded;
    'A3B' is the active size); 'Mixtral-8x7B' -> 56e9 (the experts' nominal sum)."""
    best = None
    for experts, number, unit in _SIZE_RE.findall(name.rsplit("/", 1)[-1].replace("_", "-")):
        value = float(number) * (int(experts) if experts else 1) * (1e9 if unit in "bB" else 1e6)
        best = value if best is None else max(best, value)
    return int(best) if best else None


_ACTIVE_RE = re.compile(r"(?<![A-Za-z0-9.])[Aa](\d+(?:\.\d+)?)[Bb](?![a-zA-Z])")


def active_params_from_name(name: str) -> int | None:
    """A mixture of experts' active size: 'Qwen3-30B-A3B' -> 3e9; None for a dense name."""
    found = _ACTIVE_RE.findall(name.rsplit("/", 1)[-1])
    return int(float(found[-1]) * 1e9) if found else None


def shape_from_params(params: int) -> ModelShape:
    """A plausible shape for a model known only by its size: the nearest row, scaled."""
    billions = params / 1e9
    row = min(_SIZE_TABLE, key=lambda r: abs(r[0] - billions) / r[0])
    b, h, i, layers, heads, kv, vocab = row
    scale = billions / b
    layers = max(1, round(layers * scale))   # depth absorbs the difference
    hd = h // heads
    linear = layers * (h * heads * hd * 2 + h * kv * hd * 2 + 3 * h * i)
    return ModelShape(hidden=h, intermediate=i, layers=layers, heads=heads, kv_heads=kv, head_dim=hd, vocab=vocab,
                      params=params, linear_params=min(linear, params), source=f"{billions:g}B parameters (from the name)")


# ---------------------------------------------------------------- the estimate
def lora_params(shape: ModelShape, rank: int, targets: tuple[str, ...] = PROJECTIONS) -> int:
    h, i, q, kv = shape.hidden, shape.intermediate, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    sizes = {"q_proj": h + q, "k_proj": h + kv, "v_proj": h + kv, "o_proj": q + h,
             "gate_proj": h + i, "up_proj": h + i, "down_proj": i + h}
    return rank * shape.layers * sum(sizes.get(t, 0) for t in targets)


def optimizer_bytes(name: str) -> tuple[float, bool]:
    """(bytes of state per trainable parameter, whether we know this optimizer)."""
    key = str(name).strip().lower().replace("-", "_")
    if key in OPTIMIZER_STATE_BYTES:
        return OPTIMIZER_STATE_BYTES[key], True
    if "8bit" in key:
        return 2.0, False
    return DEFAULT_OPTIMIZER_BYTES, False


# torch's own optimizers create their state with zeros_like(param) (torch/optim/adamw.py), so it
# takes the weights' dtype; bitsandbytes' and the 32-bit paged ones fix their own.
_TORCH_STATE = frozenset({"adamw", "adam", "adamw_torch", "adamw_torch_fused", "adamw_hf", "sgd", "rmsprop",
                          "adagrad", "muon"})


def _state_follows_weights(name: str) -> bool:
    return str(name).strip().lower().replace("-", "_") in _TORCH_STATE


def _pow2_floor(x: float) -> int:
    return 1 << max(int(x).bit_length() - 1, 0) if x >= 1 else 1


def fused_ce_rows(tokens: int, hidden: int, vocab: int) -> int:
    """Rows of logits Unsloth's fused linear cross-entropy holds at once (fused_linear_rows)."""
    vocab = max(vocab, 1)
    rows = _pow2_floor(tokens * hidden / vocab)
    least = min(max(_pow2_floor(CE_MIN_LOGITS / vocab), CE_MIN_ROWS), CE_MAX_ROWS)
    rows = min(max(rows, least), CE_MAX_ROWS, max(int(CE_BUDGET_BYTES // (vocab * CE_BYTES_PER_LOGIT)), 2))
    return max(min(rows, tokens), 1)


def effective_checkpointing(value: bool | str, seq: int) -> bool | str:
    """Unsloth turns "unsloth" into plain checkpointing below 512 tokens (_utils.py)."""
    if value == "unsloth" and seq < UNSLOTH_OFFLOAD_MIN_SEQ:
        return True
    return value if value in ("unsloth", True, False) else bool(value)


def estimate(shape: ModelShape, run: RunSettings, active: ModelShape | None = None) -> VramEstimate:
    """`active`: the shape that sizes the activations where it differs (a mixture of experts
    computes with its active experts only)."""
    notes: list[str] = []
    p, lin = shape.params, shape.linear_params
    if run.full_finetuning:
        # Unsloth 2026.10.x trains a bfloat16 model's own weights in bfloat16 (rl.py keeps bf16 for
        # full fine-tuning on a bf16 GPU; measured: 2 bytes a parameter after loading), so the
        # gradients are 16-bit too, and torch's optimizers keep their state in the weights' dtype.
        width = 4.0 if run.fp32_trainable else 2.0
        weights = p * width
        trainable_params = p
        trainable = p * width                     # gradients
        if run.load_in_4bit or run.load_in_8bit:
            notes.append("full fine-tuning loads 16-bit weights: load_in_4bit/8bit is ignored")
    else:
        if run.load_in_4bit:
            weights = lin * NF4_BYTES + (p - lin) * 2.0
        elif run.load_in_8bit:
            weights = lin * 1.0 + shape.layers * 7 * shape.hidden * 4 + (p - lin) * 2.0
        else:
            weights = p * 2.0
        trainable_params = lora_params(shape, run.rank, run.targets)
        trainable = trainable_params * 8.0        # float32 weight + gradient
    state, known = optimizer_bytes(run.optimizer)
    if not known:
        notes.append(f"optimizer {run.optimizer!r} is not one we size: counted as AdamW")
    if run.full_finetuning and not run.fp32_trainable and _state_follows_weights(run.optimizer):
        state /= 2   # zeros_like(param): 16-bit state beside 16-bit weights
    optimizer = trainable_params * state
    tokens = run.batch * run.seq
    act = active or shape
    per_layer = tokens * (ACT_H * act.hidden + ACT_I * act.intermediate)
    gc = effective_checkpointing(run.gradient_checkpointing, run.seq)
    if gc is False:
        activations = act.layers * per_layer
    elif gc is True:
        activations = act.layers * tokens * act.hidden * 2 + per_layer
    else:   # "unsloth": layer inputs offloaded to the CPU; one layer in flight
        activations = 2 * tokens * act.hidden * 2 + per_layer
    logits = fused_ce_rows(tokens, shape.hidden, shape.vocab) * shape.vocab * CE_BYTES_PER_LOGIT
    guessed = "name" in shape.source
    return VramEstimate(weights_mib=weights / MIB, trainable_mib=trainable / MIB, optimizer_mib=optimizer / MIB,
                        activations_mib=activations / MIB, logits_mib=logits / MIB, overhead_mib=OVERHEAD_MIB,
                        trainable_params=trainable_params, band=BAND_FROM_NAME if guessed else BAND,
                        count_low=COUNT_LOW_FROM_NAME if guessed else 0.0,
                        count_high=COUNT_HIGH_FROM_NAME if guessed else 0.0, notes=tuple(notes))


def with_batch(run: RunSettings, batch: int | None = None, seq: int | None = None) -> RunSettings:
    return replace(run, batch=batch or run.batch, seq=seq or run.seq)


def _mib(v: float) -> str:
    return f"{v / 1024:,.1f} GiB" if v >= 1024 else f"{v:,.0f} MiB"


def describe(est: VramEstimate, memory_mib: float | None = None) -> str:
    parts = " + ".join(f"{name} {_mib(v)}" for name, v in est.parts() if v >= 0.5)
    text = f"{parts} = {_mib(est.total_mib)} ({_mib(est.low_mib)} to {_mib(est.high_mib)})"
    if memory_mib:
        text += f", against {_mib(memory_mib)} on the GPU"
    return text


# ---------------------------------------------------------------- settings -> run
# The same setting under the names of Unsloth/trl scripts, axolotl and LLaMA-Factory configs.
_KEYS = {
    "batch": ("per_device_train_batch_size", "micro_batch_size", "batch_size"),
    "seq": ("max_seq_length", "max_length", "sequence_len", "cutoff_len", "max_len"),
    "rank": ("r", "lora_r", "lora_rank"),
    "optimizer": ("optim", "optimizer"),
    "gc": ("use_gradient_checkpointing", "gradient_checkpointing"),
    "targets": ("target_modules", "lora_target_modules", "lora_target"),
}


def _first(values: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    return next((values[n] for n in names if values.get(n) is not None), None)


def _positive_int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default


def _projections(targets: Any) -> tuple[str, ...]:
    """The projections `target_modules` names; () where it names none of them by name (a
    regular expression or module path, as axolotl allows): then every projection is counted."""
    if not isinstance(targets, (list, tuple)):
        return ()
    return tuple(t for t in targets if t in PROJECTIONS)


def run_from_settings(values: Mapping[str, Any]) -> RunSettings:
    """A RunSettings from literal settings (script keywords or config keys); defaults elsewhere."""
    base = RunSettings()
    quant = values.get("quantization_bit")
    # axolotl's `adapter`, LLaMA-Factory's `finetuning_type`, and the neutral `finetuning` of
    # doctor/probes/configvocab.py that both map onto
    adapter = str(values.get("adapter") or values.get("finetuning") or "").lower()
    full = (bool(values.get("full_finetuning")) or adapter == "full"
            or str(values.get("finetuning_type") or "").lower() == "full")
    targets = _first(values, _KEYS["targets"])
    if isinstance(targets, str):
        targets = PROJECTIONS if targets.strip().lower() in ("all", "all-linear", "all_linear") else tuple(
            t.strip() for t in targets.split(","))
    gc = _first(values, _KEYS["gc"])
    if isinstance(gc, str) and gc.lower() in ("true", "false"):
        gc = gc.lower() == "true"
    return RunSettings(
        batch=_positive_int(_first(values, _KEYS["batch"]), base.batch),
        seq=_positive_int(_first(values, _KEYS["seq"]), base.seq),
        rank=_positive_int(_first(values, _KEYS["rank"]), base.rank),
        load_in_4bit=bool(values.get("load_in_4bit")) or quant == 4 or adapter == "qlora",
        load_in_8bit=bool(values.get("load_in_8bit")) or quant == 8,
        full_finetuning=full,
        optimizer=str(_first(values, _KEYS["optimizer"]) or base.optimizer),
        gradient_checkpointing=gc if gc in ("unsloth", True, False) else base.gradient_checkpointing,
        targets=_projections(targets) or base.targets,
        fp32_trainable=full and values.get("fp32_trainable") is True,
    )


def floor_mib(est: VramEstimate) -> float:
    """The least the run can need: the band's low end, with the loss chunked smallest.

    Unsloth caps the loss's chunk at 2 GiB and at the memory it finds free, so on a nearly full
    GPU the logits term shrinks.
    """
    return est.low_mib - est.logits_mib * (1 - est.band)


def middle_mib(est: VramEstimate) -> float:
    """The estimate without the loss's chunks, which adapt to the memory left."""
    return est.total_mib - est.logits_mib


def certainly_over(est: VramEstimate, memory_mib: float) -> bool:
    """Over the GPU's memory even at the band's low end."""
    return floor_mib(est) > memory_mib


def likely_over(est: VramEstimate, memory_mib: float, headroom: float = 0.9) -> bool:
    """The estimate's middle is over what the GPU offers after fragmentation."""
    return middle_mib(est) > headroom * memory_mib
