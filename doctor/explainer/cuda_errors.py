"""Look up a CUDA runtime error as a log prints it: by its text ("misaligned address"), its
enum name (cudaErrorMisalignedAddress, CUDA_ERROR_MISALIGNED_ADDRESS) or its number as
onnxruntime prints it ("CUDA failure 900: ..."). Old bare numbers ("74 vs. 0") are not read:
the numbering changed across CUDA releases."""
from __future__ import annotations

import re
from typing import NamedTuple

from doctor.explainer.cuda_errors_table import ERRORS


class CudaError(NamedTuple):
    code: int
    name: str
    text: str
    doc: str


_BY_NAME = {name.lower(): CudaError(*row) for row in ERRORS for name in [row[1]]}
_BY_CODE = {row[0]: CudaError(*row) for row in ERRORS}
_BY_TEXT = sorted(((row[2].lower(), CudaError(*row)) for row in ERRORS if row[2]), key=lambda kv: -len(kv[0]))
_DRIVER = re.compile(r"\bCUDA_ERROR_([A-Z_]+)\b")
_RUNTIME = re.compile(r"\b(cudaError[A-Z]\w+)")
_TEXTUAL = re.compile(r"CUDA (?:error|warning|failure(?: (?P<code>\d+))?)\s*:\s*(?P<text>[^\n]+)", re.I)


def find(line: str) -> CudaError | None:
    """The CUDA error a log line names, if any."""
    m = _RUNTIME.search(line)
    if m and m.group(1).lower() in _BY_NAME:
        return _BY_NAME[m.group(1).lower()]
    m = _DRIVER.search(line)
    if m:
        key = "cudaerror" + m.group(1).replace("_", "").lower()
        if key in _BY_NAME:
            return _BY_NAME[key]
    m = _TEXTUAL.search(line)
    if m:
        if m.group("code") and int(m.group("code")) in _BY_CODE:
            return _BY_CODE[int(m.group("code"))]
        text = m.group("text").strip().lower()
        for known, err in _BY_TEXT:
            if text.startswith(known):
                return err
    return None
