"""Structural diagnoses (import names, attributes, signatures, dataset format, CUDA codes),
cut tracebacks read from their innermost frame, reworded messages, and the ranked labels.

The package lookups read the real installed trl / peft / unsloth source (never imported)."""
from __future__ import annotations

import pytest

from doctor.explainer import cuda_errors, pkgsource
from doctor.explainer.diagnosis import diagnose
from doctor.explainer.labels import ranked_labels
from doctor.explainer.raiseindex import installed_root
from scripts.gen_cuda_error_table import enum_docs

needs = pytest.mark.skipif(any(installed_root(p) is None for p in ("trl", "peft", "unsloth")),
                           reason="trl, peft and unsloth must be installed to read their source")


def _by_id(result, wanted):
    return next((d for d in result.diagnoses if d.id == wanted), None)


@needs
def test_an_import_name_the_installed_package_lacks_says_so(knowledge_base):
    r = diagnose("ImportError: cannot import name 'NoSuchHelper' from 'trl.trainer.utils'", knowledge_base)
    d = _by_id(r, "ST-IMPORT-NAME")
    assert d is not None and d.confidence >= 0.7
    assert f"trl {pkgsource.version('trl')}" in d.finding.message
    assert "does not define `NoSuchHelper`" in d.finding.message


@needs
def test_an_import_name_the_installed_package_has_points_at_the_other_environment(knowledge_base):
    r = diagnose("ImportError: cannot import name 'SFTConfig' from 'trl'", knowledge_base)
    d = _by_id(r, "ST-IMPORT-NAME")
    assert d is not None and "defines `SFTConfig`" in d.finding.message
    assert "different version" in d.finding.message


@needs
def test_the_importing_package_and_its_requirement_are_named(knowledge_base):
    text = ('Traceback (most recent call last):\n'
            '  File "/x/site-packages/unsloth/models/_utils.py", line 12, in <module>\n'
            '    from unsloth_zoo.loss_utils import _no_such_name\n'
            "ImportError: cannot import name '_no_such_name' from 'unsloth_zoo.loss_utils'\n")
    d = _by_id(diagnose(text, knowledge_base), "ST-IMPORT-NAME")
    spec = pkgsource.requirement_on("unsloth", "unsloth_zoo")
    assert d is not None and "(unsloth)" in d.finding.message
    if spec:
        assert spec in d.finding.message
    assert d.finding.fixes[0].command == "pip install --upgrade unsloth unsloth_zoo"


@needs
def test_a_module_attribute_in_a_title(knowledge_base):
    r = diagnose("Tests failing, AttributeError: module 'peft' has no attribute 'NoSuchTuner', peft lib", knowledge_base)
    assert _by_id(r, "ST-MODULE-ATTR") is not None


@needs
def test_an_object_attribute_names_the_package_that_provides_it(knowledge_base):
    r = diagnose("AttributeError: 'LlamaForCausalLM' object has no attribute 'merge_and_unload'", knowledge_base)
    d = _by_id(r, "ST-OBJECT-ATTR")
    assert d is not None and "provided by peft" in d.finding.message


def test_an_attribute_of_none_is_no_structural_diagnosis(knowledge_base):
    r = diagnose("AttributeError: 'NoneType' object has no attribute 'merge_and_unload'", knowledge_base)
    assert _by_id(r, "ST-OBJECT-ATTR") is None


@needs
def test_an_unexpected_keyword_names_where_the_callee_is_defined(knowledge_base):
    r = diagnose("TypeError: GRPOTrainer.__init__() got an unexpected keyword argument 'frobnicate'", knowledge_base)
    d = _by_id(r, "ST-API-MISMATCH")
    assert d is not None and "`frobnicate`" in d.finding.message and "defined by trl" in d.finding.message


def test_a_positional_count_mismatch(knowledge_base):
    r = diagnose("TypeError: MyTrainer._get_train_sampler() takes 1 positional argument but 2 were given",
                 knowledge_base)
    assert _by_id(r, "ST-API-MISMATCH") is not None


def test_a_key_error_while_mapping_a_dataset_is_its_format(knowledge_base):
    text = ('Traceback (most recent call last):\n'
            '  File "/x/site-packages/datasets/arrow_dataset.py", line 3552, in _map_single\n'
            '    batch = apply_function_on_filtered_inputs(\n'
            '  File "/x/train.py", line 9, in formatting_prompts_func\n'
            '    texts = examples["instruction"]\n'
            "KeyError: 'instruction'\n")
    d = _by_id(diagnose(text, knowledge_base), "ST-DATASET-FORMAT")
    assert d is not None and "`instruction`" in d.finding.message and d.confidence >= 0.7


