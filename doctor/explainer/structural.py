"""Diagnoses from the shape of an error, needing no knowledge entry per message.

- ST-IMPORT-NAME   `cannot import name X from Y`
- ST-MODULE-ATTR   `module Y has no attribute X`
- ST-OBJECT-ATTR   `'C' object has no attribute 'm'`, where an installed package defines m
- ST-API-MISMATCH  `f() got an unexpected keyword argument 'a'`, `f() takes N positional ...`
- ST-DATASET-FORMAT a KeyError / IndexError raised while formatting a dataset
- ST-CUDA-ERROR    a CUDA runtime error, with its documented meaning

Each names what the installed packages say (read from site-packages, never imported):
which package and version defines the name, and what the importing package requires.
A knowledge entry that matches the same error says more, and usually ranks above.
"""
from __future__ import annotations

import re
from typing import Callable, NamedTuple

from doctor.explainer import cuda_errors, pkgsource
from doctor.findings import Evidence, Finding, Fix, Severity
from doctor.results.explain import Diagnosis, ParsedLog

# Confidence of each shape: how often that shape alone means a version mismatch (import,
# attribute, signature) or the stated cause (dataset format, CUDA code).
SURE, LIKELY, LEAD = 0.8, 0.7, 0.45
_BUILTIN_TYPES = {"NoneType", "list", "dict", "str", "tuple", "int", "float", "bool", "bytes", "set",
                  "function", "method", "module", "type", "object", "Tensor", "ndarray", "generator"}
_DATASET_KEYS = {"text", "messages", "conversations", "conversation", "instruction", "input", "output",
                 "prompt", "completion", "chosen", "rejected", "content", "role", "from", "value",
                 "question", "answer", "response", "label", "labels", "images", "image"}
_LIBRARY_CLASS = re.compile(r"(ForCausalLM|ForConditionalGeneration|Model|Trainer|Config|Tokenizer(Fast)?|"
                            r"Processor|Collator)$")
_DATASET_WHERE = re.compile(r"arrow_dataset\.py|datasets[/\\]|formatting_(?:prompts_)?func|\.map\(|"
                            r"apply_chat_template|_prepare_dataset|\btokenize\b|aligner\.py|"
                            r"standardize_sharegpt|to_sharegpt|data_utils\.py", re.I)

_IMPORT = re.compile(r"cannot import name '?(?P<name>[\w.]+)'? from '?(?P<module>[\w.]+)'?")
_MODULE_ATTR = re.compile(r"module '?(?P<module>[\w.]+)'? has no attribute '?(?P<name>\w+)'?")
_OBJECT_ATTR = re.compile(r"'(?P<cls>\w+)' object has no attribute '(?P<name>\w+)'")
_KWARG = re.compile(r"(?P<callee>[\w.]*\w)\(\) got an unexpected keyword argument '(?P<arg>\w+)'")
_POSITIONAL = re.compile(r"(?P<callee>[\w.]*\w)\(\) takes (?P<want>\d+) positional arguments? "
                         r"but (?P<got>\d+) (?:were|was) given")
_KEY_ERROR = re.compile(r"(?<![A-Za-z])(?P<type>KeyError|IndexError)\b:? ?(?P<key>'[^']*'|[^\s]*)")


class Shape(NamedTuple):
    id: str
    title: str
    message: str
    confidence: float
    fixes: tuple[Fix, ...] = ()


def diagnose_structure(log: ParsedLog) -> list[Diagnosis]:
    """At most one diagnosis per shape, from the final error's lines first, then the rest."""
    out: dict[str, Diagnosis] = {}
    for no, text in _lines_to_read(log):
        for reader in _READERS:
            shape = reader(text, log)
            if shape is not None and shape.id not in out:
                evidence = (Evidence("line", f"log:{no}", text.strip()[:300], line=no),)
                finding = Finding(id=shape.id, title=shape.title, severity=Severity.ERROR,
                                  category=_CATEGORY[shape.id], area="runtime", message=shape.message,
                                  evidence=evidence, fixes=shape.fixes, confidence=shape.confidence)
                out[shape.id] = Diagnosis(finding, on_final_error=no in _final_lines(log))
    return list(out.values())


def _final_lines(log: ParsedLog) -> set[int]:
    return set(log.final.message_lines) if log.final is not None else set()


