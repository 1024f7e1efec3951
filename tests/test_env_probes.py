"""Environment probes over real shapes: files written like pip writes them, recorded NVML answers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.probes.env import collect_environment, shebang_python
from doctor.probes.gpu import gpu_facts, visible_count
from doctor.probes.packages import dist_key, read_headers
from doctor.probes.system import SystemView, live_nvml, read_nvml
from doctor.probes.torch_build import bnb_facts, parse_version_file, select_bnb_library, torch_facts, xformers_facts
from tests.helpers.env_shapes import (BNB_LIBS, H100, RTX_3060, RTX_4090, TESLA_T4, Machine, RecordedNvml, no_driver,
                              real_metadata, torch_version_py, write_script)


# --- torch/version.py ------------------------------------------------------------------

def test_version_file_of_a_cpu_wheel() -> None:
    facts = torch_facts(torch_version_py("2.13.0+cpu"), "2.13.0+cpu")
    assert facts["torch.build"] == "cpu"
    assert facts["torch.local"] == "cpu"
    assert "torch.cuda_build" not in facts


def test_version_file_of_a_cuda_wheel() -> None:
    facts = torch_facts(torch_version_py("2.8.0+cu128", cuda="12.8"), "2.8.0+cu128")
    assert (facts["torch.build"], facts["torch.cuda_build"], facts["torch.cuda_major"]) == ("cuda", "12.8", 12)


def test_version_file_of_a_rocm_wheel() -> None:
    facts = torch_facts(torch_version_py("2.8.0+rocm6.4", hip="6.4.43482"), "2.8.0+rocm6.4")
    assert facts["torch.build"] == "rocm" and facts["torch.hip_build"] == "6.4.43482"


def test_pypi_default_linux_wheel_has_no_local_tag_but_the_file_says_cuda() -> None:
    # `pip install torch` from PyPI on Linux gives "2.8.0" (no +cu128); only version.py knows.
    facts = torch_facts(torch_version_py("2.8.0", cuda="12.8"), "2.8.0")
    assert facts["torch.cuda_build"] == "12.8" and "torch.local" not in facts


def test_version_file_missing_falls_back_to_the_local_tag() -> None:
    assert torch_facts(None, "2.7.1+cu126")["torch.cuda_build"] == "12.6"
    assert "torch.build" not in torch_facts(None, "2.7.1")


def test_parse_version_file_reads_plain_assignments_only() -> None:
    parsed = parse_version_file(torch_version_py("2.13.0+cpu"))
    assert parsed["cuda"] is None and parsed["debug"] == "False" and parsed["__version__"] == "2.13.0+cpu"


# --- bitsandbytes' shipped libraries ---------------------------------------------------

def test_bnb_0_45_5_has_no_library_for_cuda_13() -> None:
    facts = bnb_facts(BNB_LIBS["0.45.5"], "0.45.5", "cuda", "13.0", None)
    assert facts["bnb.cuda_lib_ok"] is False
    assert facts["bnb.cuda_libs"].endswith("12.6, 12.8")


def test_bnb_0_49_2_has_an_exact_match_for_cuda_13() -> None:
    facts = bnb_facts(BNB_LIBS["0.49.2"], "0.49.2", "cuda", "13.0", None)
    assert facts["bnb.cuda_lib_ok"] is True and facts["bnb.selected_lib"] == "13.0"
    assert facts["bnb.cuda_lib_fallback"] is False


def test_bnb_selection_follows_cextension_rules() -> None:
    libs = {(11, 8): "a", (12, 8): "b", (13, 0): "c"}
    assert select_bnb_library(libs, "12.9", "0.50.0", None) == ((12, 8), True)   # highest lower minor
    assert select_bnb_library(libs, "12.1", "0.50.0", None) == ((12, 8), True)   # else lowest higher minor
    assert select_bnb_library(libs, "12.9", "0.49.2", None) == (None, False)     # before 0.50: exact only
    assert select_bnb_library(libs, "13.2", "0.50.0", None) == ((13, 0), True)
    assert select_bnb_library({(12, 8): "b"}, "13.0", "0.50.0", None) == (None, False)  # never across majors
    assert select_bnb_library(libs, "13.0", "0.49.2", "118") == ((11, 8), False)  # BNB_CUDA_VERSION wins


def test_bnb_on_a_cpu_torch_says_nothing_about_cuda() -> None:
    facts = bnb_facts(BNB_LIBS["0.49.2"], "0.49.2", "cpu", None, None)
    assert "bnb.cuda_lib_ok" not in facts and facts["bnb.has_cpu_lib"] is True


def test_xformers_build_info() -> None:
    # the shape of xformers/cpp_lib.json: nvcc 12.8 is written 1208
    text = json.dumps({"version": {"cuda": 1208, "torch": "2.8.0+cu128", "python": "3.11.13"}, "env": {}})
    facts = xformers_facts(text)
    assert facts["xformers.built_for_torch"] == "2.8.0+cu128" and facts["xformers.built_for_cuda"] == "12.8"
    assert len(xformers_facts("{not json")) == 0


# --- NVML ------------------------------------------------------------------------------

def test_nvml_t4_with_an_old_driver() -> None:
    nvml = RecordedNvml("470.182.03", 11040, [TESLA_T4])
    facts = gpu_facts(read_nvml(nvml), {})
    assert facts["nvml.driver_cuda"] == "11.4" and facts["nvml.driver_cuda_major"] == 11
    assert facts["gpu.0.capability"] == 7.5 and facts["gpu.0.memory_total_mib"] == 15360
    assert facts["gpu.visible_count"] == 1 and facts["gpu.mixed"] is False
    assert nvml.shutdown_calls == 1


def test_nvml_missing_library_is_a_fact_not_an_exception() -> None:
    facts = gpu_facts(read_nvml(no_driver()), {})
    assert facts["nvml.available"] is False and "LibraryNotFound" in facts["nvml.error"]
    assert facts["gpu.count"] == 0


def test_nvml_missing_but_kernel_module_loaded_does_not_claim_zero_gpus() -> None:
    proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
    facts = gpu_facts(read_nvml(no_driver()), {}, proc)
    assert "gpu.count" not in facts and facts["nvml.kernel_driver_version"] == "535.104.05"


def test_live_nvml_on_this_machine_never_raises() -> None:
    snap = live_nvml()
    assert snap.ok or snap.error


def test_mixed_gpus() -> None:
    facts = gpu_facts(read_nvml(RecordedNvml("570.133.07", 12080, [RTX_4090, RTX_3060])), {})
    assert facts["gpu.mixed"] is True and facts["gpu.min_capability"] == 8.6 and facts["gpu.max_capability"] == 8.9
    assert facts["gpu.names"] == "NVIDIA GeForce RTX 4090, NVIDIA GeForce RTX 3060"


@pytest.mark.parametrize("value,count,expected", [
    (None, 2, 2), ("", 2, 0), ("-1", 2, 0), ("0", 2, 1), ("1,0", 2, 2), ("0,5,1", 2, 1),
    ("2", 2, 0), ("GPU-3f1c2a9e-0000-0000-0000-000000000000", 1, 1), ("0,0", 2, 1), (" 1 ", 2, 1),
])
def test_cuda_visible_devices(value: str | None, count: int, expected: int) -> None:
    assert visible_count(value, count) == expected


# --- packages --------------------------------------------------------------------------

def test_dist_key_normalises_names() -> None:
    assert dist_key("Unsloth-Zoo") == dist_key("unsloth_zoo") == dist_key("unsloth.zoo") == "unsloth_zoo"


def test_read_headers_stops_at_the_body_and_keeps_line_numbers() -> None:
    headers = read_headers(real_metadata("unsloth-2026.10.9"))
    trl = [(line, v) for line, k, v in headers if k == "Requires-Dist" and v.startswith("trl")]
    assert trl[0] == (43, "trl!=0.19.0,<=1.15.0,>=0.18.2")
    assert all("extra ==" in v for _, v in trl[1:])  # the rest belong to extras


def test_unsloth_requirements_from_its_real_metadata(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.site.install("unsloth", "2026.10.9", metadata=real_metadata("unsloth-2026.10.9"))
    m.site.install("trl", "1.16.0")
    m.site.install("unsloth_zoo", "2026.8.1")
    result = collect_environment(m.view())
    by_dep = {o.values["dependency"]: o for o in result.observations if "dependency" in o.values}
    missing = [o for o in result.observations if o.entry_id == "ENV-REQUIREMENT-MISSING"]
    assert len(missing) == 1  # one finding for all of unsloth's missing requirements
    assert missing[0].values["package"] == "unsloth" and missing[0].values["missing_count"] >= 20
    by_dep.update({d: missing[0] for d in missing[0].values["dependencies"]})
    # torch-pinned builds are never in the plain pip line (pip would replace torch for them)
    assert "torchvision" in missing[0].values["dependencies"]
    assert "torchvision" not in missing[0].values["install_args"]
    assert "torchvision" in missing[0].values["pinned_note"] and "xformers" in missing[0].values["pinned_note"]
    trl = by_dep["trl"]
    assert trl.entry_id == "ENV-REQUIREMENT-UNMET"
    assert trl.values["installed"] == "1.16.0" and trl.values["requirement"] == "trl!=0.19.0,<=1.15.0,>=0.18.2"
    assert trl.location.line == 43 and trl.location.path.endswith("unsloth-2026.10.9.dist-info/METADATA")
    assert by_dep["unsloth_zoo"].entry_id == "ENV-REQUIREMENT-UNMET"
    assert by_dep["torch"].entry_id == "ENV-REQUIREMENT-MISSING"
    # markers are evaluated for the examined interpreter: Linux wants triton, not triton-windows
    assert "triton" in by_dep and "triton-windows" not in by_dep
    # extras are not base requirements
    assert "fastapi" not in by_dep


def test_markers_follow_the_examined_platform(tmp_path: Path) -> None:
    m = Machine(tmp_path, system="Windows")
    m.site.install("unsloth", "2026.10.9", metadata=real_metadata("unsloth-2026.10.9"))
    deps = {d for o in collect_environment(m.view()).observations for d in o.values.get("dependencies", [])}
    assert "triton-windows" in deps and "triton" not in deps


def test_python_outside_requires_python(tmp_path: Path) -> None:
    m = Machine(tmp_path, python_version="3.15.0")
    m.site.install("unsloth", "2026.10.9", metadata=real_metadata("unsloth-2026.10.9"))
    obs = [o for o in collect_environment(m.view()).observations if o.entry_id == "ENV-PYTHON-UNSUPPORTED"]
    assert obs and obs[0].values["requires_python"] == "<3.15,>=3.9" and obs[0].location.line == 17


def test_torchvision_pinned_to_another_torch(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.site.torch("2.8.0+cu128", "12.8")
    m.site.install("torchvision", "0.22.1+cu126", requires=["numpy", "torch==2.7.1"])
    obs = [o for o in collect_environment(m.view()).observations if o.entry_id == "ENV-TORCH-PIN-MISMATCH"]
    assert obs and obs[0].values["installed"] == "2.8.0+cu128" and obs[0].values["requirement"] == "torch==2.7.1"


def test_duplicates_leftovers_and_broken_installs(tmp_path: Path) -> None:
    user_site = tmp_path / "user-site"
    m = Machine(tmp_path, extra_sites=[user_site])
    m.site.torch("2.8.0+cu128", "12.8")
    from tests.helpers.env_shapes import Site

    Site(user_site).install("torch", "2.7.1", files={"torch/__init__.py": ""})
    (m.site.root / "~orch").mkdir()
    dist = m.site.install("triton", "3.4.0", files={"triton/__init__.py": ""})
    (m.site.root / "triton" / "__init__.py").unlink()
    (m.site.root / "triton").rmdir()
    facts = collect_environment(m.view()).facts
    assert facts["pkg.torch.version"] == "2.8.0+cu128"  # the first copy on sys.path is the one imported
    assert "2.8.0+cu128 in" in facts["pkg.duplicates"] and "2.7.1 in" in facts["pkg.duplicates"]
    assert facts["pkg.leftovers"].endswith("~orch")
    assert facts["pkg.broken"] == "triton"
    assert dist.exists()


# --- paths, compiler, live machine -----------------------------------------------------

def test_shebangs() -> None:
    assert shebang_python("#!/opt/conda/bin/python3.11\nimport sys\n") == "/opt/conda/bin/python3.11"
    long = "#!/bin/sh\n'''exec' \"/very/long path/bin/python\" \"$0\" \"$@\"\n' '''\nimport re\n"
    assert shebang_python(long) == "/very/long path/bin/python"
    assert shebang_python("#!/usr/bin/env python3\n") is None
    assert shebang_python("MZ\x90\x00") is None


def test_pip_from_another_environment(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    other = tmp_path / "conda" / "bin"
    other.mkdir(parents=True)
    pip = write_script(other / "pip", "#!/opt/conda/bin/python3.11\n# -*- coding: utf-8 -*-\nimport re\n")
    m.tools.update({"python": str(tmp_path / "prefix" / "bin" / "python"), "pip": str(pip)})
    facts = collect_environment(m.view()).facts
    assert facts["path.pip_python"] == "/opt/conda/bin/python3.11"
    assert facts["path.pip_python_mismatch"] is True


def test_no_compiler_on_path(tmp_path: Path) -> None:
    m = Machine(tmp_path, tools={})
    assert collect_environment(m.view()).facts["cc.found"] is False
    m2 = Machine(tmp_path / "b", tools={"clang": "/usr/bin/clang"})
    assert collect_environment(m2.view()).facts["cc.path"] == "/usr/bin/clang"


def test_unactivated_conda_env(tmp_path: Path) -> None:
    m = Machine(tmp_path, environ={"CONDA_PREFIX": "/opt/conda"})
    (tmp_path / "prefix" / "conda-meta").mkdir(parents=True)
    facts = collect_environment(m.view()).facts
    assert facts["python.conda"] is True and facts["python.conda_unactivated"] is True


def test_env_vars_are_kept_but_tokens_are_not(tmp_path: Path) -> None:
    m = Machine(tmp_path, environ={"UNSLOTH_DISABLE_CPU_FALLBACK": "1", "UNSLOTH_HF_TOKEN": "hf_secret",
                                   "HF_TOKEN": "hf_secret", "CUDA_VISIBLE_DEVICES": ""})
    facts = collect_environment(m.view()).facts
    assert facts["env.UNSLOTH_DISABLE_CPU_FALLBACK"] == "1" and facts["env.CUDA_VISIBLE_DEVICES"] == ""
    assert "hf_secret" not in json.dumps(dict(facts), default=str)


def test_areas_summarise_each_part(tmp_path: Path) -> None:
    m = Machine(tmp_path, nvml=RecordedNvml("550.54.15", 12040, [H100]))
    m.site.torch("2.8.0+cu128", "12.8")
    python, torch, gpu, stack = collect_environment(m.view()).areas
    # each line is keyed by the area of the findings it stands for
    assert [a.area for a in (python, torch, gpu, stack)] == ["env", "packages", "gpu", "packages"]
    assert torch.label == "torch 2.8.0+cu128 (CUDA 12.8 build)"
    assert "1 GPU" in gpu.label and "H100" in gpu.detail
    assert stack.label == "unsloth is not installed"


def test_live_scan_imports_nothing_heavy() -> None:
    code = ("import sys, json; from doctor.probes.env import collect_environment; r = collect_environment();"
            "heavy = [m for m in ('torch','unsloth','transformers','trl','peft','bitsandbytes','rich') if m in sys.modules];"
            "print(json.dumps({'heavy': heavy, 'python': r.facts['python.version'], 'nvml': r.facts['nvml.available']}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["heavy"] == []
    assert data["python"] == "%d.%d.%d" % sys.version_info[:3]


def test_live_view_of_another_interpreter() -> None:
    view = SystemView.live(sys.executable)
    assert view.python.version == "%d.%d.%d" % sys.version_info[:3]
    assert any(p.endswith("site-packages") for p in view.python.site_dirs)


# --- our PEP 508 reader agrees with packaging's on every real line ---------------------

@pytest.mark.parametrize("overrides", [
    {},
    {"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows", "os_name": "nt"},
    {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin"},
    {"python_version": "3.9", "python_full_version": "3.9.18"},
])
def test_requirement_reader_matches_packaging(overrides: dict[str, str]) -> None:
    from packaging.requirements import Requirement

    from doctor.probes.packages import marker_environment, marker_holds, parse_requirement
    from doctor.probes.system import this_python

    env = {**marker_environment(this_python()), **overrides}
    lines = [line.split(": ", 1)[1].strip() for name in ("unsloth-2026.10.9", "unsloth_zoo-2026.10.9")
             for line in real_metadata(name).splitlines() if line.startswith("Requires-Dist: ")]
    assert len(lines) > 600
    for line in lines:
        theirs, ours = Requirement(line), parse_requirement(line)
        assert ours is not None and ours.name == theirs.name
        assert set(filter(None, ours.specifier.split(","))) == set(filter(None, str(theirs.specifier).split(",")))
        want = True if theirs.marker is None else theirs.marker.evaluate(dict(env))
        got = True if ours.marker is None else marker_holds(ours.marker, env)
        assert got == want, line


def test_marker_reader_edge_cases() -> None:
    from doctor.probes.packages import marker_holds, parse_requirement

    env = {"python_version": "3.11", "sys_platform": "linux", "extra": ""}
    assert marker_holds('python_version >= "3.10" and (sys_platform == "linux" or sys_platform == "win32")', env)
    assert marker_holds('"linux" in sys_platform', env) and not marker_holds('"win" in sys_platform', env)
    assert marker_holds('sys_platform not in "win32 cygwin"', env)
    assert marker_holds('no_such_variable == "x"', env) is None
    assert marker_holds('python_version >= "3.10" and', env) is None
    assert parse_requirement("torch (>=2.4, <2.15)") is not None
    assert parse_requirement("torch (>=2.4, <2.15)").specifier == ">=2.4,<2.15"
    assert parse_requirement("pkg @ https://example.invalid/pkg.whl").specifier == ""
    assert parse_requirement("!!!") is None


def test_live_view_of_something_that_is_not_python(tmp_path: Path) -> None:
    from doctor.probes.system import NotAPython

    with pytest.raises(NotAPython, match="does not run as a Python interpreter"):
        SystemView.live(str(tmp_path / "missing-python"))
    fake = write_script(tmp_path / "python", "#!/bin/sh\necho hello\n")
    with pytest.raises(NotAPython):
        SystemView.live(str(fake))


# --- generated markers: our evaluator against packaging's ------------------------------

def _markers():
    from hypothesis import strategies as st

    variables = st.sampled_from(["python_version", "python_full_version", "sys_platform", "platform_machine",
                                 "platform_system", "os_name", "implementation_name", "extra"])
    literals = st.sampled_from(["3.9", "3.10", "3.11", "3.11.7", "3.13", "linux", "win32", "darwin", "x86_64",
                                "AMD64", "arm64", "Linux", "Windows", "posix", "nt", "cpython", "", "lin", "1.0a1"])
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"])

    def leaf(draw_var: str, op: str, lit: str, var_left: bool) -> str:
        return f'{draw_var} {op} "{lit}"' if var_left else f'"{lit}" {op} {draw_var}'

    leaves = st.builds(leaf, variables, ops, literals, st.booleans())
    return st.recursive(leaves, lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a: f"({a})", inner)), max_leaves=6)


def test_generated_markers_match_packaging() -> None:
    from hypothesis import given, settings
    from packaging.markers import InvalidMarker, Marker

    from doctor.probes.packages import marker_environment, marker_holds
    from doctor.probes.system import this_python

    env = marker_environment(this_python())

    @settings(max_examples=150, deadline=None)
    @given(_markers())
    def check(text: str) -> None:
        try:
            want = Marker(text).evaluate(dict(env))
        except (InvalidMarker, Exception):
            return  # packaging refuses it (e.g. `<` between two strings it cannot order as versions)
        assert marker_holds(text, env) == want, text

    check()


def test_damaged_version_file_does_not_claim_a_cpu_build() -> None:
    assert "torch.build" not in torch_facts("\x00\x01 not python at all", "2.8.0")


def test_damaged_install_files_never_break_the_scan(tmp_path: Path) -> None:
    """Whatever bytes sit in METADATA, RECORD, version.py or cpp_lib.json, the scan answers."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    blobs = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
    counter = iter(range(10**6))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(metadata=blobs, record=blobs, version_py=blobs, cpp_lib=blobs)
    def check(metadata: bytes, record: bytes, version_py: bytes, cpp_lib: bytes) -> None:
        m = Machine(tmp_path / str(next(counter)))
        m.site.torch("2.8.0+cu128", "12.8")
        (m.site.root / "torch" / "version.py").write_bytes(version_py)
        dist = m.site.install("unsloth", "2026.10.9")
        (dist / "METADATA").write_bytes(metadata)
        (dist / "RECORD").write_bytes(record)
        m.site.install("xformers", "0.0.32", files={"xformers/__init__.py": "", "xformers/cpp_lib.json": ""})
        (m.site.root / "xformers" / "cpp_lib.json").write_bytes(cpp_lib)
        result = collect_environment(m.view())
        assert result.facts["pkg.unsloth.version"] == "2026.10.9"  # the folder name still tells

    check()


def test_a_record_naming_a_path_with_a_nul_byte_does_not_break_the_scan(tmp_path: Path) -> None:
    # found by the property test above: os.listdir raises ValueError, not OSError, on a NUL
    m = Machine(tmp_path)
    m.site.torch("2.8.0+cu128", "12.8")
    dist = m.site.install("unsloth", "2026.10.9")
    (dist / "RECORD").write_bytes(b"\x00/\nunsloth/\x00x.py,,\n")
    assert collect_environment(m.view()).facts["pkg.unsloth.version"] == "2026.10.9"
