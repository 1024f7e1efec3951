"""Leads by wording: the runtime entries whose own text shares the most telling words with a
report that no symptom, structure or raise site explains.

People describe a known problem in words no pattern foresaw ("merged model has no weights",
"V100 bf16 full finetune"). Each runtime entry already says what it is about in its title,
explanation, fixes, symptoms and examples; ranking the entries by BM25 over those words gives
a lead where explain would otherwise have none. A lead by wording claims nothing: its
confidence stays under every matched answer's, and the words it rests on are shown.
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Any, NamedTuple

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}|[\u4e00-\u9fff]+")
# words every entry or every report uses; they tell entries apart no better than chance
_STOP = frozenset("""
the and for with you your this that not are was but use from have has can will when its into
than then out all any one more only also does did how what which who why where while there their
them they been being were here just like get got set see now new old two via per each
error errors fail fails failed failing failure issue issues problem problems bug bugs help please thanks
using used work works working run running trying tried try happen happens happened
""".split())
_PATTERN_SYNTAX = re.compile(r"\\[a-zA-Z]|\(\?[a-zA-Z]+\)|[\\\[\](){}|?*+.^$]")
K1, B = 1.2, 0.75           # BM25's usual constants
MIN_SCORE = 5.0             # below this the shared words are one or two common ones
LEAD_CONFIDENCE = 0.15      # the best lead; under the update-first lead (0.2) and every match
CLOSE = 0.6                 # a further lead scores at least this share of the best one


class WordingLead(NamedTuple):
    entry_id: str
    confidence: float
    words: tuple[str, ...]   # the shared words that weigh most, for the reader to judge


def words(text: str) -> list[str]:
    """Lower-case words of three letters or more, snake_case parts besides the whole name,
    and Chinese as character pairs (it has no spaces)."""
    return [w for raw in _WORD.findall(text.lower()) for w in _terms(raw)]


def word_counts(text: str) -> dict[str, int]:
    """words(text) counted; each distinct raw word is split once (an entry repeats its words)."""
    out: dict[str, int] = {}
    for raw, k in Counter(_WORD.findall(text.lower())).items():
        for w in _terms(raw):
            out[w] = out.get(w, 0) + k
    return out


@functools.lru_cache(maxsize=8192)
def _terms(word: str) -> tuple[str, ...]:
    if "\u4e00" <= word[0] <= "\u9fff":
        return tuple(word[i:i + 2] for i in range(max(1, len(word) - 1)))
    if word in _STOP:
        return ()
    parts = [p for p in word.split("_") if len(p) > 2 and p not in _STOP] if "_" in word else []
    return (word, *parts)


def entry_text(entry: Any) -> str:
    """What an entry says it is about: title, explanation, fixes, the words of its symptoms'
    patterns and its examples of matching text."""
    parts = [entry.title, entry.explain or ""]
    parts += [fix.text for fix in entry.fixes]
    parts += [_PATTERN_SYNTAX.sub(" ", symptom.pattern) for symptom in entry.symptoms]
    parts += [str(example) for example in (entry.examples or {}).get("match", [])]
    return "\n".join(parts)


class WordingIndex:
    """BM25 over the runtime entries' own text."""

    def __init__(self, entries: list[Any]) -> None:
        self._counts = {e.id: word_counts(entry_text(e)) for e in entries}
        self._lengths = {eid: sum(c.values()) for eid, c in self._counts.items()}
        self._mean_length = sum(self._lengths.values()) / max(1, len(self._lengths))
        seen: Counter[str] = Counter()
        for counts in self._counts.values():
            seen.update(counts.keys())
        n = len(self._counts)
        self._idf = {w: math.log(1 + (n - k + 0.5) / (k + 0.5)) for w, k in seen.items()}

    def rank(self, text: str) -> list[tuple[float, str, tuple[str, ...]]]:
        """(score, entry id, shared words by weight), best first; entries sharing nothing left out."""
        query = set(words(text)) & self._idf.keys()
        out = []
        for eid, counts in self._counts.items():
            parts = []
            norm = K1 * (1 - B + B * self._lengths[eid] / self._mean_length)
            for w in query:
                if w in counts:
                    parts.append((self._idf[w] * counts[w] * (K1 + 1) / (counts[w] + norm), w))
            if parts:
                parts.sort(reverse=True)
                out.append((sum(p for p, _ in parts), eid, tuple(w for _, w in parts)))
        out.sort(key=lambda t: (-t[0], t[1]))
        return out


def index_for(kb: Any) -> WordingIndex:
    """One index per loaded knowledge base, built the first time a report needs it."""
    return kb.derived("wording_index", lambda: WordingIndex([e for e in kb.entries if e.area == "runtime"]))


def leads(text: str, kb: Any, exclude: set[str], n: int) -> list[WordingLead]:
    """Up to n leads for the report's telling lines: the best at LEAD_CONFIDENCE, the others
    scaled by their score against it, none under CLOSE of its score."""
    if n <= 0 or not text.strip():
        return []
    ranked = [r for r in index_for(kb).rank(text) if r[0] >= MIN_SCORE and r[1] not in exclude][:n]
    if not ranked:
        return []
    best = ranked[0][0]
    return [WordingLead(eid, round(LEAD_CONFIDENCE * score / best, 2), shared[:5])
            for score, eid, shared in ranked if score >= CLOSE * best]
