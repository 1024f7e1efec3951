"""Pickle weight files (.bin, .pt, .pth, .ckpt) read as opcodes, never unpickled.

Loading a pickle runs whatever callables its GLOBAL / STACK_GLOBAL opcodes import, so the
only safe way to look inside is `pickletools.genops`, which decodes opcodes without running
them. A weight file only needs the imports that rebuild tensors (the same set torch.load's
weights_only unpickler allows); anything else is reported by name. Reads are bounded: at
most MAX_BYTES of pickle data and MAX_OPCODES opcodes per file.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from doctor.probes import limits

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
MAX_BYTES = 64 * limits.MiB   # data.pkl of a 70B checkpoint is about 1 MB: names and offsets only
MAX_OPCODES = 5_000_000
# torch's legacy (non-zip) format is several pickles in a row (magic number, protocol,
# system info, the state dict, the storage keys) followed by raw storage bytes; torch.load
# unpickles these 5.
LEGACY_PICKLES = 5

# What rebuilding a state dict of tensors imports (torch.load(weights_only=True) allows these).
_TENSOR_IMPORTS = frozenset({
    "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
    "torch._tensor._rebuild_from_type_v2", "torch.nn.parameter.Parameter", "torch.Size", "torch.device",
    "torch.serialization._get_layout", "torch.storage.UntypedStorage", "torch.storage.TypedStorage",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
    "numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "_codecs.encode",
    "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.slice", "builtins.complex",
})
_TORCH_DTYPES = frozenset({
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int8", "uint8", "int16",
    "short", "int32", "int", "int64", "long", "bool", "complex64", "complex128", "float8_e4m3fn",
    "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "qint8", "quint8", "qint32",
})
# Objects the Trainer pickles next to the weights (training_args.bin, scheduler.pt,
# rng_state.pth): importing them runs library code, not the file's, but they are not tensors.
_LIBRARY_PREFIXES = ("transformers.", "accelerate.", "peft.", "trl.", "numpy.random.", "torch.optim.",
                     "torch.torch_version.", "enum.", "datetime.", "packaging.version.")


def is_tensor_import(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if name in _TENSOR_IMPORTS:
        return True
    # torch.FloatStorage, torch.cuda.HalfStorage, ... and the dtypes torch.float16 & co.
    return (module in ("torch", "torch.cuda") and attr.endswith("Storage")) or (module == "torch" and attr in _TORCH_DTYPES)


# numpy's random-state constructors (rng_state.pth): functions, but only these three.
_NUMPY_RANDOM_CTORS = frozenset({"numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__generator_ctor",
                                 "numpy.random._pickle.__bit_generator_ctor"})


def is_library_import(name: str) -> bool:
    """A class of a known library (TrainingArguments, IntervalStrategy): building one runs its
    own code only. A function of the same libraries may be a gadget that runs anything."""
    attr = name.rpartition(".")[2]
    return name in _NUMPY_RANDOM_CTORS or (name.startswith(_LIBRARY_PREFIXES) and attr[:1].isupper())


@dataclass
class PickleReport:
    """The imports a pickle file (or each pickle inside a zip checkpoint) would perform."""

    imports: list[str] = field(default_factory=list)    # in file order, without repeats
    unresolved: int = 0      # STACK_GLOBALs whose names are not plain strings (obfuscated)
    unchecked: str | None = None   # why part of the file was not read (limits, bad data)

    @property
    def code(self) -> list[str]:
        return [n for n in self.imports if not is_tensor_import(n) and not is_library_import(n)]

    @property
    def known_classes(self) -> list[str]:
        return [n for n in self.imports if is_library_import(n)]


def scan_file(path: Path, max_bytes: int = MAX_BYTES, max_opcodes: int = MAX_OPCODES) -> PickleReport:
    report = PickleReport()
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK\x03\x04"):
        _scan_zip(path, report, max_bytes, max_opcodes)
    else:   # a plain pickle, or torch's legacy format: pickles from the first byte
        with open(path, "rb") as f:   # streamed: a multi-GB legacy file is read only up to its pickles
            _scan_pickles(_Bounded(f, max_bytes), report, max_opcodes, LEGACY_PICKLES, max_bytes)
    return report


class _Bounded(io.RawIOBase):
    """A file that ends after `limit` bytes: a hostile length field (BINUNICODE8 claiming
    exabytes, a protocol-0 line without a newline) makes genops read at most the budget."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        self.f, self.limit = f, limit

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        left = max(0, self.limit - self.f.tell())
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self, size: int | None = -1) -> bytes:
        left = max(0, self.limit - self.f.tell())
        return self.f.readline(left if size is None or size < 0 else min(size, left))

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)