def _lines_to_read(log: ParsedLog) -> list[tuple[int, str]]:
    final = _final_lines(log)
    lines = [(line.no, line.text) for line in log.lines if line.text.strip()]
    first = [x for x in lines if x[0] in final]
    rest = [x for x in reversed(lines[-60:]) if x[0] not in final]   # the end of a log matters most
    return first + rest


def _importer(log: ParsedLog) -> str | None:
    """The package whose code was running when the error was raised (the innermost library frame)."""
    if log.final is None:
        return None
    packages = [f.package for f in log.final.frames if f.package]
    return packages[-1] if packages else None


def _installed_note(package: str) -> str:
    ver = pkgsource.version(package)
    return f"Installed here: {package} {ver}." if ver else f"{package} is not installed in the Python that runs the doctor."


def _requirement_note(importer: str | None, package: str) -> str:
    if not importer or importer == package:
        return ""
    spec = pkgsource.requirement_on(importer, package)
    return f" The installed {importer} requires `{spec}`." if spec else ""


def _upgrade_fix(*packages: str) -> Fix:
    names = " ".join(dict.fromkeys(p for p in packages if p))
    return Fix(text=f"Install versions that were released together: upgrade {names.replace(' ', ' and ')} "
                    "in one command (or pin the older one to what the newer requires), then restart Python.",
               kind="command", command=f"pip install --upgrade {names}")


def _missing_name(text: str, log: ParsedLog, pattern: re.Pattern[str], shape_id: str, title: str,
                  explain: str) -> Shape | None:
    """A name that one package looks up in another and does not find: a version mismatch.
    `title` and `explain` are formatted with name, module, package and by (the importer)."""
    m = pattern.search(text)
    if not m:
        return None
    name, module = m.group("name"), m.group("module")
    package = pkgsource.top_package(module)
    importer = _importer(log)
    by = f" ({importer})" if importer and importer != package else ""
    fields = {"name": name, "module": module, "package": package, "by": by}
    message = (f"{explain.format(**fields)} {_definition_note(module, name)}"
               f"{_requirement_note(importer, package)}")
    return Shape(shape_id, title.format(**fields), message.strip(), SURE, (_upgrade_fix(importer or "", package),))


def _import_name(text: str, log: ParsedLog) -> Shape | None:
    return _missing_name(
        text, log, _IMPORT, "ST-IMPORT-NAME", "Version mismatch: `{name}` cannot be imported from `{module}`",
        "`{name}` cannot be imported from `{module}`: the code importing it{by} was written for another "
        "{package} version than the one it found (the name was added later, or removed or moved since).")


def _module_attr(text: str, log: ParsedLog) -> Shape | None:
    return _missing_name(
        text, log, _MODULE_ATTR, "ST-MODULE-ATTR", "Version mismatch: `{module}.{name}` does not exist",
        "`{module}` has no `{name}` in the {package} the code ran with: code written for another {package} "
        "version{by} uses it (an older {package} lacks new names; a newer one drops old ones).")


def _definition_note(module: str, name: str) -> str:
    package = pkgsource.top_package(module)
    path = pkgsource.module_file(module)
    if path is None:
        return _installed_note(package)
    has = pkgsource.defines(path, name)
    return (f"{_installed_note(package)} Its `{module}` {'defines' if has else 'does not define'} `{name}`"
            + (" - so the failing environment has a different version than this one." if has else "."))


def _object_attr(text: str, log: ParsedLog) -> Shape | None:
    m = _OBJECT_ATTR.search(text)
    if not m or m.group("cls") in _BUILTIN_TYPES:
        return None
    cls, name = m.group("cls"), m.group("name")
    found = pkgsource.where_defined(name)
    if not found:
        if not _LIBRARY_CLASS.search(cls):
            return None
        scanned = ", ".join(p for p in pkgsource.SCANNED if pkgsource.version(p)) or "none installed here"
        return Shape("ST-OBJECT-ATTR", f"`{cls}` has no `{name}`",
                     f"`{name}` is not an attribute of `{cls}`, and no installed package that patches models "
                     f"defines it ({scanned}): it is set at run time by a step that did not run, or by "
                     "another version of the library that adds it.", LEAD,
                     (Fix(text="Install the library versions the code was written for, and run the step that "
                               f"adds `{name}` (for example the loader of the library that patches the model)."),))
    package, file = found[0]
    others = ", ".join(f for _, f in found[1:3])
    message = (f"`{name}` is not part of `{cls}`; it is provided by {package} ({file}"
               f"{', also ' + others if others else ''}). The object was not created or wrapped by {package} "
               f"(for example a model loaded with plain transformers, or a wrapper that was dropped), or the "
               f"installed {package} version lacks it. {_installed_note(package)}")
    return Shape("ST-OBJECT-ATTR", f"`{cls}` has no `{name}`: it comes from {package}", message, LIKELY,
                 (Fix(text=f"Create the object through {package} (the call that adds `{name}`), or install the "
                           f"{package} version your code was written for."),))


