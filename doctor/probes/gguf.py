"""The GGUF probe: `.gguf` files (what `save_pretrained_gguf` writes for llama.cpp and Ollama).

Only the header is read (magic, version, metadata, tensor table), never the weights: enough to
tell whether llama.cpp will open the file, what it holds (architecture, quantization, tensor
count), and whether its tensor data fits in the file (a cut-off export or download). Every
count and length read from the file is checked against the file's size before it is used, so a
hostile or damaged header cannot make the reader allocate or loop without bound.

The layout is GGUF v2/v3 as gguf-py 0.19 (llama.cpp's reference writer) reads it; the block
sizes of the tensor types are gguf-py's `GGML_QUANT_SIZES` (a test compares them).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from doctor.facts import FactCollector
from doctor.findings import AreaStatus, Location, Observation
from doctor.probes.base import Probe, ProbeContext, ProbeResult, Target

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)          # gguf-py READER_SUPPORTED_VERSIONS; v1 was dropped in 2023
DEFAULT_ALIGNMENT = 32
MAX_STRING = 64 << 20                # a key or string value longer than this is not a real header
LFS_POINTER = b"version https://git-lfs"

# ggml type id -> (elements per block, bytes per block), from gguf-py 0.19 GGML_QUANT_SIZES
BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8),
    28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36),
    41: (128, 18),
}
# GGUF metadata value types: id -> struct format of a fixed-size value
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)

NOT_GGUF = "GGUF-NOT-GGUF"
LFS = "GGUF-LFS-POINTER"
VERSION = "GGUF-VERSION-UNSUPPORTED"
TRUNCATED = "GGUF-TRUNCATED"
SPLIT_MISSING = "GGUF-SPLIT-PART-MISSING"
NO_TENSORS = "GGUF-NO-TENSORS"


class Damaged(Exception):
    """The header ends or lies before it is complete; `offset` is where reading stopped."""

    def __init__(self, offset: int, what: str):
        super().__init__(what)
        self.offset, self.what = offset, what


@dataclass
class Header:
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[tuple[str, tuple[int, ...], int, int]] = field(default_factory=list)  # name, dims, type, offset
    data_offset: int = 0


class _Reader:
    """Little-endian reads that never pass the end of the file."""

    def __init__(self, handle: IO[bytes], size: int):
        self.handle, self.size, self.offset = handle, size, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.offset + n > self.size:
            raise Damaged(self.offset, what)
        data = self.handle.read(n)
        if len(data) != n:
            raise Damaged(self.offset, what)
        self.offset += n
        return data

    def skip(self, n: int, what: str) -> None:
        if n < 0 or self.offset + n > self.size:
            raise Damaged(self.offset, what)
        self.handle.seek(n, 1)
        self.offset += n

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str, keep: bool = True) -> str | None:
        length = self.scalar("Q", what)
        if length > MAX_STRING:
            raise Damaged(self.offset, f"{what} claims {length} bytes")
        if not keep:
            self.skip(length, what)
            return None
        return self.take(length, what).decode("utf-8", "replace")


def read_header(handle: IO[bytes], size: int) -> Header:
    r = _Reader(handle, size)
    r.take(4, "the magic")
    header = Header(version=r.scalar("I", "the version"))
    if header.version not in SUPPORTED_VERSIONS:
        return header
    tensor_count = r.scalar("Q", "the tensor count")
    kv_count = r.scalar("Q", "the metadata count")
    for _ in range(kv_count):        # each entry takes bytes, so a lying count runs out of file
        key = r.string("a metadata key") or ""
        header.metadata[key] = _value(r, key)
    for _ in range(tensor_count):
        name = r.string("a tensor name") or ""
        n_dims = r.scalar("I", f"the dimensions of {name}")
        if n_dims > 8:               # ggml has at most 4; anything past 8 is a damaged table
            raise Damaged(r.offset, f"tensor {name} claims {n_dims} dimensions")
        dims = tuple(r.scalar("Q", f"the shape of {name}") for _ in range(n_dims))
        kind = r.scalar("I", f"the type of {name}")
        header.tensors.append((name, dims, kind, r.scalar("Q", f"the offset of {name}")))
    alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        alignment = DEFAULT_ALIGNMENT
    header.data_offset = -(-r.offset // alignment) * alignment
    return header


def _value(r: _Reader, key: str) -> Any:
    kind = r.scalar("I", f"the type of {key}")
    if kind in _SCALARS:
        return r.scalar(_SCALARS[kind], key)
    if kind == _STRING:
        return r.string(key)
    if kind != _ARRAY:
        raise Damaged(r.offset, f"{key} has the unknown value type {kind}")
    item = r.scalar("I", f"the item type of {key}")
    count = r.scalar("Q", f"the length of {key}")
    if item in _SCALARS:             # fixed-size items: skipped in one seek
        r.skip(count * struct.calcsize(_SCALARS[item]), key)
    elif item == _STRING:            # e.g. tokenizer.ggml.tokens: every string is skipped
        for _ in range(count):
            r.string(key, keep=False)
    else:
        raise Damaged(r.offset, f"{key} is an array of the unsupported type {item}")
    return f"<array of {count}>"


def tensor_bytes(dims: tuple[int, ...], kind: int) -> int | None:
    if kind not in BLOCKS:
        return None
    block, size = BLOCKS[kind]
    elements = 1
    for d in dims:
        elements *= d
    return -(-elements // block) * size


def examine(path: Path) -> tuple[list[Observation], dict[str, Any]]:
    """Observations and facts for one .gguf file (every observation names the file)."""
    observations, facts = _examine(path)
    return [replace(o, values={"path": str(path), **o.values}) for o in observations], facts


def _examine(path: Path) -> tuple[list[Observation], dict[str, Any]]:
    size = path.stat().st_size
    where = Location(str(path), 1, 1)
    with open(path, "rb") as handle:
        head = handle.read(64)
        if not head.startswith(MAGIC):
            if head.startswith(LFS_POINTER):
                return [Observation(LFS, where, {"size": size})], {}
            shown = head[:4].decode("latin-1").encode("unicode_escape").decode()
            return [Observation(NOT_GGUF, where, {"magic": shown, "size": size})], {}
        handle.seek(0)
        try:
            header = read_header(handle, size)
        except Damaged as exc:
            return [Observation(TRUNCATED, where, {"size": size, "needed": f"more than {size}",
                                                   "what": f"the header (at {exc.what})"})], {}
    facts: dict[str, Any] = {"version": header.version}
    if header.version not in SUPPORTED_VERSIONS:
        return [Observation(VERSION, where, {"version": header.version})], facts
    meta = header.metadata
    facts.update(tensors=len(header.tensors), architecture=meta.get("general.architecture"),
                 file_type=meta.get("general.file_type"), name=meta.get("general.name"))
    observations = _data_fits(header, size, where)
    observations += _split_parts(path, meta, where)
    return observations, facts


def _data_fits(header: Header, size: int, where: Location) -> list[Observation]:
    """llama.cpp's bounds check (llama-model-loader.cpp): every tensor's data inside the file.
    A file without tensors ends where its header ends: no padding follows it."""
    if not header.tensors:
        return [Observation(NO_TENSORS, where)]
    end, last = 0, None
    for name, dims, kind, offset in header.tensors:
        nbytes = tensor_bytes(dims, kind)
        if nbytes is not None and header.data_offset + offset + nbytes > end:
            end, last = header.data_offset + offset + nbytes, name
    if end <= size:
        return []
    return [Observation(TRUNCATED, where, {"size": size, "needed": end,
                                           "what": f"tensor data (up to {last})" if last else "tensor data"})]


def _split_parts(path: Path, meta: dict[str, Any], where: Location) -> list[Observation]:
    """A model split by gguf-split into NAME-0000k-of-0000n.gguf needs every part beside it."""
    m = _SPLIT_NAME.match(path.name)
    count = meta.get("split.count")
    if m is None or int(m.group("no")) != 1:
        return []       # reported once, by the first part
    total = count if isinstance(count, int) and count > 0 else int(m.group("count"))
    missing = [f"{m.group('stem')}-{i:05d}-of-{total:05d}.gguf" for i in range(2, total + 1)
               if not (path.parent / f"{m.group('stem')}-{i:05d}-of-{total:05d}.gguf").exists()]
    if not missing:
        return []
    return [Observation(SPLIT_MISSING, where, {"count": total, "missing": missing[:10],
                                               "missing_count": len(missing)})]


def scan_gguf(path: str) -> ProbeResult:
    observations, found = examine(Path(path))
    facts = FactCollector(f"gguf:{path}")
    for key, value in found.items():
        if value is not None:
            facts.set(f"gguf.{Path(path).name}.{key}", value)
    if found.get("tensors") is not None:
        detail = f"GGUF v{found['version']}, {found.get('architecture') or 'unknown architecture'}, {found['tensors']} tensors"
    else:
        detail = "not a loadable GGUF file" if observations else "GGUF"
    return ProbeResult(facts=facts.freeze(), observations=observations,
                       areas=[AreaStatus("model", f"GGUF {path}", detail, path=path)])


def _example(text: str, options: dict[str, Any], kb: Any = None) -> list[Observation]:
    """kb test. `input`: a JSON spec of a real GGUF file, written with gguf-py's own writer
    ({"tensors": {name: shape}, "cut": bytes to drop from the end, "name": file name, "parts":
    other files to create beside it}); or any other text, written as the file's bytes."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if text.lstrip().startswith("{"):
            spec = json.loads(text)
            target = folder / spec.get("name", "model.gguf")
            write_example_gguf(target, spec.get("tensors", {"output.weight": [4, 8]}), spec.get("tokens", 3))
            if spec.get("cut"):
                data = target.read_bytes()
                target.write_bytes(data[: len(data) - int(spec["cut"])])
            for other in spec.get("parts", []):
                write_example_gguf(folder / other, {"output.weight": [4, 8]}, 0)
        else:
            target = folder / options.get("name", "model.gguf")
            target.write_bytes(text.encode("utf-8"))
        return examine(target)[0]


def write_example_gguf(path: Path, tensors: dict[str, list[int]], tokens: int = 3) -> None:
    """A real GGUF file from gguf-py's writer (llama.cpp's reference), with f32 zeros."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_file_type(0)
    if tokens:
        writer.add_token_list([f"t{i}" for i in range(tokens)])   # an array of strings to skip
    for name, shape in tensors.items():
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


class GgufProbe(Probe):
    """GGUF files from `save_pretrained_gguf` or a download, from their header alone."""

    name, area, label = "gguf", "model", "GGUF"
    headings = {"model": "Model"}
    suffixes = (".gguf",)
    option, option_help = "--gguf", "a GGUF file (llama.cpp / Ollama)"
    examples = {"gguf.file": _example}

    def run(self, target: Target, context: ProbeContext) -> ProbeResult:
        assert target.path is not None
        return scan_gguf(target.path)


PROBE = GgufProbe()
