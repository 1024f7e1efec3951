"""The CLI as a user meets it: real processes, real exit codes, no tracebacks from us."""
from __future__ import annotations

import json

import pytest
import os
from pathlib import Path

from doctor import __version__
from tests.helpers.cli import ROOT, run_cli


def test_version() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"unsloth-doctor {__version__}"


def test_unknown_flag_is_one_line_and_exit_2() -> None:
    r = run_cli("scan", "--no-such-flag")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_file_is_one_line_and_exit_2() -> None:
    for args in (("explain", "nope.log"), ("scan", "--data", "nope.jsonl"), ("scan", "nope-folder")):
        r = run_cli(*args)
        assert r.returncode == 2, args
        assert r.stderr.count("\n") == 1 and "does not exist" in r.stderr


def test_output_to_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("kb", "list", "--output", "x")  # kb has no --output: argparse says so
    assert r.returncode == 2
    r = run_cli("scan", "--no-env", "--data", str(_tiny_dataset(tmp_path)), "--output", str(tmp_path / "no" / "x.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def _tiny_dataset(tmp_path: Path) -> Path:
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "hello"}\n')
    return p


def test_internal_error_is_exit_3_with_a_crash_log(tmp_path: Path) -> None:
    # A bug of ours, planted from outside: a sitecustomize (Python runs it at start-up) that
    # breaks one command, so no test hook has to live in the product.
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import doctor.cli.commands\n"
        "def broken(args):\n"
        "    raise RuntimeError('a planted bug')\n"
        "doctor.cli.commands.cmd_kb = broken\n")
    path = os.pathsep.join(filter(None, [str(inject), str(ROOT), os.environ.get("PYTHONPATH")]))
    r = run_cli("kb", "list", env={"PYTHONPATH": path, "UNSLOTH_DOCTOR_STATE": str(tmp_path)})
    assert r.returncode == 3
    assert "internal error" in r.stderr and "Traceback" not in r.stderr
    logs = list((tmp_path / "crashes").glob("crash-*.log"))
    assert logs and "a planted bug" in logs[0].read_text() and "Traceback" in logs[0].read_text()


def test_broken_knowledge_base_is_reported_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("- id: X-Y\n  title: short enough\n  severity: nope\n")
    r = run_cli("kb", "list", env={"UNSLOTH_DOCTOR_KNOWLEDGE": str(tmp_path)})
    assert r.returncode == 3
    assert "bad.yaml:3:13" in r.stderr and "Traceback" not in r.stderr