def _api_mismatch(text: str, log: ParsedLog) -> Shape | None:
    m = _KWARG.search(text) or _POSITIONAL.search(text)
    if not m:
        return None
    callee = m.group("callee")
    owner = callee.split(".")[-2] if "." in callee else callee
    found = pkgsource.where_defined(owner) if owner[:1].isupper() else []
    where = f" `{owner}` is defined by {found[0][0]} ({found[0][1]}). {_installed_note(found[0][0])}" if found else ""
    what = (f"does not take the keyword `{m.group('arg')}`" if "arg" in m.groupdict()
            else f"takes {m.group('want')} positional arguments but was given {m.group('got')}")
    message = (f"`{callee}()` {what}: the calling code was written for another version of the library that "
               f"defines it (arguments are added, renamed and removed between releases), or the argument "
               f"belongs to another call.{where}")
    package = found[0][0] if found else ""
    return Shape("ST-API-MISMATCH", f"Signature mismatch: `{callee}()`", message, SURE,
                 (Fix(text=f"Check the signature of `{callee}` in the installed version and move or rename the "
                           "argument, or install the version the code was written for."),)
                 + ((_upgrade_fix(package),) if package else ()))


def _dataset_format(text: str, log: ParsedLog) -> Shape | None:
    m = _KEY_ERROR.search(text)
    if not m:
        return None
    key = m.group("key").strip("'\"")
    frames = " ".join(f"{f.file} {f.function} {f.code or ''}" for f in (log.final.frames if log.final else ()))
    in_dataset_code = bool(_DATASET_WHERE.search(frames) or _DATASET_WHERE.search(log.text[-6000:]))
    column_like = key.lower() in _DATASET_KEYS
    if not (in_dataset_code or (m.group("type") == "KeyError" and column_like)):
        return None
    what = f"the key `{key}`" if m.group("type") == "KeyError" and key else "an index"
    message = (f"{m.group('type')} on {what} while the dataset was being formatted or tokenized: the rows do "
               "not have the columns or structure the formatting code reads (for example `text` vs "
               "`messages`, ShareGPT `from`/`value` vs `role`/`content`, or a row with fewer turns).")
    return Shape("ST-DATASET-FORMAT", "The dataset's format does not match what the formatting code reads",
                 message, LIKELY if in_dataset_code else LEAD + 0.1,
                 (Fix(text="Print one row (`print(dataset[0])`) and compare its keys with what the formatting "
                           "function or `dataset_text_field` expects; rename or convert the columns."),))


def _cuda_error(text: str, log: ParsedLog) -> Shape | None:
    err = cuda_errors.find(text)
    if err is None:
        return None
    message = (f"CUDA runtime error {err.code} ({err.name}{': ' + err.text if err.text else ''}). NVIDIA's "
               f"documentation: {err.doc} CUDA errors are reported asynchronously: the Python line shown "
               "may not be the kernel that failed.")
    return Shape("ST-CUDA-ERROR", f"CUDA error: {err.text or err.name}", message, LIKELY,
                 (Fix(text="Rerun with CUDA_LAUNCH_BLOCKING=1 so the error is reported at the kernel that "
                           "caused it.", kind="command", command="CUDA_LAUNCH_BLOCKING=1 python train.py"),))


_READERS: tuple[Callable[[str, ParsedLog], Shape | None], ...] = (
    _import_name, _module_attr, _api_mismatch, _object_attr, _dataset_format, _cuda_error)
_CATEGORY = {"ST-IMPORT-NAME": "env", "ST-MODULE-ATTR": "env", "ST-OBJECT-ATTR": "env",
             "ST-API-MISMATCH": "env", "ST-DATASET-FORMAT": "dataset-format", "ST-CUDA-ERROR": "kernel-launch"}
