"""`unsloth-doctor report`: the Markdown to paste into an Unsloth issue, and the HTML page with
its plots, rendered in headless Chromium on a real dataset measured with a real tokenizer and
a real safetensors model folder."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from doctor.report.html import render_html
from doctor.report.redact import redact
from doctor.report.svg import PALETTE
from doctor.results.plots import VRAM_PARTS, plots_for
from doctor.results.report import Report
from doctor.results.smoke import SmokeReport, Stage
from tests.helpers.browser import dump_dom, screenshot
from tests.helpers.cli import ROOT, run_cli

TOKENIZER = ROOT / "fixtures/datasets/tokenizers/tiny-chatml"
TOKEN = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z"


def dataset(path: Path, rows: int = 300) -> Path:
    """Rows of lognormal length, so some pass max_seq_length 256 and most do not."""
    rng = random.Random(7)
    words = "the quick brown fox jumps over a lazy dog while the model trains".split()
    with path.open("w") as f:
        for _ in range(rows):
            f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(int(rng.lognormvariate(4, 0.7))))}) + "\n")
    return path


def model_folder(folder: Path, hidden: int = 64, inter: int = 128, layers: int = 2, vocab: int = 512) -> Path:
    """A Llama-shaped folder: config.json and real safetensors weights (zeros)."""
    np = pytest.importorskip("numpy")
    from safetensors.numpy import save_file

    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 4,
        "num_key_value_heads": 4, "vocab_size": vocab, "torch_dtype": "float16"}))
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "lm_head.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for n in range(layers):
        for name, shape in (("self_attn.q_proj", (hidden, hidden)), ("self_attn.k_proj", (hidden, hidden)),
                            ("self_attn.v_proj", (hidden, hidden)), ("self_attn.o_proj", (hidden, hidden)),
                            ("mlp.gate_proj", (inter, hidden)), ("mlp.up_proj", (inter, hidden)),
                            ("mlp.down_proj", (hidden, inter))):
            shapes[f"model.layers.{n}.{name}.weight"] = shape
    save_file({k: np.zeros(s, np.float16) for k, s in shapes.items()}, str(folder / "model.safetensors"))
    return folder


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    dataset(root / "train.jsonl")
    model_folder(root / "model")
    (root / "train.py").write_text("from trl import SFTConfig\n"
                                   f"token = '{TOKEN}'\nargs = SFTConfig(learning_rate=1e-2, output_dir='/home/alice/out')\n")
    return root


def report(root: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[str, Path]:
    proc = run_cli("report", "train.jsonl", "train.py", "--model", "model", "--tokenizer", str(TOKENIZER),
                   "--max-seq-length", "256", *extra, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    written = root / re.search(r"Wrote (\S+) ", proc.stdout).group(1)
    return proc.stdout, written


def test_the_markdown_report_has_the_environment_every_finding_and_the_version_redacted(tmp_path: Path) -> None:
    root = project(tmp_path)
    said, path = report(root, env={"COLAB_RELEASE_TAG": "release-colab-20261201"})
    assert path.name == "unsloth-doctor-report.md" and "github.com/unslothai/unsloth/issues/new" in said
    text = path.read_text()
    from importlib.metadata import version

    from doctor.version import __version__

    # the questions of Unsloth's bug template, answered
    assert "2. Colab or Kaggle or local / cloud: Colab" in text and "4. Which notebook? `train.py`" in text
    assert f"TRL {version('trl')}, transformers {version('transformers')}" in text

    assert f"### Environment (collected by unsloth-doctor {__version__})" in text
    assert re.search(r"^\| Python \| 3\.\d+", text, re.M) and re.search(r"^\| torch \| ", text, re.M)
    scan = json.loads(run_cli("scan", "train.jsonl", "train.py", "--model", "model", "--tokenizer", str(TOKENIZER),
                              "--max-seq-length", "256", "--env", "--format", "json", cwd=root).stdout)
    assert scan["findings"], "the project has findings to report"
    for finding in scan["findings"]:   # every finding of the same scan is in the report
        assert f"`{finding['id']}`" in text, finding["id"]
    assert TOKEN not in text and "/home/alice" not in text
    assert "SCRIPT-LR-TOO-HIGH" in text
    # an entry found on many rows is explained once, its places listed
    assert text.count("`DATA-TEXT-NO-EOS`") == 1 and re.search(r"train\.jsonl, lines 1, 2, 3 \(\+\d+ more\)", text)


def test_redaction_takes_host_and_user_names_only_where_they_name_this_machine() -> None:
    text = "on gpu-box-7 (gpu-box-7.lab.example) data in /data/alice/set and /home/bob/x; gpu-box-70 stays; Alice too"
    out = redact(text, host="gpu-box-7", user="alice")
    assert out == ("on <host> (<host>.lab.example) data in /data/<user>/set and /home/<user>/x; gpu-box-70 stays; "
                   "Alice too")
    # a user named after a package keeps the package's folder in a traceback's paths
    assert redact("/data/unsloth/run and /venv/lib/python3.11/site-packages/unsloth/models/llama.py", user="unsloth",
                  host="h") == "/data/<user>/run and /venv/lib/python3.11/site-packages/unsloth/models/llama.py"


def _self_contained(html: str) -> None:
    """Nothing to fetch: no script, no external stylesheet, image, font or import."""
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not re.search(r"""\bsrc\s*=|url\(|@import""", html, re.I)


def _pixels(png: Path, colour: str) -> int:
    image = pytest.importorskip("PIL.Image").open(png).convert("RGB")
    want = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    raw = image.tobytes()
    return sum(1 for p in zip(raw[0::3], raw[1::3], raw[2::3]) if all(abs(a - b) <= 6 for a, b in zip(p, want)))


def test_the_html_report_shows_findings_and_plots_in_a_real_browser(tmp_path: Path) -> None:
    root = project(tmp_path)
    _, page = report(root, "--format", "html")
    assert page.name == "unsloth-doctor-report.html"
    html = page.read_text()
    _self_contained(html)
    assert TOKEN not in html and "/home/alice" not in html
    dom = dump_dom(page)
    scan = json.loads(run_cli("scan", "train.jsonl", "train.py", "--model", "model", "--tokenizer", str(TOKENIZER),
                              "--max-seq-length", "256", "--env", "--format", "json", cwd=root).stdout)
    shown = re.findall(r'<article class="finding (\w+)" id="finding-\d+" data-count="(\d+)">.*?<code>([A-Z0-9-]+)</code>',
                       dom, re.S)
    assert sum(int(n) for _, n, _ in shown) == len(scan["findings"])   # grouped per entry and file, none left out
    assert sorted({i for _, _, i in shown}) == sorted({f["id"] for f in scan["findings"]})
    assert len(shown) < len(scan["findings"])   # the dataset's rows without EOS are one group
    figures = dict(re.findall(r'<figure id="plot-\d+"><figcaption>([^<]+)</figcaption>(.*?)</figure>', dom, re.S))
    assert set(figures) == {"Token length per row", "VRAM estimate against the GPU's memory"}
    histogram = figures["Token length per row"]
    assert 'class="marker"' in histogram and "max_seq_length 256" in histogram
    assert len(re.findall(r'class="bin"', histogram)) >= 5
    vram_plot = figures["VRAM estimate against the GPU's memory"]
    assert len(re.findall(r'class="segment"', vram_plot)) == len(VRAM_PARTS)   # every part of the estimate
    png = screenshot(page, tmp_path / "report.png")
    assert _pixels(png, PALETTE[0]) > 2000      # the histogram's bars under max_seq_length
    assert _pixels(png, "#ff9896") > 500        # and those over it
    assert _pixels(png, "#d62728") > 50         # the max_seq_length line


def test_the_smoke_tests_stage_times_and_the_gpu_limit_are_plotted(tmp_path: Path) -> None:
    stages = [Stage("import unsloth", 4.2, True), Stage("load model", 1.5, True), Stage("train 2 steps", 0.8, False,
                                                                                        "RuntimeError")]
    smoke = SmokeReport(stages=stages, seconds=6.5, facts={
        "smoke.estimate.weights_mib": 15000.0, "smoke.estimate.trainable_mib": 160.0,
        "smoke.estimate.activations_mib": 9000.0, "smoke.estimate.overhead_mib": 1024,
        "smoke.estimate.total_mib": 25184.0, "smoke.estimate.model": "llama-8b", "smoke.estimate.seq": 2048})
    facts = {"gpu.count": 1, "gpu.0.name": "Tesla T4", "gpu.0.memory_total_mib": 15360}
    report_ = Report(command="report", smoke=smoke, facts=facts, plots=plots_for(facts, smoke))
    vram, stage_times = report_.plots
    assert "does not fit under 90% of the GPU's 15,360 MiB" in vram.caption and vram.limit == 15360
    assert [b.ok for b in stage_times.bars] == [True, True, False]
    page = tmp_path / "smoke.html"
    page.write_text(render_html(report_))
    _self_contained(page.read_text())
    dom = dump_dom(page)
    assert dom.count('class="bar"') == 3 and dom.count('class="limit"') == 2 and "Tesla T4" in dom
    png = screenshot(page, tmp_path / "smoke.png", "1000,1400")
    assert _pixels(png, "#d62728") > 300        # the failed stage's bar and the GPU's limit


def test_the_token_histogram_keeps_every_row_on_an_axis_past_max_seq_length() -> None:
    from collections import Counter

    from doctor.probes.dataset.tokens import length_histogram

    h = length_histogram(Counter({3: 2, 250: 5, 256: 1, 257: 1, 1000: 1}), 256, bins=10)
    assert h["bin_width"] == 100 and h["counts"] == [2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1]
    assert h["rows"] == 10 and h["longest"] == 1000 and h["max_seq_length"] == 256
    short = length_histogram(Counter({10: 4}), 4096, bins=8)   # the axis reaches max_seq_length
    assert short["bin_width"] * len(short["counts"]) > 4096 and short["counts"][0] == 4


@pytest.mark.slow
def test_the_html_report_plots_a_real_smoke_tests_stage_times(tmp_path: Path) -> None:
    """`report --smoke`: Unsloth's tiny training step really runs (on the CPU here), and the
    page shows one bar per stage it timed."""
    pytest.importorskip("unsloth")
    root = project(tmp_path)
    proc = run_cli("report", "train.jsonl", "--tokenizer", str(TOKENIZER), "--max-seq-length", "256", "--smoke",
                   "--format", "html", "--output", "page.html", cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = dump_dom(root / "page.html")
    stages = re.findall(r'<tr><th>([^<]+)</th><td>(ok|skipped|FAILED), [\d.]+ s', dom)
    assert stages and "Smoke test: seconds per stage" in dom
    figure = re.search(r'<figcaption>Smoke test: seconds per stage</figcaption>(.*?)</figure>', dom, re.S).group(1)
    assert figure.count('class="bar"') == len(stages)
    assert [name for name, _ in stages] == re.findall(r'text-anchor="end" fill="#333">([^<]+)</text><rect class="bar"', figure)