def test_kb_test_passes_on_the_shipped_knowledge() -> None:
    r = run_cli("kb", "test", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout


def kb_test_on(tmp_path: Path, entry_yaml: str):
    """`kb test` on a knowledge base made of this one entry."""
    (tmp_path / "k.yaml").write_text(entry_yaml)
    return run_cli("kb", "test", env={"UNSLOTH_DOCTOR_KNOWLEDGE": str(tmp_path)})


def test_kb_test_fails_on_an_entry_whose_examples_lie(tmp_path: Path) -> None:
    r = kb_test_on(tmp_path,
        "- id: RT-LIAR\n  title: An entry whose example does not match\n  severity: error\n  category: other\n"
        "  area: runtime\n  symptoms: ['CUDA out of memory']\n  explain: this explains nothing at all\n"
        "  refs: [https://example.org/x]\n  examples:\n    match: ['Segmentation fault']\n"
        "    no_match: ['CUDA out of memory. Tried to allocate']\n")
    assert r.returncode == 1
    assert "FAIL RT-LIAR examples.match[0]" in r.stdout and "FAIL RT-LIAR examples.no_match[0]" in r.stdout
    assert "0 passed, 2 failed" in r.stdout


def test_kb_schema_and_show() -> None:
    schema = json.loads(run_cli("kb", "schema").stdout)
    assert schema["$defs"]["entry"]["required"][0] == "id"
    report_schema = json.loads(run_cli("kb", "schema", "--report").stdout)
    assert report_schema["title"] == "unsloth-doctor report"
    shown = run_cli("kb", "show", "DOCTOR-PROBE-CRASHED")
    assert shown.returncode == 0 and "id: DOCTOR-PROBE-CRASHED" in shown.stdout
    missing = run_cli("kb", "show", "NO-SUCH")
    assert missing.returncode == 2


def test_scan_env_json_is_machine_readable() -> None:
    r = run_cli("scan", "--format", "json", "--fail-on", "never")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # nothing but JSON on stdout
    assert out["command"] == "scan" and "python.version" in out["facts"]


OOM_LOG = """Traceback (most recent call last):
  File "/home/me/train.py", line 12, in <module>
    trainer.train()
  File "/usr/lib/python3/dist-packages/transformers/trainer.py", line 2240, in train
    return inner_training_loop(
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 14.75 GiB of which 1.20 GiB is free. Of the allocated memory 12.30 GiB is allocated by PyTorch, and 512.00 MiB is reserved by PyTorch but unallocated.
"""


def test_explain_json_validates_against_the_published_report_schema(tmp_path: Path) -> None:
    import jsonschema

    log = tmp_path / "oom.log"
    log.write_text(OOM_LOG)
    r = run_cli("explain", str(log), "--no-env", "--format", "json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    schema = json.loads(run_cli("kb", "schema", "--report").stdout)
    jsonschema.Draft202012Validator(schema).validate(out)
    assert out["findings"][0]["category"] == "cuda-oom"


def test_explain_markdown_redacts_the_home_folder(tmp_path: Path) -> None:
    r = run_cli("explain", "-", "--no-env", "--format", "markdown", stdin=OOM_LOG)
    assert "/home/<user>/train.py" in r.stdout and "/home/me/" not in r.stdout
    assert r.stdout.count("Tried to allocate 2.00 GiB") <= 2


@pytest.mark.parametrize("argv", [
    ["RuntimeError: CUDA error: out of memory"],             # quoted, as pasted from a chat
    ["RuntimeError:", "CUDA", "error:", "out", "of", "memory"],  # unquoted: the shell split it
])
def test_explain_takes_the_message_itself_as_its_argument(argv: list[str]) -> None:
    r = run_cli("explain", *argv, "--no-env", "--format", "json")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stdout)["findings"][0]["category"] == "cuda-oom"


def test_a_message_longer_than_any_file_name_is_explained_not_a_crash() -> None:
    message = ("You passed a tokenizer with `padding_side` not equal to `right` to the SFTTrainer. This might "
               "lead to some unexpected behaviour due to overflow issues when training a model in half-precision. "
               "You might consider adding `tokenizer.padding_side = 'right'` to your code.")
    r = run_cli("explain", message, "--no-env")
    assert r.returncode in (0, 1) and "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_explain_of_a_log_file_that_is_not_there_says_so(tmp_path: Path) -> None:
    r = run_cli("explain", str(tmp_path / "train.log"), "--no-env")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_run_keeps_the_exit_code_and_reports_json(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text(f"import sys\nsys.stderr.write({OOM_LOG!r})\nsys.exit(7)\n")
    import sys as _sys

    r = run_cli("run", "--no-env", "--format", "json", "--", _sys.executable, str(script))
    assert r.returncode == 7
    assert "Tried to allocate" in r.stderr      # the command's own output passes through
    assert json.loads(r.stdout)["command"] == "run"


def test_kb_test_skips_examples_whose_optional_package_is_missing(tmp_path: Path) -> None:
    r = kb_test_on(tmp_path,
        "- id: SCRIPT-NEEDS-EXTRA\n  title: An entry with an example that needs an extra\n  severity: info\n"
        "  category: other\n  area: script\n  observed: true\n  explain: nothing to explain here\n"
        "  refs: [https://example.org/x]\n  examples:\n"
        "    match: [{requires: [no_such_package_here], probe: script.py, input: 'x = 1'}]\n")
    assert r.returncode == 0, r.stdout
    assert "0 passed, 0 failed, 1 skipped (not installed: no_such_package_here)" in r.stdout


def test_smoke_option_out_of_range_is_a_usage_error() -> None:
    r = run_cli("smoke", "--batch-size", "0")
    assert r.returncode == 2 and "--batch-size must be a whole number" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
