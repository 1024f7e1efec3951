"""Remove secrets and personal paths from text meant for a public bug report."""
from __future__ import annotations

import re

# Token shapes of the services ML people paste by accident. Each keeps a short prefix so
# the reader still sees *what* was there.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "hf_***REDACTED***"),
    (re.compile(r"\bapi_org_[A-Za-z0-9]{30,}\b"), "api_org_***REDACTED***"),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b"), "sk-***REDACTED***"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "gh*_***REDACTED***"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"), "github_pat_***REDACTED***"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "AKIA***REDACTED***"),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9\-]{10,}\b"), "xox*-***REDACTED***"),
    (re.compile(r"\bwandb_v1_[A-Za-z0-9_]{20,}\b|(?<=WANDB_API_KEY=)[0-9a-f]{40}\b"), "***REDACTED***"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\b"), "***JWT-REDACTED***"),
    (re.compile(r"(?i)\b((?:api[_-]?key|token|secret|password|passwd|authorization)\s*[=:]\s*[\"']?)([^\s\"',*]{8,})"),
     r"\1***REDACTED***"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{16,}"), r"\1***REDACTED***"),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), "<email>"),
]

# Home folders name the user: /home/alice, /Users/alice, C:\Users\alice, /root stays.
_HOME = re.compile(r"(/home/|/Users/|[A-Za-z]:\\\\?Users\\\\?)([^/\\\s\"':]+)")


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _HOME.sub(lambda m: m.group(1) + "<user>", text)