def _scan_zip(path: Path, report: PickleReport, max_bytes: int, max_opcodes: int) -> None:
    """torch.save's zip format: `<name>/data.pkl` is the pickle; `data/<n>` are raw storages."""
    try:
        with zipfile.ZipFile(path) as zf:
            pickles = [i for i in zf.infolist() if i.filename.endswith(".pkl")]
            if not pickles:
                report.unchecked = "the zip holds no .pkl member"
            for info in pickles:
                with zf.open(info) as member:   # bounded read: the declared size may lie
                    data = member.read(max_bytes + 1)
                if len(data) > max_bytes:
                    report.unchecked = f"{info.filename} is over {limits.human_bytes(max_bytes)}; it was not read"
                    continue
                _scan_pickles(io.BytesIO(data), report, max_opcodes, 1, max_bytes)
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
        report.unchecked = f"the zip does not open: {exc}"


_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                         "SHORT_BINSTRING"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _scan_pickles(stream: BinaryIO, report: PickleReport, max_opcodes: int, count: int, max_bytes: int) -> None:
    """`count` pickles in a row from `stream`, opcode by opcode, up to the byte and opcode bounds."""
    seen = set(report.imports)
    ops = 0
    for n in range(count):
        start = stream.tell()
        if stream.read(1) == b"":
            return   # the file holds fewer pickles: nothing more torch.load would run
        stream.seek(start)
        # Pushed values, enough to resolve STACK_GLOBAL's two strings (what picklescan does):
        # strings and memo lookups keep their value, every other push is None.
        pushed: list[object] = []
        memo: dict[int, object] = {}
        try:
            for op, arg, _pos in pickletools.genops(stream):
                ops += 1
                if ops > max_opcodes or stream.tell() > max_bytes:
                    report.unchecked = (f"its pickle data runs past {max_opcodes:,} opcodes or "
                                        f"{limits.human_bytes(max_bytes)}; the rest was not read")
                    return
                name = op.name
                found: str | None = None
                if name in ("GLOBAL", "INST"):
                    found = str(arg).replace(" ", ".", 1).replace("\n", ".")
                elif name == "STACK_GLOBAL":
                    module, attr = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
                    if isinstance(module, str) and isinstance(attr, str):
                        found = f"{module}.{attr}"
                    else:
                        report.unresolved += 1
                if found is not None and found not in seen:
                    seen.add(found)
                    report.imports.append(found)
                if name in _STRING_OPS:
                    pushed.append(arg)
                elif name in _GET_OPS:
                    pushed.append(memo.get(arg))
                elif name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif name in _PUT_OPS:
                    memo[arg] = pushed[-1] if pushed else None
                elif name in ("FRAME", "PROTO"):
                    pass   # framing, no value: may sit between STACK_GLOBAL's two strings
                else:
                    pushed.append(None)
                del pushed[:-2]   # STACK_GLOBAL only ever looks two values back
        except (ValueError, EOFError, UnicodeDecodeError, IndexError) as exc:
            # past the first pickle of a legacy file come raw storage bytes: not an opcode stream
            if n == 0:
                report.unchecked = f"it is not a valid pickle: {exc}"
            return
