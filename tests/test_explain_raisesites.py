"""The raise-site index: read from source with ast, shipped inside the package, and used by
explain to say where a pasted message is raised when no knowledge entry knows it."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import gzip
import json
import textwrap
from pathlib import Path

import pytest

from doctor.explainer import raiseindex
from doctor.explainer.diagnosis import diagnose
from doctor.explainer.parse import parse_text
from doctor.explainer.raisesites import HOLE, sites_from_source
from doctor.report.explain import render_markdown, render_text
from doctor.report.jsonout import explain_to_dict

SOURCE = textwrap.dedent('''
    import warnings, logging
    logger = logging.getLogger(__name__)

    class Saver:
        def save(self, method, path):
            if method not in ("lora", "merged_16bit"):
                raise ValueError(f"Unsloth: save_method={method!r} is not supported for {path}.")
            else:
                warnings.warn("Unsloth: saving a merged model takes a while", RuntimeWarning)

            def inner(n):
                if n > 3 and path:
                    logger.warning("Unsloth: too many shards (%d) for one file" % n)
                print("Unsloth: done " + path + " in the end, all is well")
            return inner

    raise RuntimeError("short")
    if _IS_MLX:
        raise ImportError("Unsloth: MLX support needs the mlx extra installed")
''')


def test_records_from_source_snippets():
    sites = {s.line: s for s in sites_from_source(SOURCE, "pkg/save.py")}
    r = sites[8]
    assert (r.kind, r.exc_type, r.function, r.file) == ("raise", "ValueError", "Saver.save", "pkg/save.py")
    assert r.template == f"Unsloth: save_method={HOLE} is not supported for {HOLE}."
    assert r.condition == 'method not in ("lora", "merged_16bit")'
    w = sites[10]
    assert (w.kind, w.exc_type, w.condition) == ("warn", "RuntimeWarning", 'not (method not in ("lora", "merged_16bit"))')
    log = sites[14]
    assert (log.kind, log.function, log.condition) == ("log", "Saver.save.inner", "n > 3 and path")
    assert log.template == f"Unsloth: too many shards ({HOLE}) for one file"
    p = sites[15]
    assert (p.kind, p.condition) == ("print", "")   # the def's own body: no if around it
    assert p.template == f"Unsloth: done {HOLE} in the end, all is well"
    assert 18 not in sites          # too little literal text to recognise
    assert 20 not in sites          # an MLX-only branch


def test_a_template_is_a_regex_with_holes():
    site = sites_from_source(SOURCE, "pkg/save.py")[0]
    index = raiseindex.RaiseIndex([raiseindex.PackageIndex("pkg", "1.0", [site])])
    hit = index.match("Unsloth: save_method='q4_k_m' is not supported for /tmp/out (really).", "ValueError")
    assert hit and hit[0][1].site.line == 8
    assert index.match("Unsloth: save_method='q4_k_m' is supported for /tmp/out.") == []


def test_the_shipped_index_is_small_and_readable():
    files = sorted(raiseindex.SHIPPED.glob("*.json.gz"))
    assert {f.name.split("-")[0] for f in files} >= {"unsloth", "unsloth_zoo"}
    assert sum(f.stat().st_size for f in files) < 1024 * 1024
    unsloth = next(f for f in files if f.name.startswith("unsloth-"))
    doc = json.loads(gzip.decompress(unsloth.read_bytes()))
    assert doc["format"] == raiseindex.FORMAT and len(doc["sites"]) > 500
    assert not any("/mlx/" in s[0] for s in doc["sites"])
    assert not any("/benchmark/" in s[0] or "/tests/" in s[0] for s in doc["sites"])   # never run in training


# Real raise statements of unsloth 2026.10.9, pasted as users paste them.
REAL = [
    ("`RuntimeError: Unsloth: save_method='fp8_dynamic' is not a supported compressed export. "
     "Supported compressed-tensors export methods: fp8, w4a16`", "unsloth/save.py", "saving/GGUF"),
    ("RuntimeError: Quantization failed - output file /content/model/unsloth.Q4_K_M.gguf not created",
     "unsloth/save.py", "saving/GGUF"),
    ('"Cannot load unsloth/Qwen2.5-VL-7B-Instruct as text-only; use FastVisionModel"',
     "unsloth/models/_utils.py", "other"),
]


@pytest.mark.parametrize("paste,file,category", REAL)
def test_a_real_unsloth_message_is_diagnosed_with_its_file(paste, file, category, knowledge_base):
    result = diagnose(paste, knowledge_base)
    assert result.log.final is not None
    assert result.raise_sites, paste
    site = result.raise_sites[0]
    assert (site.file, site.category, site.package) == (file, category, "unsloth")
    assert file in render_text(result) and file in render_markdown(result)
    assert explain_to_dict(result)["raise_sites"][0]["file"] == file


def test_a_version_other_than_the_index_is_said(knowledge_base):
    text = ("==((====))==  Unsloth 2025.3.1: Fast Llama patching. Transformers: 4.48.0.\n"
            "RuntimeError: Quantization failed - output file out.Q2_K_L.gguf not created\n")
    site = diagnose(text, knowledge_base).raise_sites[0]
    assert site.version_note and "2025.3.1" in site.version_note


def test_without_unsloth_installed_the_shipped_index_answers():
    index = raiseindex.package_index("unsloth", use_installed=False)
    assert index is not None and index.version == "2026.10.9"


def test_another_installed_version_is_built_once_and_cached(tmp_path, monkeypatch):
    root = tmp_path / "site"
    (root / "unsloth").mkdir(parents=True)
    (root / "unsloth" / "__init__.py").write_text(
        'def f(x):\n    if x:\n        raise ValueError(f"Unsloth: {x} is a very bad value here")\n')
    (root / "unsloth-0.0.1.dist-info").mkdir()
    (root / "unsloth-0.0.1.dist-info" / "METADATA").write_text("Name: unsloth\nVersion: 0.0.1\n\n")
    monkeypatch.syspath_prepend(str(root))
    index = raiseindex.package_index("unsloth")
    assert index.version == "0.0.1" and index.sites[0].condition == "x"
    assert (raiseindex.cache_dir() / "unsloth-0.0.1.json.gz").is_file()


@pytest.mark.parametrize("paste", [
    "<class 'TypeError'>: forward() got an unexpected keyword argument 'num_items_in_batch'",
    "`TypeError: forward() got an unexpected keyword argument 'num_items_in_batch'`",
    "```\nTypeError: forward() got an unexpected keyword argument 'num_items_in_batch'\n```",
    "'TypeError: forward() got an unexpected keyword argument 'num_items_in_batch''",
    "**TypeError: forward() got an unexpected keyword argument 'num_items_in_batch'**",   # Markdown bold
])
def test_one_line_pastes_are_the_final_error(paste):
    final = parse_text(paste).final
    assert final is not None and final.type == "TypeError"
    assert final.message == "forward() got an unexpected keyword argument 'num_items_in_batch'"


def test_an_untyped_quoted_line_is_the_final_error_but_prose_is_not():
    assert parse_text("`Unsloth: Your model needs to be saved first`").final.message == \
        "Unsloth: Your model needs to be saved first"
    assert parse_text("it just hangs at step 0, any idea?").final is None


def test_the_json_with_raise_sites_fits_the_schema(knowledge_base):
    import jsonschema

    from doctor.report.explain_schema import EXPLAIN_SCHEMA

    data = explain_to_dict(diagnose(REAL[0][0], knowledge_base))
    assert data["raise_sites"][0]["condition"]
    jsonschema.validate(data, EXPLAIN_SCHEMA)


def test_one_message_raised_in_many_places_says_so(knowledge_base):
    text = "`ValueError: Cannot pass both `state_v_first` and the deprecated `transpose_state_layout`.`"
    result = diagnose(text, knowledge_base)
    assert len(result.raise_sites) == 3
    assert any("raised in" in n and "places" in n for n in result.notes)


def test_kb_index_writes_the_index(tmp_path):
    import subprocess
    import sys

    from doctor.explainer.raisesites import dist_version

    root = raiseindex.installed_root("unsloth")
    if root is None or dist_version(root, "unsloth") != "2026.10.9":
        pytest.skip("needs unsloth 2026.10.9 installed: the version of the shipped index")

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "doctor", "kb", "index", "--output", str(tmp_path),
                          "--package", "unsloth", "--package", "unsloth_zoo"],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    built = raiseindex.load(tmp_path / "unsloth-2026.10.9.json.gz")
    shipped = raiseindex.load(raiseindex.SHIPPED / "unsloth-2026.10.9.json.gz")
    assert built == shipped    # the shipped index is what the command makes from this source


def test_info_lines_of_a_log_are_not_taken_for_the_error(knowledge_base):
    root = Path(__file__).resolve().parents[1]
    cut = (root / "fixtures" / "logs" / "truncated.log").read_text()
    assert "Unsloth: Will use up to" in cut                      # printed by unsloth/save.py
    sites = diagnose(cut, knowledge_base).raise_sites             # but the error was cut off:
    assert not any("Will use up to" in r.template for r in sites)  # leads come from the last frame
    assert all(r.confidence <= 0.5 for r in sites)
    warning = "Unsloth: Will use up to 12.5 out of 31.35 RAM for saving.\n"
    assert diagnose(warning, knowledge_base).raise_sites[0].file == "unsloth/save.py"


def test_a_transformers_message_is_found_in_the_second_tier(knowledge_base):
    paste = "ValueError: `torch_empty_cache_steps` must be an integer bigger than 0, got -1."
    sites = diagnose(paste, knowledge_base).raise_sites
    assert sites and sites[0].file == "transformers/training_args.py" and sites[0].package == "transformers"


def test_the_second_tier_is_never_built_on_first_use(monkeypatch):
    monkeypatch.setattr(raiseindex, "build_index", lambda *a: pytest.fail("transformers was read at run time"))
    index = raiseindex.package_index("transformers")
    assert index is not None and index.package == "transformers" and len(index.sites) > 5000


def test_the_second_tier_is_not_loaded_when_the_first_answers(knowledge_base, monkeypatch):
    monkeypatch.setattr(raiseindex, "_SECOND", None)
    monkeypatch.setattr(raiseindex, "second_tier_index", lambda: pytest.fail("transformers index loaded"))
    sites = diagnose("RuntimeError: Quantization failed - output file /x/unsloth.Q2_K_L.gguf not created",
                     knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth/save.py"


def test_a_message_of_an_older_release_is_found_in_the_history_and_says_so(knowledge_base):
    paste = "RuntimeError: Unsloth: `unsloth/llama-3-8b-bnb-4bit` is not a full model or a PEFT model."
    sites = diagnose(paste, knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth/models/loader.py" and sites[0].version.startswith("git ")
    assert "older unsloth" in (sites[0].version_note or "")


def test_a_message_only_transformers_4_raised_is_found_in_its_released_wheels(knowledge_base):
    paste = ("ValueError: The train_dataset does not implement __len__, max_steps has to be specified. "
             "The number of steps needs to be known in advance for the learning rate scheduler.")
    site = diagnose(paste, knowledge_base).raise_sites[0]
    assert (site.package, site.file, site.version) == ("transformers", "transformers/trainer.py", "release 4.28.1")
    assert "older transformers (first read in release 4.28.1)" in (site.version_note or "")


def test_the_history_builder_reads_released_wheels_oldest_first_without_tensorflow(tmp_path, monkeypatch):
    import zipfile

    from scripts import build_history_index as builder

    def wheel(version: str, files: dict[str, str]) -> None:
        with zipfile.ZipFile(tmp_path / f"fakepkg-{version}-py3-none-any.whl", "w") as z:
            for name, source in files.items():
                z.writestr(f"fakepkg/{name}", source)

    wheel("1.10.0", {"a.py": "def f():\n    raise ValueError('kept since 1.2, so never new')\n"
                             "def g():\n    raise ValueError('new in one ten of the fake package')\n"})
    wheel("1.2.0", {"a.py": "def f():\n    raise ValueError('kept since 1.2, so never new')\n",
                    "tf_utils.py": "def h():\n    raise ValueError('tensorflow only message here')\n"})
    out = tmp_path / "history"
    monkeypatch.setattr(builder, "OUT", out)
    monkeypatch.setattr(sys, "argv", ["build_history_index.py", f"fakepkg={tmp_path}"])
    assert builder.main() == 0
    read = {p.name: raiseindex.load(p) for p in sorted(out.glob("*.json.gz"))}
    assert sorted(read) == ["fakepkg-1.10.0.json.gz", "fakepkg-1.2.0.json.gz"]   # 1.2 before 1.10
    assert [s.template for s in read["fakepkg-1.2.0.json.gz"].sites] == ["kept since 1.2, so never new"]
    assert [s.template for s in read["fakepkg-1.10.0.json.gz"].sites] == ["new in one ten of the fake package"]
    assert read["fakepkg-1.10.0.json.gz"].version == "release 1.10.0"


def test_the_history_builder_reads_each_snapshot_from_git(tmp_path):
    from scripts.build_history_index import sites_at, snapshots

    repo = tmp_path / "repo"
    (repo / "unsloth").mkdir(parents=True)

    def commit(message: str, when: str) -> None:
        (repo / "unsloth" / "save.py").write_text(f"def save():\n    raise RuntimeError('{message}')\n")
        env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "HOME": str(tmp_path),
               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"]}
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True, env=env)

    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    commit("Unsloth: the old wording of this failure", "2024-02-10T12:00:00")
    commit("Unsloth: the new wording of this failure", "2024-05-10T12:00:00")
    git_dir = str(repo / ".git")
    snaps = snapshots(git_dir, date(2024, 3, 1), 3)
    assert [when for _, when in snaps] == ["2024-02-10", "2024-05-10"]
    old = sites_at(git_dir, snaps[0][0], "unsloth")
    assert [(s.file, s.template) for s in old] == [("unsloth/save.py", "Unsloth: the old wording of this failure")]
    # a bare mirror whose folder is not named *.git is read as git too (wheels only where it has them)
    from scripts.build_history_index import releases

    bare = tmp_path / "mirror"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    labels = [label for _, label, _ in releases(str(bare), "unsloth", date(2024, 3, 1), 3)]
    assert len(labels) == 2 and all(label.startswith("git ") for label in labels)


def test_backticks_added_or_lost_in_a_paste_do_not_matter(knowledge_base):
    # trl/trainer/dpo_config.py: "`loss_weights` must have the same length as `loss_type` when ..."
    paste = ("ValueError: loss_weights must have the same length as loss_type when combining multiple "
             "losses. Got 2 weights for 3 loss types.")
    sites = diagnose(paste, knowledge_base).raise_sites
    assert sites and sites[0].file == "trl/trainer/dpo_config.py"


def test_the_first_line_of_a_multi_line_message_is_enough(knowledge_base):
    # an old loader message of several lines, quoted by an issue title with its first line only
    sites = diagnose("NotImplementedError: Unsloth: unsloth/gemma-2-9b-bnb-4bit not supported yet!",
                     knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth/models/loader.py"


def test_an_installed_bitsandbytes_is_read_on_first_use_as_the_second_tier(tmp_path, monkeypatch, knowledge_base):
    root = tmp_path / "site"
    (root / "bitsandbytes").mkdir(parents=True)
    (root / "bitsandbytes" / "__init__.py").write_text("")
    (root / "bitsandbytes" / "functional.py").write_text(
        "def quantize_blockwise(A):\n    if A.dtype not in (1, 2):\n"
        '        raise ValueError(f"Blockwise quantization only supports 16/32-bit floats, but got {A.dtype}")\n')
    (root / "bitsandbytes-0.0.1.dist-info").mkdir()
    (root / "bitsandbytes-0.0.1.dist-info" / "METADATA").write_text("Name: bitsandbytes\nVersion: 0.0.1\n\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(raiseindex, "_SECOND", None)
    sites = diagnose("ValueError: Blockwise quantization only supports 16/32-bit floats, but got torch.uint8",
                     knowledge_base).raise_sites
    assert sites and (sites[0].file, sites[0].version) == ("bitsandbytes/functional.py", "0.0.1")
    assert (raiseindex.cache_dir() / "bitsandbytes-0.0.1.json.gz").is_file()


FAN_IN = ("fan_in_fan_out is set to False but the target module is `Conv1D`. "
          "Setting fan_in_fan_out to True.")   # peft/tuners/*: the same warning in 15 files


@pytest.mark.parametrize("path, file", [
    ("/usr/lib/python3.10/site-packages/peft/tuners/vera/model.py:247", "peft/tuners/vera/model.py"),
    # an older peft's module that has since become a package of that name
    ("/home/u/.local/lib/python3.10/site-packages/peft/tuners/lora.py:475", "peft/tuners/lora/layer.py"),
])
def test_the_file_a_warning_names_picks_among_files_raising_the_same_message(path, file, knowledge_base):
    named = diagnose(f"  {path}: UserWarning: {FAN_IN}\n    warnings.warn(\n", knowledge_base).raise_sites
    bare = diagnose(f"UserWarning: {FAN_IN}\n", knowledge_base).raise_sites
    assert named[0].file == file
    assert named[0].confidence > bare[0].confidence and named[0].confidence > named[1].confidence


def test_an_innermost_frame_in_another_file_lowers_the_confidence_in_a_template(knowledge_base):
    message = "ValueError: Unsloth: max_seq_length is 0! Please specify one!"   # unsloth_zoo/dataset_utils.py
    elsewhere = ('Traceback (most recent call last):\n  File "/x/site-packages/datasets/arrow_dataset.py", '
                 f'line 3, in map\n    raise ValueError(msg)\n{message}\n')
    here = elsewhere.replace("datasets/arrow_dataset.py", "unsloth_zoo/dataset_utils.py")
    lone, far, near = (diagnose(t, knowledge_base).raise_sites[0] for t in (message, elsewhere, here))
    assert lone.file == far.file == near.file == "unsloth_zoo/dataset_utils.py"
    assert far.confidence < lone.confidence < near.confidence


def test_a_traceback_quoting_its_raise_names_the_file_when_no_template_fits(knowledge_base):
    tb = ('Traceback (most recent call last):\n'
          '  File "/env/lib/python3.10/site-packages/unsloth/models/_utils.py", line 9, in check\n'
          '    raise ValueError(f"Unsloth: a message the {kind} release never had")\n'
          'ValueError: Unsloth: a message the current release never had\n')
    result = diagnose(tb, knowledge_base)
    site = result.raise_sites[0]
    assert (site.file, site.kind, site.line) == ("unsloth/models/_utils.py", "raise", 9)
    import jsonschema

    from doctor.report.explain_schema import EXPLAIN_SCHEMA

    jsonschema.validate(explain_to_dict(result), EXPLAIN_SCHEMA)
    other = diagnose(tb.replace('raise ValueError(f"Unsloth: a message the {kind} release never had")',
                                "return table[kind]"), knowledge_base).raise_sites[0]
    assert (other.file, other.kind) == ("unsloth/models/_utils.py", "frame")
    assert other.confidence < site.confidence
    torch = diagnose(tb.replace("unsloth/models/_utils.py", "torch/nn/modules/module.py"), knowledge_base)
    assert torch.raise_sites == []   # a package the index does not cover is not named


def test_a_bitsandbytes_message_is_found_without_bitsandbytes_installed(knowledge_base):
    # bitsandbytes 0.50.2 raises it in functional.py:651 and again in its CUDA backend's ops.py:
    # of two files that fit equally, the public module (the shallower path) comes first
    r = diagnose('bnb error: "ValueError: Blockwise quantization only supports 16/32-bit floats, '
                 'but got torch.uint8"', knowledge_base)
    assert [s.file for s in r.raise_sites[:2]] == ["bitsandbytes/functional.py", "bitsandbytes/backends/cuda/ops.py"]


def test_a_message_cut_after_a_filled_in_value_is_found_as_cut_short(knowledge_base):
    # unsloth/models/loader_utils.py get_model_name: "Unsloth: {name} is not supported in your
    # current Unsloth version! Please update Unsloth via:\n\npip uninstall ..." cut mid-line
    cut = "NotImplementedError: Unsloth: acme/Model-9B is not supported in your current Unsloth version! Please upd"
    site = diagnose(cut, knowledge_base).raise_sites[0]
    assert site.file == "unsloth/models/loader_utils.py" and site.confidence < 0.8
    assert raiseindex.prefix_fit(["Unsloth:", " is not ", " at all"], "Unsloth: x is not y") == 16
    assert raiseindex.prefix_fit(["Unsloth:", " is not ", " at all"], "Unsloth: x") is None   # no literal after the value
    assert raiseindex.prefix_fit(["Unsloth:", " is not"], "Unsloth: x is not") is None        # whole: a plain match


def test_only_a_raise_or_a_warn_line_quotes_a_template():
    from doctor.explainer.framesite import quoted_template

    assert quoted_template('raise ImportError(f"Unsloth: Please import Unsloth before {module}.")') == \
        ("ImportError", f"Unsloth: Please import Unsloth before {HOLE}.")
    assert quoted_template('warnings.warn("Unsloth: slow path " + name)') == ("warnings.warn", f"Unsloth: slow path {HOLE}")
    assert quoted_template('print("Unsloth: done")') is None and quoted_template("raise") is None
    assert quoted_template("return table[kind") is None   # a cut line does not parse


def test_a_raise_in_code_kept_in_a_string_is_a_site_and_a_docstring_example_is_not():
    source = textwrap.dedent('''
        def patch_rope(name):
            """Example:
                raise ValueError("Unsloth: this docstring example raises nothing at all")
            """
            code = """
            if scaling_type == "linear":
                pass
            else:
                raise ValueError(f"Unknown RoPE scaling type {{scaling_type}}")
            """
            return code.format(name=name)
    ''')
    sites = sites_from_source(source, "unsloth/models/_utils.py")
    assert [(s.line, s.function, s.kind, s.exc_type, s.template, s.condition) for s in sites] == [
        (10, "patch_rope", "raise", "ValueError", "Unknown RoPE scaling type {scaling_type}", "else")]


def test_a_print_in_code_kept_in_a_string_is_a_site_even_when_it_spans_lines():
    # unsloth/models/rl.py builds GRPO's batch check as text; a print whose message goes on
    # over the next line of the generated code does not parse alone: its first literal counts
    source = textwrap.dedent('''
        check = (
            "if per_device_train_batch_size % num_generations != 0:\\n"
            "    print('Unsloth: We now expect the batch size to be a multiple of num_generations.' +\\n"
            "          str(per_device_train_batch_size))\\n"
            "    print(f'Unsloth: Batch size {bs} is far too small for {n} generations here')\\n"
        )
    ''')
    found = [(s.kind, s.template, s.condition) for s in sites_from_source(source, "unsloth/models/rl.py")]
    guard = "per_device_train_batch_size % num_generations != 0"
    assert found == [
        ("print", "Unsloth: We now expect the batch size to be a multiple of num_generations.", guard),
        ("print", f"Unsloth: Batch size {HOLE} is far too small for {HOLE} generations here", guard)]


def test_grpos_batch_size_notice_printed_from_generated_code_is_found(knowledge_base):
    r = diagnose("Unsloth: We now expect `per_device_train_batch_size` to be a multiple of `num_generations`.\n"
                 "We will change the batch size of 8 to the `num_generations` of 16", knowledge_base)
    assert r.raise_sites and r.raise_sites[0].file == "unsloth/models/rl.py"


def test_a_cache_built_by_an_older_doctor_is_rebuilt(tmp_path, monkeypatch):
    import gzip
    import json

    root = tmp_path / "site"
    (root / "unsloth").mkdir(parents=True)
    (root / "unsloth" / "__init__.py").write_text('raise ValueError("Unsloth: a message only the new build reads")\n')
    (root / "unsloth-0.0.2.dist-info").mkdir()
    (root / "unsloth-0.0.2.dist-info" / "METADATA").write_text("Name: unsloth\nVersion: 0.0.2\n\n")
    monkeypatch.syspath_prepend(str(root))
    stale = raiseindex.cache_dir() / "unsloth-0.0.2.json.gz"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(gzip.compress(json.dumps({"format": raiseindex.FORMAT - 1, "package": "unsloth",
                                                "version": "0.0.2", "sites": []}).encode()))
    index = raiseindex.package_index("unsloth")
    assert [s.template for s in index.sites] == ["Unsloth: a message only the new build reads"]


def test_an_unsloth_message_raised_from_generated_code_is_found(knowledge_base):
    # unsloth/models/rl.py writes the GRPO trainer's checks as source text, then runs it
    r = diagnose("ValueError: Unsloth: Please set a positive non-zero temperature since your results will be wrong.",
                 knowledge_base)
    assert r.raise_sites and r.raise_sites[0].file == "unsloth/models/rl.py"


def test_the_innermost_frame_picks_a_later_tier_when_unsloth_repeats_the_message(knowledge_base):
    # unsloth/models/sentence_transformer.py raises transformers' own message too: the
    # traceback says which copy raised it, so the transformers index is read for it
    message = "ValueError: You must specify exactly one of input_ids or inputs_embeds"
    tb = ('Traceback (most recent call last):\n  File "/content/train.py", line 12, in <module>\n'
          '    model(**batch)\n  File "/usr/lib/python3.11/site-packages/transformers/models/marian/'
          'modeling_marian.py", line 467, in forward\n    raise ValueError(msg)\n' + message + "\n")
    lone, framed = (diagnose(t, knowledge_base).raise_sites for t in (message, tb))
    assert lone[0].file.startswith("unsloth/")
    assert framed[0].file == "transformers/models/marian/modeling_marian.py"
    assert framed[0].confidence > lone[0].confidence


@pytest.mark.parametrize("code, first", [
    ("raise AttributeError(f\"'{type(self).__name__}' object has no attribute '{name}'\")",
     "site:bitsandbytes/nn/modules.py"),   # bitsandbytes raised it on purpose in that file
    ("return self.absmax * 2", "ST-OBJECT-ATTR"),   # Python raised it in an expression
])
def test_a_frame_quoting_its_raise_puts_the_files_template_above_the_shape_reading(code, first, knowledge_base):
    from doctor.explainer.labels import ranked_labels

    tb = ('Traceback (most recent call last):\n  File "/content/train.py", line 12, in <module>\n'
          '    model.dequantize()\n  File "/usr/lib/python3.11/site-packages/bitsandbytes/nn/modules.py", '
          f"line 276, in __getattr__\n    {code}\nAttributeError: 'Params4bit' object has no attribute 'absmax'\n")
    labels = [label for label, _ in ranked_labels(diagnose(tb, knowledge_base))]
    assert labels[0] == first
    assert {"site:bitsandbytes/nn/modules.py", "ST-OBJECT-ATTR"} <= set(labels[:3])


def test_the_history_builder_reads_a_package_kept_under_src(tmp_path):
    """peft keeps its package in src/peft: the sites are named as installed (peft/...)."""
    from scripts.build_history_index import sites_at

    repo = tmp_path / "repo"
    (repo / "src" / "peft").mkdir(parents=True)
    (repo / "src" / "peft" / "auto.py").write_text("def f():\n    raise ValueError('Please specify the task type here')\n")
    env = {"HOME": str(tmp_path), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"]}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    found = sites_at(str(repo / ".git"), head, "peft", "src")
    assert [(s.file, s.template) for s in found] == [("peft/auto.py", "Please specify the task type here")]


TEXT_SOURCE = textwrap.dedent('''
    """Unsloth: a module docstring that reads like a message but documents the module."""

    def _hint(version):
        lines = [
            "Unsloth detected signs of an odd accelerator, but this PyTorch build cannot use it at all.",
            f"Detected version hint: {version}",
        ]
        return "\\n".join(lines)

    def _refusal(name):
        return ("Unsloth: The tokenizer `{name}` has no generation block, and automatic repair "
                "was not possible here.").format(name=name)

    def check(ok):
        if not ok:
            raise RuntimeError("Unsloth: this message is raised directly and indexed as a raise site.")
        help_text = "List of module names or regex expressions of the module names to replace."
''')


def test_sentences_built_away_from_their_call_are_text_sites():
    sites = sites_from_source(TEXT_SOURCE, "unsloth/probe.py")
    text = {s.template: s for s in sites if s.kind == "text"}
    assert any(t.startswith("Unsloth detected signs of an odd accelerator") for t in text)
    refusal = next(t for t in text if t.startswith("Unsloth: The tokenizer"))
    assert HOLE in refusal and text[refusal].function == "_refusal"
    raised = [s for s in sites if "raised directly" in s.template]
    assert [s.kind for s in raised] == ["raise"]            # never again as text
    assert not any("docstring" in t for t in text)           # a docstring is not a message
    assert not any("module names" in t for t in text)        # a help text does not open with Unsloth


def test_a_text_site_is_found_only_when_no_call_site_fits(knowledge_base):
    paste = ("Unsloth detected signs of an AMD ROCm GPU, but your current PyTorch build has no usable HIP "
             "accelerator.")
    sites = diagnose(paste, knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth_zoo/device_type.py" and sites[0].kind == "text"
    assert all(i.site.kind != "text" for i in raiseindex.default_index()._items)


def test_an_issue_title_above_a_long_report_is_read_as_its_message(knowledge_base):
    body = "\n".join(f"line {i} of what the reporter tried, with no error in it" for i in range(12))
    paste = ("[Bug] Unsloth detected signs of an AMD ROCm GPU, but your current PyTorch build has no usable "
             "HIP accelerator\n\n" + body)
    sites = diagnose(paste, knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth_zoo/device_type.py"
    assert diagnose("Some heading\n\n" + body, knowledge_base).raise_sites == []   # no title tag: a log


def test_a_message_found_in_the_source_is_not_called_unknown(knowledge_base):
    paste = ("Unsloth detected signs of an AMD ROCm GPU, but your current PyTorch build has no usable HIP "
             "accelerator.")
    shown = render_text(diagnose(paste, knowledge_base))
    assert "Raised in the source" in shown and "unsloth_zoo/device_type.py" in shown
    assert "No knowledge entry explains it beyond where the source raises it" in shown
    assert "No known cause matches" not in shown


def test_a_line_of_a_long_report_that_says_it_failed_is_read_as_its_message(knowledge_base):
    # prose around one line that quotes the library's message without an exception type
    body = "\n".join(f"step {i}: what the reporter did before it broke" for i in range(8))
    paste = (f"export to gguf on Colab\n\n{body}\nfails with:\n"
             "export failed: Failed during loading/introspection of original script: Failed to execute "
             "module convert_hf_to_gguf_original from /root/x.py\n")
    sites = diagnose(paste, knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth_zoo/llama_cpp.py"
    # lines of code that mention errors are not messages, and a log that says none has no site
    code = body + "\nraise_on_error = True\nif failed: print(failed)\n"
    assert diagnose(code, knowledge_base).raise_sites == []


def test_error_sentences_are_the_last_lines_that_say_so():
    from doctor.explainer.diagnosis import SAID_ERRORS, error_sentences
    from doctor.explainer.parse import parse_text

    lines = [f"note {i}" for i in range(10)] + [f"Unsloth: step {i} failed badly" for i in range(6)]
    said = error_sentences(parse_text("\n".join(lines)))
    assert said == [f"Unsloth: step {i} failed badly" for i in (5, 4, 3, 2)][:SAID_ERRORS]
    assert error_sentences(parse_text("x = 1\n# error handling below\nerrors = []\n")) == []