def test_a_key_error_elsewhere_is_not_called_a_dataset_problem(knowledge_base):
    text = ('Traceback (most recent call last):\n'
            '  File "/x/app.py", line 3, in lookup\n'
            '    return CACHE[key]\n'
            "KeyError: 'gpu7'\n")
    assert _by_id(diagnose(text, knowledge_base), "ST-DATASET-FORMAT") is None


@pytest.mark.parametrize("line,code", [
    ("RuntimeError: CUDA error: misaligned address", 716),
    ("CUDA failure 900: operation not permitted when stream is capturing", 900),
    ("CUDA_ERROR_MISALIGNED_ADDRESS failed with error misaligned address", 716),
    ("cudaErrorLaunchFailure returned by the kernel", 719),
])
def test_cuda_errors_are_found_by_text_name_or_number(line, code):
    found = cuda_errors.find(line)
    assert found is not None and found.code == code and found.doc


def test_an_unknown_cuda_text_is_not_guessed():
    assert cuda_errors.find("CUDA error: the moon is in the wrong phase") is None


def test_a_cuda_error_gets_its_documented_meaning(knowledge_base):
    d = _by_id(diagnose("CUDA error: operation not permitted when stream is capturing", knowledge_base),
               "ST-CUDA-ERROR")
    assert d is not None and "900" in d.finding.message and "cudaErrorStreamCaptureUnsupported" in d.finding.message


def test_the_cuda_table_generator_reads_the_enum():
    header = ("enum __device_builtin__ cudaError\n{\n    /**\n     * The device encountered a load.\n"
              "     * More text.\n     */\n    cudaErrorMisalignedAddress = 716,\n};\n")
    assert enum_docs(header) == {"cudaErrorMisalignedAddress": (716, "The device encountered a load.")}


@needs
def test_a_cut_notebook_traceback_points_at_its_innermost_library_frame(knowledge_base):
    text = ("RuntimeError                              Traceback (most recent call last)\n"
            "Cell In[23], line 1\n"
            '----> 1 model.save_pretrained_gguf("m", tokenizer)\n\n'
            "File ~/venv/lib/python3.12/site-packages/unsloth/save.py:1865, in unsloth_save_pretrained_gguf(self)\n"
            "-> 1865 all_file_locations = save_to_gguf(\n\n"
            "File ~/venv/lib/python3.12/site-packages/unsloth/save.py:1093, in save_to_gguf(model_type)\n"
            "   1092 else:\n"
            "-> 1093     raise RuntimeErro\n")
    r = diagnose(text, knowledge_base)
    assert r.raise_sites and r.raise_sites[0].file == "unsloth/save.py"
    assert r.raise_sites[0].confidence <= 0.5
    assert any("stops inside unsloth's `save_to_gguf`" in n for n in r.notes)


@needs
def test_a_message_of_another_release_is_a_weaker_lead_that_says_so(knowledge_base):
    # unsloth_zoo's GGUF converter message, worded as an older release printed it
    text = ("RuntimeError: Unsloth: Failed to convert the merged model to GGUF with the converter "
            "command - the conversion output shows details")
    r = diagnose(text, knowledge_base)
    reworded = [s for s in r.raise_sites if s.version_note and "worded differently" in s.version_note]
    assert all(s.confidence < 0.7 for s in reworded)


def test_labels_are_ranked_by_confidence_across_entries_and_sites(knowledge_base):
    r = diagnose("RuntimeError: Unsloth: Quantization failed for /x/unsloth.BF16.gguf", knowledge_base)
    labels = ranked_labels(r)
    assert labels and labels[0][0] == "RT-GGUF-QUANTIZE-FAILED"
    assert [c for _, c in labels] == sorted((c for _, c in labels), reverse=True)


@needs
def test_an_issue_title_with_the_error_inside_is_matched_by_its_typed_part(knowledge_base):
    title = "[Bug] RuntimeError: Unsloth: `gemma-3-finetune` does not exist? - in Gemma3_(270M).ipynb colab"
    sites = diagnose(title, knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth_zoo/llama_cpp.py"


@needs
def test_a_title_cut_at_its_length_limit_still_finds_the_message(knowledge_base):
    # unsloth_zoo/hf_utils.py: "Unsloth: No config file found - are you sure the `model_name` is correct?..."
    sites = diagnose("#immediate issue# Unsloth: No config file found", knowledge_base).raise_sites
    assert sites and sites[0].file == "unsloth_zoo/hf_utils.py" and sites[0].confidence < 0.85
