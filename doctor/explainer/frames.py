"""Recognise traceback frame lines (CPython, IPython 7 and 8, Windows) and classify them.

A frame is "library" when it lives in an installed package, the standard library or code
generated at run time (Unsloth's compiled trainers, `<string>`): the user can't edit it.
"""
from __future__ import annotations

from typing import NamedTuple

import re2

# `  File "/x/y.py", line 12, in train`
_PY = re2.compile(r'^\s*File "([^"]+)", line (\d+)(?:, in (.+))?\s*$')
# IPython 8: `File /usr/lib/python3.10/site-packages/x.py:1859, in Trainer.train(self)`
_IPY8 = re2.compile(r"^\s*File (\S.*?):(\d+)(?:, in (.+?))?\s*$")
# IPython 8: `Cell In[5], line 3` (the function is the cell itself)
_CELL = re2.compile(r"^\s*Cell In ?\[(\d*)\], line (\d+)")
# IPython 8.0-8.5: `Input In [5], in <cell line: 3>()`
_INPUT = re2.compile(r"^\s*Input In ?\[(\d*)\], in (.+?)\s*$")
# IPython 7 / Colab: `<ipython-input-5-1a2b> in <module>()`, `/path/x.py in train(self)`
_IPY7 = re2.compile(
    r"^\s*(<ipython-input-[^>]*>|/\S+?\.py|~\S*?\.py|[A-Za-z]:\\\S+?\.py|\S+\.py) in (\S.*?)\s*$")
# IPython's arrow at the failing line: `----> 3 trainer.train()`, `-> 1859     return f(`
_ARROW = re2.compile(r"^\s*-*> ?(\d+)\s?(.*)$")

# `[/usr/lib/x.py](https://localhost:8080/#)` -> `/usr/lib/x.py`
_MD_LINK = re2.compile(r"\[([^\]]+)\]\([^)]*\)")

_KNOWN_PACKAGES = (
    "unsloth_zoo", "unsloth", "transformers", "trl", "peft", "torch", "accelerate", "datasets",
    "bitsandbytes", "triton", "xformers", "huggingface_hub", "tokenizers", "safetensors",
    "deepspeed", "vllm", "flash_attn", "torchvision", "numpy", "jinja2", "pyarrow",
)


class FrameHead(NamedTuple):
    file: str
    line: int | None
    function: str


def match_frame(text: str) -> FrameHead | None:
    """A frame header line, or None. Cheap substring checks first: most lines are not."""
    s = text.lstrip()
    if s.startswith("[") and "](" in s:   # Colab and VS Code paste frames as Markdown links
        text = s = _MD_LINK.sub(r"\1", s)
    if s.startswith("File "):
        m = _PY.search(text)
        if m:
            return FrameHead(m.group(1), int(m.group(2)), (m.group(3) or "?").strip())
        m = _IPY8.search(text)
        if m:
            return FrameHead(m.group(1), int(m.group(2)), _strip_args(m.group(3) or "?"))
        return None
    if s.startswith("Cell In"):
        m = _CELL.search(text)
        if m:
            return FrameHead(f"Cell In[{m.group(1)}]", int(m.group(2)), "<cell>")
    if s.startswith("Input In"):
        m = _INPUT.search(text)
        if m:
            return FrameHead(f"Input In[{m.group(1)}]", None, _strip_args(m.group(2)))
    if " in " in s and ".py" in s or s.startswith("<ipython-input"):
        m = _IPY7.search(text)
        if m:
            return FrameHead(m.group(1), None, _strip_args(m.group(2)))
    return None


def match_arrow(text: str) -> tuple[int, str] | None:
    if "> " not in text and not text.lstrip().startswith("-"):
        return None
    m = _ARROW.search(text)
    return (int(m.group(1)), m.group(2).strip()) if m else None


def _strip_args(func: str) -> str:
    """`Trainer.train(self, resume_from_checkpoint)` -> `Trainer.train`."""
    cut = func.find("(")
    return func[:cut].strip() if cut > 0 else func.strip()


def classify(path: str) -> tuple[bool, str | None]:
    """(library, package) for a frame's file."""
    p = path.replace("\\", "/")
    while "//" in p:   # a Windows path pasted with escaped backslashes: c:\\work\\x.py
        p = p.replace("//", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        at = p.find(marker)
        if at >= 0:
            rest = p[at + len(marker):]
            top = rest.split("/", 1)[0]
            return True, top[:-3] if top.endswith(".py") else top
    if p.startswith("<string>") or "unsloth_compiled_cache" in p:
        return True, "unsloth"    # Unsloth compiles patched trainers into these
    if p.startswith("<frozen") or p.startswith("<decorator"):
        return True, None
    parts = p.split("/")
    for name in _KNOWN_PACKAGES:   # a source checkout: /home/me/unsloth/unsloth/models/x.py
        if name in parts[:-1]:
            return True, name
    low = p.lower()
    if "/lib/python3" in low or "/lib/python2" in low or (len(p) > 2 and p[1] == ":" and "/lib/" in low):
        return True, None          # the standard library
    return False, None
