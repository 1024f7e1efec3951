"""The training watchdog: pure rules on log records, then real tiny trainings on the CPU where
each condition is induced (all labels masked, a learning-rate ramp that explodes, a rate so
high the loss never falls) and the callback must see it, report it and, under policy="stop",
stop the run there."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from doctor.training.rules import Watcher, WatchPolicy, watch_history

# --- rules on plain records ---------------------------------------------------------------


def test_policy_rejects_unknown_action() -> None:
    with pytest.raises(ValueError, match="policy must be 'warn' or 'stop'"):
        WatchPolicy(action="panic")


def test_spike_needs_history_and_factor() -> None:
    calm = [{"loss": 2.0, "grad_norm": g} for g in (1.0, 1.2, 0.8, 1.1, 0.9)]
    assert watch_history(calm + [{"loss": 2.0, "grad_norm": 9.0}]) == []
    found = watch_history(calm + [{"loss": 2.0, "grad_norm": 50.0}])
    assert [o.entry_id for o in found] == ["TRAIN-GRAD-SPIKE"]
    assert found[0].values["ratio"] == pytest.approx(50.0 / 1.0, rel=0.01)
    # Too little history: the median of two norms is not trusted.
    assert watch_history(calm[:2] + [{"loss": 2.0, "grad_norm": 50.0}]) == []


def test_each_condition_reported_once() -> None:
    w = Watcher()
    first = w.observe(1, {"loss": float("nan")})
    again = w.observe(2, {"loss": float("nan")})
    assert [o.entry_id for o in first] == ["TRAIN-LOSS-NOT-FINITE"] and again == []


def test_nan_hidden_as_zero_is_not_called_zero_loss() -> None:
    found = watch_history([{"loss": 6.0, "grad_norm": 4.0}, {"loss": 0.0, "grad_norm": float("nan")}])
    assert [o.entry_id for o in found] == ["TRAIN-LOSS-NOT-FINITE"]
    assert found[0].values["which"] == "grad_norm"


def test_numbers_logged_as_strings_are_read() -> None:
    found = watch_history([{"loss": "0.0", "grad_norm": "0.0"}])
    assert [o.entry_id for o in found] == ["TRAIN-LOSS-ZERO"]


# --- real trainings -------------------------------------------------------------------------

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -r requirements/smoke-cpu.txt)")
pytest.importorskip("transformers", reason="transformers is not installed (pip install -r requirements/smoke-cpu.txt)")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    from doctor.smoketest.build import build_tiny_llama, build_tokenizer

    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = build_tokenizer(folder)
    build_tiny_llama(folder, tok)
    return folder, tok


def _rows(tok, masked: bool, n: int = 16, length: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        ids = tok(f"The sloth number {i} climbs the tree slowly.")["input_ids"][:length]
        ids = ids + [tok.pad_token_id] * (length - len(ids))
        t = torch.tensor(ids)
        labels = torch.full_like(t, -100) if masked else t.clone()
        rows.append({"input_ids": t, "attention_mask": torch.ones_like(t), "labels": labels})
    return rows


def _train(tiny, callback, *, masked: bool = False, steps: int = 8, **args):
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    folder, tok = tiny
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    targs = TrainingArguments(output_dir=str(folder / "out"), per_device_train_batch_size=4, max_steps=steps,
                              logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, seed=0,
                              disable_tqdm=True, **args)
    trainer = Trainer(model=model, args=targs, train_dataset=_rows(tok, masked), callbacks=[callback])
    trainer.train()
    return trainer


def _quiet():
    from doctor import DoctorCallback  # the public import path, loaded lazily by doctor/__init__.py
    return DoctorCallback


def test_healthy_run_reports_nothing(tiny) -> None:
    cb = _quiet()(policy="stop", on_finding=lambda f: None)
    trainer = _train(tiny, cb, learning_rate=5e-3)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < losses[0]          # the negative control really trained
    assert cb.findings == [] and trainer.state.global_step == 8


def test_all_labels_masked_gives_zero_loss_and_stops(tiny) -> None:
    shown = []
    cb = _quiet()(policy="stop", on_finding=shown.append)
    trainer = _train(tiny, cb, masked=True, learning_rate=5e-3)
    assert [f.id for f in cb.findings] == ["TRAIN-LOSS-ZERO"]
    assert cb.stopped_by == "TRAIN-LOSS-ZERO" and trainer.state.global_step == 1
    assert "(unknown)" not in shown[0].message and "stopping the run" in shown[0].message


RAMP_STEPS = 10


def _ramp(tiny, cb):
    # SGD with a linear warm-up towards a huge rate: a few calm steps, then the norms explode
    # and the weights overflow to NaN. No clipping, so nothing hides the explosion.
    return _train(tiny, cb, steps=RAMP_STEPS, optim="sgd", learning_rate=1000.0, lr_scheduler_type="linear",
                  warmup_steps=200, max_grad_norm=0)


def test_exploding_run_spike_then_nan_stops_at_nan(tiny) -> None:
    cb = _quiet()(policy="stop", on_finding=lambda f: None)
    trainer = _ramp(tiny, cb)
    by_id = {o.entry_id: o for o in cb.observations}
    assert set(by_id) == {"TRAIN-GRAD-SPIKE", "TRAIN-LOSS-NOT-FINITE"}
    spike, nan = by_id["TRAIN-GRAD-SPIKE"], by_id["TRAIN-LOSS-NOT-FINITE"]
    assert spike.values["step"] < nan.values["step"]
    assert spike.values["ratio"] > 10
    # The warning did not stop the run; the NaN did, at its own step.
    assert cb.stopped_by == "TRAIN-LOSS-NOT-FINITE"
    assert trainer.state.global_step == nan.values["step"] < RAMP_STEPS
    norms = [h.get("grad_norm") for h in trainer.state.log_history if "grad_norm" in h]
    assert not math.isfinite(norms[-1])


def test_warn_policy_lets_the_run_finish(tiny) -> None:
    cb = _quiet()(policy="warn", on_finding=lambda f: None)
    trainer = _ramp(tiny, cb)
    assert {f.id for f in cb.findings} == {"TRAIN-GRAD-SPIKE", "TRAIN-LOSS-NOT-FINITE"}
    assert cb.stopped_by is None and trainer.state.global_step == RAMP_STEPS


def test_spike_can_be_made_to_stop(tiny) -> None:
    cb = _quiet()(policy="stop", stop_on=["TRAIN-GRAD-SPIKE"], on_finding=lambda f: None)
    trainer = _ramp(tiny, cb)
    spike = next(o for o in cb.observations if o.entry_id == "TRAIN-GRAD-SPIKE")
    assert cb.stopped_by == "TRAIN-GRAD-SPIKE" and trainer.state.global_step == spike.values["step"]


def test_high_lr_with_no_fall_is_flagged(tiny) -> None:
    cb = _quiet()(policy="warn", flat_steps=10, on_finding=lambda f: None)
    trainer = _train(tiny, cb, steps=10, learning_rate=5.0, lr_scheduler_type="constant")
    flat = [o for o in cb.observations if o.entry_id == "TRAIN-LOSS-FLAT"]
    assert len(flat) == 1 and flat[0].values["lr"] == 5.0
    assert flat[0].values["end"] >= flat[0].values["start"] * 0.99
    assert trainer.state.global_step == 10


def test_import_doctor_stays_light() -> None:
    code = ("import sys, doctor; assert 'transformers' not in sys.modules and 'torch' not in sys.modules; "
            "cb = doctor.DoctorCallback; import transformers; assert issubclass(cb, transformers.TrainerCallback)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
