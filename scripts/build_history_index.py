"""Build the raise-site index of older Unsloth releases from their git history.

Messages change between releases: a report pasted from an older Unsloth quotes words the
installed source no longer has. This reads each package's source at one commit per quarter
(`git archive`, never checked out or imported), keeps the message templates the current
index does not have, and writes one small index per snapshot to doctor/explainer/index/history/.

    python scripts/build_history_index.py unsloth=PATH/TO/unsloth.git unsloth_zoo=PATH/TO/unsloth-zoo.git \
        [--since 2024-01-01] [--every-months 3]
    python scripts/build_history_index.py trl=PATH/TO/trl.git peft=PATH/TO/peft.git:src --since 2023-01-01

A repository that keeps the package under a folder (peft's `src/peft`) names it after a colon;
the sites are named as installed (`peft/tuners/lora/model.py`).
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doctor.explainer import raiseindex  # noqa: E402
from doctor.explainer.raisesites import never_runs, sites_from_source  # noqa: E402

OUT = raiseindex.SHIPPED / "history"


def git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=True).stdout


def snapshots(git_dir: str, since: date, every: int) -> list[tuple[str, str]]:
    """(commit, commit date) of the last commit before each period boundary."""
    out, day = [], since
    while day <= date.today():
        commit = git(git_dir, "rev-list", "-1", f"--before={day.isoformat()}", "HEAD").decode().strip()
        if commit and (not out or out[-1][0] != commit):
            when = git(git_dir, "show", "-s", "--format=%cs", commit).decode().strip()
            out.append((commit, when))
        month = day.month - 1 + every
        day = date(day.year + month // 12, month % 12 + 1, 1)
    return out


def sites_at(git_dir: str, commit: str, package: str, folder: str = "") -> list:
    where = f"{folder.strip('/')}/{package}" if folder else package
    try:
        raw = git(git_dir, "archive", "--format=tar", commit, where)
    except subprocess.CalledProcessError:
        return []   # the package folder did not exist yet at that commit
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".py") or never_runs(member.name):
                continue
            name = member.name[len(where) - len(package):]   # as installed: package/...
            source = tar.extractfile(member).read().decode("utf-8", "replace")
            out += sites_from_source(source, name)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repos", nargs="+", help="package=GIT_DIR")
    ap.add_argument("--since", default="2024-01-01")
    ap.add_argument("--every-months", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for spec in args.repos:
        package, git_dir = spec.split("=", 1)
        git_dir, _, folder = git_dir.partition(":")
        current = raiseindex.package_index(package, use_installed=False)
        known = {s.template for s in current.sites} if current else set()
        for commit, when in snapshots(git_dir, date.fromisoformat(args.since), args.every_months):
            fresh = [s for s in sites_at(git_dir, commit, package, folder) if s.template not in known]
            known.update(s.template for s in fresh)
            if not fresh:
                continue
            index = raiseindex.PackageIndex(package, f"git {commit[:10]} of {when}", fresh)
            path = OUT / f"{package}-{when}.json.gz"
            path.write_bytes(raiseindex.dump(index))
            print(f"{package} {when} ({commit[:10]}): {len(fresh)} messages the newer source lacks -> {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
