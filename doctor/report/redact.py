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


_PACKAGE_DIR = re.compile(r"(?:site|dist)-packages[/\\]$")
_COMMON = {"localhost", "root", "user", "admin", "ubuntu", "debian", "runner", "jovyan", "colab"}


def machine_names() -> tuple[str | None, str | None]:
    """This machine's host name and the user's login name, when they say who or where."""
    import getpass
    import socket

    try:
        host: str | None = socket.gethostname().split(".")[0]
    except OSError:
        host = None
    try:
        user: str | None = getpass.getuser()
    except (OSError, KeyError):   # no login name (a container's uid without a passwd entry)
        user = None
    def telling(name: str | None) -> str | None:
        return name if name and len(name) >= 3 and name.lower() not in _COMMON else None
    return telling(host), telling(user)


def redact(text: str, host: str | None = None, user: str | None = None, *, machine: bool = True) -> str:
    """Tokens, e-mails, home folders; with `machine`, also this host's name (a whole word) and
    the user's name where it is a folder of a path (/data/alice/...). `host`/`user` name
    them instead of this machine's."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _HOME.sub(lambda m: m.group(1) + "<user>", text)
    if machine and (host is None or user is None):
        found_host, found_user = machine_names()
        host, user = host or found_host, user or found_user
    if host:
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", "<host>", text)
    if user:   # a folder named like the user, except a package's own (a user named after one)
        text = re.sub(rf"(?<=[/\\]){re.escape(user)}(?=[/\\]|$|[\s\"'`])",
                      lambda m: m.group(0) if _PACKAGE_DIR.search(text, 0, m.start()) else "<user>", text)
    return text
