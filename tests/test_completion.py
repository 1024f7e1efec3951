"""Shell completion generated from the parser, run for real: bash's completion function is
called as bash calls it, fish answers `complete -C`, and zsh completes in an interactive shell
driven through a pseudo-terminal. Every command's options and every option's choices are
derived from the parser, so a new flag is tested the day it is added."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from doctor.cli.completion import Node, grammar
from doctor.cli.parser import build_parser
from tests.helpers.cli import ROOT, run_cli

GRAMMAR = grammar(build_parser())
NODES = GRAMMAR.walk()


def shell(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("UNSLOTH_DOCTOR_TEST_SHELLS") == "required":
        pytest.fail(f"{name} is not installed, and scripts/test.sh said it must be")
    pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("completion")
    out = {}
    for name in ("bash", "zsh", "fish"):
        proc = run_cli("completion", name)
        assert proc.returncode == 0, proc.stderr
        out[name] = folder / f"unsloth-doctor.{name}"
        out[name].write_text(proc.stdout)
    return out


def complete(kind: str, script: Path, line: str, cwd: Path) -> list[str]:
    """What the shell offers for `line` (the cursor at its end)."""
    if kind == "bash":
        program = (f"source {script}\nread -ra COMP_WORDS <<< {line!r}\n"
                   f"[[ {line!r} == *' ' ]] && COMP_WORDS+=('')\n"
                   "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n_unsloth_doctor\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
        proc = subprocess.run([shell("bash"), "--norc", "-c", program], cwd=cwd, capture_output=True, text=True, timeout=30)
    elif kind == "fish":
        proc = subprocess.run([shell("fish"), "--no-config", "-c", f"source {script}; complete -C {line!r}"],
                              cwd=cwd, capture_output=True, text=True, timeout=30)
    else:
        proc = subprocess.run([shell("zsh"), "-f", str(ROOT / "tests/helpers/capture_completion.zsh"), str(script),
                               str(cwd), line], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return sorted({w.split("\t")[0] for w in proc.stdout.splitlines() if w})


def _line(node: Node, tail: str) -> str:
    return " ".join(("unsloth-doctor", *node.path, tail))


def test_bash_registers_the_function(scripts: dict[str, Path]) -> None:
    proc = subprocess.run([shell("bash"), "--norc", "-c", f"source {scripts['bash']}; complete -p unsloth-doctor"],
                          capture_output=True, text=True)
    assert proc.stdout.strip() == "complete -o filenames -F _unsloth_doctor unsloth-doctor"


@pytest.mark.parametrize("kind", ["bash", "fish"])
def test_every_command_completes_its_subcommands_options_and_choices(kind: str, scripts: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    for node in NODES:
        if node.commands:
            assert complete(kind, scripts[kind], _line(node, ""), tmp_path) == sorted(node.commands), node.path
        long = sorted(n for o in node.options for n in o.names if n.startswith("--"))
        assert complete(kind, scripts[kind], _line(node, "--"), tmp_path) == long, node.path
        for option in node.options:
            if option.choices:
                got = complete(kind, scripts[kind], _line(node, f"{option.names[0]} "), tmp_path)
                assert got == sorted(option.choices), (node.path, option.names)


@pytest.mark.parametrize("kind", ["bash", "zsh", "fish"])
def test_commands_choices_files_and_folders(kind: str, scripts: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    (tmp_path / "tokenizer").mkdir()
    assert {"scan", "report", "explain", "kb", "completion"} <= set(complete(kind, scripts[kind], "unsloth-doctor ", tmp_path))
    assert complete(kind, scripts[kind], "unsloth-doctor kb ", tmp_path) == sorted(GRAMMAR.commands["kb"].commands)
    assert complete(kind, scripts[kind], "unsloth-doctor scan --form", tmp_path) == ["--format"]
    assert complete(kind, scripts[kind], "unsloth-doctor report --format ", tmp_path) == ["html", "markdown"]
    assert complete(kind, scripts[kind], "unsloth-doctor completion ", tmp_path) == ["bash", "fish", "zsh"]
    assert complete(kind, scripts[kind], "unsloth-doctor scan --data tr", tmp_path) == ["train.jsonl"]
    folders = complete(kind, scripts[kind], "unsloth-doctor scan --tokenizer to", tmp_path)
    assert [f.rstrip("/") for f in folders] == ["tokenizer"]
