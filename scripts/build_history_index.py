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

A package whose repository is too big to bring here (transformers) is read from its released
wheels instead, one snapshot per wheel, oldest version first (`pip download --no-deps
transformers==4.40.2 ...` into one folder):

    python scripts/build_history_index.py transformers=PATH/TO/WHEELS/
"""
from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
import zipfile
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


def wheels(folder: str, package: str) -> list[tuple[Path, str]]:
    """(wheel, version) of each wheel of `package` in `folder`, oldest version first."""
    from packaging.version import InvalidVersion, Version

    found = []
    for path in Path(folder).glob(f"{package}-*.whl"):
        try:
            found.append((Version(path.name.split("-")[1]), path))
        except InvalidVersion:
            continue
    return [(path, str(version)) for version, path in sorted(found)]


# transformers 4's TensorFlow and Flax code (gone in 5): a PyTorch fine-tune never runs it, and
# its copies of the PyTorch messages would only compete with the files that raise them
_TF_OR_FLAX = re.compile(r"^(?:tf_|flax_|keras_|modeling_(?:tf|flax)_)|(?:^|_)(?:tf|flax)(?:_utils)?\.py$")


def sites_in_wheel(wheel: Path, package: str) -> list:
    out = []
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if _TF_OR_FLAX.search(name.rsplit("/", 1)[-1]):
                continue
            if name.startswith(f"{package}/") and name.endswith(".py") and not never_runs(name):
                out += sites_from_source(z.read(name).decode("utf-8", "replace"), name)
    return out


def releases(spec_path: str, package: str, since: date, every: int):
    """(label, version, sites) per snapshot, oldest first: git commits or released wheels."""
    found = wheels(spec_path, package) if Path(spec_path).is_dir() else []
    if found:   # a folder of the package's wheels; any other folder is a git directory
        for wheel, version in found:
            yield version, f"release {version}", lambda w=wheel: sites_in_wheel(w, package)
        return
    git_dir, _, folder = spec_path.partition(":")
    for commit, when in snapshots(git_dir, since, every):
        yield when, f"git {commit[:10]} of {when}", lambda c=commit: sites_at(git_dir, c, package, folder)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repos", nargs="+", help="package=GIT_DIR")
    ap.add_argument("--since", default="2024-01-01")
    ap.add_argument("--every-months", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for spec in args.repos:
        package, where = spec.split("=", 1)
        current = raiseindex.package_index(package, use_installed=False)
        known = {s.template for s in current.sites} if current else set()
        for name, version, read in releases(where, package, date.fromisoformat(args.since), args.every_months):
            fresh = [s for s in read() if s.template not in known]
            known.update(s.template for s in fresh)
            if not fresh:
                continue
            index = raiseindex.PackageIndex(package, version, fresh)
            path = OUT / f"{package}-{name}.json.gz"
            path.write_bytes(raiseindex.dump(index))
            print(f"{package} {version}: {len(fresh)} messages the newer source lacks -> {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
