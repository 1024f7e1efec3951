"""Parsing what people paste: each fixture log is written in a shape real users paste."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doctor.explainer import oom, prefilter
from doctor.explainer.clean import clean_line
from doctor.explainer.parse import parse_stream, parse_text

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"


def parse(name: str):
    return parse_text((LOGS / name).read_text(encoding="utf-8"))


def test_plain_traceback_frames_and_user_code():
    log = parse("plain_oom.log")
    final = log.final
    assert final.type == "torch.OutOfMemoryError"
    assert final.log_line == 22
    user = [f for f in final.frames if not f.in_library]
    assert [(f.file, f.line) for f in user] == [("/home/alice/project/train.py", 88)]
    assert user[0].code == "trainer_stats = trainer.train()"
    # Unsloth's generated trainer code counts as library code
    assert {f.package for f in final.frames if f.file == "<string>"} == {"unsloth"}


def test_new_oom_numbers_and_fragmentation_advice():
    info = parse("plain_oom.log").oom
    assert info.tried == 2 * 1024 ** 3
    assert info.total == pytest.approx(14.74 * 1024 ** 3)
    assert info.free == pytest.approx(1.20 * 1024 ** 3)
    assert info.reserved_unallocated == pytest.approx(2.90 * 1024 ** 3)
    assert info.context == "training"
    assert info.fragmented
    steps = oom.advice(info)
    assert "expandable_segments:True" in steps[0]
    assert any("max_seq_length" in s for s in steps)
    assert "2.00 GiB" in oom.summary(info)


def test_old_oom_format_and_no_fragmentation():
    log = parse("old_oom.log")
    info = log.oom
    assert info.tried == 20 * 1024 ** 2
    assert info.allocated == pytest.approx(13.52 * 1024 ** 3)
    assert info.reserved_total == pytest.approx(13.71 * 1024 ** 3)
    assert info.free == pytest.approx(3.75 * 1024 ** 2)
    # 0.19 GiB spare out of 14.76 is not fragmentation worth a setting
    assert not info.fragmented
    assert not any("expandable_segments" in s for s in oom.advice(info))
    # the paste starts mid-traceback: those frames are kept as a truncated chain
    assert log.chains[0].final.truncated and log.final.type == "RuntimeError"


def test_jupyter_ansi_traceback_generation_context():
    log = parse("jupyter_generate_oom.log")
    final = log.final
    assert final.type == "OutOfMemoryError"
    assert "\x1b" not in log.text
    cell = final.frames[0]
    assert (cell.file, cell.line, cell.in_library) == ("Cell In[12]", 1, False)
    assert cell.code.startswith("outputs = model.generate(")
    gen = final.frames[-1]
    assert (gen.function, gen.line, gen.package) == ("GenerationMixin.generate", 2215, "transformers")
    assert log.oom.context == "generation"
    steps = oom.advice(log.oom)
    assert any("max_new_tokens" in s for s in steps)
    assert not log.oom.fragmented


def test_ipython7_colab_frames_get_arrow_line_numbers():
    log = parse("colab_ipy7_keyerror.log")
    final = log.final
    assert final.type == "KeyError" and "Column text not in the dataset" in final.message
    assert [f.line for f in final.frames] == [2, 251, 2762, 521]
    assert final.frames[0].file.startswith("<ipython-input-7-") and not final.frames[0].in_library
    assert final.frames[-1].package == "datasets"
    # the Colab footer is not part of the message
    assert "NOTE" not in final.message


def test_direct_cause_chain():
    log = parse("chained_import.log")
    assert len(log.chains) == 1
    first, last = log.primary.exceptions
    assert first.type == "RuntimeError" and "CUDA Setup failed" in first.message
    # a raise string's paragraphs, split by a blank line, stay one message
    assert first.message_lines == (13, 14, 16) and first.message.endswith("python -m bitsandbytes")
    assert last.link == "cause" and "Failed to import transformers.integrations" in last.message
    assert [f.package for f in first.frames][-1] == "bitsandbytes"
    assert first.frames[2].file == "<frozen importlib._bootstrap>" and first.frames[2].in_library


def test_during_handling_chain_and_multiline_message():
    log = parse("during_handling.log")
    first, last = log.primary.exceptions
    assert first.type == "requests.exceptions.HTTPError"
    assert last.link == "context" and last.type == "OSError"
    assert last.message_lines == (17, 18, 19)
    assert "gated repo" in last.message and "401 Client Error" in last.message


def test_github_quote_markers_and_windows_paths():
    log = parse("github_quoted_windows.log")
    final = log.final
    assert final.type == "ModuleNotFoundError" and final.message == "No module named 'triton'"
    assert final.log_line == 10          # the line number of the pasted (quoted) line
    user, unsloth, triton = final.frames
    assert user.file == r"C:\Users\Chen\Documents\ft\train.py" and not user.in_library
    assert (unsloth.package, triton.package) == ("unsloth", "triton")


def test_tqdm_carriage_returns_glued_to_traceback():
    log = parse("tqdm_then_cuda_error.log")
    final = log.final
    assert final.type == "RuntimeError"
    assert final.message.startswith("CUDA error: an illegal memory access was encountered")
    assert "CUDA_LAUNCH_BLOCKING=1" in final.message
    assert not any("it/s]" in line.text for line in log.lines if "loss" in line.text)


def test_truncated_paste_keeps_frames():
    log = parse("truncated.log")
    final = log.final
    assert final.truncated and final.type == "<truncated>"
    assert [f.function for f in final.frames][-1] == "save_to_gguf"


def test_torchrun_root_cause_rank_wins():
    log = parse("torchrun_ranks.log")
    assert [(r.rank, r.root_cause) for r in log.rank_failures] == [(0, False), (1, True)]
    final = log.final
    assert final.rank == 1
    assert final.message.startswith("Expected to have finished reduction")
    assert final.message_lines == (20, 21)
    assert [f.line for f in final.frames] == [57, 2241, 1636, 1527]   # rank 0's lines not mixed in
    assert {c.final.short_type for c in log.chains} >= {"ChildFailedError", "DistBackendError"}


def test_build_errors():
    cmake = parse("llama_cpp_build.log")
    assert [(b.tool, b.log_line) for b in cmake.build_errors] == [("cmake", 4), ("make", 12)]
    assert "No CMAKE_CXX_COMPILER could be found" in cmake.build_errors[0].message
    ptxas = parse("triton_ptxas.log")
    assert ptxas.build_errors[0].tool == "ptxas" and "sm_120a" in ptxas.build_errors[0].message
    gcc = parse("python_h_missing.log")
    assert gcc.build_errors[0].tool == "gcc" and "Python.h" in gcc.build_errors[0].message
    assert gcc.final.type == "subprocess.CalledProcessError"


def test_several_independent_tracebacks_last_one_is_primary():
    text = (LOGS / "github_quoted_windows.log").read_text() + "\nthen later\n" + \
        (LOGS / "plain_oom.log").read_text()
    log = parse_text(text)
    assert len(log.chains) == 2
    assert log.final.type == "torch.OutOfMemoryError"
    assert log.final.log_line == 12 + 2 + 22   # after a blank line and 'then later'


@pytest.mark.parametrize("raw,expected,rank", [
    ("\x1b[0;31mKeyError\x1b[0m: 'text'", "KeyError: 'text'", None),
    ("> >   File \"a.py\", line 1, in f", "  File \"a.py\", line 1, in f", None),
    (">>> import unsloth", ">>> import unsloth", None),
    ("[rank3]: RuntimeError: boom", "RuntimeError: boom", 3),
    ("[default0]:Traceback (most recent call last):", "Traceback (most recent call last):", 0),
    ("  3%|▎         | 12/400 [00:05<02:40,  2.41it/s]KeyError: 'x'", "KeyError: 'x'", None),
    ("a\r  5%|#   | 20/400 [00:05<02:40,  2.41it/s]\r", "  5%|#   | 20/400 [00:05<02:40,  2.41it/s]", None),
    ("File &quot;x.py&quot;, line 3, in &lt;module&gt;", 'File "x.py", line 3, in <module>', None),
    ('<pre style="margin: 0"><span style="color: var(--ansi-red);">OutOfMemoryError</span>'
     '<span>                 Traceback (most recent call last)</span>',
     "OutOfMemoryError                 Traceback (most recent call last)", None),
    ("x = a < b and c > d</td>", "x = a < b and c > d</td>", None),   # not a tag we strip
])
def test_clean_line(raw, expected, rank):
    line = clean_line(7, raw)
    assert (line.no, line.text, line.rank) == (7, expected, rank)


def test_prefilter_keeps_the_failure_of_a_big_log_with_line_numbers():
    noise = "".join(f"{{'loss': {i / 1000:.4f}, 'grad_norm': 0.5, 'epoch': {i}}}\n" for i in range(60_000))
    tb = (LOGS / "plain_oom.log").read_text()
    text = tb + noise + tb
    stream = io.BytesIO(text.encode())
    sel = prefilter.select_chunks(iter(lambda: stream.read(100_000), b""))   # odd chunk cuts
    assert sel.total_lines == 22 + 60_000 + 22
    assert sel.dropped > 50_000
    log = parse_stream(io.BytesIO(text.encode()))
    assert log.final.type == "torch.OutOfMemoryError"
    assert log.final.log_line == 22 + 60_000 + 22
    assert log.oom and log.oom.log_line == log.final.log_line
    numbered = dict((line.no, line.text) for line in log.lines)
    assert numbered[22 + 60_000 + 7].strip().startswith('File "/home/alice/project/train.py"')


def test_prefilter_small_text_is_kept_whole():
    sel = prefilter.select_text("a\nb\nc\n")
    assert sel.lines == [(1, "a"), (2, "b"), (3, "c")] and sel.dropped == 0


def test_prefilter_cuts_endless_progress_line():
    bar = "\r  5%|#   | 20/400 [00:05<02:40,  2.41it/s]" * 200_000 + "\nKeyError: 'text'\n"
    log = parse_text(bar)
    assert log.total_lines == 2
    assert max(len(line.text) for line in log.lines) < 100
    assert any(line.text == "KeyError: 'text'" and line.no == 2 for line in log.lines)


# Adversarial inputs for the parsing patterns. Every pattern is RE2 (linear time; the test
# below checks no module falls back to `re`), so these finish at once; with a backtracking
# engine several of them would hang the suite.
@pytest.mark.parametrize("evil", [
    "File " + "a" * 200_000 + ":" * 50_000,
    "A" * 100_000 + "." * 100_000 + "!",
    "[rank" + "1" * 200_000,
    "  " + "9" * 3 + "%|" + "|" * 100_000,
    "Tried to allocate " + "1." * 100_000,
    '  File "' + '"' * 100_000,
    "/x.py in " + " in " * 50_000 + "(",
    "\x1b[" + ";" * 200_000,
])
def test_patterns_are_linear_on_adversarial_lines(evil):
    text = "Traceback (most recent call last):\n" + evil + "\n" + evil + ": x\n"
    log = parse_text(text)
    assert log.total_lines == 3
    assert clean_line(1, evil).no == 1
    assert oom.parse_oom_message(evil, 1).total is None


def test_explain_package_uses_only_re2():
    package = Path(__file__).resolve().parent.parent / "doctor" / "explain"
    offenders = [p.name for p in package.glob("*.py")
                 if any(line.strip() in ("import re", "import regex") or line.startswith("from re ")
                        for line in p.read_text().splitlines())]
    assert offenders == []


def test_prefilter_memory_is_bounded_when_every_line_is_a_distinct_error():
    # 12 MB of unique error lines: the kept set stays within its byte budgets
    lines = b"".join(b"RuntimeError: failure number %d with unique text %s\n" % (i, b"x" * (i % 50))
                     for i in range(200_000))
    sel = prefilter.select_chunks([lines])
    kept = sum(len(text) for _, text in sel.lines)
    assert sel.total_lines == 200_000
    assert kept <= 2 * prefilter.MAX_KEPT_BYTES + prefilter.TAIL_LINES * prefilter.MAX_LINE_BYTES
    assert sel.lines[-1][0] == 200_000          # the tail is always there


@given(st.text(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_without_error(text):
    log = parse_text(text)
    assert log.total_lines == text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    assert all(a.no < b.no for a, b in zip(log.lines, log.lines[1:]))


_PIECES = st.sampled_from([
    "Traceback (most recent call last):", '  File "/x/site-packages/unsloth/a.py", line 3, in f',
    "    code()", "KeyError: 'text'", "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:", "[rank1]: ", "> ",
    "Cell In[3], line 2", "----> 2 x()", "File /a/b.py:9, in g(x)", "\x1b[31m", "\r", "",
    "CUDA out of memory. Tried to allocate 2.00 GiB", "Root Cause (first observed failure):",
    "  rank      : 1 (local_rank: 1)", "ptxas fatal   : x", "CMake Error at x:1 (project):",
])


@given(st.lists(st.lists(_PIECES, max_size=3).map("".join), max_size=60).map("\n".join))
@settings(max_examples=300, deadline=None)
def test_traceback_shaped_noise_never_breaks_the_parser(text):
    log = parse_text(text)
    for chain in log.chains:
        assert chain.exceptions
    if log.primary is not None:
        assert log.primary in log.chains


def test_text_with_lone_surrogates_from_a_non_utf8_pipe():
    raw = b"Traceback (most recent call last):\n  File \"/x/t\xff.py\", line 1, in <module>\nKeyError: '\xfe'\n"
    log = parse_text(raw.decode("utf-8", "surrogateescape"))
    assert log.final.type == "KeyError" and log.final.message == "'\ufffd'"
    assert log.final.frames[0].file == "/x/t\ufffd.py"


def test_a_bare_error_line_is_the_final_error():
    log = parse_text("I get this:\n\nRuntimeError: CUDA error: device-side assert triggered\nthanks\n")
    assert (log.final.type, log.final.log_line, log.final.frames) == ("RuntimeError", 3, ())
    assert parse_text("Unsloth: Will patch your computer\n").final is None   # not an exception name


def test_a_bare_multi_line_message_keeps_its_lines_up_to_a_prompt_or_elision():
    text = ("RuntimeError: Unsloth: The tokenizer `my/ckpt`\n"
            "does not have a {% if add_generation_prompt %} for generation purposes.\n"
            "Please file a bug report immediately - thanks!\n")
    log = parse_text(text)
    assert log.final.message_lines == (1, 2, 3)
    assert log.final.message.splitlines()[1].startswith("does not have a {% if")
    cut = parse_text("```\nNotImplementedError: Unsloth: x is not supported! Please update via\n...\n"
                     "> pip list\nunsloth 2026.4.4\n```\n")
    assert cut.final.message == "Unsloth: x is not supported! Please update via"


def test_cpp_abort_and_process_deaths():
    text = ("Error: CUDA error: an illegal memory access was encountered\n"
            " 26%|##5       | 1275/5000 [15:01:05<43:52:34, 42.40s/it]\n"
            "terminate called after throwing an instance of 'c10::Error'\n"
            "  what():  CUDA error: an illegal memory access was encountered\n"
            "Aborted (core dumped)\n")
    log = parse_text(text)
    assert (log.final.type, log.final.log_line, log.final.message_lines) == ("c10::Error", 3, (3, 4))
    assert log.final.message == "CUDA error: an illegal memory access was encountered"
    assert (log.death.kind, log.death.log_line) == ("abort", 5)
    killed = parse_text("step 10 loss 1.2\n/bin/bash: line 1:  4121 Killed                  python train.py\n")
    assert (killed.death.kind, killed.death.log_line) == ("killed", 2)
    assert parse_text("the model killed it, Killed it!\n").death is None


def test_msvc_and_powershell_cmake_errors():
    log = parse_text(
        r"C:\Users\me\AppData\Local\Temp\tmp61\cuda_utils.c(165): error C2143: syntax error: missing ')'" "\n"
        "                    | cmake : CMake Error at CMakeLists.txt:2 (project):\n"
        "                    |   No CMAKE_C_COMPILER could be found.\n")
    assert [(b.tool, b.log_line) for b in log.build_errors] == [("msvc", 1), ("cmake", 2)]
    assert "error C2143" in log.build_errors[0].message


# Captured from real torch 2.11.0+cu130 runs on a GPU: the exact shapes torch prints.

def test_real_torch_oom_message():
    log = parse("real_torch211_oom.log")
    info = log.oom
    assert log.final.type == "torch.OutOfMemoryError"
    assert info.tried == pytest.approx(55.88 * 2 ** 30) and info.total == pytest.approx(139.80 * 2 ** 30)
    assert info.free == pytest.approx(27.52 * 2 ** 30)
    assert info.process_in_use == pytest.approx(112.27 * 2 ** 30)   # "Including non-PyTorch memory, this process has"
    assert info.allocated == pytest.approx(111.76 * 2 ** 30)
    assert info.reserved_unallocated == pytest.approx(3.08 * 2 ** 20)
    assert not info.fragmented
    assert "55.88 GiB" in oom.summary(info) and "139.80 GiB" in oom.summary(info)


def test_real_device_side_assert():
    log = parse("real_torch211_device_assert.log")
    final = log.final
    assert final.type == "torch.AcceleratorError"
    assert final.message.splitlines()[0] == "CUDA error: device-side assert triggered"
    assert final.frames[0].file == "/tmp/assert.py" and not final.frames[0].in_library
    assert [f.package for f in final.frames[1:]] == ["torch"] * 5


def test_real_torchrun_failure():
    log = parse("real_torch211_torchrun.log")
    assert [(r.rank, r.exitcode, r.root_cause, r.signal) for r in log.rank_failures] == \
        [(0, -15, False, "SIGTERM"), (1, 1, True, None)]
    assert (log.final.type, log.final.message, log.final.rank) == ("ValueError", "boom on rank 1", 1)
    rank0 = next(c for c in log.chains if c.rank == 0)
    assert "Connection closed by peer" in rank0.final.message   # the echo on the other rank


def test_python311_exception_group():
    text = ("  + Exception Group Traceback (most recent call last):\n"
            '  |   File "/home/u/train.py", line 3, in <module>\n'
            '  |     raise ExceptionGroup("workers failed", [ValueError(1), KeyError("text")])\n'
            "  | ExceptionGroup: workers failed (2 sub-exceptions)\n"
            "  +-+---------------- 1 ----------------\n"
            "    | ValueError: 1\n"
            "    +---------------- 2 ----------------\n"
            "    | KeyError: 'text'\n"
            "    +------------------------------------\n")
    log = parse_text(text)
    assert (log.final.type, log.final.message) == ("ExceptionGroup", "workers failed (2 sub-exceptions)")
    assert log.final.frames[0].file == "/home/u/train.py"
    assert [line.no for line in log.lines if line.text == "KeyError: 'text'"] == [8]
    assert clean_line(1, "    | cmake : CMake Error at x").text == "cmake : CMake Error at x"
    assert clean_line(1, "  + 1 + 2 = 3").text == "  + 1 + 2 = 3"


def test_ipython_8_input_and_windows_file_frames():
    text = ("---------------------------------------------------------------------------\n"
            "ValueError                                Traceback (most recent call last)\n"
            "Input In [5], in <cell line: 3>()\n"
            "      1 from unsloth import FastLanguageModel\n"
            "----> 3 model, tok = FastLanguageModel.from_pretrained('x')\n"
            "\n"
            r"File C:\Users\me\miniconda3\Lib\site-packages\unsloth\models\loader.py:301, in FastLanguageModel.from_pretrained(model_name, **kwargs)" "\n"
            "    300 if bad:\n"
            "--> 301     raise ValueError('Unsloth: bad model')\n"
            "\n"
            "ValueError: Unsloth: bad model\n")
    final = parse_text(text).final
    cell, lib = final.frames
    assert (cell.file, cell.line, cell.function, cell.in_library) == ("Input In[5]", 3, "<cell line: 3>", False)
    assert (lib.line, lib.function, lib.package) == (301, "FastLanguageModel.from_pretrained", "unsloth")
    assert lib.file.endswith(r"unsloth\models\loader.py") and lib.code == "raise ValueError('Unsloth: bad model')"
    assert (final.type, final.message) == ("ValueError", "Unsloth: bad model")


def test_tail_window_spans_many_small_chunks():
    data = b"".join(b"line %d\n" % i for i in range(3000))
    cut = len(data) - 300
    chunks = [data[:cut]] + [data[k:k + 30] for k in range(cut, len(data), 30)]
    sel = prefilter._filter(iter(chunks))   # the big-log path, whatever the size
    assert sel.total_lines == 3000
    tail = [(no, text) for no, text in sel.lines if no > 3000 - prefilter.TAIL_LINES]
    assert tail == [(no, f"line {no - 1}") for no in range(3000 - prefilter.TAIL_LINES + 1, 3001)]


def test_unsloth_banners_give_the_run():
    run = parse("banner_batch_oom.log").run
    assert (run.unsloth_version, run.gpu_name, run.gpu_memory_gb) == ("2025.9.4", "Tesla T4", 14.741)
    assert (run.batch_size, run.grad_accum, run.batch_line, run.bf16) == (8, 4, 9, False)
    steps = oom.advice(parse("banner_batch_oom.log").oom, run)
    assert any("per_device_train_batch_size=4 with gradient_accumulation_steps=8" in s
               and "effective batch of 32" in s for s in steps)
    one = run._replace(batch_size=1, grad_accum=8)
    assert any("already 1" in s for s in oom.advice(parse("banner_batch_oom.log").oom, one))
    assert parse("colab_ipy7_keyerror.log").run.empty


def test_prefilter_keeps_nan_and_inf_loss_lines_of_a_big_log():
    healthy = "".join(f"{{'loss': {1 + i / 1e6:.4f}, 'grad_norm': 0.5, 'epoch': {i}}}\n" for i in range(40_000))
    text = healthy + "{'loss': nan, 'grad_norm': inf, 'epoch': 40000}\n" + healthy
    log = parse_text(text)
    assert log.dropped_lines > 70_000
    assert (40_001, "{'loss': nan, 'grad_norm': inf, 'epoch': 40000}") in [(l.no, l.text) for l in log.lines]


def test_markdown_link_frames_of_colab_are_frames():
    text = ("AttributeError                            Traceback (most recent call last)\n"
            "[<ipython-input-9-4f9c>](https://localhost:8080/#) in <cell line: 2>()\n"
            "----> 2 trainer = train_on_responses_only(trainer)\n\n"
            "[/usr/local/lib/python3.10/dist-packages/unsloth/chat_templates.py](https://localhost:8080/#) "
            "in train_on_responses_only(trainer, instruction_part)\n")
    final = parse_text(text).final
    assert final is not None and final.truncated
    assert [(f.file, f.function) for f in final.frames][-1] == (
        "/usr/local/lib/python3.10/dist-packages/unsloth/chat_templates.py", "train_on_responses_only")


def test_a_paste_that_starts_at_an_ipython8_frame_is_a_traceback():
    text = ("File /usr/local/lib/python3.10/dist-packages/unsloth/save.py:2304, in unsloth_generic_save(model)\n"
            "   2303     if token is None and push_to_hub: token = get_token()\n"
            "-> 2304     merge_and_overwrite_lora(\n")
    final = parse_text(text).final
    assert final is not None and final.frames[-1].function == "unsloth_generic_save"


def test_an_error_line_retyped_without_the_space_after_the_colon():
    final = parse_text("ValueError:paged_adamw_32bit is not a valid OptimizerNames\n").final
    assert final is not None and final.type == "ValueError"
    assert final.message == "paged_adamw_32bit is not a valid OptimizerNames"
    # only the unmistakable suffixes: a URL or a `key:value` line is no exception
    assert parse_text("https://example.invalid/x\nmode:fast\n").final is None


def test_a_windows_path_pasted_with_escaped_backslashes_names_its_package():
    # Markdown or a repr doubles every backslash: c:\\work\\venv\\lib\\site-packages\\unsloth\\x.py
    text = ("NameError                                 Traceback (most recent call last)\n"
            "Cell In[4], line 1\n"
            "----> 1 from unsloth import FastLanguageModel\n"
            "\n"
            r"File c:\\work\\venv\\lib\\site-packages\\unsloth\\models\\__init__.py:15" "\n"
            "---> 15 from .loader  import FastLanguageModel\n"
            "\n"
            "NameError: name 'Unpack' is not defined\n")
    cell, lib = parse_text(text).final.frames
    assert not cell.in_library and (lib.in_library, lib.package) == (True, "unsloth")
