"""What a child process that runs the doctor's own code (the smoke test) may import.

It must see the examined interpreter's packages and, of ours, only the `doctor` package. The
folder holding our package is, once the doctor is installed, a site-packages with our own
transformers, torch or orjson in it, which would shadow the user's; so the child's PYTHONPATH
gets a folder that holds nothing but a link to the package.
"""
from __future__ import annotations

import atexit
import functools
import os
import tempfile

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the `doctor` folder


def _remove(folder: str, owner: int) -> None:
    if os.getpid() == owner:  # not from a forked worker that inherited the exit handler
        import shutil

        shutil.rmtree(folder, ignore_errors=True)  # removes the link, never what it points to


@functools.lru_cache(maxsize=1)
def doctor_code_dir() -> str:
    """A folder that holds only this `doctor` package (a link to it); removed when we exit."""
    folder = tempfile.mkdtemp(prefix="unsloth-doctor-code-")
    atexit.register(_remove, folder, os.getpid())
    target = os.path.join(folder, "doctor")
    try:
        os.symlink(PACKAGE_DIR, target, target_is_directory=True)
    except OSError:  # no symlinks here (Windows without the privilege): a copy instead
        import shutil

        skip = shutil.ignore_patterns("__pycache__")
        shutil.copytree(PACKAGE_DIR, target, ignore=skip)
        beside = os.path.join(os.path.dirname(PACKAGE_DIR), "knowledge")  # a checkout keeps it there
        if not os.path.isdir(os.path.join(target, "knowledge")) and os.path.isdir(beside):
            shutil.copytree(beside, os.path.join(target, "knowledge"), ignore=skip)
    return folder


def with_doctor_code(env: dict[str, str]) -> dict[str, str]:
    """`env` with doctor_code_dir() first on PYTHONPATH (the user's own entries stay after it)."""
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = doctor_code_dir() + (os.pathsep + path if path else "")
    return env
