"""The raise-site index: load it (shipped, cached, or built from the installed source on first
use) and find where a pasted message comes from.

Which index: the installed package's version when one is on sys.path (the shipped file if it
is that version, else one built once and cached under the state dir); otherwise the newest
shipped index, so explain works on a machine without Unsloth.
Matching is a substring test on each template's longest literal fragment, then the
template's regex (RE2, linear time) on the few that pass.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import sys
from pathlib import Path
from typing import Iterable, NamedTuple

import re2

from doctor.explainer.raisesites import (HOLE, MIN_FRAGMENT, SiteRecord, build_package, dist_version,
                                         literal_chars)
from doctor.results.explain import RaiseSite

# In order of preference when one message fits sites of several (Unsloth patches trl and
# peft and often repeats their messages).
PACKAGES = ("unsloth", "unsloth_zoo", "trl", "peft")
# Consulted only when no site of PACKAGES fits. bitsandbytes is small and built on first use
# like the first tier; transformers never is: 7,000+ sites take 10-30 s to read, so a version
# without a shipped or cached index uses the newest shipped one (`kb index` builds it).
SECOND_TIER = ("transformers", "bitsandbytes")
NEVER_BUILT = ("transformers",)
ALL_PACKAGES = PACKAGES + SECOND_TIER
SHIPPED = Path(__file__).resolve().parent / "index"
# Messages of older unsloth, unsloth_zoo, trl and peft releases that the current source no
# longer has, one small index per snapshot of their git history
# (scripts/build_history_index.py): the last tier.
HISTORY = SHIPPED / "history"
FORMAT = 3   # 2: prints in code kept in strings are read; 3: benchmarks and tests are not; an older cache is rebuilt
MAX_MESSAGE = 2000    # a longer "message" is a log, not one message
MIN_SHARE = 0.3       # the template's literal text must be this share of the message...
ENOUGH_LITERAL = 40   # ...unless it is this long on its own (a message with long paths in it)
_WS = re.compile(r"\s+")
_BRACED = re.compile(r"\{[A-Za-z_][\w.]*\}")


class PackageIndex(NamedTuple):
    package: str
    version: str
    sites: list[SiteRecord]


def dump(index: PackageIndex) -> bytes:
    doc = {"format": FORMAT, "package": index.package, "version": index.version,
           "sites": [list(s) for s in index.sites]}
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return gzip.compress(raw, compresslevel=9, mtime=0)   # mtime 0: the same source, the same bytes


def load(path: Path, current_only: bool = False) -> PackageIndex:
    """`current_only`: refuse (ValueError) an index an older doctor built with other rules."""
    doc = json.loads(gzip.decompress(path.read_bytes()))
    if current_only and doc.get("format") != FORMAT:
        raise ValueError(f"{path.name}: index format {doc.get('format')}, not {FORMAT}")
    return PackageIndex(doc["package"], doc["version"], [SiteRecord(*s) for s in doc["sites"]])


def file_name(package: str, version: str) -> str:
    return f"{package}-{version}.json.gz"


def installed_root(package: str) -> Path | None:
    """The site-packages folder that holds `package`, found without importing it."""
    for entry in sys.path:
        root = Path(entry or ".")
        if (root / package / "__init__.py").is_file():
            return root
    return None


def cache_dir() -> Path:
    from doctor.paths import state_dir

    return state_dir() / "raise-index"


def build_index(root: Path, package: str) -> PackageIndex:
    return PackageIndex(package, dist_version(root, package) or "unknown", build_package(root, package))


def write(index: PackageIndex, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(index.package, index.version)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(dump(index))
    os.replace(tmp, path)
    return path


def newest_shipped(package: str) -> Path | None:
    found = sorted(SHIPPED.glob(f"{package}-*.json.gz"), key=lambda p: _version_key(p.name))
    return found[-1] if found else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name.split("-", 1)[-1]))


def package_index(package: str, use_installed: bool = True) -> PackageIndex | None:
    if package in NEVER_BUILT:
        return _second_tier_index(package)
    root = installed_root(package) if use_installed else None
    version = dist_version(root, package) if root is not None else None
    if version is not None:
        for folder in (SHIPPED, cache_dir()):
            path = folder / file_name(package, version)
            if path.is_file():
                try:   # a cache must follow today's rules; the shipped copy is built with them
                    return load(path, current_only=folder != SHIPPED)
                except (OSError, ValueError, EOFError, KeyError, TypeError):
                    pass   # a damaged or outdated cache is rebuilt below
        index = build_index(root, package)   # first use of this version: read its source once
        try:
            write(index, cache_dir())
        except OSError:
            pass   # a read-only state dir: use it uncached
        return index
    path = newest_shipped(package)
    return load(path) if path is not None else None


def _second_tier_index(package: str) -> PackageIndex | None:
    root = installed_root(package)
    version = dist_version(root, package) if root is not None else None
    candidates = [folder / file_name(package, version) for folder in (SHIPPED, cache_dir())] if version else []
    fallback = newest_shipped(package)
    for path in [*candidates, *([fallback] if fallback else [])]:
        if path.is_file():
            try:
                return load(path)
            except (OSError, ValueError, EOFError, KeyError, TypeError):
                continue
    return None


# --- matching ------------------------------------------------------------------------------

def normalize(text: str) -> str:
    """Whitespace collapsed and backticks dropped: pastes add and lose them freely.
    (str.split splits on the same Unicode whitespace as the regex `\\s+`, at a third of its cost:
    the transformers tier normalizes some 20,000 templates per process.)"""
    return " ".join(text.replace("`", "").split())


class _Compiled(NamedTuple):
    package: str
    version: str
    site: SiteRecord
    fragment: str

    @property
    def literal(self) -> int:
        return literal_chars(normalize(self.site.template.replace(HOLE, "")))

    @property
    def regex(self) -> str:
        return ".*?".join(re.escape(normalize(p)) for p in self.site.template.split(HOLE))


class RaiseIndex:
    def __init__(self, indexes: Iterable[PackageIndex], free_text: bool = False) -> None:
        """`free_text`: the sentences built away from their call (kind "text") instead of the
        raise, warn, log and print sites: a tier of their own, read after every call site."""
        self.indexes = list(indexes)
        self._items: list[_Compiled] = []
        for idx in self.indexes:
            for site in idx.sites:   # only the fragment now; literal and regex when it is found
                if (site.kind == "text") != free_text:
                    continue
                if "{" in site.template:   # `{name}` left in code that is generated, then run
                    site = site._replace(template=_BRACED.sub(HOLE, site.template))
                fragment = normalize(max(site.template.split(HOLE), key=len))
                if fragment:
                    self._items.append(_Compiled(idx.package, idx.version, site, fragment))
        self._regex: dict[int, object] = {}
        self._lowered: list[str] | None = None   # each template lower-cased, on first fuzzy use
        self._opening: list[str] | None = None   # each template's words before its first hole, likewise
        self._heads: list[tuple[str, _Compiled]] | None = None   # built on first cut_short use
        self._first_lines: list[tuple[str, str, int, _Compiled]] | None = None   # likewise
        self._holed: dict[str, list[tuple[str, _Compiled]]] | None = None   # likewise

    def __len__(self) -> int:
        return len(self._items)

    def version_of(self, package: str) -> str | None:
        return next((i.version for i in self.indexes if i.package == package), None)

    def match(self, message: str, exc_type: str = "") -> list[tuple[int, _Compiled]]:
        """Sites whose template fits the message, best first (score, site)."""
        text = normalize(message)[:MAX_MESSAGE]
        if len(text) < 8:
            return []
        short = exc_type.rsplit(".", 1)[-1]
        found = []
        for i, item in enumerate(self._items):
            if item.fragment not in text:
                continue
            literal = item.literal
            if literal < MIN_SHARE * len(text) and literal < ENOUGH_LITERAL:
                continue
            pattern = self._regex.get(i)
            if pattern is None:
                pattern = self._regex[i] = re2.compile(item.regex)
            if pattern.search(text) is None:   # type: ignore[attr-defined]
                continue
            score = literal + (1000 if short and item.site.exc_type.rsplit(".", 1)[-1] == short else 0)
            found.append((score, item))
        found.sort(key=lambda x: (-x[0], *_site_order(x[1])))
        return found


    def cut_short(self, message: str) -> list[tuple[float, _Compiled]]:
        """Sites whose message starts with what was pasted, the paste stopping early (an issue
        title cut at its length limit): (share of the paste covered, site)."""
        text = normalize(message)[:MAX_MESSAGE].rstrip(" .…")
        if self._heads is None:   # each site's opening literal words, once
            self._heads = [(h, item) for h, item in zip(self._openings(), self._items) if len(h) >= CUT_MIN]
        out = []
        for head, item in self._heads:
            if head[:CUT_MIN] not in text:
                continue
            rest = text[text.find(head[:CUT_MIN]):]
            if head.startswith(rest) and len(rest) >= CUT_MIN and len(rest) >= MIN_SHARE * len(text):
                out.append((len(rest) / max(1, len(text)), item))
        if self._first_lines is None:   # multi-line messages, by their first line (a title quotes only it)
            self._first_lines = []
            for item in self._items:
                if "\n" in item.site.template.strip():
                    first = item.site.template.strip().split("\n", 1)[0]
                    parts = [normalize(x) for x in first.split(HOLE)]
                    literal = sum(len(x) for x in parts)
                    if literal >= CUT_MIN:
                        self._first_lines.append((max(parts, key=len), ".*?".join(re.escape(x) for x in parts),
                                                  literal, item))
        for fragment, regex, literal, item in self._first_lines:
            if fragment in text and literal >= MIN_SHARE * len(text) and re2.compile(regex).search(text):
                out.append((literal / max(1, len(text)), item))
        if not out:   # cut after a filled-in value: "Unsloth: org/model is not supported ... via"
            out = self._cut_after_a_hole(text)
        out.sort(key=lambda x: (-x[0], *_site_order(x[1])))
        return out

    def _openings(self) -> list[str]:
        """Each site's literal words before its first hole, whitespace collapsed (computed once
        for both readings of a message cut short)."""
        if self._opening is None:
            self._opening = [normalize(item.site.template.split(HOLE, 1)[0]) for item in self._items]
        return self._opening

    def _cut_after_a_hole(self, text: str) -> list[tuple[float, _Compiled]]:
        if self._holed is None:   # templates with a value inside, by their opening words
            self._holed = {}
            for head, item in zip(self._openings(), self._items):
                if HOLE in item.site.template and len(head) >= MIN_FRAGMENT:
                    self._holed.setdefault(head[:MIN_FRAGMENT], []).append((head, item))
        out = []
        for head, item in self._holed.get(text[:MIN_FRAGMENT], ()):
            if text.startswith(head):
                parts = [head, *(_ws_only(x) for x in item.site.template.split(HOLE)[1:])]
                literal = prefix_fit(parts, text)
                if literal is not None and literal >= CUT_MIN and literal >= MIN_SHARE * len(text):
                    out.append((literal / max(1, len(text)), item))
        return out

    def similar(self, message: str) -> list[tuple[float, _Compiled]]:
        """Sites whose wording mostly reappears in the message although no template fits it:
        the message of another release (reworded, or lengthened since). F1 over words."""
        mine = set(_words_of(message))
        if len(mine) < 3:
            return []
        if self._lowered is None:   # a substring test per word finds every template sharing it
            self._lowered = [item.site.template.lower() for item in self._items]
        common: dict[int, int] = {}
        for w in mine:
            for i, text in enumerate(self._lowered):
                if w in text:
                    common[i] = common.get(i, 0) + 1
        out = []
        for i, c in common.items():
            if c < SIMILAR_MIN_WORDS:
                continue
            theirs = set(_words_of(self._items[i].site.template))
            shared = len(mine & theirs)   # whole words: a substring hit inside a longer word does not count
            if shared < SIMILAR_MIN_WORDS:
                continue
            f1 = 2 * shared / (len(theirs) + len(mine))
            if f1 >= SIMILAR_F1:
                out.append((f1, self._items[i]))
        out.sort(key=lambda x: (-x[0], *_site_order(x[1])))
        return out


def _ws_only(part: str) -> str:
    """A template part after a hole, whitespace collapsed but its edges kept (`" is not ..."`)."""
    return _WS.sub(" ", part.replace("`", ""))


MAX_VALUE = 80   # a filled-in value longer than this is not one value (a path, a model name)


def prefix_fit(parts: list[str], text: str) -> int | None:
    """The literal characters of a template (parts between holes) that a message cut short
    shows, when the message is the template's beginning cut after at least one filled-in
    value; None when it is not (or when it is the whole template: that is a plain match)."""
    pos = literal = len(parts[0])
    for n, part in enumerate(parts[1:], start=1):
        at = text.find(part, pos) if part else pos
        if part and at >= 0 and at - pos <= MAX_VALUE:
            pos, literal = at + len(part), literal + len(part)
            continue
        rest = text[pos:]
        shown = next((k for k in range(min(len(part), len(rest)), 2, -1) if part.startswith(rest[-k:])), 0)
        if n == 1 and not shown or len(rest) - shown > MAX_VALUE:
            return None   # nothing after the first value, or a "value" too long to be one
        return literal + shown
    return None


SIMILAR_MIN_WORDS, SIMILAR_F1 = 4, 0.5
SHORT_LITERAL = 30   # a template with less literal text than this is weak evidence of its site
CUT_MIN = 20   # a cut message must keep this many characters of the site's opening words
_STOP = {"this", "that", "with", "from", "have", "your", "will", "been", "were", "when", "which", "please",
         "does", "into", "they", "them", "then", "than", "should", "would", "could", "there", "their"}


def _words_of(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z_]{4,}", text.lower()) if w not in _STOP]


_RANK = {p: i for i, p in enumerate(ALL_PACKAGES)}


def _site_order(item: "_Compiled") -> tuple[int, int, str, int]:
    """Among sites that fit equally: the preferred package, then the shallower file (the
    public module, `bitsandbytes/functional.py`, before a backend's copy of its message,
    `bitsandbytes/backends/cuda/ops.py`), then file and line for a stable order."""
    return (_RANK.get(item.package, len(_RANK)), item.site.file.count("/"), item.site.file, item.site.line)
_LOADED: RaiseIndex | None = None
_SECOND: RaiseIndex | None = None
_HISTORY: RaiseIndex | None = None
_TEXT: RaiseIndex | None = None


def default_index() -> RaiseIndex:
    global _LOADED
    if _LOADED is None:
        _LOADED = RaiseIndex(i for p in PACKAGES if (i := package_index(p)) is not None)
    return _LOADED


def history_index() -> RaiseIndex:
    global _HISTORY
    if _HISTORY is None:
        indexes = []
        for path in sorted(HISTORY.glob("*.json.gz")):
            try:
                indexes.append(load(path))
            except (OSError, ValueError, EOFError, KeyError, TypeError):
                continue   # one damaged snapshot must not hide the others
        _HISTORY = RaiseIndex(reversed(indexes))   # newest snapshot first
    return _HISTORY


def second_tier_index() -> RaiseIndex:
    global _SECOND
    if _SECOND is None:
        _SECOND = RaiseIndex(i for p in SECOND_TIER if (i := package_index(p)) is not None)
    return _SECOND


def free_text_index() -> RaiseIndex:
    """Unsloth's messages built away from the call that shows them (a list of lines joined
    later, a `.format` template returned by a helper)."""
    global _TEXT
    if _TEXT is None:
        _TEXT = RaiseIndex(default_index().indexes, free_text=True)   # the files the first tier read
    return _TEXT


def category(file: str) -> str:
    """What part of the library raises it, from where it is raised."""
    f = file.lower()
    base = f.rsplit("/", 1)[-1]
    if "save" in base or "gguf" in f or "llama_cpp" in f:
        return "saving/GGUF"
    if "/kernels/" in f:
        return "kernels"
    if "vision" in f:
        return "vision"
    if "grpo" in f or base.startswith("rl") or "/rl/" in f or "rl_" in base:
        return "RL"
    if "tokenizer" in f:
        return "tokenizer"
    if "dataset" in f:
        return "dataset"
    return "other"


def confidence(item: _Compiled, message: str, exc_type: str, rivals: int, agrees: int | None = None) -> float:
    """How surely the message is this site's: the share of the message its literal text
    covers, the exception type agreeing, how many other files raise the same text, and
    whether the paste's own innermost library frame (or warning path) names this file
    (`agrees`: None when the paste names no file, else `file_agreement`)."""
    literal = item.literal
    share = min(1.0, literal / max(1, len(normalize(message))))
    score = 0.3 + 0.6 * share
    if literal < SHORT_LITERAL:   # "'…' object has no attribute '…'": fits many messages
        score -= 0.15
    short = exc_type.rsplit(".", 1)[-1]
    if short and item.site.exc_type.rsplit(".", 1)[-1] == short:
        score += 0.05
    if rivals > 1:   # vendored copies: the message is right, which file is a guess among them
        score /= 1 + 0.25 * (rivals - 1)
    if agrees is not None:   # the paste says where it was raised: the strongest evidence there is
        score = score + (1 - score) * AGREE_PULL if agrees >= NEAR else score * DISAGREE
    return round(min(0.95, score), 2)


AGREE_PULL, DISAGREE = 0.5, 0.6   # fitted on the development split of the corpus only
EXACT, NEAR = 2, 1


def file_agreement(named: str, file: str) -> int:
    """How well a file the paste names (`peft/tuners/lora.py`, relative to site-packages)
    fits a site's file: EXACT, NEAR (the module has since become a package of that name:
    `peft/tuners/lora/layer.py`), else 0."""
    if named == file:
        return EXACT
    stem = named[:-3] if named.endswith(".py") else named
    return NEAR if file.startswith(stem + "/") else 0


def _by_agreement(found: list[tuple[int, _Compiled]], named: str | None) -> list[tuple[int, _Compiled]]:
    """Sites in the file the paste names first (stable: the score order stays within)."""
    if not named:
        return found
    return sorted(found, key=lambda x: -file_agreement(named, x[1].site.file))


def _from_history(item: _Compiled) -> bool:
    """A site of an older release: a git snapshot ("git 1a2b3c of 2024-05-31") or a released
    wheel ("release 4.40.2"), as scripts/build_history_index.py names them."""
    return item.version.startswith(("git ", "release "))


def to_result(item: _Compiled, reported_version: str | None, conf: float = 0.0,
              reworded: bool = False) -> RaiseSite:
    s = item.site
    note = None
    if _from_history(item):
        # the builder keeps a message in the first snapshot that has it: later releases may too
        note = (f"this message is from an older {item.package} (first read in {item.version}); the "
                "installed release words it differently or no longer raises it - updating may already "
                "fix the error")
    if reworded:
        note = (f"the pasted message is worded differently from this {item.package} {item.version} "
                "message (most of its words agree): it likely comes from another release of the same code")
    elif reported_version and item.package == "unsloth" and reported_version != item.version:
        note = (f"your log reports Unsloth {reported_version}; this was read from Unsloth {item.version}'s "
                "source, so the line may have moved or the message changed")
    return RaiseSite(item.package, item.version, s.file, s.line, s.function, s.kind, s.exc_type,
                     s.template.replace(HOLE, "…"), s.condition, category(s.file), note, conf)


def indexed(named_file: str | None, packages: tuple[str, ...] = ALL_PACKAGES) -> bool:
    """The file a paste names is in a package of `packages` (one an index reads)."""
    return bool(named_file) and named_file.split("/", 1)[0] in packages


def find_sites(messages: list[tuple[str, str]], reported_version: str | None,
               index: RaiseIndex | None = None, top: int = 3,
               named_file: str | None = None) -> tuple[list[RaiseSite], int]:
    """The sites of the first (exception type, message) pair that any template fits, and how
    many sites fit it in all (vendored code repeats one message in many files).
    `named_file`: the library file the paste itself says raised it (its innermost frame,
    a warning's `path.py:123:` prefix), relative to site-packages; sites there go first."""
    tiers = [lambda: index] if index is not None else [default_index, second_tier_index, free_text_index,
                                                        history_index]
    elsewhere: tuple[list[RaiseSite], int] | None = None
    for fuzzy in (False, True):   # an exact template anywhere beats a reworded one
        for tier in tiers:        # the second tier is loaded only when the first has nothing...
            sites, total = _find_in(tier(), messages, reported_version, top, fuzzy, named_file)
            if sites and (not indexed(named_file, SECOND_TIER) or file_agreement(named_file, sites[0].file)):
                return sites, total
            # ...or when its sites are in other files than the one the paste names (Unsloth
            # repeats transformers' messages: the traceback says which copy raised it)
            elsewhere = elsewhere or ((sites, total) if sites else None)
        if elsewhere:
            return elsewhere
    return [], 0


def _find_in(index: RaiseIndex, messages: list[tuple[str, str]], reported_version: str | None,
             top: int, fuzzy: bool, named_file: str | None = None) -> tuple[list[RaiseSite], int]:
    named = named_file or None
    for exc_type, message in ([] if fuzzy else messages):
        found = _by_agreement(index.match(message, exc_type), named)
        if found:
            best = found[0][0]
            agree = file_agreement(named, found[0][1].site.file) if named else 0
            rivals = len({item.site.file for score, item in found if score == best
                          and (not named or file_agreement(named, item.site.file) == agree)})
            old = 0.9 if _from_history(found[0][1]) else 1.0   # an older release's message
            return [to_result(item, reported_version,
                              round(old * confidence(item, message, exc_type, rivals,
                                                     file_agreement(named, item.site.file) if named else None)
                                    - 0.05 * i, 2))
                    for i, (_, item) in enumerate(found[:top])], len(found)
    for exc_type, message in ([] if fuzzy else messages):   # a message cut short (a title)
        cut = index.cut_short(message)
        if cut:
            return [to_result(item, reported_version, round(0.3 + 0.5 * share - 0.05 * i, 2))
                    for i, (share, item) in enumerate(cut[:top])], len(cut)
    # another release's wording, weaker; a reading repeated (a one-line paste whole and joined)
    # is read once: similar() reads every template
    for message in (dict.fromkeys(m for _, m in messages) if fuzzy else ()):
        near = index.similar(message)
        if near:
            return [to_result(item, reported_version, round(0.25 + 0.4 * f1 - 0.05 * i, 2), reworded=True)
                    for i, (f1, item) in enumerate(near[:top])], len(near)
    return [], 0


def sites_in(index: RaiseIndex, file: str, function: str) -> list[_Compiled]:
    """The indexed sites of one function (by its short name) in one file."""
    short = function.rsplit(".", 1)[-1]
    return [i for i in index._items if i.site.file == file and i.site.function.rsplit(".", 1)[-1] == short]
