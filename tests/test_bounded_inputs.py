"""Every parser of a user's file is bounded: a YAML alias bomb, a self-referencing alias, an
array nested 100,000 deep or an absurdly large file becomes a located finding, quickly and in
little memory, instead of a hang, a multi-GB allocation or a probe crash."""
from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from doctor.probes.config import scan_config
from tests.conftest import ROOT, run_cli

DEEP = 100_000   # levels of nesting in the hostile inputs


def ids(result) -> list[str]:
    return sorted(o.entry_id for o in result.observations)


def located(result, entry_id: str) -> tuple[str, int, int]:
    """(file name, line, column) of the one observation with this id; it must have all three."""
    (obs,) = [o for o in result.observations if o.entry_id == entry_id]
    loc = obs.location
    assert loc is not None and loc.path and loc.line and loc.column, obs
    return Path(loc.path).name, loc.line, loc.column


class Overran(Exception):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail, instead of hanging the suite, when the block runs past `seconds`."""
    def stop(signum: int, frame: object) -> None:
        raise Overran(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["lol0: &lol0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * width) + "]")
    return "learning_rate: 2.0e-4\nlora_r: 16\n" + "\n".join(lines) + "\n"


def run_cli_measured(*args: str, timeout: float = 60) -> tuple[float, int, str]:
    """`python -m doctor ARGS` in a child process: (seconds, its peak RSS in MiB, stdout)."""
    import subprocess

    wrapper = ("import resource, runpy, sys\n"
               "sys.argv = ['doctor', *sys.argv[1:]]\n"
               "try:\n    runpy.run_module('doctor', run_name='__main__', alter_sys=True)\n"
               "finally:\n"
               "    print(f'PEAK_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**__import__("os").environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - start
    peak = int(done.stderr.rsplit("PEAK_KB=", 1)[1].split()[0]) // 1024
    return seconds, peak, done.stdout


# -- YAML configs ----------------------------------------------------------------------------

def test_billion_laughs_config_is_refused_at_its_alias_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(billion_laughs())          # 9 levels x 9 aliases: 9**9 values once expanded
    start = time.perf_counter()
    with deadline(20):
        result = scan_config(str(path))
    assert time.perf_counter() - start < 1.0
    assert ids(result) == ["CONFIG-YAML-ALIAS-BOMB"]
    name, line, column = located(result, "CONFIG-YAML-ALIAS-BOMB")
    (obs,) = result.observations
    text_line = path.read_text().splitlines()[line - 1]
    assert name == "train.yaml" and text_line[column - 1] == "*"   # at an alias
    assert obs.values["anchor"] in text_line


def test_billion_laughs_found_in_a_scanned_folder_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text(billion_laughs())
    seconds, peak_mib, out = run_cli_measured("scan", str(tmp_path), "--no-env", "--format", "json")
    findings = json.loads(out)["findings"]
    (bomb,) = [f for f in findings if f["id"] == "CONFIG-YAML-ALIAS-BOMB"]
    assert bomb["location"]["path"].endswith("train.yaml") and bomb["location"]["line"] >= 4
    assert seconds < 1.0 + 1.0   # a second of work at most, plus the interpreter's start-up
    assert peak_mib < 200


@pytest.mark.parametrize("text, anchor", [
    ("learning_rate: 2.0e-4\nlora_r: 16\nlayers: &a [*a]\n", "a"),
    ("learning_rate: 2.0e-4\nlora_r: 16\nlora: &x {k: *x}\n", "x"),
    ("learning_rate: 2.0e-4\nlora_r: 16\nouter: &o\n  inner: [1, {back: *o}]\n", "o"),
])
def test_self_referencing_alias_is_a_located_finding_not_a_crash(tmp_path: Path, text: str, anchor: str) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with deadline(20):
        result = scan_config(str(path))
    assert time.perf_counter() - start < 1.0
    assert ids(result) == ["CONFIG-YAML-RECURSIVE-ALIAS"]
    _, line, column = located(result, "CONFIG-YAML-RECURSIVE-ALIAS")
    assert path.read_text().splitlines()[line - 1][column - 1:].startswith(f"*{anchor}")


def test_aliases_that_are_only_reused_still_check_the_config(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("defaults: &d {lora_dropout: 0.1}\nlearning_rate: 2.0e-4\nlora_r: 16\n"
                    "run_a: *d\nrun_b: *d\n")
    assert ids(scan_config(str(path))) == ["CONFIG-LORA-DROPOUT"]


@pytest.mark.parametrize("name, body", [
    ("deep.yaml", "x: " + "[" * DEEP + "]" * DEEP),            # libyaml refuses this itself at 1000
    ("block.yaml", "".join(" " * i + f"k{i}:\n" for i in range(300)) + " " * 300 + "v: 1"),
    ("deep.json", '{"learning_rate": 2e-4, "lora_r": 16, "x": ' + "[" * DEEP + "]" * DEEP + "}"),
    ("dicts.json", '{"lora_r": 16, "x": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"),
])
def test_config_nested_too_deep_is_located_at_the_first_level_past_the_limit(tmp_path: Path, name: str,
                                                                             body: str) -> None:
    path = tmp_path / name
    path.write_text("lora_r: 16\n" + body + "\n" if name.endswith(".yaml") else body + "\n")
    with deadline(20):
        result = scan_config(str(path))
    assert ids(result) == ["CONFIG-NESTING-TOO-DEEP"]
    _, line, column = located(result, "CONFIG-NESTING-TOO-DEEP")
    assert result.observations[0].values["limit"] == 100
    if name in ("deep.yaml", "deep.json"):
        assert path.read_text().splitlines()[line - 1][column - 1] == "["


def test_yaml_nested_just_under_the_limit_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 1.0e-2\nlora_r: 16\nx: " + "[" * 98 + "]" * 98 + "\n")
    assert ids(scan_config(str(path))) == ["CONFIG-LR-TOO-HIGH"]


def test_config_with_too_many_values_is_refused_before_it_is_built(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 2.0e-4\nlora_r: 16\nitems:\n" + "".join(f"  - {i}\n" for i in range(120_000)))
    start = time.perf_counter()
    result = scan_config(str(path))
    assert time.perf_counter() - start < 2.0
    assert ids(result) == ["CONFIG-TOO-LARGE"]
    assert located(result, "CONFIG-TOO-LARGE")[1] > 99_000   # the value past the budget


def test_config_over_the_byte_limit_is_not_read(tmp_path: Path) -> None:
    from doctor.probes import limits

    path = tmp_path / "train.yaml"
    with open(path, "wb") as f:              # sparse: no disk or memory is spent on it
        f.write(b"learning_rate: 2.0e-4\nlora_r: 16\n")
        f.truncate(limits.CONFIG_MAX_BYTES + 1)
    result = scan_config(str(path))
    assert ids(result) == ["CONFIG-TOO-LARGE"]
    assert located(result, "CONFIG-TOO-LARGE") == ("train.yaml", 1, 1)
    assert result.observations[0].values["limit"] == "64.0 MiB"
